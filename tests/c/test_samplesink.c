/* test_samplesink.c -- the sample sink (src/sampling/samplesink.c) fed
 * synthetic CP_EV_SAMPLE events of two sampled threads: exact trees,
 * weights and states, sampled lines, the timeline bound, the node cap,
 * "(other stacks)", the emitter bookkeeping, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "sampling/samplesink.h"
#include "sampling/samplesink_priv.h"
#include "sampling/stacktab.h"

enum { A = 101, B = 102, C = 103 }; /* sites: a calls b calls c */

static cp_event sample(uint64_t tick, uint64_t tid, uint32_t stack, uint32_t w, unsigned state) {
    cp_event e;
    memset(&e, 0, sizeof e);
    e.tick = tick;
    e.kind = CP_EV_SAMPLE;
    e.value = (int64_t)((uint64_t)w << 32 | stack);
    e.aux = tid;
    e.flags = (uint16_t)state;
    return e;
}

/* The child of node p with site `site`, or CP_SNODE_NONE. */
static uint32_t child(const cp_samplesink *k, uint32_t p, uint32_t site) {
    for (uint32_t c = k->nodes[p].first_child; c != CP_SNODE_NONE; c = k->nodes[c].next_sibling)
        if (k->nodes[c].site == site)
            return c;
    return CP_SNODE_NONE;
}

static uint32_t root_of(const cp_samplesink *k, uint64_t tid) {
    for (uint32_t i = 0; i < k->nthreads; i++)
        if (k->threads[i].os_tid == tid)
            return k->threads[i].root;
    return CP_SNODE_NONE;
}

static const cp_sline *line_of(const cp_samplesink *k, uint32_t site, uint32_t line) {
    for (uint32_t i = 0; i < k->nlines; i++)
        if (k->lines[i].site == site && k->lines[i].line == line)
            return &k->lines[i];
    return NULL;
}

typedef struct fx {
    codeprof_config cfg;
    cp_stacktab *tab;
    cp_samplesink *k;
    uint32_t abc, ab; /* stack ids */
} fx;

static void fx_init(fx *f, uint32_t max_samples, uint32_t max_nodes) {
    codeprof_config_init(&f->cfg);
    f->cfg.max_samples = max_samples;
    f->cfg.max_nodes = max_nodes;
    f->tab = cp_stacktab_new(16);
    f->k = cp_samplesink_new(&f->cfg, f->tab);
    cp_sframe abc[3] = {{C, 30}, {B, 20}, {A, 10}}; /* innermost first */
    cp_sframe ab[2] = {{B, 21}, {A, 10}};
    f->abc = cp_stacktab_intern(f->tab, abc, 3);
    f->ab = cp_stacktab_intern(f->tab, ab, 2);
}

static void fx_free(fx *f) {
    cp_samplesink_free(f->k);
    cp_stacktab_free(f->tab);
}

/* Thread 11: 3 x a>b>c running (10 ns each), 1 x a>b idle (5 ns);
 * thread 22: 2 x a>b waiting for the GIL (7 ns). */
static void feed(fx *f) {
    cp_event ev[6] = {
        sample(100, 11, f->abc, 10, CP_SAMPF_RUNNING), sample(110, 22, f->ab, 7, CP_SAMPF_GIL),
        sample(120, 11, f->abc, 10, CP_SAMPF_RUNNING), sample(130, 11, f->ab, 5, CP_SAMPF_IDLE),
        sample(140, 22, f->ab, 7, CP_SAMPF_GIL),       sample(150, 11, f->abc, 10, CP_SAMPF_RUNNING),
    };
    cp_event other[2];
    memset(other, 0, sizeof other);
    other[0].kind = CP_EV_ENTER; /* not a sample: ignored */
    other[1].kind = CP_EV_EXIT;
    cp_samplesink_consume(f->k, 999, ev, 4);
    cp_samplesink_consume(f->k, 999, other, 2);
    cp_samplesink_consume(f->k, 999, ev + 4, 2);
}

