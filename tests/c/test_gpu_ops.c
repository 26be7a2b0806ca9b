/* test_gpu_ops.c -- the GPU operation recorder (src/gpu/gpu_ops.c) and the
 * GPU session (src/gpu/gpu_session.c) against the fake driver: programmed
 * elapsed times come back exactly, lazy resolution (no synchronize before a
 * report, then only for the pending ops), the event pool, caps and drop
 * counters, memory from the caller and from the driver, idle gaps, host
 * only without a context (with the reason), no CUDA call in a fork child,
 * and every event released by reset + free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codeprof/codeprof.h"

#if defined(__SANITIZE_THREAD__)
#define CP_TEST_UNDER_TSAN 1
#else
#define CP_TEST_UNDER_TSAN 0
#endif
#include "core/clock.h"
#include "core/session.h"
#include "fake_cuda.h"
#include "gpu/gpu_lib.h"
#include "gpu/gpu_ops.h"
#include "model/build.h"
#include "model/model.h"

static fake_cuda F;
static _Atomic uint64_t fake_now = 1000000000ull;
static uint64_t fake_clock(void) {
    return atomic_load(&fake_now);
}
static void advance(uint64_t ns) {
    atomic_fetch_add(&fake_now, ns);
}

static int setup(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    return fake_cuda_open(&F, RTLD_LOCAL);
}

/* Each test: fresh fake, loader pointed at it. */
static int per_test(void **state) {
    (void)state;
    F.reset();
    cp_gpu_lib_reset_for_tests();
    setenv("CODEPROF_CUDA_LIBRARY", F.path, 1);
    setenv("CODEPROF_CUPTI_LIBRARY", "/nonexistent/libcupti.so", 1);
    return cp_gpu_lib_get()->driver.status == CP_GPU_LIB_OK ? 0 : -1;
}

static cp_gpu_ops *new_ops(uint32_t max_ops, int mem_driver) {
    cp_gpu_ops *o = cp_gpu_ops_new(max_ops, 100000000ull, mem_driver);
    assert_non_null(o);
    cp_gpu_ops_enable(o, 1);
    return o;
}

static void op(cp_gpu_ops *o, uint32_t site, uint64_t stream, uint64_t host_ns) {
    codeprof_gpu_op g;
    cp_gpu_ops_begin(o, site, stream, NULL, &g);
    advance(host_ns);
    cp_gpu_ops_end(o, &g, NULL);
}

static cp_model *model_of(cp_gpu_ops *o, int wait) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cp_model *m = cp_model_begin(&cfg, (int)getpid(), "", 0);
    assert_non_null(m);
    cp_gpu_ops_resolve(o, wait);
    assert_int_equal(cp_gpu_ops_fill_model(o, m), 0);
    return m;
}

static const cp_mgpu_op *op_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->gpu.nops; i++) {
        const cp_msite *s = cp_model_site(m, m->gpu.ops[i].site);
        if (s && strcmp(s->name, name) == 0)
            return &m->gpu.ops[i];
    }
    return NULL;
}

static uint32_t site(const char *name) {
    return codeprof_site(name, "gpu_test.py", 1, CODEPROF_SITE_GPU);
}

