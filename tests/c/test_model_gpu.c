/* test_model_gpu.c -- cp_mgpu_merge (src/model/model_gpu.c): a worker's
 * GPU section folded into the parent's: ops by site exact, spans and
 * samples bounded in time order, the slow list slowest first, syncs by
 * (site, line, kind), devices by index with sample-weighted means,
 * counters summed; dst unchanged on OOM; and through cp_model_merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "gpu_fixture.h"
#include "model/model_gpu.h"

/* ---- allocation failure injection (as test_model.c; off under ASan) ---- */
#if defined(__SANITIZE_ADDRESS__)
#define CP_NO_FAULTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CP_NO_FAULTS 1
#endif
#endif
#if !defined(CP_NO_FAULTS) && defined(__GLIBC__)
#define CP_FAULTS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t k);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
static long fault_countdown = -1;
static long fault_hits;
static long live_blocks;
static int fault_now(void) {
    if (fault_countdown < 0)
        return 0;
    if (fault_countdown-- == 0) {
        fault_hits++;
        return 1;
    }
    return 0;
}
__attribute__((noinline, malloc, alloc_size(1))) void *malloc(size_t n);
__attribute__((noinline, malloc, alloc_size(1, 2))) void *calloc(size_t n, size_t k);
__attribute__((noinline, alloc_size(2))) void *realloc(void *p, size_t n);
void *malloc(size_t n) {
    void *p = fault_now() ? NULL : __libc_malloc(n);
    live_blocks += p != NULL;
    return p;
}
void *calloc(size_t n, size_t k) {
    void *p = fault_now() ? NULL : __libc_calloc(n, k);
    live_blocks += p != NULL;
    return p;
}
void *realloc(void *p, size_t n) {
    if (fault_now())
        return NULL;
    void *q = __libc_realloc(p, n);
    live_blocks += !p && q;
    return q;
}
void free(void *p) {
    live_blocks -= p != NULL;
    __libc_free(p);
}
#endif

/* identity site map over m's sites */
static uint32_t *ident(const cp_model *m) {
    uint32_t *s = calloc(m->sites.n + 1, sizeof *s);
    assert_non_null(s);
    for (uint32_t i = 0; i < m->sites.n; i++)
        s[i] = i;
    return s;
}

static const cp_mgpu_op *op_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->gpu.nops; i++) {
        const cp_msite *si = cp_model_site(m, m->gpu.ops[i].site);
        if (si && !strcmp(si->name, name))
            return &m->gpu.ops[i];
    }
    fail_msg("no op %s", name);
    return NULL;
}

