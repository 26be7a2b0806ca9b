/* tree_prune.h -- the report policy (how much of the model a report shows)
 * and the pruned view of the call trees that the JSON report and the
 * Python views write (docs/report-schema.md, "Report policy").
 *
 * Pruning keeps, best first (largest inclusive time first, ties: the
 * shallower node, then the lower node index), every node whose inclusive
 * time is at least tree_min_share x the run's total tree time, whose
 * parent is kept, and that fits in tree_max_nodes; children of a node at
 * depth tree_max_depth are never kept (the writer reports them as
 * "elided_nodes").  A kept node's children that were not kept are folded
 * into one "other" child by the writer, so times and counts stay exact.
 * Reads the model only; time and memory linear in its nodes, plus a heap
 * of candidates and the sort of the kept nodes' children.
 */
#ifndef CP_TREE_PRUNE_H
#define CP_TREE_PRUNE_H

#include <stdint.h>

#include "codeprof/codeprof.h"
#include "model/model.h"

typedef struct cp_report_policy {
    uint32_t top_functions;  /* functions listed: top N by inclusive, top N by self */
    double tree_min_share;   /* nodes below this share of the total are folded      */
    uint32_t tree_max_nodes; /* nodes with a site written, all threads together     */
    uint32_t tree_max_depth; /* deepest level written (CP_REPORT_MAX_TREE_DEPTH)   */
} cp_report_policy;

/* The policy a model's config asks for. */
void cp_report_policy_of(const codeprof_config *cfg, cp_report_policy *p);

/* What a written node (or thread root) holds: how many of its children
 * are written (they come first in its sorted child list) and the sums of
 * the others, folded into its "other" child. */
typedef struct cp_pruned_info {
    uint32_t nkept;   /* children written: kids[off[n] .. off[n] + nkept)   */
    uint32_t folded;  /* children folded into "other"; 0: no "other" node   */
    uint64_t nodes;   /* nodes folded, whole subtrees                        */
    uint64_t calls;   /* the folded children's calls                        */
    uint64_t incl_ns; /* the folded children's inclusive time               */
    uint64_t samples;    /* the folded children's samples (inclusive)        */
    uint64_t sampled_ns; /* ... and their weight                            */
} cp_pruned_info;

typedef struct cp_pruned_tree {
    uint32_t *off;         /* nnodes + 1 offsets into kids                          */
    uint32_t *kids;        /* children of each node; a kept node's by inclusive
                              time descending (ties: site, node index)           */
    uint8_t *keep;         /* 1: node written (thread roots: 1, written as threads) */
    uint32_t *slot;        /* kept node -> index into info; CP_NONE otherwise     */
    cp_pruned_info *info;  /* one per kept node and thread root                   */
    uint64_t *below;       /* descendants of each node (whole subtree, not itself)  */
    uint64_t *thread_incl; /* per thread: sum of its top-level nodes' inclusive ns  */
    uint64_t total_ns;     /* sum of thread_incl                                    */
    uint64_t kept;         /* nodes with a site written                             */
    uint64_t written;      /* kept + "other" nodes                                  */
} cp_pruned_tree;

/* Builds the pruned view of `m`'s trees under policy `p`.  Returns 0, or
 * -1 on OOM (then `pt` holds nothing to free beyond cp_pruned_tree_free). */
int cp_pruned_tree_build(cp_pruned_tree *pt, const cp_model *m, const cp_report_policy *p);

/* Sums over the children of kept node `n` that were not kept: how many
 * nodes they hold (whole subtrees), their calls and inclusive time.
 * Returns the number of folded children (0: no "other" node).  O(1). */
uint32_t cp_pruned_tree_other(const cp_pruned_tree *pt, const cp_model *m, uint32_t n,
                              uint64_t *nodes, uint64_t *calls, uint64_t *incl_ns);

/* The sampled figures of the same "other" node (sums, so exact): samples
 * and their weight.  Both 0 when `n` has no "other" node. */
void cp_pruned_tree_other_samples(const cp_pruned_tree *pt, const cp_model *m, uint32_t n,
                                  uint64_t *samples, uint64_t *sampled_ns);

/* The written children of kept node `n`: *first points at the first of
 * them in pt->kids (largest inclusive time first); returns how many. */
uint32_t cp_pruned_tree_kept_children(const cp_pruned_tree *pt, uint32_t n,
                                      const uint32_t **first);

/* 1 when kept node `n` sits at the depth cap and has children: they are
 * elided, not folded (pt->below[n] of them). */
int cp_pruned_tree_elided(const cp_pruned_tree *pt, const cp_model *m, const cp_report_policy *p,
                          uint32_t n);

void cp_pruned_tree_free(cp_pruned_tree *pt);

#endif /* CP_TREE_PRUNE_H */