static void test_programmed_elapsed_exact_and_idle_gaps(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0);
    /* Records in order: reference (advance 0), A start (5 ms: A's work),
     * A end (2 ms: idle), B start (7 ms), B end. */
    const double adv[] = {0, 5, 2, 7, 1};
    F.queue_advance(adv, 5);
    op(o, site("A"), 0, 1000);
    op(o, site("B"), 0, 1000);
    cp_model *m = model_of(o, 0);
    const cp_mgpu_op *a = op_named(m, "A"), *b = op_named(m, "B");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->calls, 1);
    assert_int_equal(a->timed, 1);
    assert_int_equal(a->device_ns, 5000000);
    assert_int_equal(a->device_min_ns, 5000000);
    assert_int_equal(b->device_ns, 7000000);
    assert_int_equal(a->host_ns, 1000);
    /* Largest device time first. */
    assert_ptr_equal(&m->gpu.ops[0], b);
    assert_int_equal(m->gpu.nspans, 2);
    assert_true(m->gpu.available);
    /* Device starts on the host axis: A at the reference, B 7 ms after it;
     * one gap of 2 ms between A's end and B's start. */
    assert_int_equal(m->gpu.idle_gaps, 1);
    assert_int_equal(m->gpu.idle_gap_ns, 2000000);
    assert_int_equal(m->gpu.idle_gap_max_ns, 2000000);
    assert_int_equal(m->gpu.busy_ns, 12000000);
    assert_int_equal(m->gpu.span_ns, 14000000);
    assert_int_equal(m->gpu.device_mem_total, 8ull << 30);
    /* Nothing waited for the GPU (the events were ready). */
    assert_int_equal(F.count("cuEventSynchronize"), 0);
    assert_int_equal(F.count("cuInit"), 0);
    assert_int_equal(F.count("cuCtxCreate"), 0);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_slow_ops_listed_slowest_first(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0); /* slow above 100 ms */
    const double adv[] = {0, 150, 0, 50, 0, 300, 0};
    F.queue_advance(adv, 7);
    op(o, site("slowA"), 0, 10);
    op(o, site("fast"), 0, 10);
    op(o, site("slowB"), 0, 10);
    cp_model *m = model_of(o, 0);
    assert_int_equal(m->gpu.nslow, 2);
    assert_int_equal(m->gpu.slow[0].device_ns, 300000000);
    assert_int_equal(m->gpu.slow[1].device_ns, 150000000);
    assert_int_equal(op_named(m, "slowB")->slow, 1);
    assert_int_equal(op_named(m, "fast")->slow, 0);
    cp_model_free(m);
    cp_gpu_ops_free(o);
}

static void test_lazy_resolution_syncs_only_pending(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0);
    F.set_ready_after(1000); /* never ready by queries alone */
    for (int i = 0; i < 4; i++)
        op(o, site("pending"), 0, 100);
    /* The hot path neither synchronized nor queried. */
    assert_int_equal(F.count("cuEventSynchronize"), 0);
    assert_int_equal(F.count("cuEventQuery"), 0);
    uint64_t fp = cp_gpu_ops_fingerprint(o);
    /* A non-waiting resolve leaves them pending. */
    assert_int_equal(cp_gpu_ops_resolve(o, 0), 4);
    assert_int_equal(F.count("cuEventSynchronize"), 0);
    F.set_ready_after(0);
    for (int i = 0; i < 3; i++)
        op(o, site("ready"), 1, 100);
    assert_int_not_equal(cp_gpu_ops_fingerprint(o), fp);
    /* A report: synchronize only on the 4 still pending. */
    cp_model *m = model_of(o, 1);
    assert_int_equal(F.count("cuEventSynchronize"), 4);
    assert_int_equal(op_named(m, "pending")->timed, 4);
    assert_int_equal(op_named(m, "ready")->timed, 3);
    assert_int_equal(m->gpu.ops_unresolved, 0);
    cp_model_free(m);
    /* Nothing pending: the next report synchronizes on nothing. */
    m = model_of(o, 1);
    assert_int_equal(F.count("cuEventSynchronize"), 4);
    cp_model_free(m);
    cp_gpu_ops_free(o);
}

static void test_event_errors_counted_unresolved(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0);
    op(o, site("ok"), 0, 100);
    F.fail_call("cuEventElapsedTime", 999);
    op(o, site("bad"), 0, 100);
    cp_model *m = model_of(o, 1);
    /* The first resolves too late to dodge the failure: both fail. */
    assert_int_equal(m->gpu.ops_unresolved, 2);
    assert_int_equal(op_named(m, "bad")->calls, 1);
    assert_int_equal(op_named(m, "bad")->timed, 0);
    assert_int_equal(op_named(m, "bad")->host_ns, 100);
    F.fail_call(NULL, 0);
    cp_model_free(m);
    /* A failing record: host only, counted. */
    F.fail_call("cuEventRecord", 999);
    op(o, site("norec"), 0, 100);
    F.fail_call(NULL, 0);
    m = model_of(o, 1);
    assert_int_equal(m->gpu.ops_host_only, 1);
    assert_int_equal(op_named(m, "norec")->timed, 0);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

/* A synchronize that fails leaves exactly the ops it was for unresolved;
 * an op that ends after the report is untouched. */
