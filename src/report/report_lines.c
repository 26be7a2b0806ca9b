/* report_lines.c -- PLACEHOLDER (the "lines" engineer replaces it). */
#include "report/report_lines.h"

#include "model/model.h"
#include "report/docw.h"

void cp_report_lines_doc(const cp_model *m, cp_docw *w) {
    (void)m;
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", 0);
    cp_docw_end_object(w);
}

void cp_report_lines_text(const cp_model *m, cp_strbuf *out) {
    (void)m;
    (void)out;
}
