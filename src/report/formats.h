/* formats.h -- the dispatch from a report format to its writer
 * (formats.c); format names and file endings are public
 * (codeprof_format_name / _parse / _for_path in codeprof.h). */
#ifndef CP_FORMATS_H
#define CP_FORMATS_H

#include "codeprof/codeprof.h"
#include "model/model.h"
#include "report/strbuf.h"

/* Appends model `m` (finished, rules run) rendered in `fmt` to `out`.
 * `pt`: the model's call tree already pruned by its report policy
 * (tree_prune.h; a cached model keeps one), or NULL to prune here; only
 * the JSON report reads it.  CODEPROF_OK; CODEPROF_EINVAL for an unknown
 * format; CODEPROF_ENOMEM when `out` ran out of memory (then it must be
 * freed). */
struct cp_pruned_tree;
codeprof_status cp_format_write(const cp_model *m, const struct cp_pruned_tree *pt,
                                codeprof_format fmt, cp_strbuf *out);

#endif /* CP_FORMATS_H */
