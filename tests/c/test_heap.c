/* test_heap.c -- the allocation tracker (src/memory/heap.c): modes,
 * sampled estimates, realloc and foreign frees, caps and drop counters,
 * marks (nested, transient peaks, across threads), live groups and leak
 * candidates, snapshots, concurrency and fork.  Blocks are fake addresses:
 * the tracker never dereferences them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memory/heap.h"
#include "memory/heap_internal.h"

#define MiB (1024ull * 1024ull)

static int owner_tok;
static const void *OWNER = &owner_tok;

static void *fake(uint64_t i) { return (void *)(uintptr_t)(0x100000000ull + i * 64); }

static void start(cp_heap_mode mode, uint64_t sample_bytes, uint32_t max_blocks,
                  uint32_t max_stacks, int snapshots) {
    cp_heap_cfg c = {mode, sample_bytes, max_blocks, max_stacks, 8, 16, snapshots};
    codeprof_error err;
    assert_int_equal(cp_heap_start(&c, OWNER, &err), CODEPROF_OK);
}

static int teardown(void **state) {
    (void)state;
    cp_heap_stop(OWNER);
    cp_heap_reset(OWNER);
    cp_heap_set_stack_fn(NULL);
    return 0;
}

static cp_heap_totals totals(void) {
    cp_heap_totals t;
    cp_heap_get_totals(&t);
    return t;
}

static void test_dispatch_is_local(void **state) {
    (void)state;
    const cp_heap_ops *o = cp_heap_local_ops();
    assert_non_null(o);
    assert_int_equal(o->version, CP_HEAP_OPS_VERSION);
    assert_int_equal(o->size, sizeof(cp_heap_ops));
    assert_string_equal(cp_heap_domain_name(CP_HEAP_NUMPY), "numpy");
    assert_string_equal(cp_heap_domain_name(99), "unknown");
    /* no preload library in this process: totals say so */
    assert_int_equal(totals().native, 0);
}

static void test_off_records_nothing(void **state) {
    (void)state;
    assert_int_equal(cp_heap_active(), 0);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(1), 1000);
    cp_heap_on_free(CP_HEAP_PYMEM, fake(1));
    cp_heap_totals t = totals();
    assert_int_equal(t.dom[CP_HEAP_PYMEM].alloc_count, 0);
    assert_int_equal(t.live_bytes, 0);
}

static void test_bad_cfg(void **state) {
    (void)state;
    cp_heap_cfg c = {CP_HEAP_ALL, 0, 1024, 16, 8, 0, 0};
    codeprof_error err;
    assert_int_equal(cp_heap_start(&c, OWNER, &err), CODEPROF_ECONFIG);
    assert_string_equal(err.field, "memory_sample_bytes");
    c.sample_bytes = 1;
    c.stack_depth = 17;
    assert_int_equal(cp_heap_start(&c, OWNER, &err), CODEPROF_ECONFIG);
    assert_string_equal(err.field, "memory_stack_depth");
    assert_int_equal(cp_heap_active(), 0);
}

static void test_busy_for_another_owner(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1024, 16, 0);
    int other;
    cp_heap_cfg c = {CP_HEAP_ALL, 1, 1024, 16, 8, 0, 0};
    assert_int_equal(cp_heap_start(&c, &other, NULL), CODEPROF_EBUSY);
    cp_heap_stop(&other); /* not the owner: no effect */
    assert_int_equal(cp_heap_active(), 1);
    cp_heap_stop(OWNER);
    /* stopped: another owner may take it (the ledger is discarded) */
    assert_int_equal(cp_heap_start(&c, &other, NULL), CODEPROF_OK);
    cp_heap_stop(&other);
    cp_heap_reset(&other);
}

