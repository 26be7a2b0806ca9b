/* test_nvml_sampler.c -- the NVML sampler (src/gpu/nvml_sampler.c) against
 * the fake NVML (tests/c/fake_nvml.c): programmed sequences give exact
 * summaries, idle runs, a missing metric, init failures, the bounded store,
 * counter events on the model's timeline, a prompt stop, the fork child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "core/event.h"
#include "core/session.h"
#include "core/warnings.h"
#include "core/timeline.h"
#include "gpu/nvml_sampler.h"
#include "model/build.h"
#include "model/model.h"

#include "gpu_fakes_fixture.h"

#define SEC 1000000000ull
#define GIB (1ull << 30)

static void *lib, *lib_old;
static cp_nvml_api api, api_old;
static void (*f_reset)(void);
static void (*f_devices)(unsigned);
static void (*f_init_result)(int);
static void (*f_seq)(unsigned, int, const unsigned long long *, unsigned);
static void (*f_error)(unsigned, int, int);
static unsigned long (*f_calls)(void);

static int setup_all(void **state) {
    (void)state;
    lib = fx_open("CODEPROF_FAKE_NVML");
    lib_old = fx_open("CODEPROF_FAKE_NVML_OLD");
    if (!lib || !lib_old)
        return -1;
    fx_nvml_api(lib, &api);
    fx_nvml_api(lib_old, &api_old);
    FX_SYM(lib, f_reset, "fake_nvml_reset");
    FX_SYM(lib, f_devices, "fake_nvml_set_devices");
    FX_SYM(lib, f_init_result, "fake_nvml_set_init_result");
    FX_SYM(lib, f_seq, "fake_nvml_set_sequence");
    FX_SYM(lib, f_error, "fake_nvml_set_error");
    FX_SYM(lib, f_calls, "fake_nvml_calls");
    return f_reset && f_devices && f_init_result && f_seq && f_error && f_calls ? 0 : -1;
}

static int setup(void **state) {
    (void)state;
    f_reset();
    return 0;
}

static cp_model *new_model(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cp_model *m = cp_model_begin(&cfg, (int)getpid(), "main", 0);
    assert_non_null(m);
    return m;
}

#define SEQ(dev, metric, ...)                                                                      \
    do {                                                                                           \
        const unsigned long long v_[] = {__VA_ARGS__};                                             \
        f_seq((dev), (metric), v_, (unsigned)(sizeof v_ / sizeof v_[0]));                          \
    } while (0)

/* A started sampler whose thread never ticks on its own (1 h interval):
 * the test ticks it with its own timestamps. */
static cp_nvml_sampler *started(const cp_nvml_api *a, uint32_t max_samples) {
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 3600.0, max_samples);
    assert_non_null(ns);
    cp_nvml_sampler_use_api(ns, a);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    return ns;
}

static const cp_mgpu_device *device(const cp_model *m, int idx) {
    for (uint32_t i = 0; i < m->gpu.ndevices; i++)
        if (m->gpu.devices[i].index == idx)
            return &m->gpu.devices[i];
    return NULL;
}

