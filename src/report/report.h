/* report.h -- the report writers: a cp_model (with its findings, see
 * src/analysis/rules.h) rendered as the versioned JSON report
 * (docs/report-schema.md) or as a text summary for terminals.
 *
 * Writers only read the model and the site table (for names); they never
 * touch live recording state.  They append to `out` (which may already
 * hold text) and return 0, or -1 when the buffer ran out of memory (then
 * `out` is in its oom state and must be freed).  Both run in time linear
 * in the model's nodes, functions and findings (plus sorting), whatever
 * the number of calls recorded.  Thread-safe for distinct `out` buffers.
 */
#ifndef CP_REPORT_H
#define CP_REPORT_H

#include "model/model.h"
#include "report/strbuf.h"

/* Call-tree levels written in the JSON report.  A node at this depth
 * whose subtree goes deeper is written with "children": [] and
 * "elided_nodes": <descendants>; its own times still include them.  Keeps
 * the document parseable by recursive JSON readers (Python's json module
 * stops near 1000 nesting levels; each tree level nests twice). */
#define CP_REPORT_MAX_TREE_DEPTH 256

/* The JSON report.  `m` must not be NULL. */
int cp_report_json(const cp_model *m, cp_strbuf *out);

/* The text summary: header, top functions by inclusive and by self time,
 * findings.  `m` must not be NULL. */
int cp_report_text(const cp_model *m, cp_strbuf *out);

struct cp_jsonw;

/* The data-loading section (src/report/report_data.c): writes the key
 * "data_loading" and its object into the JSON object being written by
 * `w` (always, with empty lists and zero figures when nothing was
 * recorded; docs/report-schema.md lists every field).  Errors (OOM)
 * surface through `w`'s buffer like every other write.  `m` and `w` must
 * not be NULL. */
void cp_report_data_json(const cp_model *m, struct cp_jsonw *w);

/* Appends the text summary's "Data loading" block (loaders, datasets,
 * worker processes, top stages); appends nothing when no data-loading
 * record exists.  OOM sets out->oom.  `m` and `out` must not be NULL. */
void cp_report_data_text(const cp_model *m, cp_strbuf *out);

/* Report name of a codeprof_site_kind ("scope", "python", ...);
 * "unknown" for values out of range.  Static string. */
const char *cp_report_kind_name(unsigned kind);

#endif /* CP_REPORT_H */