static void test_all_mode_counts(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    for (uint64_t i = 0; i < 1000; i++)
        cp_heap_on_alloc(CP_HEAP_PYOBJ, fake(i), 100);
    cp_heap_on_alloc(CP_HEAP_NUMPY, fake(5000), 10 * MiB);
    for (uint64_t i = 0; i < 500; i++)
        cp_heap_on_free(CP_HEAP_PYOBJ, fake(i));
    cp_heap_totals t = totals();
    assert_int_equal(t.mode, CP_HEAP_ALL);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].alloc_count, 1000);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].alloc_bytes, 100000);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].free_count, 500);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].live_bytes, 50000);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].live_blocks, 500);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].peak_bytes, 100000);
    assert_int_equal(t.dom[CP_HEAP_NUMPY].live_bytes, 10 * MiB);
    assert_int_equal(t.live_bytes, 50000 + 10 * MiB);
    assert_int_equal(t.peak_bytes, 100000 + 10 * MiB);
    assert_true(t.own_bytes > 0);
    /* a free is counted in the domain the block was recorded in */
    cp_heap_on_free(CP_HEAP_PYRAW, fake(5000));
    t = totals();
    assert_int_equal(t.dom[CP_HEAP_NUMPY].live_bytes, 0);
    assert_int_equal(t.dom[CP_HEAP_PYRAW].free_count, 0);
    /* stop keeps the ledger; frees after stop are not seen */
    cp_heap_stop(OWNER);
    cp_heap_on_free(CP_HEAP_PYOBJ, fake(600));
    assert_int_equal(totals().live_bytes, 50000);
    assert_int_equal(totals().mode, CP_HEAP_ALL);
    /* reset gives everything back */
    cp_heap_reset(OWNER);
    t = totals();
    assert_int_equal(t.live_bytes, 0);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].alloc_count, 0);
    assert_int_equal(t.own_bytes, 0);
}

static void test_foreign_frees_and_realloc(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    /* frees of blocks never recorded (before start, other allocators) */
    for (uint64_t i = 0; i < 10000; i++)
        cp_heap_on_free(CP_HEAP_PYMEM, fake(100000 + i));
    cp_heap_on_free(CP_HEAP_PYMEM, NULL);
    assert_int_equal(totals().live_bytes, 0);
    assert_int_equal(totals().dom[CP_HEAP_PYMEM].free_count, 0);
    /* realloc(NULL, n) is an allocation */
    cp_heap_on_realloc(CP_HEAP_PYMEM, NULL, fake(1), 64);
    assert_int_equal(totals().live_bytes, 64);
    /* moved and grown */
    cp_heap_on_realloc(CP_HEAP_PYMEM, fake(1), fake(2), 256);
    assert_int_equal(totals().live_bytes, 256);
    assert_int_equal(totals().dom[CP_HEAP_PYMEM].live_blocks, 1);
    /* in place, shrunk */
    cp_heap_on_realloc(CP_HEAP_PYMEM, fake(2), fake(2), 32);
    assert_int_equal(totals().live_bytes, 32);
    /* a failed realloc leaves the block */
    cp_heap_on_realloc(CP_HEAP_PYMEM, fake(2), NULL, 1u << 30);
    assert_int_equal(totals().live_bytes, 32);
    /* realloc(p, 0) that frees */
    cp_heap_on_realloc(CP_HEAP_PYMEM, fake(2), NULL, 0);
    assert_int_equal(totals().live_bytes, 0);
    assert_int_equal(totals().dom[CP_HEAP_PYMEM].live_blocks, 0);
    /* realloc of a foreign block: only the new one counts */
    cp_heap_on_realloc(CP_HEAP_PYMEM, fake(777777), fake(3), 100);
    assert_int_equal(totals().live_bytes, 100);
    /* an address recorded twice (its free was missed): replaced, not doubled */
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(3), 40);
    assert_int_equal(totals().live_bytes, 40);
    assert_int_equal(totals().dom[CP_HEAP_PYMEM].live_blocks, 1);
    cp_heap_on_free(CP_HEAP_PYMEM, fake(3));
    cp_heap_on_free(CP_HEAP_PYMEM, fake(3)); /* double free: ignored */
    assert_int_equal(totals().live_bytes, 0);
}