static void test_exact_summaries_and_idle_runs(void **state) {
    (void)state;
    f_devices(2);
    SEQ(0, FK_UTIL, 50, 0, 0, 0, 100, 0);
    SEQ(0, FK_MEM_UTIL, 10, 20, 30, 40, 50, 60);
    SEQ(0, FK_MEM_USED, 1 * GIB, 2 * GIB, 3 * GIB, 4 * GIB, 5 * GIB, 3 * GIB);
    SEQ(0, FK_POWER, 100000, 200000, 150000, 50000, 300000, 100000);
    SEQ(0, FK_TEMP, 60, 70, 65, 81, 64, 62);
    SEQ(0, FK_SM, 1000, 1500, 1500, 1000, 2000, 1000);
    SEQ(1, FK_UTIL, 90, 90, 90, 90, 90, 90);
    cp_nvml_sampler *ns = started(&api, 1000);
    for (int k = 1; k <= 6; k++)
        cp_nvml_sampler_tick(ns, (uint64_t)k * SEC);
    assert_int_equal(cp_nvml_sampler_fingerprint(ns), 6);
    cp_model *m = new_model();
    assert_int_equal(cp_nvml_sampler_fill_model(ns, m), 0);
    assert_int_equal(m->gpu.ndevices, 2);
    const cp_mgpu_device *d = device(m, 0);
    assert_non_null(d);
    assert_string_equal(d->name, "Fake GPU 0");
    assert_int_equal(d->samples, 6);
    assert_true(d->util_mean == 25.0);
    assert_true(d->util_max == 100.0);
    assert_true(d->mem_util_mean == 35.0);
    assert_int_equal(d->mem_used_mean, 3 * GIB);
    assert_int_equal(d->mem_used_max, 5 * GIB);
    assert_int_equal(d->mem_total, 16 * GIB);
    assert_true(d->power_mean_w == 150.0);
    assert_true(d->power_max_w == 300.0);
    assert_true(d->temp_max_c == 81.0);
    assert_true(d->sm_clock_mean_mhz == 1333.0 + 1.0 / 3.0 ||
                (d->sm_clock_mean_mhz > 1333.33 && d->sm_clock_mean_mhz < 1333.34));
    /* idle readings at 2, 3, 4 s (after the reading at 1 s) and at 6 s
     * (after 5 s): the longest run is 1 s .. 4 s */
    assert_int_equal(d->idle_samples, 4);
    assert_int_equal(d->longest_idle_ns, 3 * SEC);
    const cp_mgpu_device *d1 = device(m, 1);
    assert_non_null(d1);
    assert_true(d1->util_mean == 90.0);
    assert_int_equal(d1->idle_samples, 0);
    assert_int_equal(d1->longest_idle_ns, 0);
    /* readings: one per device per tick, in time order */
    assert_int_equal(m->gpu.nsamples, 12);
    assert_int_equal(m->gpu.samples_dropped, 0);
    assert_int_equal(m->gpu.samples[0].t_ns, 1 * SEC);
    assert_int_equal(m->gpu.samples[0].util_pct, 50);
    assert_int_equal(m->gpu.samples[0].power_mw, 100000);
    assert_int_equal(m->gpu.samples[11].t_ns, 6 * SEC);
    /* the thread ran (it only waited): its CPU time is counted, and small */
    assert_true(m->gpu.sampler_cpu_ns < SEC);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
}

/* An idle first reading counts one interval before it. */
static void test_idle_from_start(void **state) {
    (void)state;
    SEQ(0, FK_UTIL, 0, 0, 7);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.5, 100);
    cp_nvml_sampler_use_api(ns, &api);
    /* no start through the thread: the sampler opens NVML in start, so
     * start it and stop the thread before it ever ticks (0.5 s) */
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    cp_nvml_sampler_stop(ns);
    cp_nvml_sampler_tick(ns, 10 * SEC);
    cp_nvml_sampler_tick(ns, 11 * SEC);
    cp_nvml_sampler_tick(ns, 12 * SEC);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.ndevices, 1);
    assert_int_equal(m->gpu.devices[0].idle_samples, 2);
    assert_int_equal(m->gpu.devices[0].longest_idle_ns, SEC + SEC / 2);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
}

/* A GPU without power readings: counted per tick, left out, not fatal. */
static void test_missing_metric(void **state) {
    (void)state;
    SEQ(0, FK_UTIL, 40, 60);
    SEQ(0, FK_TEMP, 50, 55);
    f_error(0, FK_POWER, 3 /* NVML_ERROR_NOT_SUPPORTED */);
    cp_nvml_sampler *ns = started(&api, 100);
    cp_nvml_sampler_tick(ns, 1 * SEC);
    cp_nvml_sampler_tick(ns, 2 * SEC);
    assert_int_equal(cp_nvml_sampler_query_errors(ns, 0, CP_NVML_M_POWER), 2);
    assert_int_equal(cp_nvml_sampler_query_errors(ns, 0, CP_NVML_M_UTIL), 0);
    assert_int_equal(cp_nvml_sampler_query_errors(ns, 0, CP_NVML_M_TEMP), 0);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.ndevices, 1);
    const cp_mgpu_device *d = &m->gpu.devices[0];
    assert_int_equal(d->samples, 2);
    assert_true(d->util_mean == 50.0);
    assert_true(d->temp_max_c == 55.0);
    assert_true(d->power_mean_w == 0.0 && d->power_max_w == 0.0);
    for (uint32_t i = 0; i < m->ntimeline; i++) {
        const cp_msite *si = cp_model_site(m, m->timeline[i].site);
        assert_non_null(si);
        assert_null(strstr(si->name, "power"));
    }
    assert_int_equal(m->ntimeline, 2 * 4); /* util, memory, temperature, clock */
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
}

