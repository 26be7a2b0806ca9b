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
        if (rc != 0)
            goto out;
        PUSH_CHILDREN(f.node, f.depth + 1);
    }
#undef PUSH_CHILDREN
out:
    free(stack);
    free(path);
    return rc;
}