static void test_sampled_estimates_unbiased(void **state) {
    (void)state;
    cp_heap_seed_for_tests(12345);
    const uint64_t mean = 64 * 1024;
    start(CP_HEAP_SAMPLED, mean, 1u << 20, 64, 0);
    uint64_t rng = 88172645463325252ull, truth = 0;
    const uint64_t n = 400000;
    for (uint64_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t size = 16 + (size_t)(rng % 4096); /* mostly far below the mean */
        truth += size;
        cp_heap_on_alloc(CP_HEAP_PYOBJ, fake(i), size);
    }
    cp_heap_totals t = totals();
    assert_int_equal(t.mode, CP_HEAP_SAMPLED);
    double est = (double)t.dom[CP_HEAP_PYOBJ].alloc_bytes;
    /* ~12,500 samples: the relative error's sd is below 1% */
    assert_true(est > 0.95 * (double)truth && est < 1.05 * (double)truth);
    /* far fewer blocks recorded than allocated */
    assert_true(t.dom[CP_HEAP_PYOBJ].alloc_count < n / 10);
    assert_true(t.dom[CP_HEAP_PYOBJ].alloc_count > 1000);
    /* freeing everything brings the estimate back to 0 exactly */
    for (uint64_t i = 0; i < n; i++)
        cp_heap_on_free(CP_HEAP_PYOBJ, fake(i));
    assert_int_equal(totals().live_bytes, 0);
    cp_heap_seed_for_tests(0);
}

static void test_sampled_large_blocks_exact(void **state) {
    (void)state;
    cp_heap_seed_for_tests(7);
    const uint64_t mean = 256 * 1024;
    start(CP_HEAP_SAMPLED, mean, 1u << 16, 64, 0);
    for (uint64_t i = 0; i < 100; i++)
        cp_heap_on_alloc(CP_HEAP_NUMPY, fake(i), 8 * mean + i);
    cp_heap_totals t = totals();
    assert_int_equal(t.dom[CP_HEAP_NUMPY].alloc_count, 100);
    uint64_t want = 0;
    for (uint64_t i = 0; i < 100; i++)
        want += 8 * mean + i;
    assert_int_equal(t.dom[CP_HEAP_NUMPY].alloc_bytes, want);
    cp_heap_seed_for_tests(0);
}

static void test_max_blocks_cap(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1024, 64, 0);
    for (uint64_t i = 0; i < 1500; i++)
        cp_heap_on_alloc(CP_HEAP_PYMEM, fake(i), 10);
    cp_heap_totals t = totals();
    assert_int_equal(t.dom[CP_HEAP_PYMEM].live_blocks, 1024);
    assert_int_equal(t.dropped_blocks, 476);
    assert_int_equal(t.live_bytes, 10240);
    /* frees of dropped blocks are ignored; live never negative */
    for (uint64_t i = 0; i < 1500; i++)
        cp_heap_on_free(CP_HEAP_PYMEM, fake(i));
    assert_int_equal(totals().live_bytes, 0);
    /* room again */
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(1), 10);
    assert_int_equal(totals().dom[CP_HEAP_PYMEM].live_blocks, 1);
}

/* A stack callback that returns a different stack per call (site = a
 * counter), so max_stacks is reached. */
static _Atomic uint32_t stack_counter;
static uint32_t counting_stack(cp_heap_frame *out, uint32_t max) {
    assert_true(max >= 2);
    out[0] = (cp_heap_frame){0, 1000 + atomic_fetch_add(&stack_counter, 1), 7};
    out[1] = (cp_heap_frame){0, 42, 1};
    return 2;
}

typedef struct groups {
    uint64_t n, bytes, blocks, other_bytes, ctx_closed_bytes, ctx_open_bytes;
    uint32_t want_site;
} groups;

static void count_group(void *arg, const cp_heap_frame *fr, uint32_t n, uint32_t site, int open,
                        uint64_t bytes, uint64_t blocks) {
    groups *g = arg;
    g->n++;
    g->bytes += bytes;
    g->blocks += blocks;
    if (n == 1 && fr[0].pc == CP_HEAP_PC_OTHER)
        g->other_bytes += bytes;
    if (g->want_site && site == g->want_site) {
        if (open)
            g->ctx_open_bytes += bytes;
        else
            g->ctx_closed_bytes += bytes;
    }
}