static void test_merge_ops_syncs_devices(void **state) {
    (void)state;
    cp_model *p = fx_model(), *w = fx_model();
    gx_fill(p);
    gx_fill(w); /* same sites, same indices */
    uint32_t extra = fx_site(w, "worker_only", "w.py", 3, CODEPROF_SITE_GPU);
    cp_mgpu_op *x = gx_op(w, extra, 2, 2, GX_MS(10000), GX_MS(4000), GX_MS(6000), GX_MS(1));
    x->threads = 3;
    w->gpu.ops[0].device_min_ns = GX_MS(20); /* model_forward: a smaller min in the worker */
    w->gpu.ops[0].device_max_ns = GX_MS(300);
    cp_mgpu_device *d = &w->gpu.devices[0];
    d->samples = 300;
    d->util_mean = 75.5;
    d->util_max = 99;
    d->mem_used_max = 9000 * GX_MIB;
    gx_device(w, 1, "second", 10, 10, 8000 * GX_MIB, 100 * GX_MIB);
    uint32_t *smap = ident(w);
    /* the worker's new site exists in p at another index */
    uint32_t in_p = fx_site(p, "worker_only", "w.py", 3, CODEPROF_SITE_GPU);
    smap[extra] = in_p;
    assert_int_equal(cp_mgpu_merge(&p->gpu, &w->gpu, smap, w->sites.n, 65536, 10000), 0);
    const cp_mgpu *g = &p->gpu;
    assert_int_equal(g->nops, 3);
    /* largest time first: the worker's op (10 s) */
    assert_int_equal(g->ops[0].site, in_p);
    assert_int_equal(g->ops[0].threads, 3);
    const cp_mgpu_op *f = op_named(p, "model_forward");
    assert_int_equal(f->calls, 40);
    assert_int_equal(f->timed, 40);
    assert_int_equal(f->device_ns, 2 * GX_MS(2500));
    assert_int_equal(f->device_min_ns, GX_MS(20));
    assert_int_equal(f->device_max_ns, GX_MS(400));
    assert_int_equal(f->mem_delta_sum, 80 * (int64_t)GX_MIB);
    assert_int_equal(f->mem_count, 40);
    assert_int_equal(f->slow, 10);
    assert_int_equal(f->streams, 2); /* the larger, not the sum */
    assert_int_equal(f->threads, 2);
    /* syncs summed by (site, line, kind) */
    assert_int_equal(g->nsyncs, 2);
    assert_int_equal(g->syncs[0].line, 66);
    assert_int_equal(g->syncs[0].count, 1000);
    assert_int_equal(g->syncs[0].blocked_ns, 2 * GX_MS(900));
    /* devices by index, means weighted by samples */
    assert_int_equal(g->ndevices, 2);
    assert_int_equal(g->devices[0].samples, 400);
    assert_true(fabs(g->devices[0].util_mean - (35.5 * 100 + 75.5 * 300) / 400.0) < 1e-9);
    assert_true(g->devices[0].util_max == 99);
    assert_int_equal(g->devices[0].mem_used_max, 9000 * GX_MIB);
    assert_int_equal(g->devices[1].index, 1);
    /* slow: slowest first, both sides */
    assert_int_equal(g->nslow, 4);
    for (uint32_t i = 1; i < g->nslow; i++)
        assert_true(g->slow[i - 1].device_ns >= g->slow[i].device_ns);
    /* counters */
    assert_int_equal(g->ops_dropped, 6);
    assert_int_equal(g->ops_unresolved, 2);
    assert_int_equal(g->idle_gaps, 8);
    assert_int_equal(g->idle_gap_max_ns, GX_MS(80));
    assert_int_equal(g->sampler_cpu_ns, 2 * 12345678ull);
    assert_int_equal(g->nspans, 6);
    for (uint32_t i = 1; i < g->nspans; i++)
        assert_true(g->spans[i - 1].host_start_ns <= g->spans[i].host_start_ns);
    free(smap);
    cp_model_free(p);
    cp_model_free(w);
}

/* Spans and samples: time order, first and most recent halves kept. */
static void test_merge_bounds_keep_time_order(void **state) {
    (void)state;
    cp_model *p = fx_model(), *w = fx_model();
    uint32_t a = fx_site(p, "a", "", 0, CODEPROF_SITE_GPU);
    fx_site(w, "a", "", 0, CODEPROF_SITE_GPU);
    for (uint64_t i = 0; i < 5; i++) {
        gx_add_span(p, gx_span(a, 10 * i, 1000, 0, 0));          /* 0, 10, .. 40 */
        gx_add_span(w, gx_span(a, 10 * i + 5, 1000, 0, 0));      /* 5, 15, .. 45 */
        gx_sample(p, 100 * i, 0, 1);
        gx_sample(w, 100 * i + 50, 0, 2);
    }
    uint32_t *smap = ident(w);
    assert_int_equal(cp_mgpu_merge(&p->gpu, &w->gpu, smap, w->sites.n, 4, 6), 0);
    const cp_mgpu *g = &p->gpu;
    assert_int_equal(g->nspans, 4);
    assert_int_equal(g->spans[0].host_start_ns, 0);
    assert_int_equal(g->spans[1].host_start_ns, 5);
    assert_int_equal(g->spans[2].host_start_ns, 40);
    assert_int_equal(g->spans[3].host_start_ns, 45);
    assert_int_equal(g->ops_dropped, 6);
    assert_int_equal(g->nsamples, 6);
    uint64_t want[6] = {0, 50, 100, 350, 400, 450};
    for (int i = 0; i < 6; i++)
        assert_int_equal(g->samples[i].t_ns, want[i]);
    assert_int_equal(g->samples_dropped, 4);
    free(smap);
    cp_model_free(p);
    cp_model_free(w);
}

/* A site outside the map becomes 0 rather than reading past it. */
static void test_merge_site_outside_map(void **state) {
    (void)state;
    cp_model *p = fx_model(), *w = fx_model();
    gx_op(w, 999, 1, 1, 5, 5, 5, 5);
    gx_sync(w, 998, 1, CP_GPU_SYNC_OTHER, 1, 1);
    uint32_t smap[1] = {0};
    assert_int_equal(cp_mgpu_merge(&p->gpu, &w->gpu, smap, 1, 10, 10), 0);
    assert_int_equal(p->gpu.nops, 1);
    assert_int_equal(p->gpu.ops[0].site, 0);
    assert_int_equal(p->gpu.syncs[0].site, 0);
    cp_model_free(p);
    cp_model_free(w);
}