/* A failing metric is said once per device and metric, in the session's
 * warnings, naming the device, the metric and NVML's error. */
static void test_missing_metric_warned_once(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    f_devices(2);
    f_error(1, FK_POWER, 3 /* NVML_ERROR_NOT_SUPPORTED */);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(s, 3600.0, 100);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    for (int k = 1; k <= 5; k++)
        cp_nvml_sampler_tick(ns, (uint64_t)k * SEC);
    cp_warning warn[8];
    size_t nw = cp_session_warnings(s, warn, 8, NULL);
    assert_int_equal(nw, 1);
    assert_string_equal(warn[0].code, "gpu_metric_unavailable");
    assert_non_null(strstr(warn[0].message, "gpu1 (Fake GPU 1)"));
    assert_non_null(strstr(warn[0].message, "power"));
    assert_non_null(strstr(warn[0].message, "Not Supported"));
    assert_int_equal(cp_nvml_sampler_query_errors(ns, 1, CP_NVML_M_POWER), 5);
    assert_int_equal(cp_nvml_sampler_query_errors(ns, 0, CP_NVML_M_POWER), 0);
    cp_nvml_sampler_free(ns);
    codeprof_session_free(s);
}

/* More devices than the sampler follows: the first 16, and a warning. */
static void test_device_cap(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    f_devices(20);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(s, 3600.0, 1000);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    cp_nvml_sampler_tick(ns, SEC);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.ndevices, 16);
    assert_int_equal(m->gpu.devices[15].index, 15);
    cp_model_free(m);
    cp_warning warn[8];
    size_t nw = cp_session_warnings(s, warn, 8, NULL);
    assert_int_equal(nw, 1);
    assert_string_equal(warn[0].code, "gpu_devices_capped");
    assert_non_null(strstr(warn[0].message, "20 devices"));
    cp_nvml_sampler_free(ns);
    codeprof_session_free(s);
}

static void test_init_failure_reason(void **state) {
    (void)state;
    f_init_result(9 /* NVML_ERROR_DRIVER_NOT_LOADED */);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.1, 100);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), -1);
    assert_non_null(strstr(cp_nvml_sampler_reason(ns), "nvmlInit_v2 failed: Driver Not Loaded"));
    cp_nvml_sampler_tick(ns, SEC); /* not started: nothing read */
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.nvml.status, CP_GPU_LIB_INIT_FAILED);
    assert_non_null(strstr(m->gpu.nvml.reason, "Driver Not Loaded"));
    assert_int_equal(m->gpu.ndevices, 0);
    assert_int_equal(m->gpu.nsamples, 0);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
}

/* An NVML without nvmlInit_v2 (old driver): refused with that reason. */
static void test_old_library(void **state) {
    (void)state;
    assert_null(api_old.nvmlInit);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.1, 100);
    cp_nvml_sampler_use_api(ns, &api_old);
    assert_int_equal(cp_nvml_sampler_start(ns), -1);
    assert_non_null(strstr(cp_nvml_sampler_reason(ns), "nvmlInit_v2"));
    cp_nvml_sampler_free(ns);
}

static void test_no_device(void **state) {
    (void)state;
    f_devices(0);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.1, 100);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), -1);
    assert_non_null(strstr(cp_nvml_sampler_reason(ns), "no usable device"));
    cp_nvml_sampler_free(ns);
}

/* Interval 0: sampling off, NVML never opened. */
static void test_interval_zero(void **state) {
    (void)state;
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.0, 100);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    assert_int_equal(f_calls(), 0);
    cp_nvml_sampler_free(ns);
}

/* First half and most recent half of max_samples; drops counted; the
 * summaries still cover every reading. */
