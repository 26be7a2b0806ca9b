/* report_sample.c -- PLACEHOLDER (the "samplereport" engineer replaces it). */
#include "report/report_sample.h"

#include "model/model.h"
#include "report/docw.h"

void cp_report_sample_doc(const cp_model *m, cp_docw *w) {
    (void)m;
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", 0);
    cp_docw_end_object(w);
}

void cp_report_sample_text(const cp_model *m, cp_strbuf *out) {
    (void)m;
    (void)out;
}
