/* test_gpu_sync.c -- the synchronization-point recorder (src/gpu/gpu_sync.c)
 * against the fake CUPTI (tests/c/fake_cupti.c): fired callbacks become
 * rows by (site, line, kind) with exact blocked time from a fake clock;
 * non-sync callback ids are turned off after their first sight; nested
 * driver syncs inside a runtime sync count once; threads; the cap and its
 * overflow row; subscribe failure -> fallback with the reason; stop; the
 * fork child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "gpu/gpu_sync.h"
#include "model/build.h"
#include "model/model.h"

#include "gpu_fakes_fixture.h"

enum { DRV = CP_CUPTI_DOMAIN_DRIVER_API, RT = CP_CUPTI_DOMAIN_RUNTIME_API };
enum { ENTER = CP_CUPTI_API_ENTER, EXIT = CP_CUPTI_API_EXIT };
/* callback ids as CUPTI numbers them (any distinct numbers would do) */
enum {
    CB_RT_DEVSYNC = 165,
    CB_RT_STREAMSYNC = 131,
    CB_RT_LAUNCH = 211,
    CB_RT_MEMCPY = 31,
    CB_RT_MEMCPY_ASYNC = 41,
    CB_DRV_CTXSYNC = 17,
    CB_DRV_DTOH = 279,
    CB_DRV_LAUNCH = 307
};

static void *lib;
static cp_cupti_api api;
static void (*f_reset)(void);
static void (*f_sub_result)(int);
static void (*f_take)(void);
static int (*f_fire)(int, uint32_t, const char *, int);
static int (*f_enabled)(int, uint32_t);
static int (*f_subscribed)(void);
static unsigned long (*f_disable_calls)(void);
static void (*f_fire_late)(int, uint32_t, const char *, int);

static _Atomic uint64_t fake_now;
static uint64_t clock_fake(void) {
    return atomic_load(&fake_now);
}

static _Thread_local uint32_t where_site, where_line;
static int where_fake(uint32_t *site, uint32_t *line) {
    if (!where_site)
        return -1;
    *site = where_site;
    *line = where_line;
    return 0;
}

static int setup_all(void **state) {
    (void)state;
    lib = fx_open("CODEPROF_FAKE_CUPTI");
    if (!lib)
        return -1;
    fx_cupti_api(lib, &api);
    FX_SYM(lib, f_reset, "fake_cupti_reset");
    FX_SYM(lib, f_sub_result, "fake_cupti_set_subscribe_result");
    FX_SYM(lib, f_take, "fake_cupti_take_subscription");
    FX_SYM(lib, f_fire, "fake_cupti_fire");
    FX_SYM(lib, f_enabled, "fake_cupti_enabled");
    FX_SYM(lib, f_subscribed, "fake_cupti_subscribed");
    FX_SYM(lib, f_disable_calls, "fake_cupti_disable_calls");
    FX_SYM(lib, f_fire_late, "fake_cupti_fire_late");
    cp_gpu_sync_set_where_fn(where_fake);
    return f_reset && f_fire && f_enabled && f_subscribed && f_disable_calls && f_take &&
                   f_fire_late
               ? 0
               : -1;
}

static int setup(void **state) {
    (void)state;
    f_reset();
    cp_gpu_sync_set_clock_for_tests(clock_fake);
    atomic_store(&fake_now, 1000);
    where_site = where_line = 0;
    return 0;
}

static cp_model *new_model(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cp_model *m = cp_model_begin(&cfg, (int)getpid(), "main", 0);
    assert_non_null(m);
    return m;
}

static cp_gpu_sync *subscribed(void) {
    cp_gpu_sync *gs = cp_gpu_sync_new(NULL);
    assert_non_null(gs);
    cp_gpu_sync_use_api(gs, &api);
    assert_int_equal(cp_gpu_sync_start(gs), CP_GPU_SYNC_SRC_CUPTI);
    assert_true(f_subscribed());
    return gs;
}

/* One API call as CUPTI reports it, `dt` fake ns long. */
static void call(int domain, uint32_t cbid, const char *name, uint64_t dt) {
    f_fire(domain, cbid, name, ENTER);
    atomic_fetch_add(&fake_now, dt);
    f_fire(domain, cbid, name, EXIT);
}

static const cp_mgpu_sync *row(const cp_model *m, const char *site, uint32_t line, uint32_t kind) {
    for (uint32_t i = 0; i < m->gpu.nsyncs; i++) {
        const cp_mgpu_sync *r = &m->gpu.syncs[i];
        const cp_msite *si = cp_model_site(m, r->site);
        if (r->line == line && r->kind == kind &&
            ((!site && !r->site) || (site && si && !strcmp(si->name, site))))
            return r;
    }
    return NULL;
}

