/* cct.h -- a thread's calling-context tree and the fold that builds it
 * (the built-in sink of the "aggregate" stage).
 *
 * Each recording thread owns one cp_thread_tree, touched only by the
 * aggregation side (drain.h).  cp_tree_fold() consumes that thread's
 * events in order: ENTER pushes a frame and finds or creates the child node
 * of the current node; EXIT pops the matching frame and adds its duration
 * to the node (count, inclusive, self, CPU, min/max, reservoir) and to the
 * flat per-site table (inclusive only for the outermost activation, so
 * recursion is not counted twice).  The open-frame stack persists between
 * folds, so a call may begin in one buffer and end in the next.
 *
 * An EXIT whose site is not on top closes the frames above the matching one
 * as truncated; one with no matching open frame at all (a function that was
 * already running when recording began) is ignored and counted.
 *
 * Bounds: at most max_nodes nodes (calls past the cap still count in the
 * flat table, and in `dropped_nodes`); at most max_samples durations per
 * node, drawn from a budget shared by every tree of the session
 * (`dropped_samples` counts growth refused for lack of budget); the flat
 * table holds one entry per distinct site the thread saw.
 *
 * Not thread-safe: the session's agg_mu serialises every call.
 */
#ifndef CP_CCT_H
#define CP_CCT_H

#include <stdint.h>

#include "core/event.h"
#include "cpu/reservoir.h"

/* Wall durations in the tree (fields ending in _t) are in clock ticks;
 * the model build converts them to ns once.  CPU times are ns. */
typedef struct cp_tnode {
    uint32_t site;
    uint32_t parent;
    uint32_t first_child;
    uint32_t next_sibling;
    uint32_t last_hit;  /* child found by the last lookup (cache)    */
    uint32_t depth;
    uint32_t func;      /* index into funcs[] of this site            */
    uint8_t stage_kind; /* site is a preprocess/augment site (cached once) */
    uint64_t count, incl_t, self_t, cpu_ns, cpu_count, min_t, max_t, truncated;
    int64_t rss_delta_sum, rss_delta_max;
    uint64_t rss_count;
    cp_reservoir res;
} cp_tnode;

typedef struct cp_tfunc {
    uint64_t calls, incl_t, self_t, cpu_ns, cpu_count, min_t, max_t;
    int64_t rss_delta_sum, rss_delta_max;
    uint64_t rss_count;
    uint32_t active;    /* open activations on this thread (recursion) */
    uint32_t site;
} cp_tfunc;

typedef struct cp_frame {
    uint32_t node;      /* CP_TREE_NO_NODE when past the node cap        */
    uint32_t site;
    uint32_t func;      /* index into funcs[], or CP_TREE_NO_NODE (OOM)  */
    uint64_t t0;        /* enter tick                                   */
    uint64_t child_t;  /* time of completed children                   */
    uint64_t cpu0;      /* thread CPU at enter if has_cpu               */
    int64_t rss0, rss1; /* RSS at enter / before exit                   */
    uint8_t has_cpu, has_rss0, has_rss1;
    uint8_t failed;     /* 1: ATTR_FAILED seen; 2: ATTR_CANCEL seen     */
    uint16_t evflags;   /* CP_EVF_* of the ENTER event                  */
    uint32_t epoch;     /* ATTR_EPOCH (batch scopes)                     */
    int64_t index;      /* ATTR_INDEX (items), ATTR_ITEMS (batches)      */
    uint32_t prev_item; /* item_top before this item frame was pushed   */
} cp_frame;

#define CP_TREE_NO_NODE UINT32_MAX

typedef struct cp_thread_tree {
    cp_tnode *nodes;    /* nodes[0] is the root (site 0)                 */
    uint32_t nnodes, cap_nodes, max_nodes;
    uint32_t *hash;     /* (parent, site) -> node index + 1; 0 = empty    */
    uint32_t hash_cap;
    cp_frame *stack;
    uint32_t depth, cap_stack;
    cp_tfunc *funcs;    /* dense: one entry per distinct site            */
    uint32_t nfuncs, cap_funcs;
    uint32_t *fhash;    /* site -> funcs index + 1; 0 = empty             */
    uint32_t fhash_cap;
    uint32_t max_samples;
    int percentiles;
    uint64_t rng;
    uint64_t *budget;   /* samples the session may still allocate; NULL: unbounded */
    uint64_t last_tick; /* tick of the last event folded                 */
    uint64_t dropped_nodes, dropped_samples, unmatched_exits, truncated, oom;
    /* Data-loading records (src/data/datalog.h): item, stage and batch
     * scopes append one record each when they end.  *logp may be NULL. */
    struct cp_datalog *const *logp;
    uint32_t item_top;  /* stack index of the innermost open item, or NONE */
} cp_thread_tree;

/* New empty tree; NULL on OOM.  Free with cp_tree_free. */
cp_thread_tree *cp_tree_new(uint32_t max_nodes, uint32_t max_samples, int percentiles);
/* Where data-loading records go (the session's log pointer). */
void cp_tree_set_datalog(cp_thread_tree *t, struct cp_datalog *const *logp);
/* The session's sample budget, shared by its trees (samples held are
 * charged to it and given back when the tree is freed or reset). */
void cp_tree_set_budget(cp_thread_tree *t, uint64_t *budget);
void cp_tree_free(cp_thread_tree *t);
/* Discards all data. */
void cp_tree_reset(cp_thread_tree *t);

/* Folds `n` events in order. */
void cp_tree_fold(cp_thread_tree *t, const cp_event *ev, uint32_t n);

/* Closes every open frame at tick `t_end` (counted as truncated). */
void cp_tree_close_all(cp_thread_tree *t, uint64_t t_end);

/* Tick of the last event folded (0 if none). */
uint64_t cp_tree_last_tick(const cp_thread_tree *t);

/* Adds everything `src` holds (no open frames) into `dst`, context by
 * context and site by site; samples within dst's bounds.  0, or -1 if
 * something could not be merged for lack of memory (counted in dst->oom). */
int cp_tree_merge(cp_thread_tree *dst, const cp_thread_tree *src);

/* Calls fn for each site of the flat per-site table. */
typedef void (*cp_tree_func_fn)(uint32_t site, const cp_tfunc *f, void *ctx);
void cp_tree_func_foreach(const cp_thread_tree *t, cp_tree_func_fn fn, void *ctx);

#endif /* CP_CCT_H */
