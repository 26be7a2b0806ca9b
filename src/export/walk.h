/* walk.h -- depth-first walk over a model's call trees, shared by the
 * export writers (pstats, speedscope, collapsed stacks).
 *
 * cp_export_walk visits every node of thread `t` below its root, parents
 * before children, children in sibling order, and hands the callback the
 * path from the thread's root: path[0] is the root, path[depth] the node.
 * Depth is counted by the walk (not read from cp_mnode.depth), so a merged
 * model walks the same way.  Reads the model only; thread-safe for
 * distinct walkers.
 */
#ifndef CP_EXPORT_WALK_H
#define CP_EXPORT_WALK_H

#include <stdint.h>

#include "model/model.h"

/* Returns 0 to go on, anything else to stop the walk with that value. */
typedef int (*cp_walk_fn)(const cp_model *m, const uint32_t *path, uint32_t depth, void *ctx);

/* Walks thread `t` of `m`.  Returns 0, the callback's non-zero value, or
 * -1 on OOM. */
int cp_export_walk(const cp_model *m, const cp_mthread *t, cp_walk_fn fn, void *ctx);

#endif /* CP_EXPORT_WALK_H */