static void test_classify(void **state) {
    (void)state;
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaDeviceSynchronize"), CP_GPU_SYNC_DEVICE);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaStreamSynchronize"), CP_GPU_SYNC_STREAM);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaStreamSynchronize_ptsz"), CP_GPU_SYNC_STREAM);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaEventSynchronize"), CP_GPU_SYNC_EVENT);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaMemcpy"), CP_GPU_SYNC_MEMCPY);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaMemcpyAsync"), -1);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaMemcpy2DAsync"), -1);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaLaunchKernel"), -1);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaStreamQuery"), -1);
    assert_int_equal(cp_gpu_sync_classify(RT, "cudaFree"), CP_GPU_SYNC_OTHER);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuCtxSynchronize"), CP_GPU_SYNC_DEVICE);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuStreamSynchronize"), CP_GPU_SYNC_STREAM);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuEventSynchronize"), CP_GPU_SYNC_EVENT);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuMemcpyDtoH_v2"), CP_GPU_SYNC_MEMCPY);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuMemcpyDtoHAsync_v2"), -1);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuMemcpy"), CP_GPU_SYNC_MEMCPY);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuMemcpyHtoDAsync_v2"), -1);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuLaunchKernel"), -1);
    assert_int_equal(cp_gpu_sync_classify(DRV, "cuEventQuery"), -1);
    assert_int_equal(cp_gpu_sync_classify(DRV, NULL), -1);
    assert_int_equal(cp_gpu_sync_classify(7, "cuCtxSynchronize"), -1);
}

static void test_rows_by_site_line_kind(void **state) {
    (void)state;
    uint32_t train = codeprof_site("test_gpu_sync.train_step", "train.py", 10, CODEPROF_SITE_SCOPE);
    uint32_t evalf = codeprof_site("test_gpu_sync.evaluate", "train.py", 40, CODEPROF_SITE_SCOPE);
    cp_gpu_sync *gs = subscribed();
    where_site = train;
    where_line = 12;
    call(RT, CB_RT_STREAMSYNC, "cudaStreamSynchronize", 500);
    call(RT, CB_RT_STREAMSYNC, "cudaStreamSynchronize", 1500);
    where_line = 14;
    call(DRV, CB_DRV_DTOH, "cuMemcpyDtoH_v2", 70);
    where_site = evalf;
    where_line = 44;
    call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 9000);
    where_site = 0; /* no user frame: site 0 */
    call(RT, CB_RT_MEMCPY, "cudaMemcpy", 30);
    assert_int_equal(cp_gpu_sync_fingerprint(gs), 5);
    cp_model *m = new_model();
    assert_int_equal(cp_gpu_sync_fill_model(gs, m), 0);
    assert_int_equal(m->gpu.sync_source, CP_GPU_SYNC_SRC_CUPTI);
    assert_int_equal(m->gpu.nsyncs, 4);
    const cp_mgpu_sync *r = row(m, "test_gpu_sync.train_step", 12, CP_GPU_SYNC_STREAM);
    assert_non_null(r);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->blocked_ns, 2000);
    assert_int_equal(r->max_ns, 1500);
    r = row(m, "test_gpu_sync.train_step", 14, CP_GPU_SYNC_MEMCPY);
    assert_non_null(r);
    assert_int_equal(r->blocked_ns, 70);
    r = row(m, "test_gpu_sync.evaluate", 44, CP_GPU_SYNC_DEVICE);
    assert_non_null(r);
    assert_int_equal(r->blocked_ns, 9000);
    r = row(m, NULL, 0, CP_GPU_SYNC_MEMCPY);
    assert_non_null(r);
    assert_int_equal(r->blocked_ns, 30);
    /* largest blocked time first */
    for (uint32_t i = 1; i < m->gpu.nsyncs; i++)
        assert_true(m->gpu.syncs[i - 1].blocked_ns >= m->gpu.syncs[i].blocked_ns);
    assert_int_equal(m->gpu.syncs_dropped, 0);
    cp_model_free(m);
    cp_gpu_sync_free(gs);
    assert_false(f_subscribed()); /* free stops: unsubscribed */
}

