/* model_fixture.h -- hand-built cp_model values for the rules and report
 * tests (test_rules.c, test_report.c).  Header-only, test code only: every
 * helper is static.  Aborts the test on OOM (cmocka assert). */
#ifndef CP_TEST_MODEL_FIXTURE_H
#define CP_TEST_MODEL_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "model/model.h"

#define FX_S(x) ((uint64_t)((x) * 1e9 + 0.5)) /* seconds -> ns */

/* Grows *arr (n elements used) geometrically so that building large trees
 * stays linear, also under ASan (whose realloc always copies). */
static inline void *fx_grow(void *arr, uint32_t n, size_t elem) {
    if (n & (n - 1)) /* capacity is the next power of two >= n */
        return arr;
    void *p = realloc(arr, (n ? 2 * (size_t)n : 1) * elem);
    assert_non_null(p);
    return p;
}

/* Last child of every node of the model being built (test-only state,
 * reset when a model gets its first node), so appending is O(1). */
static uint32_t *fx_last_child;

static inline cp_model *fx_model(void) {
    cp_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    codeprof_config_init(&m->cfg);
    m->pid = 4242;
    strcpy(m->role, "main");
    m->clock_source = "fake";
    m->start_unix_ns = 1700000000123456789ull;
    m->duration_ns = FX_S(10);
    return m;
}

/* Adds a site to the model's own table (strings copied); returns its
 * model index. */
static inline uint32_t fx_site(cp_model *m, const char *name, const char *file, uint32_t line,
                               codeprof_site_kind kind) {
    uint32_t idx = cp_model_intern_site(m, name, file, line, (uint16_t)kind);
    assert_true(idx > 0);
    return idx;
}

/* Appends a node under `parent` (CP_NONE for a thread root), as the last
 * child; returns its index. */
static inline uint32_t fx_node(cp_model *m, uint32_t parent, uint32_t site, uint64_t count,
                        uint64_t incl_ns, uint64_t self_ns) {
    m->nodes = fx_grow(m->nodes, m->nnodes, sizeof *m->nodes);
    if (m->nnodes == 0) {
        free(fx_last_child);
        fx_last_child = NULL;
    }
    fx_last_child = fx_grow(fx_last_child, m->nnodes, sizeof *fx_last_child);
    uint32_t idx = m->nnodes++;
    fx_last_child[idx] = CP_NONE;
    cp_mnode *n = &m->nodes[idx];
    memset(n, 0, sizeof *n);
    n->site = site;
    n->parent = parent;
    n->first_child = CP_NONE;
    n->next_sibling = CP_NONE;
    n->count = count;
    n->incl_ns = incl_ns;
    n->self_ns = self_ns;
    n->min_ns = count ? incl_ns / count : 0;
    n->max_ns = n->min_ns;
    if (parent != CP_NONE) {
        cp_mnode *p = &m->nodes[parent];
        n->depth = p->depth + 1;
        if (p->first_child == CP_NONE)
            p->first_child = idx;
        else
            m->nodes[fx_last_child[parent]].next_sibling = idx;
        fx_last_child[parent] = idx;
    }
    return idx;
}

/* Adds a thread with a fresh root node; returns the root's index. */
static inline uint32_t fx_thread(cp_model *m, uint64_t os_tid) {
    uint32_t root = fx_node(m, CP_NONE, 0, 0, 0, 0);
    m->threads = fx_grow(m->threads, m->nthreads, sizeof *m->threads);
    cp_mthread *t = &m->threads[m->nthreads];
    memset(t, 0, sizeof *t);
    t->os_tid = os_tid;
    t->pid = m->pid;
    t->worker = -1;
    t->index = m->nthreads;
    t->root = root;
    t->events = 100;
    m->nthreads++;
    return root;
}

/* Appends a flat function entry (callers add them in inclusive order). */
static inline cp_mfunc *fx_func(cp_model *m, uint32_t site, uint64_t calls, uint64_t incl_ns,
                         uint64_t self_ns, uint64_t max_ns) {
    m->funcs = fx_grow(m->funcs, m->nfuncs, sizeof *m->funcs);
    cp_mfunc *f = &m->funcs[m->nfuncs++];
    memset(f, 0, sizeof *f);
    f->site = site;
    f->calls = calls;
    f->incl_ns = incl_ns;
    f->self_ns = self_ns;
    f->max_ns = max_ns;
    f->min_ns = calls ? incl_ns / calls : 0;
    if (f->min_ns > max_ns)
        f->min_ns = max_ns;
    return f;
}

#endif /* CP_TEST_MODEL_FIXTURE_H */
