/* test_sampler.c -- the stack sampler thread (src/sampling/sampler.c) with
 * a fake reader: ticks and stop latency, missed ticks, the CP_EV_SAMPLE
 * encoding (stack id | weight << 32, aux = tid, site = innermost frame),
 * wall and CPU weights, running/idle states, the per-tick cap with 1000
 * threads (round-robin, every thread read within a few ticks), fork (the
 * thread is gone in the child, re-armed by cp_samp_after_fork_child, off
 * by codeprof_session_sampling(s, 0)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codeprof/codeprof.h"

#if defined(__SANITIZE_THREAD__)
#define CP_TEST_UNDER_TSAN 1
#else
#define CP_TEST_UNDER_TSAN 0
#endif
#include "core/session.h"
#include "model/model.h"
#include "sampling/sample_session.h"
#include "sampling/sampler.h"
#include "sampling/stacktab.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static codeprof_session *new_session(double interval, int mode) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.sample_interval_s = interval;
    cfg.sample_mode = mode;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

/* ---- the fake reader: a list of (tid, frames) ---- */

#define FAKE_MAX 1100
typedef struct fake_thread {
    uint64_t tid;
    cp_sframe fr[2];
    uint32_t n;
} fake_thread;

static struct {
    fake_thread th[FAKE_MAX];
    _Atomic uint32_t n;
    _Atomic uint64_t calls;
    _Atomic uint32_t delay_us; /* the reader takes this long      */
    uint32_t wanted_last;      /* threads wanted by the last call  */
    uint32_t wanted_ever[FAKE_MAX];
} fake;

static int fake_reader(void *ctx, cp_sampler_visit *v) {
    (void)ctx;
    atomic_fetch_add(&fake.calls, 1);
    uint32_t d = atomic_load(&fake.delay_us);
    if (d)
        sleep_s(d / 1e6);
    uint32_t n = atomic_load(&fake.n), w = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!cp_sampler_want(v, fake.th[i].tid))
            continue;
        w++;
        fake.wanted_ever[i]++;
        cp_sampler_record(v, fake.th[i].tid, fake.th[i].fr, fake.th[i].n, 0, 0);
    }
    fake.wanted_last = w;
    return 0;
}

static void fake_reset(void) {
    memset(&fake, 0, sizeof fake);
    cp_sampler_set_reader(fake_reader, NULL);
}

/* ---- a sink that keeps the CP_EV_SAMPLE events ---- */

#define CAP_MAX 100000
static struct {
    pthread_mutex_t mu;
    cp_event ev[CAP_MAX];
    uint32_t n;
    uint64_t carrier; /* os tid of the buffer the samples came in */
} cap = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0, 0};

static void cap_consume(void *ctx, const cp_tbuf *t, const cp_event *ev, uint32_t n) {
    (void)ctx;
    pthread_mutex_lock(&cap.mu);
    for (uint32_t i = 0; i < n; i++)
        if (ev[i].kind == CP_EV_SAMPLE && cap.n < CAP_MAX) {
            cap.ev[cap.n++] = ev[i];
            cap.carrier = t->os_tid;
        }
    pthread_mutex_unlock(&cap.mu);
}

static void cap_attach(codeprof_session *s) {
    cap.n = 0;
    cap.carrier = 0;
    cp_sink k = {"test-samples", NULL, cap_consume, NULL, NULL};
    assert_int_equal(cp_session_add_sink(s, &k), 0);
}

/* ---- real threads: one spinning, one sleeping ---- */

static atomic_int quit_g;
typedef struct worker {
    pthread_t th;
    _Atomic uint64_t tid;
    int spin;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    atomic_store(&w->tid, (uint64_t)syscall(SYS_gettid));
    volatile uint64_t x = 0;
    while (!atomic_load(&quit_g)) {
        if (w->spin)
            x++;
        else
            sleep_s(0.05);
    }
    return NULL;
}

static void workers_start(worker *w, int n) {
    atomic_store(&quit_g, 0);
    for (int i = 0; i < n; i++) {
        w[i].spin = i == 0;
        atomic_store(&w[i].tid, 0);
        assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < n; i++)
        while (!atomic_load(&w[i].tid))
            sleep_s(0.001);
}
static void workers_stop(worker *w, int n) {
    atomic_store(&quit_g, 1);
    for (int i = 0; i < n; i++)
        pthread_join(w[i].th, NULL);
}