static void test_max_stacks_cap(void **state) {
    (void)state;
    atomic_store(&stack_counter, 0);
    cp_heap_set_stack_fn(counting_stack);
    start(CP_HEAP_ALL, 1, 1u << 16, 16, 0);
    for (uint64_t i = 0; i < 40; i++)
        cp_heap_on_alloc(CP_HEAP_PYMEM, fake(i), 100);
    cp_heap_totals t = totals();
    assert_int_equal(t.dropped_stacks, 24);
    groups g = {0};
    cp_heap_foreach_live(count_group, &g);
    assert_int_equal(g.bytes, 4000);
    assert_int_equal(g.blocks, 40);
    assert_int_equal(g.n, 17); /* 16 stacks + "(other stacks)" */
    assert_int_equal(g.other_bytes, 2400);
}

static void test_mark_transient_peak(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(0), 5 * MiB); /* before: the floor */
    cp_heap_mark outer, inner;
    cp_heap_span so, si;
    cp_heap_mark_enter(&outer, 11);
    assert_true(outer.serial != 0);
    assert_true(outer.watch >= 0);
    assert_int_equal(outer.live_enter, 5 * MiB);
    cp_heap_mark_enter(&inner, 12);
    cp_heap_on_alloc(CP_HEAP_NUMPY, fake(1), 800 * MiB); /* transient */
    cp_heap_on_free(CP_HEAP_NUMPY, fake(1));
    cp_heap_on_alloc(CP_HEAP_NUMPY, fake(2), 200 * MiB); /* kept */
    cp_heap_mark_exit(&inner, &si);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(3), 300 * MiB);
    cp_heap_on_free(CP_HEAP_PYMEM, fake(3));
    cp_heap_mark_exit(&outer, &so);
    assert_int_equal(si.delta, 200 * MiB);
    assert_int_equal(si.peak, 800 * MiB);
    assert_int_equal(si.live_exit, 205 * MiB);
    assert_int_equal(si.estimated, 0);
    assert_int_equal(so.delta, 200 * MiB);
    assert_int_equal(so.peak, 800 * MiB);
    /* transient only: peak ~ size, delta ~ 0 */
    cp_heap_mark m;
    cp_heap_span sp;
    cp_heap_mark_enter(&m, 13);
    cp_heap_on_alloc(CP_HEAP_NUMPY, fake(9), 800 * MiB);
    cp_heap_on_free(CP_HEAP_NUMPY, fake(9));
    cp_heap_mark_exit(&m, &sp);
    assert_int_equal(sp.delta, 0);
    assert_int_equal(sp.peak, 800 * MiB);
    assert_true(sp.rss_exit > 0); /* RSS is read at both ends */
    assert_int_equal(cp_heap_watchers_in_use(), 0);
}

/* More open marks than watcher slots: the extra ones are counted and give
 * the net delta as their peak; the slots come back at exit. */
static void test_watcher_cap(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    enum { N = 300 };
    static cp_heap_mark m[N];
    for (int i = 0; i < N; i++)
        cp_heap_mark_enter(&m[i], (uint32_t)(1000 + i));
    assert_int_equal(cp_heap_watchers_in_use(), 256);
    assert_int_equal(totals().dropped_marks, N - 256);
    assert_int_equal(m[N - 1].watch, -1);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(1), 5000);
    cp_heap_on_free(CP_HEAP_PYMEM, fake(1));
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(2), 100);
    cp_heap_span sp;
    for (int i = N; i-- > 0;) {
        cp_heap_mark_exit(&m[i], &sp);
        assert_int_equal(sp.delta, 100);
        assert_int_equal(sp.peak, i >= 256 ? 100 : 5000);
    }
    assert_int_equal(cp_heap_watchers_in_use(), 0);
}

