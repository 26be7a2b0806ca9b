/* report_gpu.h -- the report's `gpu` section (docs/report-schema.md) and
 * its block of the text summary.  One description for the JSON report and
 * Model.report("gpu") (docw.h). */
#ifndef CP_REPORT_GPU_H
#define CP_REPORT_GPU_H

#include "report/strbuf.h"

struct cp_model;
struct cp_docw;

/* Writes the section's value (an object) through the document writer. */
void cp_report_gpu_doc(const struct cp_model *m, struct cp_docw *w);
/* Appends the text summary's block (nothing when there is nothing to say). */
void cp_report_gpu_text(const struct cp_model *m, cp_strbuf *out);

#endif /* CP_REPORT_GPU_H */