static void test_failed_synchronize_counted(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0);
    F.set_ready_after(1000);
    for (int i = 0; i < 3; i++)
        op(o, site("stuck"), 0, 10);
    F.fail_call("cuEventSynchronize", 999);
    cp_model *m = model_of(o, 1);
    F.fail_call(NULL, 0);
    assert_int_equal(F.count("cuEventSynchronize"), 3);
    assert_int_equal(m->gpu.ops_unresolved, 3);
    assert_int_equal(op_named(m, "stuck")->calls, 3);
    assert_int_equal(op_named(m, "stuck")->timed, 0);
    cp_model_free(m);
    op(o, site("later"), 0, 10);
    m = model_of(o, 1);
    assert_int_equal(op_named(m, "later")->timed, 1);
    assert_int_equal(m->gpu.ops_unresolved, 3);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_pool_reuses_events(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 10; i++)
            op(o, site("pooled"), 0, 10);
        cp_gpu_ops_resolve(o, 1);
    }
    /* 10 ops at a time hold 20 events, plus the reference. */
    assert_int_equal(F.count("cuEventCreate"), 21);
    assert_int_equal(F.count("cuEventRecord"), 201);
    assert_int_equal(F.count("live_events"), 21);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("cuEventDestroy"), 21);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_cap_and_drop_counters(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(16, 0);
    F.set_ready_after(1000);
    for (int i = 0; i < 20; i++)
        op(o, site("capped"), 0, 10);
    /* 16 pending, the 4 others found nothing ready: host only. */
    assert_int_equal(F.count("cuEventSynchronize"), 0);
    cp_model *m = model_of(o, 1);
    const cp_mgpu_op *c = op_named(m, "capped");
    assert_int_equal(c->calls, 20);
    assert_int_equal(c->timed, 16);
    assert_int_equal(m->gpu.ops_host_only, 4);
    assert_int_equal(F.count("cuEventSynchronize"), 16);
    assert_int_equal(m->gpu.nspans, 16);
    assert_int_equal(m->gpu.ops_dropped, 4);
    uint64_t n = 0;
    assert_int_equal(cp_gpu_ops_host_only_cause(o, &n), CP_GPU_HOST_ONLY_FULL);
    assert_int_equal(n, 4);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_full_table_resolves_ready_ones(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(16, 0);
    for (int i = 0; i < 40; i++)
        op(o, site("cycled"), 0, 10);
    /* Ready events: the full table resolved the oldest without waiting. */
    assert_int_equal(F.count("cuEventSynchronize"), 0);
    cp_model *m = model_of(o, 1);
    assert_int_equal(op_named(m, "cycled")->timed, 40);
    assert_int_equal(m->gpu.ops_host_only, 0);
    /* Spans: the first 8 and the most recent 8 of 40. */
    assert_int_equal(m->gpu.nspans, 16);
    assert_int_equal(m->gpu.ops_dropped, 24);
    uint64_t t0 = m->gpu.spans[0].host_start_ns;
    assert_int_equal(m->gpu.spans[7].host_start_ns, t0 + 7 * 10);
    assert_int_equal(m->gpu.spans[8].host_start_ns, t0 + 32 * 10);
    assert_int_equal(m->gpu.spans[15].host_start_ns, t0 + 39 * 10);
    cp_model_free(m);
    cp_gpu_ops_free(o);
}

static void test_memory_from_caller(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 1);
    codeprof_gpu_op g;
    codeprof_gpu_mem b = {1, 100, 200, 150}, a = {1, 300, 400, 500};
    cp_gpu_ops_begin(o, site("grow"), 0, &b, &g);
    cp_gpu_ops_end(o, &g, &a);
    codeprof_gpu_mem b2 = {1, 300, 400, 500}, a2 = {1, 250, 400, 500};
    cp_gpu_ops_begin(o, site("shrink"), 0, &b2, &g);
    cp_gpu_ops_end(o, &g, &a2);
    cp_model *m = model_of(o, 1);
    const cp_mgpu_op *x = op_named(m, "grow"), *y = op_named(m, "shrink");
    assert_int_equal(x->mem_source, CP_GPU_MEM_TORCH);
    assert_int_equal(x->mem_count, 1);
    assert_int_equal(x->mem_delta_sum, 200);
    assert_int_equal(x->mem_peak, 500); /* the high-water mark rose */
    assert_int_equal(x->reserved_delta_sum, 200);
    assert_int_equal(x->reserved_peak, 400);
    assert_int_equal(y->mem_delta_sum, -50);
    assert_int_equal(y->mem_peak, 300); /* not risen: max(before, after) */
    /* The caller's figures: the driver was not asked. */
    assert_int_equal(F.count("cuMemGetInfo"), 0);
    cp_model_free(m);
    cp_gpu_ops_free(o);
}