static void fake_add(uint64_t tid, uint32_t site, uint32_t line) {
    uint32_t i = atomic_load(&fake.n);
    fake.th[i].tid = tid;
    fake.th[i].fr[0].site = site;
    fake.th[i].fr[0].line = line;
    fake.th[i].fr[1].site = codeprof_site("test.outer", "t.py", 1, CODEPROF_SITE_PYTHON);
    fake.th[i].fr[1].line = 3;
    fake.th[i].n = 2;
    atomic_store(&fake.n, i + 1);
}

/* ---- tests ---- */

static void test_ticks_and_prompt_stop(void **state) {
    (void)state;
    fake_reset();
    codeprof_session *s = new_session(0.002, 0);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_true(cp_samp_session_sampling_active(s));
    sleep_s(0.2);
    double t0 = now_s();
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    double stop_s = now_s() - t0;
    assert_false(cp_samp_session_sampling_active(s));
    /* the sleep is a condvar wait that stop wakes: far below a second even
     * on a loaded machine (a sampler that slept out its period would not
     * show; one that polled a flag every second would) */
    assert_true(stop_s < 0.5);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_true(m->samp.enabled);
    assert_int_equal(m->samp.interval_ns, 2000000);
    /* 0.2 s at 2 ms: 100 periods; ticks + missed cover them roughly */
    assert_true(m->samp.ticks >= 10);
    assert_true(m->samp.ticks + m->samp.missed_ticks <= 130);
    assert_int_equal(atomic_load(&fake.calls), m->samp.ticks);
    cp_model_free(m);
    uint64_t calls = atomic_load(&fake.calls);
    sleep_s(0.02);
    assert_int_equal(atomic_load(&fake.calls), calls); /* no tick after stop */
    codeprof_session_free(s);
    cp_sampler_set_reader(NULL, NULL);
}

static void test_missed_ticks(void **state) {
    (void)state;
    fake_reset();
    atomic_store(&fake.delay_us, 12000); /* a 12 ms reader at a 2 ms period */
    codeprof_session *s = new_session(0.002, 0);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    sleep_s(0.15);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_true(m->samp.ticks >= 2);
    /* each tick overran about 5 periods */
    assert_true(m->samp.missed_ticks >= 2 * m->samp.ticks);
    cp_model_free(m);
    codeprof_session_free(s);
    cp_sampler_set_reader(NULL, NULL);
}

/* Wall mode: every sample's encoding, states and weights. */
static void test_wall_events(void **state) {
    (void)state;
    fake_reset();
    worker w[2];
    workers_start(w, 2);
    uint32_t sa = codeprof_site("test.spin", "t.py", 10, CODEPROF_SITE_PYTHON);
    uint32_t sb = codeprof_site("test.nap", "t.py", 20, CODEPROF_SITE_PYTHON);
    fake_add(atomic_load(&w[0].tid), sa, 11);
    fake_add(atomic_load(&w[1].tid), sb, 21);
    codeprof_session *s = new_session(0.005, 0);
    cap_attach(s);
    double t0 = now_s();
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    sleep_s(0.3);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    double wall = now_s() - t0;
    workers_stop(w, 2);
    uint32_t id_a = cp_stacktab_intern(cp_samp_session_stacktab(s), fake.th[0].fr, 2);
    uint32_t id_b = cp_stacktab_intern(cp_samp_session_stacktab(s), fake.th[1].fr, 2);
    uint64_t n[2] = {0}, running[2] = {0}, wsum[2] = {0};
    pthread_mutex_lock(&cap.mu);
    assert_true(cap.n > 10);
    for (uint32_t i = 0; i < cap.n; i++) {
        cp_event *e = &cap.ev[i];
        int k = e->aux == atomic_load(&w[0].tid) ? 0 : e->aux == atomic_load(&w[1].tid) ? 1 : -1;
        assert_true(k >= 0);
        assert_int_equal(e->site, k ? sb : sa);
        assert_int_equal((uint32_t)(uint64_t)e->value, k ? id_b : id_a);
        assert_false(e->flags & CP_SAMPF_CPU_MODE);
        uint64_t weight = (uint64_t)e->value >> 32;
        assert_true(weight > 0);
        n[k]++;
        wsum[k] += weight;
        if ((e->flags & CP_SAMPF_STATE_MASK) == CP_SAMPF_RUNNING)
            running[k]++;
    }
    pthread_mutex_unlock(&cap.mu);
    assert_true(n[0] > 5 && n[1] > 5);
    /* the sleeper uses almost no CPU: (nearly) never running -- one that
     * just woke may wait in the run queue of a loaded machine; the spinner
     * is running in some samples even there */
    assert_true(running[1] * 4 <= n[1]);
    assert_true(running[0] >= 1);
    /* wall weights add up to about the wall time sampled (generous) */
    for (int k = 0; k < 2; k++) {
        double sec = (double)wsum[k] / 1e9;
        assert_true(sec > 0.3 * wall && sec < 1.5 * wall);
    }
    /* the buffer that carried the samples is the sampler thread's own,
     * which the build can tell from the user's threads */
    assert_true(cap.carrier != 0);
    assert_true(cp_samp_session_is_sampler_thread(s, cap.carrier));
    assert_false(cp_samp_session_is_sampler_thread(s, atomic_load(&w[0].tid)));
    cp_model *m = cp_session_snapshot(s);
    assert_int_equal(m->samp.threads, 2);
    assert_int_equal(m->samp.mode, 0);
    assert_true(m->samp.sampler_cpu_ns > 0);
    cp_model_free(m);
    codeprof_session_free(s);
    cp_sampler_set_reader(NULL, NULL);
}

