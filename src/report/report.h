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

/* Call-tree levels written in the JSON report (report_policy
 * tree_max_depth).  A node at this depth whose subtree goes deeper is
 * written without children and with "elided_nodes": <descendants>; its
 * own times still include them.  Keeps the document parseable by
 * recursive JSON readers (Python's json module stops near 1000 nesting
 * levels; each tree level nests twice). */
#define CP_REPORT_MAX_TREE_DEPTH 256

struct cp_docw;

/* The report document (docs/report-schema.md, schema version 3) written
 * through any document-writer backend (docw.h): the whole document when
 * `section` is NULL, else only the value of that top-level key ("meta",
 * "config", "report_policy", "performance", "data_loading", "memory"
 * (report_mem.h), "findings", "bottlenecks").  Bounded by the model's report policy (tree_prune.h).
 * Returns 0; -1 on OOM or a backend error (also visible through `d`);
 * -2 for an unknown section (nothing written). */
int cp_report_doc(const cp_model *m, struct cp_docw *d, const char *section);

struct cp_pruned_tree;

/* cp_report_doc with the model's pruned call tree already built
 * (tree_prune.h, under the model's own policy); NULL builds it here.
 * Lets a cached model keep its pruned tree across views. */
int cp_report_doc_with(const cp_model *m, const struct cp_pruned_tree *pt, struct cp_docw *d,
                       const char *section);

/* 1 when writing `section` (NULL: the whole document) needs the pruned
 * call tree ("meta" and "performance" do). */
int cp_report_section_needs_tree(const char *section);

/* The JSON report: cp_report_doc through the JSON backend.  `m` must not
 * be NULL. */
int cp_report_json(const cp_model *m, cp_strbuf *out);

/* cp_report_json with the model's pruned call tree already built (NULL:
 * prune here), so a cached model writes its JSON without pruning again. */
int cp_report_json_with(const cp_model *m, const struct cp_pruned_tree *pt, cp_strbuf *out);

/* The text summary: header, top functions by inclusive and by self time,
 * findings.  `m` must not be NULL. */
int cp_report_text(const cp_model *m, cp_strbuf *out);

/* The data-loading section (src/report/report_data.c): writes the
 * "data_loading" object (always, with empty lists and zero figures when
 * nothing was recorded; docs/report-schema.md lists every field) as the
 * next value of `w`.  Errors (OOM) surface through `w`.  `m` and `w` must
 * not be NULL. */
void cp_report_data_doc(const cp_model *m, struct cp_docw *w);

/* Appends the text summary's "Data loading" block (loaders, datasets,
 * worker processes, top stages); appends nothing when no data-loading
 * record exists.  OOM sets out->oom.  `m` and `out` must not be NULL. */
void cp_report_data_text(const cp_model *m, cp_strbuf *out);

/* Report name of a codeprof_site_kind ("scope", "python", ...);
 * "unknown" for values out of range.  Static string. */
const char *cp_report_kind_name(unsigned kind);

#endif /* CP_REPORT_H */