static void test_bounded_store(void **state) {
    (void)state;
    unsigned long long u[25];
    for (int i = 0; i < 25; i++)
        u[i] = (unsigned long long)(i % 2 ? 100 : 50);
    f_seq(0, FK_UTIL, u, 25);
    cp_nvml_sampler *ns = started(&api, 10);
    for (int k = 1; k <= 25; k++)
        cp_nvml_sampler_tick(ns, (uint64_t)k * SEC);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.nsamples, 10);
    assert_int_equal(m->gpu.samples_dropped, 15);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(m->gpu.samples[i].t_ns, (uint64_t)(i + 1) * SEC);
        assert_int_equal(m->gpu.samples[5 + i].t_ns, (uint64_t)(21 + i) * SEC);
    }
    assert_int_equal(m->gpu.devices[0].samples, 25);
    assert_true(m->gpu.devices[0].util_mean == (13 * 50.0 + 12 * 100.0) / 25.0);
    /* counter events are bounded as well (5 tracks x max_samples) */
    assert_true(m->ntimeline <= 5 * 10);
    cp_model_free(m);
    /* reset forgets readings and summaries */
    cp_nvml_sampler_reset(ns);
    assert_int_equal(cp_nvml_sampler_fingerprint(ns), 0);
    m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.nsamples, 0);
    assert_int_equal(m->gpu.ndevices, 0);
    assert_int_equal(m->gpu.samples_dropped, 0);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
}

static void test_counter_events(void **state) {
    (void)state;
    SEQ(0, FK_UTIL, 10, 20, 30);
    SEQ(0, FK_MEM_USED, 100, 200, 300);
    SEQ(0, FK_POWER, 150400, 151600, 152000);
    SEQ(0, FK_TEMP, 40, 41, 42);
    SEQ(0, FK_SM, 900, 901, 902);
    cp_nvml_sampler *ns = started(&api, 100);
    for (int k = 1; k <= 3; k++)
        cp_nvml_sampler_tick(ns, (uint64_t)k * SEC);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->ntimeline, 15);
    int seen[5] = {0};
    for (uint32_t i = 0; i < m->ntimeline; i++) {
        const cp_tl_event *e = &m->timeline[i];
        assert_int_equal(e->kind, CP_EV_COUNTER);
        assert_true(e->flags & CP_TLF_PROCESS);
        assert_int_equal(e->thread, 0);
        int k = (int)(e->tick / SEC); /* 1..3 */
        assert_true(k >= 1 && k <= 3);
        const cp_msite *si = cp_model_site(m, e->site);
        assert_non_null(si);
        if (!strcmp(si->name, "gpu0 utilization %")) {
            assert_int_equal(e->value, 10 * k);
            seen[0]++;
        } else if (!strcmp(si->name, "gpu0 memory used")) {
            assert_int_equal(e->value, 100 * k);
            seen[1]++;
        } else if (!strcmp(si->name, "gpu0 power W")) {
            assert_int_equal(e->value, k == 1 ? 150 : 152); /* rounded to W */
            seen[2]++;
        } else if (!strcmp(si->name, "gpu0 temperature C")) {
            assert_int_equal(e->value, 39 + k);
            seen[3]++;
        } else if (!strcmp(si->name, "gpu0 SM clock MHz")) {
            assert_int_equal(e->value, 899 + k);
            seen[4]++;
        } else {
            fail_msg("unexpected counter %s", si->name);
        }
    }
    for (int i = 0; i < 5; i++)
        assert_int_equal(seen[i], 3);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The thread samples on its own, and stop wakes it at once even in the
 * middle of a long wait. */
static void test_thread_samples_and_stop_is_prompt(void **state) {
    (void)state;
    SEQ(0, FK_UTIL, 30);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.01, 1000);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    assert_int_equal(cp_nvml_sampler_start(ns), 0); /* already running: no second thread */
    double t0 = now_s();
    while (cp_nvml_sampler_fingerprint(ns) < 5 && now_s() - t0 < 20.0)
        usleep(5000);
    assert_true(cp_nvml_sampler_fingerprint(ns) >= 5);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m); /* while it runs */
    assert_true(m->gpu.devices[0].samples >= 5);
    assert_true(m->gpu.sampler_cpu_ns > 0);
    cp_model_free(m);
    cp_nvml_sampler_stop(ns);
    cp_nvml_sampler_free(ns);

    ns = cp_nvml_sampler_new(NULL, 3600.0, 100);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    usleep(20000);
    t0 = now_s();
    cp_nvml_sampler_stop(ns);
    assert_true(now_s() - t0 < 2.0); /* generous: it wakes at once */
    cp_nvml_sampler_free(ns);
}

