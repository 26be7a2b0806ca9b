/* collapsed.h -- the collapsed-stacks export (Brendan Gregg's
 * flamegraph.pl input; speedscope and many flame-graph tools import it).
 *
 * One line per call-tree node with self time:
 *     pid 4242 (main);thread 4242;app.main (app.py:10);app.work (app.py:20) 1500
 * frames from the process and the thread down to the node, then a space
 * and the node's self time in integer MICROSECONDS.  Rounding is carried
 * from line to line (each line gets round(total so far) - round(total
 * before)), so the values sum to the model's total self time rounded to a
 * microsecond; a node whose share rounds to 0 gets no line.  A frame is
 * "name (file:line)" with the file's last path component (names are
 * qualified: "module.Class.method"), or the name alone for sites without a
 * file; ';' in a name becomes ':' and control characters become spaces.
 *
 * Bounded: at most CP_EXPORT_MAX_PATHS call paths (the nodes with the
 * largest inclusive times, export/walk.h) are written in full; a smaller
 * subtree is folded, its whole inclusive time on one line
 * "...;parent;(other)".  Every microsecond is still on some line, under the
 * right caller; a run with fewer nodes is written exactly.
 */
#ifndef CP_EXPORT_COLLAPSED_H
#define CP_EXPORT_COLLAPSED_H

#include "model/model.h"
#include "report/strbuf.h"

/* Appends model `m`'s call trees as collapsed stacks to `out`.  Returns 0,
 * or -1 on OOM.  Reads `m` only. */
int cp_export_collapsed(const cp_model *m, cp_strbuf *out);

/* The same with at most `max_paths` call paths in full (tests). */
int cp_export_collapsed_paths(const cp_model *m, cp_strbuf *out, uint32_t max_paths);

#endif /* CP_EXPORT_COLLAPSED_H */