/* CPU mode: the sleeper weighs nothing (no event), the spinner's weights
 * are its CPU time. */
static void test_cpu_events(void **state) {
    (void)state;
    fake_reset();
    worker w[2];
    workers_start(w, 2);
    fake_add(atomic_load(&w[0].tid), codeprof_site("test.spin", "t.py", 10, 2), 11);
    fake_add(atomic_load(&w[1].tid), codeprof_site("test.nap", "t.py", 20, 2), 21);
    codeprof_session *s = new_session(0.005, 1);
    cap_attach(s);
    clockid_t cid;
    pthread_getcpuclockid(w[0].th, &cid);
    struct timespec c0, c1;
    clock_gettime(cid, &c0);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    sleep_s(0.3);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    clock_gettime(cid, &c1);
    workers_stop(w, 2);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    uint64_t wsum = 0, wsleeper = 0;
    pthread_mutex_lock(&cap.mu);
    for (uint32_t i = 0; i < cap.n; i++) {
        cp_event *e = &cap.ev[i];
        assert_true(e->flags & CP_SAMPF_CPU_MODE);
        assert_int_equal(e->flags & CP_SAMPF_STATE_MASK, CP_SAMPF_RUNNING);
        if (e->aux == atomic_load(&w[0].tid))
            wsum += (uint64_t)e->value >> 32;
        else
            wsleeper += (uint64_t)e->value >> 32;
    }
    pthread_mutex_unlock(&cap.mu);
    /* the sleeper's weight is its CPU time: next to nothing */
    assert_true(wsleeper < 10000000ull);
    /* the spinner's CPU while sampled, less what one first sample and the
     * edges leave out */
    assert_true((double)wsum / 1e9 <= cpu + 0.02);
    if (cpu > 0.05)
        assert_true((double)wsum / 1e9 > 0.3 * cpu);
    codeprof_session_free(s);
    cp_sampler_set_reader(NULL, NULL);
}

/* 1000 threads: a tick reads at most CP_SAMPLER_MAX_PER_TICK of them, and
 * round-robin reaches every one within ceil(1000 / cap) + 1 ticks. */
static uint32_t probe_count;
static void probe_cb(void *ctx, uint64_t tid, const cp_sframe *f, uint32_t n, uint16_t fl,
                     uint64_t w) {
    (void)ctx, (void)tid, (void)f, (void)n, (void)fl, (void)w;
    probe_count++;
}