static void test_non_sync_disabled_after_first_sight(void **state) {
    (void)state;
    cp_gpu_sync *gs = subscribed();
    assert_true(f_enabled(RT, CB_RT_LAUNCH));
    assert_int_equal(f_fire(RT, CB_RT_LAUNCH, "cudaLaunchKernel", ENTER), 1);
    assert_false(f_enabled(RT, CB_RT_LAUNCH));
    assert_int_equal(f_fire(RT, CB_RT_LAUNCH, "cudaLaunchKernel", EXIT), 0);
    assert_int_equal(f_fire(RT, CB_RT_LAUNCH, "cudaLaunchKernel", ENTER), 0);
    assert_int_equal(f_fire(RT, CB_RT_MEMCPY_ASYNC, "cudaMemcpyAsync", ENTER), 1);
    assert_int_equal(f_fire(DRV, CB_DRV_LAUNCH, "cuLaunchKernel", ENTER), 1);
    assert_false(f_enabled(RT, CB_RT_MEMCPY_ASYNC));
    assert_false(f_enabled(DRV, CB_DRV_LAUNCH));
    assert_int_equal(f_disable_calls(), 3);
    assert_int_equal(cp_gpu_sync_disabled_cbids(gs), 3);
    /* syncs stay on */
    call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 10);
    call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 10);
    assert_true(f_enabled(RT, CB_RT_DEVSYNC));
    assert_int_equal(cp_gpu_sync_fingerprint(gs), 2);
    assert_int_equal(f_disable_calls(), 3);
    cp_gpu_sync_free(gs);
}

/* cudaDeviceSynchronize runs cuCtxSynchronize inside: one sync, the
 * runtime call's kind and whole time. */
static void test_outermost_only(void **state) {
    (void)state;
    uint32_t fn = codeprof_site("test_gpu_sync.nested", "n.py", 1, CODEPROF_SITE_SCOPE);
    cp_gpu_sync *gs = subscribed();
    where_site = fn;
    where_line = 3;
    f_fire(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", ENTER);
    atomic_fetch_add(&fake_now, 10);
    call(DRV, CB_DRV_CTXSYNC, "cuCtxSynchronize", 300);
    atomic_fetch_add(&fake_now, 5);
    f_fire(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", EXIT);
    /* an EXIT with no ENTER (subscribed mid-call) is ignored */
    f_fire(RT, CB_RT_STREAMSYNC, "cudaStreamSynchronize", EXIT);
    cp_model *m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.nsyncs, 1);
    assert_int_equal(m->gpu.syncs[0].kind, CP_GPU_SYNC_DEVICE);
    assert_int_equal(m->gpu.syncs[0].count, 1);
    assert_int_equal(m->gpu.syncs[0].blocked_ns, 315);
    cp_model_free(m);
    cp_gpu_sync_free(gs);
}

typedef struct th_arg {
    uint32_t site, line;
    int n;
} th_arg;

static void *th_main(void *p) {
    th_arg *a = p;
    where_site = a->site;
    where_line = a->line;
    for (int i = 0; i < a->n; i++) {
        f_fire(RT, CB_RT_STREAMSYNC, "cudaStreamSynchronize", ENTER);
        f_fire(DRV, CB_DRV_CTXSYNC, "cuCtxSynchronize", ENTER); /* nested */
        f_fire(DRV, CB_DRV_CTXSYNC, "cuCtxSynchronize", EXIT);
        f_fire(RT, CB_RT_STREAMSYNC, "cudaStreamSynchronize", EXIT);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    cp_gpu_sync_set_clock_for_tests(NULL); /* real clock: threads interleave */
    uint32_t fn = codeprof_site("test_gpu_sync.worker", "w.py", 1, CODEPROF_SITE_SCOPE);
    cp_gpu_sync *gs = subscribed();
    enum { NT = 4, N = 2000 };
    pthread_t th[NT];
    th_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (th_arg){fn, (uint32_t)(100 + i), N};
        assert_int_equal(pthread_create(&th[i], NULL, th_main, &args[i]), 0);
    }
    for (int i = 0; i < NT; i++)
        pthread_join(th[i], NULL);
    cp_model *m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.nsyncs, NT);
    for (int i = 0; i < NT; i++) {
        const cp_mgpu_sync *r =
            row(m, "test_gpu_sync.worker", (uint32_t)(100 + i), CP_GPU_SYNC_STREAM);
        assert_non_null(r);
        assert_int_equal(r->count, N);
        assert_true(r->blocked_ns < 60ull * 1000000000ull); /* sane */
    }
    cp_model_free(m);
    cp_gpu_sync_free(gs);
}