static void test_mark_off_mode_gives_rss(void **state) {
    (void)state;
    cp_heap_mark m;
    cp_heap_span sp;
    cp_heap_mark_enter(&m, 5);
    assert_int_equal(m.watch, -1);
    char *p = malloc(32 * MiB);
    assert_non_null(p);
    memset(p, 1, 32 * MiB);
    cp_heap_watch_rss(m.rss_enter + 64 * MiB); /* a sampler reading */
    cp_heap_mark_exit(&m, &sp);
    free(p);
    assert_true(m.rss_enter > 0);
    assert_true(sp.rss_exit > 0);
    assert_true(sp.rss_delta > 16 * (int64_t)MiB);
    assert_int_equal(sp.delta, 0);
    assert_int_equal(sp.peak, 0);
}

static void test_mark_rss_watch(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    cp_heap_mark m;
    cp_heap_span sp;
    cp_heap_mark_enter(&m, 5);
    cp_heap_watch_rss(m.rss_enter + 512 * MiB);
    cp_heap_mark_exit(&m, &sp);
    assert_true(sp.rss_peak >= 512 * MiB);
}

/* A mark open on one thread sees the peak another thread causes. */
static void *alloc_transient(void *arg) {
    (void)arg;
    cp_heap_on_alloc(CP_HEAP_NATIVE, fake(50), 100 * MiB);
    cp_heap_on_free(CP_HEAP_NATIVE, fake(50));
    return NULL;
}

static void test_mark_peak_across_threads(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    cp_heap_mark m;
    cp_heap_span sp;
    cp_heap_mark_enter(&m, 21);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, alloc_transient, NULL), 0);
    pthread_join(th, NULL);
    cp_heap_mark_exit(&m, &sp);
    assert_int_equal(sp.peak, 100 * MiB);
    assert_int_equal(sp.delta, 0);
}

static void test_leak_groups_by_context(void **state) {
    (void)state;
    cp_heap_set_stack_fn(counting_stack);
    start(CP_HEAP_ALL, 1, 1u << 16, 64, 0);
    cp_heap_mark m, open_m;
    cp_heap_span sp;
    cp_heap_mark_enter(&m, 31);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(1), 1000); /* leaked */
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(2), 500);  /* freed inside */
    cp_heap_on_free(CP_HEAP_PYMEM, fake(2));
    cp_heap_mark_exit(&m, &sp);
    cp_heap_mark_enter(&open_m, 31); /* same site, a new call still open */
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(3), 70);
    groups g = {0};
    g.want_site = 31;
    cp_heap_foreach_live(count_group, &g);
    assert_int_equal(g.ctx_closed_bytes, 1000);
    assert_int_equal(g.ctx_open_bytes, 70);
    cp_heap_mark_exit(&open_m, &sp);
    memset(&g, 0, sizeof g);
    g.want_site = 31;
    cp_heap_foreach_live(count_group, &g);
    assert_int_equal(g.ctx_closed_bytes, 1070);
}

static void test_snapshots_first_and_last(void **state) {
    (void)state;
    cp_heap_set_stack_fn(counting_stack);
    cp_heap_cfg c = {CP_HEAP_ALL, 1, 1u << 16, 64, 8, 4, 1};
    assert_int_equal(cp_heap_start(&c, OWNER, NULL), CODEPROF_OK);
    for (uint64_t i = 0; i < 10; i++) {
        cp_heap_mark m;
        cp_heap_span sp;
        cp_heap_mark_enter(&m, (uint32_t)(100 + i));
        cp_heap_on_alloc(CP_HEAP_PYMEM, fake(i), 1000);
        cp_heap_mark_exit(&m, &sp);
    }
    assert_int_equal(cp_heap_snapshot_count(), 4);
    assert_int_equal(totals().dropped_snapshots, 6);
    uint32_t want_site[4] = {100, 101, 108, 109};
    for (uint32_t i = 0; i < 4; i++) {
        cp_heap_snapshot_info info;
        groups g = {0};
        assert_int_equal(cp_heap_snapshot_get(i, &info, count_group, &g), 0);
        assert_int_equal(info.ctx_site, want_site[i]);
        assert_int_equal(info.live_bytes, (int64_t)(want_site[i] - 99) * 1000);
        assert_int_equal(g.bytes, (want_site[i] - 99) * 1000);
        assert_int_equal(info.ngroups, want_site[i] - 99);
    }
    assert_int_equal(cp_heap_snapshot_get(4, NULL, NULL, NULL), -1);
}