static void test_memory_from_driver(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 1);
    codeprof_gpu_op g;
    F.set_mem(6ull << 30, 8ull << 30);
    cp_gpu_ops_begin(o, site("drv"), 0, NULL, &g);
    F.set_mem(5ull << 30, 8ull << 30);
    cp_gpu_ops_end(o, &g, NULL);
    cp_model *m = model_of(o, 1);
    const cp_mgpu_op *x = op_named(m, "drv");
    assert_int_equal(x->mem_source, CP_GPU_MEM_DRIVER);
    assert_int_equal(x->mem_delta_sum, 1ll << 30);
    assert_int_equal(x->mem_peak, 3ull << 30);
    assert_int_equal(F.count("cuMemGetInfo"), 2);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    /* Without CODEPROF_CFG_GPU_MEMORY: no driver read. */
    o = new_ops(1024, 0);
    op(o, site("nomem"), 0, 10);
    m = model_of(o, 1);
    assert_int_equal(op_named(m, "nomem")->mem_source, CP_GPU_MEM_NONE);
    assert_int_equal(F.count("cuMemGetInfo"), 2);
    cp_model_free(m);
    cp_gpu_ops_free(o);
}

typedef struct thr_arg {
    cp_gpu_ops *o;
    int index;
} thr_arg;

static void *thr(void *p) {
    thr_arg *a = p;
    for (int i = 0; i < 200; i++) {
        codeprof_gpu_op outer, inner;
        /* Nested: an outer op on stream 1 or 2 with an inner one. */
        cp_gpu_ops_begin(a->o, site("outer"), (uint64_t)(a->index % 2 + 1), NULL, &outer);
        cp_gpu_ops_begin(a->o, site("inner"), 7, NULL, &inner);
        cp_gpu_ops_end(a->o, &inner, NULL);
        cp_gpu_ops_end(a->o, &outer, NULL);
    }
    return NULL;
}