/* CP_GPU_MAX_SYNC_SITES rows at most; the rest folds into (0, 0, OTHER). */
static void test_cap_and_overflow_row(void **state) {
    (void)state;
    uint32_t fn = codeprof_site("test_gpu_sync.many", "m.py", 1, CODEPROF_SITE_SCOPE);
    cp_gpu_sync *gs = cp_gpu_sync_new(NULL);
    const uint32_t extra = 100;
    for (uint32_t i = 0; i < CP_GPU_MAX_SYNC_SITES + extra; i++)
        cp_gpu_sync_record(gs, CP_GPU_SYNC_STREAM, fn, 1 + i, 10);
    cp_gpu_sync_record(gs, CP_GPU_SYNC_STREAM, fn, 1, 10); /* an existing row still counts */
    cp_gpu_sync_record(gs, CP_GPU_SYNC_KINDS_, fn, 1, 10); /* bad kind: ignored */
    cp_model *m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.nsyncs, CP_GPU_MAX_SYNC_SITES);
    uint64_t dropped = CP_GPU_MAX_SYNC_SITES + extra - (CP_GPU_MAX_SYNC_SITES - 1);
    assert_int_equal(m->gpu.syncs_dropped, dropped);
    const cp_mgpu_sync *o = row(m, NULL, 0, CP_GPU_SYNC_OTHER);
    assert_non_null(o);
    assert_int_equal(o->count, dropped);
    assert_int_equal(o->blocked_ns, dropped * 10);
    assert_int_equal(m->gpu.syncs[0].blocked_ns, dropped * 10); /* largest first */
    const cp_mgpu_sync *r1 = row(m, "test_gpu_sync.many", 1, CP_GPU_SYNC_STREAM);
    assert_non_null(r1);
    assert_int_equal(r1->count, 2);
    uint64_t total = 0;
    for (uint32_t i = 0; i < m->gpu.nsyncs; i++)
        total += m->gpu.syncs[i].count;
    assert_int_equal(total, CP_GPU_MAX_SYNC_SITES + extra + 1);
    cp_model_free(m);
    cp_gpu_sync_reset(gs);
    m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.nsyncs, 0);
    assert_int_equal(m->gpu.syncs_dropped, 0);
    cp_model_free(m);
    cp_gpu_sync_free(gs);
}

static void test_subscribe_failure_fallback(void **state) {
    (void)state;
    f_take(); /* another tool subscribed first */
    cp_gpu_sync *gs = cp_gpu_sync_new(NULL);
    cp_gpu_sync_use_api(gs, &api);
    assert_int_equal(cp_gpu_sync_start(gs), CP_GPU_SYNC_SRC_FALLBACK);
    assert_non_null(strstr(cp_gpu_sync_reason(gs), "cuptiSubscribe failed"));
    assert_non_null(
        strstr(cp_gpu_sync_reason(gs), "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED"));
    /* the facade's fallback records */
    cp_gpu_sync_record(gs, CP_GPU_SYNC_DEVICE, 0, 0, 1234);
    cp_model *m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.sync_source, CP_GPU_SYNC_SRC_FALLBACK);
    assert_int_equal(m->gpu.cupti.status, CP_GPU_LIB_INIT_FAILED);
    assert_non_null(strstr(m->gpu.cupti.reason, "cuptiSubscribe failed"));
    assert_int_equal(m->gpu.nsyncs, 1);
    assert_int_equal(m->gpu.syncs[0].blocked_ns, 1234);
    cp_model_free(m);
    cp_gpu_sync_free(gs);

    /* CUPTI not loaded at all (the loader's table says so): fallback.  The
     * loader is pointed at files that do not exist, so a machine with a
     * real driver and CUPTI gives the same answer. */
    f_reset();
    setenv("CODEPROF_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    setenv("CODEPROF_CUPTI_LIBRARY", "/nonexistent/libcupti.so", 1);
    cp_gpu_lib_reset_for_tests();
    gs = cp_gpu_sync_new(NULL);
    assert_int_equal(cp_gpu_sync_start(gs), CP_GPU_SYNC_SRC_FALLBACK);
    assert_non_null(strstr(cp_gpu_sync_reason(gs), "CUPTI not loaded"));
    m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.sync_source, CP_GPU_SYNC_SRC_FALLBACK);
    assert_int_not_equal(m->gpu.cupti.status, CP_GPU_LIB_INIT_FAILED); /* the loader's word */
    cp_model_free(m);
    cp_gpu_sync_free(gs);
    cp_gpu_lib_reset_for_tests();
    unsetenv("CODEPROF_CUDA_LIBRARY");
    unsetenv("CODEPROF_CUPTI_LIBRARY");

    /* never started: no source */
    gs = cp_gpu_sync_new(NULL);
    m = new_model();
    cp_gpu_sync_fill_model(gs, m);
    assert_int_equal(m->gpu.sync_source, CP_GPU_SYNC_SRC_NONE);
    cp_model_free(m);
    cp_gpu_sync_free(gs);
}