static void test_hook_flag(void **state) {
    (void)state;
    assert_int_equal(cp_heap_hook_enter(), 1);
    assert_int_equal(cp_heap_hook_enter(), 0); /* nested: forward only */
    cp_heap_hook_leave();
    assert_int_equal(cp_heap_hook_enter(), 1);
    cp_heap_hook_leave();
}

/* ---- concurrency (the TSan leg runs this) ---- */
#define NTHREADS 4
#define PER_THREAD 20000

static void *churn(void *arg) {
    uint64_t base = (uint64_t)(uintptr_t)arg * 1000000;
    cp_heap_mark m;
    cp_heap_span sp;
    for (int round = 0; round < 4; round++) {
        cp_heap_mark_enter(&m, 500 + (uint32_t)round);
        for (uint64_t i = 0; i < PER_THREAD; i++)
            cp_heap_on_alloc(CP_HEAP_PYOBJ, fake(base + i), 48);
        for (uint64_t i = 0; i < PER_THREAD; i += 2)
            cp_heap_on_free(CP_HEAP_PYOBJ, fake(base + i));
        for (uint64_t i = 0; i < PER_THREAD; i += 2)
            cp_heap_on_realloc(CP_HEAP_PYOBJ, NULL, fake(base + i), 16);
        for (uint64_t i = 0; i < PER_THREAD; i++)
            cp_heap_on_free(CP_HEAP_PYOBJ, fake(base + i));
        cp_heap_mark_exit(&m, &sp);
        if (sp.live_exit < 0)
            return (void *)1;
    }
    /* keep 100 blocks */
    for (uint64_t i = 0; i < 100; i++)
        cp_heap_on_alloc(CP_HEAP_PYOBJ, fake(base + i), 10);
    return NULL;
}

static void test_threads_concurrent(void **state) {
    (void)state;
    cp_heap_set_stack_fn(counting_stack);
    start(CP_HEAP_ALL, 1, 1u << 20, 1024, 1);
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn, (void *)(i + 1)), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    cp_heap_totals t = totals();
    assert_int_equal(t.live_bytes, NTHREADS * 100 * 10);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].live_blocks, NTHREADS * 100);
    assert_int_equal(t.dom[CP_HEAP_PYOBJ].alloc_count,
                     (uint64_t)NTHREADS * (4 * (PER_THREAD + PER_THREAD / 2) + 100));
    assert_true(t.peak_bytes >= 48 * PER_THREAD);
    assert_int_equal(cp_heap_watchers_in_use(), 0);
    assert_true(cp_heap_snapshot_count() > 0);
}

/* A reset while other threads record: the live figures stay equal to what
 * the table holds (all blocks freed at the end: exactly 0, never below). */
static atomic_int reset_stop;
static void *churn_until_stopped(void *arg) {
    uint64_t base = (uint64_t)(uintptr_t)arg * 1000000;
    while (!atomic_load(&reset_stop)) {
        for (uint64_t i = 0; i < 512; i++)
            cp_heap_on_alloc((int)(i % CP_HEAP_NDOMAINS), fake(base + i), 24 + i);
        for (uint64_t i = 0; i < 512; i++)
            cp_heap_on_free(CP_HEAP_PYMEM, fake(base + i));
    }
    return NULL;
}

static void test_reset_while_recording(void **state) {
    (void)state;
    start(CP_HEAP_ALL, 1, 1u << 20, 64, 0);
    atomic_store(&reset_stop, 0);
    pthread_t th[3];
    for (uintptr_t i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn_until_stopped, (void *)(i + 1)), 0);
    for (int k = 0; k < 20; k++) {
        usleep(1000);
        cp_heap_reset(OWNER);
        cp_heap_totals t = totals();
        assert_true(t.live_bytes >= 0);
        for (int d = 0; d < CP_HEAP_NDOMAINS; d++)
            assert_true(t.dom[d].live_bytes >= 0);
    }
    atomic_store(&reset_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    cp_heap_totals t = totals();
    assert_int_equal(t.live_bytes, 0);
    for (int d = 0; d < CP_HEAP_NDOMAINS; d++) {
        assert_int_equal(t.dom[d].live_bytes, 0);
        assert_int_equal(t.dom[d].live_blocks, 0);
    }
    assert_int_equal(cp_heap_active(), 1); /* a reset while recording goes on recording */
}

