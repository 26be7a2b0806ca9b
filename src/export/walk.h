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

/* Returns 0 to go on, CP_WALK_SKIP to go on without this node's children,
 * a negative value to stop the walk with that value. */
typedef int (*cp_walk_fn)(const cp_model *m, const uint32_t *path, uint32_t depth, void *ctx);
#define CP_WALK_SKIP 1

/* Walks thread `t` of `m`.  Returns 0, the callback's negative value, or
 * -1 on OOM. */
int cp_export_walk(const cp_model *m, const cp_mthread *t, cp_walk_fn fn, void *ctx);

/* Call paths the flame-graph exports (collapsed stacks, speedscope) write
 * in full: the nodes with the largest inclusive times.  The rest are
 * folded (see cp_export_fold_threshold). */
#define CP_EXPORT_MAX_PATHS 5000u

/* The fold threshold of the flame-graph exports for at most `max_nodes`
 * call paths: a node is written in full when its inclusive time is above
 * the returned value, and a node at or below it is folded, whole subtree,
 * into one "(other)" entry under its parent.  A parent's inclusive time
 * is at least its child's, so the nodes kept form whole paths from the
 * roots.  0 when the model has at most `max_nodes` nodes with time (all
 * written).  Returns UINT64_MAX on OOM. */
uint64_t cp_export_fold_threshold(const cp_model *m, uint32_t max_nodes);

/* Inclusive time of the children of `node` folded under `fold_ns` (0: none
 * folded). */
uint64_t cp_export_folded_ns(const cp_model *m, uint32_t node, uint64_t fold_ns);

#endif /* CP_EXPORT_WALK_H */