/* The slow list stays at CP_GPU_MAX_SLOW; syncs at CP_GPU_MAX_SYNC_SITES. */
static void test_merge_caps(void **state) {
    (void)state;
    cp_model *p = fx_model(), *w = fx_model();
    for (uint32_t i = 0; i < CP_GPU_MAX_SLOW; i++) {
        gx_add_slow(p, gx_span(1, i, GX_MS(1000 - i), 0, 0));
        gx_add_slow(w, gx_span(1, i, GX_MS(1000 - i) + 1, 0, 0));
    }
    for (uint32_t i = 0; i < CP_GPU_MAX_SYNC_SITES; i++) {
        gx_sync(p, 0, i, CP_GPU_SYNC_MEMCPY, 1, 10);
        gx_sync(w, 0, i + CP_GPU_MAX_SYNC_SITES, CP_GPU_SYNC_MEMCPY, 1, 20);
    }
    uint32_t smap[2] = {0, 1};
    assert_int_equal(cp_mgpu_merge(&p->gpu, &w->gpu, smap, 2, 10, 10), 0);
    assert_int_equal(p->gpu.nslow, CP_GPU_MAX_SLOW);
    assert_int_equal(p->gpu.slow[0].device_ns, GX_MS(1000) + 1);
    assert_int_equal(p->gpu.slow[1].device_ns, GX_MS(1000));
    assert_int_equal(p->gpu.nsyncs, CP_GPU_MAX_SYNC_SITES);
    assert_int_equal(p->gpu.syncs_dropped, CP_GPU_MAX_SYNC_SITES);
    assert_int_equal(p->gpu.syncs[0].blocked_ns, 20); /* the largest kept */
    cp_model_free(p);
    cp_model_free(w);
}

static void test_merge_oom_leaves_dst(void **state) {
    (void)state;
#ifndef CP_FAULTS
    skip();
#else
    long failures = 0;
    for (long n = 0;; n++) {
        cp_model *p = fx_model(), *w = fx_model();
        gx_fill(p);
        gx_fill(w);
        uint32_t *smap = ident(w);
        cp_mgpu before = p->gpu;
        long live = live_blocks;
        fault_hits = 0;
        fault_countdown = n;
        int rc = cp_mgpu_merge(&p->gpu, &w->gpu, smap, w->sites.n, 100, 100);
        fault_countdown = -1;
        if (!fault_hits) {
            assert_int_equal(rc, 0);
            free(smap);
            cp_model_free(p);
            cp_model_free(w);
            break;
        }
        failures++;
        assert_int_equal(rc, -1);
        assert_memory_equal(&before, &p->gpu, sizeof before);
        assert_int_equal(live_blocks, live);
        free(smap);
        cp_model_free(p);
        cp_model_free(w);
    }
    assert_true(failures >= 6); /* every array's allocation was tried */
#endif
}

/* Through cp_model_merge: sites re-interned, the section merged. */
static void test_model_merge_carries_gpu(void **state) {
    (void)state;
    cp_model *p = fx_model(), *w = fx_model();
    fx_site(p, "unrelated", "", 0, CODEPROF_SITE_SCOPE); /* shifts p's indices */
    gx_fill(w);
    assert_int_equal(cp_model_merge(p, w, 1), 0);
    assert_int_equal(p->gpu.enabled, 1);
    assert_int_equal(p->gpu.nops, 2);
    const cp_mgpu_op *f = op_named(p, "model_forward");
    assert_int_equal(f->calls, 20);
    const cp_msite *si = cp_model_site(p, p->gpu.syncs[0].site);
    assert_non_null(si);
    assert_string_equal(si->name, "train_step");
    si = cp_model_site(p, p->gpu.spans[0].site);
    assert_string_equal(si->name, "model_forward");
    assert_int_equal(p->gpu.driver.status, CP_GPU_LIB_OK);
    cp_model_free(p);
    cp_model_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_ops_syncs_devices),
        cmocka_unit_test(test_merge_bounds_keep_time_order),
        cmocka_unit_test(test_merge_site_outside_map),
        cmocka_unit_test(test_merge_caps),
        cmocka_unit_test(test_merge_oom_leaves_dst),
        cmocka_unit_test(test_model_merge_carries_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
