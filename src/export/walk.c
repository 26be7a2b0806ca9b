/* walk.c -- depth-first walk over a model's call trees (walk.h). */
#include "export/walk.h"

#include <stdlib.h>

typedef struct frame {
    uint32_t node;
    uint32_t depth;
} frame;

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    uint32_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > UINT32_MAX / 2)
            return -1;
        ncap *= 2;
    }
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

int cp_export_walk(const cp_model *m, const cp_mthread *t, cp_walk_fn fn, void *ctx) {
    if (t->root >= m->nnodes)
        return 0;
    frame *stack = NULL;
    uint32_t *path = NULL;
    uint32_t nstack = 0, cap_stack = 0, cap_path = 0;
    int rc = 0;
    if (grow((void **)&path, &cap_path, 1, sizeof *path) != 0)
        return -1;
    path[0] = t->root;
    /* Children are pushed last-first so that they pop in sibling order. */
#define PUSH_CHILDREN(parent, d)                                                                   \
    do {                                                                                           \
        uint32_t n_ = 0;                                                                           \
        for (uint32_t c_ = m->nodes[parent].first_child; c_ != CP_NONE && c_ < m->nnodes;          \
             c_ = m->nodes[c_].next_sibling)                                                       \
            n_++;                                                                                  \
        if (grow((void **)&stack, &cap_stack, nstack + n_, sizeof *stack) != 0) {                  \
            rc = -1;                                                                               \
            goto out;                                                                              \
        }                                                                                          \
        uint32_t i_ = nstack + n_;                                                                 \
        for (uint32_t c_ = m->nodes[parent].first_child; c_ != CP_NONE && c_ < m->nnodes;          \
             c_ = m->nodes[c_].next_sibling)                                                       \
            stack[--i_] = (frame){c_, (d)};                                                        \
        nstack += n_;                                                                              \
    } while (0)
    PUSH_CHILDREN(t->root, 1);
    while (nstack) {
        frame f = stack[--nstack];
        if (grow((void **)&path, &cap_path, f.depth + 1, sizeof *path) != 0) {
            rc = -1;
            goto out;
        }
        path[f.depth] = f.node;
        rc = fn(m, path, f.depth, ctx);
        if (rc < 0)
            goto out;
        if (rc == CP_WALK_SKIP) {
            rc = 0;
            continue;
        }
        rc = 0;
        PUSH_CHILDREN(f.node, f.depth + 1);
    }
#undef PUSH_CHILDREN
out:
    free(stack);
    free(path);
    return rc;
}

static int cmp_u64_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

uint64_t cp_export_fold_threshold(const cp_model *m, uint32_t max_nodes) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nnodes; i++)
        n += m->nodes[i].site != 0 && m->nodes[i].incl_ns > 0;
    if (n <= max_nodes)
        return 0;
    uint64_t *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return UINT64_MAX;
    n = 0;
    for (uint32_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].site != 0 && m->nodes[i].incl_ns > 0)
            v[n++] = m->nodes[i].incl_ns;
    qsort(v, n, sizeof *v, cmp_u64_desc);
    uint64_t t = v[max_nodes]; /* the largest inclusive time not kept */
    free(v);
    return t;
}

uint64_t cp_export_folded_ns(const cp_model *m, uint32_t node, uint64_t fold_ns) {
    uint64_t sum = 0;
    if (!fold_ns || node >= m->nnodes)
        return 0;
    for (uint32_t c = m->nodes[node].first_child; c != CP_NONE && c < m->nnodes;
         c = m->nodes[c].next_sibling)
        if (m->nodes[c].incl_ns <= fold_ns)
            sum += m->nodes[c].incl_ns;
    return sum;
}
