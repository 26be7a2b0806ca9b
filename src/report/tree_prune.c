/* tree_prune.c -- see tree_prune.h. */
#include "report/tree_prune.h"

#include <stdlib.h>
#include <string.h>

#include "report/report.h"

void cp_report_policy_of(const codeprof_config *cfg, cp_report_policy *p) {
    p->top_functions = cfg->report_top_functions;
    p->tree_min_share = cfg->report_tree_min_share;
    p->tree_max_nodes = cfg->report_tree_max_nodes;
    p->tree_max_depth = CP_REPORT_MAX_TREE_DEPTH;
}

/* qsort has no context argument; thread-local keeps concurrent reports
 * from different threads apart. */
static _Thread_local const cp_mnode *sort_nodes;

static int cmp_child(const void *a, const void *b) {
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    const cp_mnode *x = &sort_nodes[i], *y = &sort_nodes[j];
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    return (i > j) - (i < j);
}

/* Children of every node, contiguous per parent (in node order). */
static int index_children(cp_pruned_tree *pt, const cp_model *m) {
    uint32_t n = m->nnodes;
    pt->off = calloc((size_t)n + 1, sizeof *pt->off);
    pt->kids = malloc(((size_t)n + 1) * sizeof *pt->kids);
    uint32_t *cur = malloc(((size_t)n + 1) * sizeof *cur);
    if (!pt->off || !pt->kids || !cur) {
        free(cur);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = m->nodes[i].parent;
        if (p < n && p != i)
            pt->off[p + 1]++;
    }
    for (uint32_t i = 0; i < n; i++)
        pt->off[i + 1] += pt->off[i];
    memcpy(cur, pt->off, ((size_t)n + 1) * sizeof *cur);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = m->nodes[i].parent;
        if (p < n && p != i)
            pt->kids[cur[p]++] = i;
    }
    free(cur);
    return 0;
}

/* Sorts the children of every kept node (the order they are written in);
 * the others' lists are only summed, so they stay as they are. */
static void sort_kept_children(cp_pruned_tree *pt, const cp_model *m) {
    sort_nodes = m->nodes;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        uint32_t k = pt->off[i + 1] - pt->off[i];
        if (k > 1 && pt->keep[i])
            qsort(pt->kids + pt->off[i], k, sizeof *pt->kids, cmp_child);
    }
    sort_nodes = NULL;
}

/* Descendant counts: a breadth-first order from every thread root, then
 * its reverse adds each node's count into its parent.  Nodes no root
 * reaches (a corrupt model) are never visited. */
static int count_below(cp_pruned_tree *pt, const cp_model *m) {
    uint32_t n = m->nnodes;
    pt->below = calloc((size_t)n + 1, sizeof *pt->below);
    uint32_t *order = malloc(((size_t)n + 1) * sizeof *order);
    uint8_t *seen = calloc((size_t)n + 1, 1);
    if (!pt->below || !order || !seen) {
        free(order);
        free(seen);
        return -1;
    }
    uint32_t len = 0;
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t r = m->threads[t].root;
        if (r >= n || seen[r])
            continue;
        seen[r] = 1;
        order[len++] = r;
    }
    for (uint32_t q = 0; q < len; q++) {
        uint32_t x = order[q];
        for (uint32_t k = pt->off[x]; k < pt->off[x + 1]; k++) {
            uint32_t c = pt->kids[k];
            if (!seen[c] && len < n) {
                seen[c] = 1;
                order[len++] = c;
            }
        }
    }
    for (uint32_t q = len; q-- > 0;) {
        uint32_t x = order[q];
        uint32_t p = m->nodes[x].parent;
        if (p < n && seen[p] && p != x)
            pt->below[p] += 1 + pt->below[x];
    }
    free(order);
    free(seen);
    return 0;
}

/* Max-heap of node indices: larger inclusive first, then shallower, then
 * the lower index. */
typedef struct heap {
    uint32_t *v;
    uint32_t n;
    const cp_mnode *nodes;
} heap;

/* Larger inclusive time first, then the shallower node, then as the
 * writer sorts siblings (site, node index): so the siblings taken are
 * always a prefix of their parent's sorted children. */
static int before(const heap *h, uint32_t a, uint32_t b) {
    const cp_mnode *x = &h->nodes[a], *y = &h->nodes[b];
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns > y->incl_ns;
    if (x->depth != y->depth)
        return x->depth < y->depth;
    if (x->site != y->site)
        return x->site < y->site;
    return a < b;
}