static void test_threads_streams_nested(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(64, 0);
    F.set_ready_after(2);
    pthread_t t[3];
    thr_arg a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (thr_arg){o, i};
        assert_int_equal(pthread_create(&t[i], NULL, thr, &a[i]), 0);
    }
    cp_model *m0 = NULL;
    for (int k = 0; k < 3; k++) { /* reports while recording */
        m0 = model_of(o, k == 1);
        cp_model_free(m0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    cp_model *m = model_of(o, 1);
    const cp_mgpu_op *x = op_named(m, "outer"), *y = op_named(m, "inner");
    /* Every op is counted exactly; each either timed or host only. */
    assert_int_equal(x->calls, 600);
    assert_int_equal(y->calls, 600);
    assert_int_equal(x->timed + y->timed + m->gpu.ops_host_only, 1200);
    assert_true(x->timed > 0);
    assert_int_equal(x->streams, 2);
    assert_int_equal(y->streams, 1);
    assert_int_equal(x->threads, 3);
    assert_int_equal(m->gpu.ops_unresolved, 0);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_no_context_host_only(void **state) {
    (void)state;
    for (int mode = -1; mode <= 0; mode++) {
        F.reset();
        F.set_context(mode);
        cp_gpu_ops *o = new_ops(1024, 1);
        op(o, site("nocontext"), 0, 500);
        cp_model *m = model_of(o, 1);
        assert_false(m->gpu.available);
        assert_int_equal(m->gpu.ops_host_only, 1);
        assert_int_equal(op_named(m, "nocontext")->host_ns, 500);
        assert_int_equal(op_named(m, "nocontext")->timed, 0);
        assert_int_equal(cp_gpu_ops_host_only_cause(o, NULL), CP_GPU_HOST_ONLY_NO_CONTEXT);
        assert_int_equal(F.count("cuEventCreate"), 0);
        assert_int_equal(F.count("cuMemGetInfo"), 0);
        assert_int_equal(F.count("cuInit"), 0);
        assert_int_equal(F.count("cuCtxCreate"), 0);
        cp_model_free(m);
        cp_gpu_ops_free(o);
    }
}

static void test_reset_and_free_release_events(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 0);
    F.set_ready_after(1000);
    for (int i = 0; i < 5; i++)
        op(o, site("r"), 0, 10);
    codeprof_gpu_op running;
    cp_gpu_ops_begin(o, site("running"), 0, NULL, &running);
    cp_gpu_ops_reset(o);
    /* Reset neither waited nor destroyed: the events went to the pool. */
    assert_int_equal(F.count("cuEventSynchronize"), 0);
    assert_int_equal(F.count("live_events"), 13);
    cp_gpu_ops_end(o, &running, NULL); /* begun before the reset: still fine */
    cp_model *m = model_of(o, 1);
    assert_int_equal(m->gpu.nops, 1);
    assert_int_equal(op_named(m, "running")->calls, 1);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_fork_child_makes_no_cuda_call(void **state) {
    (void)state;
    cp_gpu_ops *o = new_ops(1024, 1);
    F.set_ready_after(1000);
    op(o, site("parent"), 0, 10);
    codeprof_gpu_op across;
    cp_gpu_ops_begin(o, site("across"), 0, NULL, &across);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        cp_gpu_lib_atfork_child(); /* the session's atfork does both */
        cp_gpu_ops_atfork_child(o);
        cp_gpu_ops_end(o, &across, NULL);
        op(o, site("child"), 0, 10);
        cp_gpu_ops_enable(o, 1); /* a start in the child stays off */
        op(o, site("child"), 0, 10);
        cp_model *m = model_of(o, 1);
        int ok = F.count("after_fork") == 0 && m->gpu.ops_host_only == 3 && !m->gpu.available &&
                 op_named(m, "parent") == NULL && op_named(m, "child")->calls == 2 &&
                 cp_gpu_ops_host_only_cause(o, NULL) == CP_GPU_HOST_ONLY_FORKED;
        cp_model_free(m);
        cp_gpu_ops_free(o); /* destroys nothing of the parent's */
        ok = ok && F.count("after_fork") == 0;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    cp_gpu_ops_end(o, &across, NULL);
    cp_model *m = model_of(o, 1);
    assert_int_equal(op_named(m, "parent")->timed, 1);
    assert_int_equal(op_named(m, "across")->timed, 1);
    cp_model_free(m);
    cp_gpu_ops_free(o);
    assert_int_equal(F.count("live_events"), 0);
}

/* ---- through the session (public API, reasons, scope) ---- */

static codeprof_session *gpu_session(uint32_t flags) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.flags |= flags;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    return s;
}

static void session_op(codeprof_session *s, uint32_t st) {
    codeprof_gpu_op g;
    assert_int_equal(codeprof_gpu_op_begin(s, st, 0, NULL, &g), CODEPROF_OK);
    advance(1000);
    assert_int_equal(codeprof_gpu_op_end(s, &g, NULL), CODEPROF_OK);
}

static void test_session_times_ops_and_scope(void **state) {
    (void)state;
    codeprof_session *s = gpu_session(CODEPROF_CFG_GPU | CODEPROF_CFG_GPU_MEMORY);
    uint32_t st = site("sess_op");
    session_op(s, st);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_true(m->gpu.enabled);
    assert_true(m->gpu.available);
    assert_string_equal(m->gpu.reason, "");
    assert_int_equal(m->gpu.driver.status, CP_GPU_LIB_OK);
    const cp_mgpu_op *x = op_named(m, "sess_op");
    assert_non_null(x);
    assert_int_equal(x->timed, 1);
    assert_int_equal(x->device_ns, 1000000); /* the fake's default 1 ms */
    assert_int_equal(x->mem_source, CP_GPU_MEM_DRIVER);
    /* The op is in the call tree with its host time. */
    int found = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *fs = cp_model_site(m, m->funcs[i].site);
        if (fs && strcmp(fs->name, "sess_op") == 0) {
            found = 1;
            assert_int_equal(m->funcs[i].calls, 1);
            assert_int_equal(m->funcs[i].incl_ns, 1000);
        }
    }
    assert_true(found);
    cp_model_free(m);
    codeprof_session_stop(s);
    /* Stopped: an op records nothing. */
    session_op(s, st);
    m = cp_session_snapshot(s);
    assert_int_equal(op_named(m, "sess_op")->calls, 1);
    cp_model_free(m);
    codeprof_session_free(s);
    assert_int_equal(F.count("live_events"), 0);
}