/* ---- fork while another thread allocates ---- */
static atomic_int fork_stop;
static void *fork_churn(void *arg) {
    (void)arg;
    uint64_t i = 0;
    while (!atomic_load(&fork_stop)) {
        cp_heap_on_alloc(CP_HEAP_NATIVE, fake(2000000 + (i % 5000)), 64);
        cp_heap_on_free(CP_HEAP_NATIVE, fake(2000000 + ((i + 2500) % 5000)));
        i++;
    }
    return NULL;
}

static void test_fork_while_allocating(void **state) {
    (void)state;
    cp_heap_set_stack_fn(counting_stack);
    start(CP_HEAP_ALL, 1, 1u << 16, 1u << 16, 0);
    atomic_store(&fork_stop, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fork_churn, NULL), 0);
    cp_heap_mark open_m;
    cp_heap_mark_enter(&open_m, 77);
    for (int k = 0; k < 5; k++) {
        usleep(2000);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(20); /* a deadlock fails the test instead of hanging it */
            cp_heap_totals t;
            cp_heap_get_totals(&t);
            int ok = t.live_bytes == 0 && t.mode == CP_HEAP_ALL;
            for (uint64_t i = 0; i < 1000; i++)
                cp_heap_on_alloc(CP_HEAP_NATIVE, fake(i), 8);
            cp_heap_span sp;
            cp_heap_mark_exit(&open_m, &sp);
            ok = ok && sp.delta == 8000 && sp.peak == 8000;
            cp_heap_get_totals(&t);
            ok = ok && t.live_bytes == 8000;
            cp_heap_stop(OWNER);
            cp_heap_reset(OWNER);
            _exit(ok ? 0 : 3);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    atomic_store(&fork_stop, 1);
    pthread_join(th, NULL);
    cp_heap_span sp;
    cp_heap_mark_exit(&open_m, &sp);
    assert_true(totals().live_bytes >= 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_dispatch_is_local, teardown),
        cmocka_unit_test_teardown(test_off_records_nothing, teardown),
        cmocka_unit_test_teardown(test_bad_cfg, teardown),
        cmocka_unit_test_teardown(test_busy_for_another_owner, teardown),
        cmocka_unit_test_teardown(test_all_mode_counts, teardown),
        cmocka_unit_test_teardown(test_foreign_frees_and_realloc, teardown),
        cmocka_unit_test_teardown(test_sampled_estimates_unbiased, teardown),
        cmocka_unit_test_teardown(test_sampled_large_blocks_exact, teardown),
        cmocka_unit_test_teardown(test_max_blocks_cap, teardown),
        cmocka_unit_test_teardown(test_max_stacks_cap, teardown),
        cmocka_unit_test_teardown(test_mark_transient_peak, teardown),
        cmocka_unit_test_teardown(test_watcher_cap, teardown),
        cmocka_unit_test_teardown(test_mark_off_mode_gives_rss, teardown),
        cmocka_unit_test_teardown(test_mark_rss_watch, teardown),
        cmocka_unit_test_teardown(test_mark_peak_across_threads, teardown),
        cmocka_unit_test_teardown(test_leak_groups_by_context, teardown),
        cmocka_unit_test_teardown(test_snapshots_first_and_last, teardown),
        cmocka_unit_test_teardown(test_hook_flag, teardown),
        cmocka_unit_test_teardown(test_threads_concurrent, teardown),
        cmocka_unit_test_teardown(test_reset_while_recording, teardown),
        cmocka_unit_test_teardown(test_fork_while_allocating, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