static void test_trees_weights_states(void **state) {
    (void)state;
    fx f;
    fx_init(&f, 100, 1000);
    feed(&f);
    cp_samplesink *k = f.k;
    assert_int_equal(cp_samplesink_count(k), 6);
    assert_int_equal(k->running, 3);
    assert_int_equal(k->idle, 1);
    assert_int_equal(k->gil, 2);
    assert_int_equal(k->nthreads, 2);

    uint32_t r1 = root_of(k, 11), r2 = root_of(k, 22);
    assert_int_not_equal(r1, CP_SNODE_NONE);
    assert_int_not_equal(r2, CP_SNODE_NONE);
    assert_int_equal(k->nodes[r1].samples, 4);
    assert_int_equal(k->nodes[r1].sampled_ns, 35);
    uint32_t a = child(k, r1, A), b = child(k, a, B), c = child(k, b, C);
    assert_int_not_equal(c, CP_SNODE_NONE);
    assert_int_equal(child(k, r1, B), CP_SNODE_NONE); /* paths start at the outermost frame */
    assert_int_equal(k->nodes[a].samples, 4);
    assert_int_equal(k->nodes[a].samples_self, 0);
    assert_int_equal(k->nodes[a].samples_running, 3);
    assert_int_equal(k->nodes[a].sampled_ns, 35);
    assert_int_equal(k->nodes[b].samples, 4);
    assert_int_equal(k->nodes[b].samples_self, 1);
    assert_int_equal(k->nodes[b].sampled_self_ns, 5);
    assert_int_equal(k->nodes[c].samples, 3);
    assert_int_equal(k->nodes[c].samples_self, 3);
    assert_int_equal(k->nodes[c].sampled_self_ns, 30);
    assert_int_equal(k->nodes[c].depth, 3);
    /* thread 22 has its own tree */
    uint32_t a2 = child(k, r2, A), b2 = child(k, a2, B);
    assert_int_not_equal(b2, CP_SNODE_NONE);
    assert_int_equal(k->nodes[b2].samples_self, 2);
    assert_int_equal(k->nodes[b2].sampled_self_ns, 14);
    assert_int_equal(k->nodes[b2].samples_running, 0);
    assert_int_equal(k->nnodes, 4 + 3);

    /* lines of the innermost frame */
    assert_int_equal(k->nlines, 2);
    assert_int_equal(line_of(k, C, 30)->samples, 3);
    assert_int_equal(line_of(k, C, 30)->sampled_ns, 30);
    assert_int_equal(line_of(k, B, 21)->samples, 3);
    assert_int_equal(line_of(k, B, 21)->sampled_ns, 19);
    assert_null(line_of(k, B, 20)); /* an outer frame's line is not a sampled line */

    /* the emitter's buffer held nothing but samples: 6 of 8 events were */
    assert_int_equal(cp_samplesink_only_samples(k, 999, 6), 1);
    assert_int_equal(cp_samplesink_only_samples(k, 999, 8), 0);
    assert_int_equal(cp_samplesink_only_samples(k, 11, 0), 0);
    assert_int_equal(k->nfirst, 6);
    assert_int_equal(k->timeline_dropped, 0);
    fx_free(&f);
}

/* cap 4: the first 2 and the latest 2 samples are kept. */
static void test_timeline_bound(void **state) {
    (void)state;
    fx f;
    fx_init(&f, 4, 1000);
    feed(&f);
    cp_samplesink *k = f.k;
    assert_int_equal(k->nfirst, 2);
    assert_int_equal(k->nring, 2);
    assert_int_equal(k->timeline_dropped, 2);
    assert_int_equal(k->first[0].tick, 100);
    assert_int_equal(k->first[1].tick, 110);
    uint64_t t0 = k->ring[k->ring_next].tick, t1 = k->ring[(k->ring_next + 1) % 2].tick;
    assert_int_equal(t0, 140);
    assert_int_equal(t1, 150);
    assert_int_equal(k->first[0].weight_ns, 10);
    assert_int_equal(k->first[1].os_tid, 22);
    assert_int_equal(k->first[1].state & CP_SAMPF_STATE_MASK, CP_SAMPF_GIL);
    fx_free(&f);
}