/* One subscriber per process: a second session falls back. */
static void test_second_session_falls_back(void **state) {
    (void)state;
    cp_gpu_sync *a = subscribed();
    cp_gpu_sync *b = cp_gpu_sync_new(NULL);
    cp_gpu_sync_use_api(b, &api);
    assert_int_equal(cp_gpu_sync_start(b), CP_GPU_SYNC_SRC_FALLBACK);
    assert_non_null(strstr(cp_gpu_sync_reason(b), "another codeprof session"));
    cp_gpu_sync_free(b);
    assert_true(f_subscribed()); /* a keeps it */
    cp_gpu_sync_stop(a);
    assert_false(f_subscribed());
    b = cp_gpu_sync_new(NULL);
    cp_gpu_sync_use_api(b, &api);
    assert_int_equal(cp_gpu_sync_start(b), CP_GPU_SYNC_SRC_CUPTI); /* free now */
    cp_gpu_sync_free(b);
    cp_gpu_sync_free(a);
}

/* A call left open by a stop is forgotten by the next subscription. */
static void test_stop_and_restart(void **state) {
    (void)state;
    cp_gpu_sync *gs = subscribed();
    f_fire(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", ENTER);
    cp_gpu_sync_stop(gs);
    assert_false(f_subscribed());
    assert_int_equal(f_fire(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", EXIT), 0);
    assert_int_equal(cp_gpu_sync_start(gs), CP_GPU_SYNC_SRC_CUPTI);
    f_fire(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", EXIT); /* the old call's exit */
    assert_int_equal(cp_gpu_sync_fingerprint(gs), 0);
    call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 42);
    assert_int_equal(cp_gpu_sync_fingerprint(gs), 1);
    cp_gpu_sync_free(gs);
}

/* A callback that arrives after stop (and after free: ASan would see a
 * use after free) touches no recorder. */
static void test_late_callback_after_stop(void **state) {
    (void)state;
    cp_gpu_sync *gs = subscribed();
    call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 5);
    cp_gpu_sync_stop(gs);
    f_fire_late(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", ENTER);
    f_fire_late(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", EXIT);
    f_fire_late(RT, CB_RT_LAUNCH, "cudaLaunchKernel", ENTER);
    assert_int_equal(cp_gpu_sync_fingerprint(gs), 1);
    assert_int_equal(f_disable_calls(), 0);
    cp_gpu_sync_free(gs);
    f_fire_late(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", ENTER);
    f_fire_late(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", EXIT);
}

static void test_fork_child(void **state) {
    (void)state;
    cp_gpu_sync *gs = subscribed();
    call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 7);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cp_gpu_sync_atfork_child(gs);
        unsigned long dis = f_disable_calls();
        int bad = 0;
        /* the fake still holds the parent's subscription in this copy:
         * callbacks that come are ignored */
        call(RT, CB_RT_DEVSYNC, "cudaDeviceSynchronize", 7);
        f_fire(RT, CB_RT_LAUNCH, "cudaLaunchKernel", ENTER);
        if (cp_gpu_sync_fingerprint(gs) != 0)
            bad |= 1;
        if (cp_gpu_sync_start(gs) != CP_GPU_SYNC_SRC_FALLBACK)
            bad |= 2;
        cp_model *m = new_model();
        cp_gpu_sync_fill_model(gs, m);
        if (m->gpu.nsyncs != 0)
            bad |= 4;
        cp_model_free(m);
        cp_gpu_sync_free(gs); /* no cuptiUnsubscribe in the child */
        if (!f_subscribed())
            bad |= 8;
        if (f_disable_calls() != dis)
            bad |= 16;
        _exit(bad);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(cp_gpu_sync_fingerprint(gs), 1);
    cp_gpu_sync_free(gs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_classify, setup),
        cmocka_unit_test_setup(test_rows_by_site_line_kind, setup),
        cmocka_unit_test_setup(test_non_sync_disabled_after_first_sight, setup),
        cmocka_unit_test_setup(test_outermost_only, setup),
        cmocka_unit_test_setup(test_threads, setup),
        cmocka_unit_test_setup(test_cap_and_overflow_row, setup),
        cmocka_unit_test_setup(test_subscribe_failure_fallback, setup),
        cmocka_unit_test_setup(test_second_session_falls_back, setup),
        cmocka_unit_test_setup(test_stop_and_restart, setup),
        cmocka_unit_test_setup(test_late_callback_after_stop, setup),
        cmocka_unit_test_setup(test_fork_child, setup),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