/* Fork child: the thread is gone there; the child makes no NVML call and
 * reports nothing of the parent's. */
static void test_fork_child(void **state) {
    (void)state;
    SEQ(0, FK_UTIL, 30);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.005, 1000);
    cp_nvml_sampler_use_api(ns, &api);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    double t0 = now_s();
    while (cp_nvml_sampler_fingerprint(ns) < 3 && now_s() - t0 < 20.0)
        usleep(5000);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cp_nvml_sampler_atfork_child(ns);
        unsigned long before = f_calls();
        cp_nvml_sampler_tick(ns, 0);
        int bad = 0;
        if (cp_nvml_sampler_start(ns) != -1)
            bad |= 1;
        usleep(30000);
        cp_model *m = new_model();
        cp_nvml_sampler_fill_model(ns, m);
        if (m->gpu.nsamples || m->gpu.ndevices)
            bad |= 2;
        if (m->gpu.nvml.status != CP_GPU_LIB_DISABLED)
            bad |= 4;
        cp_model_free(m);
        cp_nvml_sampler_stop(ns);
        cp_nvml_sampler_free(ns);
        if (f_calls() != before)
            bad |= 8;
        _exit(bad);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* the parent's sampler goes on */
    uint64_t n = cp_nvml_sampler_fingerprint(ns);
    t0 = now_s();
    while (cp_nvml_sampler_fingerprint(ns) <= n && now_s() - t0 < 20.0)
        usleep(5000);
    assert_true(cp_nvml_sampler_fingerprint(ns) > n);
    cp_nvml_sampler_free(ns);
}

/* Through the loader (gpu_lib.c), as a session uses it: the fake named by
 * $CODEPROF_NVML_LIBRARY.  Skipped while the loader is main's placeholder
 * (it loads nothing and says nothing). */
static void test_through_the_loader(void **state) {
    (void)state;
    SEQ(0, FK_UTIL, 64);
    setenv("CODEPROF_NVML_LIBRARY", getenv("CODEPROF_FAKE_NVML"), 1);
    cp_gpu_lib_reset_for_tests();
    int rc = cp_gpu_lib_nvml_init();
    const cp_gpu_libs *L = cp_gpu_lib_get();
    if (rc != 0 && L->nvml.status == CP_GPU_LIB_NOT_TRIED && !L->nvml.path[0] &&
        !L->nvml.reason[0]) {
        unsetenv("CODEPROF_NVML_LIBRARY");
        skip();
    }
    assert_int_equal(rc, 0);
    assert_int_equal(L->nvml.status, CP_GPU_LIB_OK);
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 3600.0, 100);
    assert_int_equal(cp_nvml_sampler_start(ns), 0);
    cp_nvml_sampler_tick(ns, SEC);
    cp_model *m = new_model();
    cp_nvml_sampler_fill_model(ns, m);
    assert_int_equal(m->gpu.ndevices, 1);
    assert_true(m->gpu.devices[0].util_mean == 64.0);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);
    cp_gpu_lib_reset_for_tests();
    unsetenv("CODEPROF_NVML_LIBRARY");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exact_summaries_and_idle_runs, setup),
        cmocka_unit_test_setup(test_idle_from_start, setup),
        cmocka_unit_test_setup(test_missing_metric, setup),
        cmocka_unit_test_setup(test_missing_metric_warned_once, setup),
        cmocka_unit_test_setup(test_device_cap, setup),
        cmocka_unit_test_setup(test_init_failure_reason, setup),
        cmocka_unit_test_setup(test_old_library, setup),
        cmocka_unit_test_setup(test_no_device, setup),
        cmocka_unit_test_setup(test_interval_zero, setup),
        cmocka_unit_test_setup(test_bounded_store, setup),
        cmocka_unit_test_setup(test_counter_events, setup),
        cmocka_unit_test_setup(test_thread_samples_and_stop_is_prompt, setup),
        cmocka_unit_test_setup(test_fork_child, setup),
        cmocka_unit_test_setup(test_through_the_loader, setup),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