/* Node cap 3 (root, a, b): c's samples stay with b, counted. */
static void test_node_cap_and_other_stacks(void **state) {
    (void)state;
    fx f;
    fx_init(&f, 100, 3);
    cp_event ev[3] = {sample(1, 11, f.abc, 4, CP_SAMPF_RUNNING),
                      sample(2, 11, CP_STACK_OTHER, 6, CP_SAMPF_RUNNING),
                      sample(3, 11, 12345, 6, CP_SAMPF_RUNNING)}; /* unknown id: other */
    cp_samplesink_consume(f.k, 1, ev, 1);
    cp_samplesink_consume(f.k, 1, ev, 1); /* a cut path is made again, not cached */
    cp_samplesink *k = f.k;
    assert_int_equal(k->nnodes, 3);
    assert_int_equal(k->dropped_nodes, 2);
    uint32_t r = root_of(k, 11), b = child(k, child(k, r, A), B);
    assert_int_equal(k->nodes[b].samples_self, 2);
    assert_int_equal(k->nodes[b].sampled_self_ns, 8);
    assert_int_equal(k->nodes[r].samples, 2);
    fx_free(&f);

    fx_init(&f, 100, 1000);
    cp_samplesink_consume(f.k, 1, ev, 3);
    k = f.k;
    r = root_of(k, 11);
    uint32_t o = child(k, r, 0);
    assert_int_not_equal(o, CP_SNODE_NONE);
    assert_int_equal(k->nodes[o].samples, 2);
    assert_int_equal(k->nodes[o].samples_self, 2);
    assert_int_equal(k->nodes[o].sampled_ns, 12);
    assert_int_equal(k->first[2].stack, CP_STACK_OTHER);
    assert_int_equal(k->nlines, 1); /* only the real stack's line */
    fx_free(&f);
}

static void test_reset_and_sampler_stats(void **state) {
    (void)state;
    fx f;
    fx_init(&f, 4, 1000);
    feed(&f);
    cp_samplesink_add_sampler_stats(f.k, 10, 1, 2, 3, 500);
    cp_samplesink_add_sampler_stats(f.k, 5, 0, 0, 0, 100);
    assert_int_equal(atomic_load(&f.k->ticks), 15);
    assert_int_equal(atomic_load(&f.k->sampler_cpu_ns), 600);
    assert_true(cp_samplesink_bytes(f.k) > sizeof(cp_samplesink));
    cp_samplesink_reset(f.k);
    assert_int_equal(cp_samplesink_count(f.k), 0);
    assert_int_equal(f.k->nnodes, 0);
    assert_int_equal(f.k->nthreads, 0);
    assert_int_equal(f.k->nlines, 0);
    assert_int_equal(f.k->nfirst + f.k->nring, 0);
    assert_int_equal(f.k->timeline_dropped, 0);
    assert_int_equal(atomic_load(&f.k->ticks), 0);
    assert_int_equal(cp_samplesink_only_samples(f.k, 999, 6), 0);
    assert_int_equal(cp_samplesink_bytes(f.k), sizeof(cp_samplesink));
    /* and it folds again */
    feed(&f);
    assert_int_equal(cp_samplesink_count(f.k), 6);
    assert_int_equal(f.k->nnodes, 7);
    fx_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trees_weights_states),
        cmocka_unit_test(test_timeline_bound),
        cmocka_unit_test(test_node_cap_and_other_stacks),
        cmocka_unit_test(test_reset_and_sampler_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
