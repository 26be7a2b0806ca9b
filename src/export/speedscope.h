/* speedscope.h -- the speedscope export (the file format of
 * https://www.speedscope.app/file-format-schema.json).
 *
 * One "sampled" profile per thread of the model (threads of worker
 * processes merged into the model included), named
 * "pid P (role) thread T" / "pid P (worker W) thread T"; shared.frames
 * holds one frame per site ({name, file, line}); each call-tree node with
 * self time is one sample (its stack of frame indices, root first)
 * weighted by that self time in integer nanoseconds (unit
 * "nanoseconds").  endValue is the sum of the thread's weights, so a
 * profile's weights sum to its threads' self time exactly.
 *
 * Bounded like the collapsed stacks (export/collapsed.h): at most
 * CP_EXPORT_MAX_PATHS call paths in full; a smaller subtree is one sample
 * "...;parent;(other)" weighted by its inclusive time.
 */
#ifndef CP_EXPORT_SPEEDSCOPE_H
#define CP_EXPORT_SPEEDSCOPE_H

#include "model/model.h"
#include "report/strbuf.h"

/* Appends model `m`'s call trees as a speedscope JSON file to `out`.
 * Returns 0, or -1 on OOM.  Reads `m` only. */
int cp_export_speedscope(const cp_model *m, cp_strbuf *out);

/* The same with at most `max_paths` call paths in full (tests). */
int cp_export_speedscope_paths(const cp_model *m, cp_strbuf *out, uint32_t max_paths);

#endif /* CP_EXPORT_SPEEDSCOPE_H */