static void test_session_reasons(void **state) {
    (void)state;
    /* GPU profiling off. */
    codeprof_session *s = gpu_session(0);
    session_op(s, site("off_op"));
    cp_model *m = cp_session_snapshot(s);
    assert_false(m->gpu.enabled);
    assert_int_equal(m->gpu.driver.status, CP_GPU_LIB_NOT_TRIED);
    assert_non_null(strstr(m->gpu.reason, "GPU profiling is off"));
    assert_int_equal(op_named(m, "off_op")->calls, 1);
    assert_int_equal(F.count("cuCtxGetCurrent"), 0);
    cp_model_free(m);
    codeprof_session_free(s);
    /* Driver not found. */
    cp_gpu_lib_reset_for_tests();
    setenv("CODEPROF_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    s = gpu_session(CODEPROF_CFG_GPU);
    session_op(s, site("nf_op"));
    m = cp_session_snapshot(s);
    assert_int_equal(m->gpu.driver.status, CP_GPU_LIB_NOT_FOUND);
    assert_non_null(strstr(m->gpu.reason, "CUDA driver not found (/nonexistent/libcuda.so.1"));
    assert_non_null(strstr(m->gpu.reason, "GPU operations were timed on the host only"));
    assert_int_equal(op_named(m, "nf_op")->timed, 0);
    cp_model_free(m);
    codeprof_session_free(s);
    /* No context. */
    per_test(NULL);
    F.set_context(0);
    s = gpu_session(CODEPROF_CFG_GPU);
    session_op(s, site("nc_op"));
    m = cp_session_snapshot(s);
    assert_int_equal(m->gpu.driver.status, CP_GPU_LIB_NO_CONTEXT);
    assert_false(m->gpu.available);
    assert_string_equal(m->gpu.reason, "the program has not initialised CUDA / made no context: "
                                       "GPU operations were timed on the host only");
    assert_int_equal(m->gpu.ops_host_only, 1);
    cp_model_free(m);
    codeprof_session_free(s);
    assert_int_equal(F.count("cuInit"), 0);
    assert_int_equal(F.count("cuCtxCreate"), 0);
}

static void test_session_fork_child(void **state) {
    (void)state;
    if (CP_TEST_UNDER_TSAN) {
        /* The child's session starts threads after a multi-threaded fork,
         * which TSan does not support; test_fork_child_makes_no_cuda_call
         * covers the recorder's side under TSan. */
        skip();
        return;
    }
    codeprof_session *s = gpu_session(CODEPROF_CFG_GPU);
    session_op(s, site("before_fork"));
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        session_op(s, site("in_child"));
        cp_model *m = cp_session_snapshot(s);
        int ok = m && F.count("after_fork") == 0 && m->gpu.driver.status == CP_GPU_LIB_DISABLED &&
                 strstr(m->gpu.reason, "forked child") != NULL && op_named(m, "in_child") &&
                 op_named(m, "in_child")->timed == 0;
        cp_model_free(m);
        codeprof_session_free(s);
        ok = ok && F.count("after_fork") == 0;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    cp_model *m = cp_session_snapshot(s);
    assert_int_equal(op_named(m, "before_fork")->timed, 1);
    cp_model_free(m);
    codeprof_session_reset(s);
    codeprof_session_free(s);
    assert_int_equal(F.count("live_events"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_programmed_elapsed_exact_and_idle_gaps, per_test),
        cmocka_unit_test_setup(test_slow_ops_listed_slowest_first, per_test),
        cmocka_unit_test_setup(test_lazy_resolution_syncs_only_pending, per_test),
        cmocka_unit_test_setup(test_event_errors_counted_unresolved, per_test),
        cmocka_unit_test_setup(test_failed_synchronize_counted, per_test),
        cmocka_unit_test_setup(test_pool_reuses_events, per_test),
        cmocka_unit_test_setup(test_cap_and_drop_counters, per_test),
        cmocka_unit_test_setup(test_full_table_resolves_ready_ones, per_test),
        cmocka_unit_test_setup(test_memory_from_caller, per_test),
        cmocka_unit_test_setup(test_memory_from_driver, per_test),
        cmocka_unit_test_setup(test_threads_streams_nested, per_test),
        cmocka_unit_test_setup(test_no_context_host_only, per_test),
        cmocka_unit_test_setup(test_reset_and_free_release_events, per_test),
        cmocka_unit_test_setup(test_fork_child_makes_no_cuda_call, per_test),
        cmocka_unit_test_setup(test_session_times_ops_and_scope, per_test),
        cmocka_unit_test_setup(test_session_reasons, per_test),
        cmocka_unit_test_setup(test_session_fork_child, per_test),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    cp_gpu_lib_reset_for_tests();
    return rc;
}