static void heap_push(heap *h, uint32_t x) {
    uint32_t i = h->n++;
    while (i) {
        uint32_t p = (i - 1) / 2;
        if (!before(h, x, h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
}

static uint32_t heap_pop(heap *h) {
    uint32_t top = h->v[0], x = h->v[--h->n], i = 0;
    if (!h->n)
        return top;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, c;
        if (l >= h->n)
            break;
        c = r < h->n && before(h, h->v[r], h->v[l]) ? r : l;
        if (!before(h, h->v[c], x))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    h->v[i] = x;
    return top;
}

/* Pushes the children of `x` that pass the share threshold. */
static void push_children(heap *h, const cp_pruned_tree *pt, const cp_model *m,
                          const cp_report_policy *p, uint32_t x, double min_ns) {
    if (m->nodes[x].depth >= p->tree_max_depth)
        return;
    for (uint32_t k = pt->off[x]; k < pt->off[x + 1]; k++) {
        uint32_t c = pt->kids[k];
        if ((double)m->nodes[c].incl_ns >= min_ns && h->n < m->nnodes)
            heap_push(h, c);
    }
}

int cp_pruned_tree_build(cp_pruned_tree *pt, const cp_model *m, const cp_report_policy *p) {
    memset(pt, 0, sizeof *pt);
    uint32_t n = m->nnodes;
    if (index_children(pt, m) != 0 || count_below(pt, m) != 0)
        return -1;
    pt->keep = calloc((size_t)n + 1, 1);
    pt->thread_incl = calloc((size_t)m->nthreads + 1, sizeof *pt->thread_incl);
    heap h = {malloc(((size_t)n + 1) * sizeof(uint32_t)), 0, m->nodes};
    if (!pt->keep || !pt->thread_incl || !h.v) {
        free(h.v);
        return -1;
    }
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t r = m->threads[t].root;
        if (r >= n)
            continue;
        for (uint32_t k = pt->off[r]; k < pt->off[r + 1]; k++)
            pt->thread_incl[t] += m->nodes[pt->kids[k]].incl_ns;
        pt->total_ns += pt->thread_incl[t];
    }
    double min_ns = p->tree_min_share * (double)pt->total_ns;
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t r = m->threads[t].root;
        if (r < n && !pt->keep[r]) {
            pt->keep[r] = 1;
            push_children(&h, pt, m, p, r, min_ns);
        }
    }
    while (h.n && pt->kept < p->tree_max_nodes) {
        uint32_t x = heap_pop(&h);
        if (pt->keep[x])
            continue;
        pt->keep[x] = 1;
        pt->kept++;
        push_children(&h, pt, m, p, x, min_ns);
    }
    free(h.v);
    sort_kept_children(pt, m);
    /* Per written node: its written children (a prefix of the sorted
     * list) and the sums of the others, its "other" node. */
    uint32_t ninfo = 0;
    for (uint32_t x = 0; x < n; x++)
        ninfo += pt->keep[x];
    pt->slot = malloc(((size_t)n + 1) * sizeof *pt->slot);
    pt->info = calloc((size_t)ninfo + 1, sizeof *pt->info);
    if (!pt->slot || !pt->info)
        return -1;
    pt->written = pt->kept;
    uint32_t next = 0;
    for (uint32_t x = 0; x < n; x++) {
        pt->slot[x] = CP_NONE;
        if (!pt->keep[x])
            continue;
        cp_pruned_info *in = &pt->info[next];
        pt->slot[x] = next++;
        if (cp_pruned_tree_elided(pt, m, p, x))
            continue; /* its children are elided, not folded */
        for (uint32_t k = pt->off[x]; k < pt->off[x + 1]; k++) {
            uint32_t c = pt->kids[k];
            if (pt->keep[c]) {
                in->nkept++;
                continue;
            }
            in->folded++;
            in->nodes += 1 + pt->below[c];
            in->calls += m->nodes[c].count;
            in->incl_ns += m->nodes[c].incl_ns;
            in->samples += m->nodes[c].samples;
            in->sampled_ns += m->nodes[c].sampled_ns;
        }
        pt->written += in->folded > 0;
    }
    return 0;
}

uint32_t cp_pruned_tree_other(const cp_pruned_tree *pt, const cp_model *m, uint32_t n,
                              uint64_t *nodes, uint64_t *calls, uint64_t *incl_ns) {
    (void)m;
    *nodes = *calls = *incl_ns = 0;
    if (n >= m->nnodes || pt->slot[n] == CP_NONE)
        return 0;
    const cp_pruned_info *in = &pt->info[pt->slot[n]];
    *nodes = in->nodes;
    *calls = in->calls;
    *incl_ns = in->incl_ns;
    return in->folded;
}

void cp_pruned_tree_other_samples(const cp_pruned_tree *pt, const cp_model *m, uint32_t n,
                                  uint64_t *samples, uint64_t *sampled_ns) {
    *samples = *sampled_ns = 0;
    if (n >= m->nnodes || pt->slot[n] == CP_NONE || !pt->info[pt->slot[n]].folded)
        return;
    *samples = pt->info[pt->slot[n]].samples;
    *sampled_ns = pt->info[pt->slot[n]].sampled_ns;
}

uint32_t cp_pruned_tree_kept_children(const cp_pruned_tree *pt, uint32_t n,
                                      const uint32_t **first) {
    *first = pt->kids + pt->off[n];
    return pt->slot[n] == CP_NONE ? 0 : pt->info[pt->slot[n]].nkept;
}

int cp_pruned_tree_elided(const cp_pruned_tree *pt, const cp_model *m, const cp_report_policy *p,
                          uint32_t n) {
    return m->nodes[n].depth >= p->tree_max_depth && pt->off[n + 1] > pt->off[n];
}

void cp_pruned_tree_free(cp_pruned_tree *pt) {
    free(pt->off);
    free(pt->kids);
    free(pt->keep);
    free(pt->below);
    free(pt->thread_incl);
    free(pt->slot);
    free(pt->info);
    memset(pt, 0, sizeof *pt);
}