static void test_thousand_threads_bounded(void **state) {
    (void)state;
    fake_reset();
    for (uint32_t i = 0; i < 1000; i++)
        fake_add(1000000 + i, 5, 1); /* tids that do not exist: no CPU clock */
    cp_sampler *p = cp_sampler_probe_new(1000000, 0, probe_cb, NULL);
    assert_non_null(p);
    uint32_t ticks = 1000 / CP_SAMPLER_MAX_PER_TICK + 2;
    for (uint32_t t = 0; t < ticks; t++) {
        cp_sampler_tick(p);
        assert_true(fake.wanted_last <= CP_SAMPLER_MAX_PER_TICK);
        assert_true(fake.wanted_last > 0);
    }
    for (uint32_t i = 0; i < 1000; i++)
        assert_true(fake.wanted_ever[i] >= 1);
    cp_sampler_stats st;
    cp_sampler_get_stats(p, &st);
    uint64_t taken = 0;
    for (uint32_t i = 0; i < 1000; i++)
        taken += fake.wanted_ever[i];
    assert_int_equal(st.skipped + taken, 1000ull * ticks);
    assert_int_equal(probe_count, 0); /* no such threads: nothing recorded */
    cp_sampler_free(p);
    cp_sampler_set_reader(NULL, NULL);
}

static void test_fork_child_rearm_and_off(void **state) {
    (void)state;
    fake_reset();
    codeprof_session *s = new_session(0.002, 0);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_true(cp_samp_session_sampling_active(s));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int code = 0;
        if (cp_samp_session_sampling_active(s))
            code |= 1; /* the thread does not survive fork */
        if (CP_TEST_UNDER_TSAN) {
            /* TSan does not support threads in a child forked from a
             * multi-threaded process: only the off switch is checked */
            if (codeprof_session_sampling(s, 0) != CODEPROF_OK || cp_samp_session_sampling_active(s))
                code |= 8;
            _exit(code);
        }
        uint64_t c0 = atomic_load(&fake.calls);
        cp_samp_after_fork_child();
        if (!cp_samp_session_sampling_active(s))
            code |= 2;
        sleep_s(0.05);
        if (atomic_load(&fake.calls) <= c0)
            code |= 4; /* re-armed: it ticks in the child */
        if (codeprof_session_sampling(s, 0) != CODEPROF_OK || cp_samp_session_sampling_active(s))
            code |= 8;
        uint64_t c1 = atomic_load(&fake.calls);
        sleep_s(0.03);
        if (atomic_load(&fake.calls) != c1)
            code |= 16; /* off means off */
        if (codeprof_session_stop(s) != CODEPROF_OK)
            code |= 32;
        _exit(code);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(cp_samp_session_sampling_active(s)); /* the parent's goes on */
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    /* on again while stopped: starts with the next start */
    assert_int_equal(codeprof_session_sampling(s, 1), CODEPROF_OK);
    assert_false(cp_samp_session_sampling_active(s));
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_true(cp_samp_session_sampling_active(s));
    assert_int_equal(codeprof_session_sampling(s, 0), CODEPROF_OK);
    assert_false(cp_samp_session_sampling_active(s));
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_false(cp_samp_session_sampling_active(s)); /* stays off */
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    codeprof_session_free(s);
    cp_sampler_set_reader(NULL, NULL);
}

static void test_no_sampler_when_interval_zero(void **state) {
    (void)state;
    codeprof_session *s = new_session(0, 0);
    assert_int_equal(codeprof_session_sampling(s, 1), CODEPROF_ENOTSUP);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_false(cp_samp_session_sampling_active(s));
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_false(m->samp.enabled);
    cp_model_free(m);
    codeprof_session_free(s);
}

static void test_syscall_reading(void **state) {
    (void)state;
    worker w[2];
    workers_start(w, 2);
    /* the sleeper is mostly inside clock_nanosleep */
    int seen = 0;
    for (int i = 0; i < 50 && !seen; i++) {
        long nr = cp_sampler_thread_syscall(atomic_load(&w[1].tid), NULL, NULL);
        if (nr >= 0 && cp_sampler_syscall_name(nr) &&
            strstr(cp_sampler_syscall_name(nr), "nanosleep"))
            seen = 1;
        sleep_s(0.002);
    }
    workers_stop(w, 2);
    assert_true(seen);
    assert_int_equal(cp_sampler_thread_syscall(999999999, NULL, NULL), -2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_and_prompt_stop),
        cmocka_unit_test(test_missed_ticks),
        cmocka_unit_test(test_wall_events),
        cmocka_unit_test(test_cpu_events),
        cmocka_unit_test(test_thousand_threads_bounded),
        cmocka_unit_test(test_fork_child_rearm_and_off),
        cmocka_unit_test(test_no_sampler_when_interval_zero),
        cmocka_unit_test(test_syscall_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
