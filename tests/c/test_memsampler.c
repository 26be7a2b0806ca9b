/* test_memsampler.c -- the process memory sampler (src/memory/memsampler.c):
 * watching a child process and measuring its private memory growth, the
 * thread's start/stop (stop wakes it at once), reset, a fork child, the
 * caps (counter samples, processes), the model it fills (procs, counter
 * events on the timeline), the fallback warning, the public
 * codeprof_session_watch_process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codeprof/codeprof.h"

#if defined(__SANITIZE_THREAD__)
#define CP_TEST_UNDER_TSAN 1
#else
#define CP_TEST_UNDER_TSAN 0
#endif
#include "core/clock.h"
#include "core/session.h"
#include "core/timeline.h"
#include "core/warnings.h"
#include "memory/memsampler.h"
#include "memory/procmem.h"
#include "model/build.h"
#include "model/model.h"

#define MIB (1ull << 20)

/* A session whose own memory state has no sampler (interval 0 at
 * creation); the test then makes its own with the interval it wants. */
static codeprof_session *new_session(double interval, uint32_t timeline_samples) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    s->cfg.memory_sample_interval_s = interval;
    s->cfg.memory_timeline_samples = timeline_samples;
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A child that waits for a byte on `go`, touches `mib` MiB, writes a byte
 * on `done`, then waits for EOF on `go` and exits. */
typedef struct child {
    pid_t pid;
    int go, done;
} child;

static child spawn_child(size_t mib) {
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(a[1]);
        close(b[0]);
        char c;
        if (read(a[0], &c, 1) != 1)
            _exit(1);
        char *p = malloc(mib * MIB);
        if (!p)
            _exit(2);
        memset(p, 7, mib * MIB);
        if (write(b[1], "k", 1) != 1)
            _exit(3);
        while (read(a[0], &c, 1) > 0) {
        }
        _exit(p[mib * MIB - 1] == 7 ? 0 : 4);
    }
    close(a[0]);
    close(b[1]);
    return (child){pid, a[1], b[0]};
}

static void child_touch(child *c) {
    char ch;
    assert_int_equal(write(c->go, "g", 1), 1);
    assert_int_equal(read(c->done, &ch, 1), 1);
}

static void child_end(child *c) {
    close(c->go);
    close(c->done);
    int st;
    assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static cp_model *new_model(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cp_model *m = cp_model_begin(&cfg, (int)getpid(), "main", 0);
    assert_non_null(m);
    return m;
}

static const cp_mproc *proc_of(const cp_model *m, int pid) {
    for (uint32_t i = 0; i < m->mem.nprocs; i++)
        if (m->mem.procs[i].pid == pid)
            return &m->mem.procs[i];
    return NULL;
}

/* Ticks taken by hand: a worker's USS growth is measured, its exit stops
 * its sampling and keeps its figures, the model lists this process first. */
static void test_watch_measures_growth(void **state) {
    (void)state;
    codeprof_session *s = new_session(0.05, 100);
    cp_memsampler *ms = cp_memsampler_new(s);
    assert_non_null(ms);
    assert_ptr_equal(cp_memsampler_of(s), ms);
    uint32_t loader = codeprof_site("test_memsampler.loader", NULL, 0, CODEPROF_SITE_LOADER);
    child c = spawn_child(80);
    assert_int_equal(codeprof_session_watch_process(s, c.pid, 1, loader), CODEPROF_OK);
    assert_int_equal(codeprof_session_watch_process(s, c.pid, 1, loader), CODEPROF_OK); /* once */
    cp_memsampler_tick(ms);
    child_touch(&c);
    cp_memsampler_tick(ms);
    cp_memsampler_tick(ms);
    child_end(&c);
    cp_memsampler_tick(ms); /* finds it gone */
    cp_memsampler_tick(ms);
    assert_int_equal(cp_memsampler_samples(ms), 5);

    cp_model *m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    assert_int_equal(m->mem.nprocs, 2);
    const cp_mproc *self = &m->mem.procs[0];
    assert_int_equal(self->pid, getpid());
    assert_int_equal(self->worker, -1);
    assert_int_equal(self->nsamples, 5);
    assert_true(self->rss_last > 0 && self->rss_max >= self->rss_last);
    assert_true(m->mem.rss_last == self->rss_last && m->mem.rss_peak == self->rss_max);
    assert_true(m->mem.machine_bytes > 64 * MIB);
    const cp_mproc *w = proc_of(m, c.pid);
    assert_non_null(w);
    assert_int_equal(w->worker, 1);
    assert_true(w->loader > 0);
    assert_string_equal(cp_model_site(m, w->loader)->name, "test_memsampler.loader");
    assert_int_equal(w->nsamples, 3); /* before, after, after; then gone */
    assert_true(w->exited);
    assert_true(w->source == CP_PROCMEM_ROLLUP || w->source == CP_PROCMEM_SMAPS);
    /* 80 MiB touched: USS grew by most of it (generous bound) */
    assert_true(w->uss_last > w->uss_first + 60 * MIB);
    assert_true(w->rss_max >= w->rss_last && w->uss_max >= w->uss_last);
    assert_true(w->pss_last > 0 && w->pss_last <= w->rss_last + MIB);
    assert_true(w->t_last_ns > w->t_first_ns);
    /* counters on the timeline: this process's RSS (5) and the worker's
     * RSS, PSS, USS (3 x 3), flagged as process counters */
    uint32_t self_n = 0, worker_n = 0;
    for (uint32_t i = 0; i < m->ntimeline; i++) {
        const cp_tl_event *e = &m->timeline[i];
        assert_int_equal(e->kind, CP_EV_COUNTER);
        assert_true(e->flags & CP_TLF_PROCESS);
        const cp_msite *si = cp_model_site(m, e->site);
        assert_non_null(si);
        if (e->thread == 0) {
            assert_string_equal(si->name, "memory.rss");
            self_n++;
        } else {
            assert_int_equal(e->thread, (uint32_t)c.pid);
            worker_n++;
        }
    }
    assert_int_equal(self_n, 5);
    assert_int_equal(worker_n, 9);
    cp_model_free(m);
    cp_memsampler_free(ms);
    codeprof_session_free(s);
}

/* The thread samples on its own; stop wakes it at once even with a long
 * interval; start twice is one thread; stop twice is fine. */
static void test_thread_start_stop(void **state) {
    (void)state;
    codeprof_session *s = new_session(0.01, 1000);
    cp_memsampler *ms = cp_memsampler_new(s);
    assert_non_null(ms);
    assert_int_equal(cp_memsampler_start(ms), 0);
    assert_int_equal(cp_memsampler_start(ms), 0);
    for (int i = 0; i < 500 && cp_memsampler_samples(ms) < 3; i++)
        usleep(10000);
    assert_true(cp_memsampler_samples(ms) >= 3);
    cp_memsampler_stop(ms);
    cp_memsampler_stop(ms);
    uint64_t n = cp_memsampler_samples(ms);
    usleep(30000);
    assert_int_equal(cp_memsampler_samples(ms), n); /* really stopped */
    cp_memsampler_free(ms);

    s->cfg.memory_sample_interval_s = 3600;
    ms = cp_memsampler_new(s);
    assert_int_equal(cp_memsampler_start(ms), 0);
    usleep(20000);
    double t0 = now_s();
    cp_memsampler_stop(ms);
    assert_true(now_s() - t0 < 2.0); /* not an hour */
    assert_int_equal(cp_memsampler_samples(ms), 1);
    cp_memsampler_free(ms);

    /* interval 0: start is a no-op, watching is not supported */
    s->cfg.memory_sample_interval_s = 0;
    ms = cp_memsampler_new(s);
    assert_int_equal(cp_memsampler_start(ms), 0);
    assert_int_equal(cp_memsampler_watch(ms, getpid(), 0, 0), CODEPROF_ENOTSUP);
    cp_memsampler_stop(ms);
    assert_int_equal(cp_memsampler_samples(ms), 0);
    cp_memsampler_free(ms);
    codeprof_session_free(s);
}

/* Reset forgets the series (and counters) but keeps live processes watched. */
static void test_reset(void **state) {
    (void)state;
    codeprof_session *s = new_session(0.05, 100);
    cp_memsampler *ms = cp_memsampler_new(s);
    child c = spawn_child(1);
    assert_int_equal(cp_memsampler_watch(ms, c.pid, 0, 0), CODEPROF_OK);
    cp_memsampler_tick(ms);
    cp_memsampler_tick(ms);
    cp_memsampler_reset(ms);
    assert_int_equal(cp_memsampler_samples(ms), 0);
    cp_model *m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    assert_int_equal(m->mem.nprocs, 0);
    assert_int_equal(m->ntimeline, 0);
    cp_model_free(m);
    cp_memsampler_tick(ms);
    m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    assert_int_equal(m->mem.nprocs, 2); /* still watched */
    assert_int_equal(proc_of(m, c.pid)->nsamples, 1);
    cp_model_free(m);
    child_touch(&c);
    child_end(&c);
    cp_memsampler_free(ms);
    codeprof_session_free(s);
}

/* Counter samples: the first half and the most recent half are kept, the
 * rest counted in dropped_samples. */
static void test_timeline_cap(void **state) {
    (void)state;
    codeprof_session *s = new_session(0.05, 4);
    cp_memsampler *ms = cp_memsampler_new(s);
    uint64_t t_before = cp_clock_mono_ns();
    for (int i = 0; i < 10; i++)
        cp_memsampler_tick(ms);
    cp_model *m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    assert_int_equal(m->ntimeline, 4);
    assert_int_equal(m->mem.dropped_samples, 6);
    /* its own memory is counted: at least the 4 events it holds */
    assert_true(m->mem.own_bytes >= 4 * sizeof(cp_tl_event));
    assert_true(m->mem.own_bytes < (1u << 20));
    assert_int_equal(m->mem.procs[0].nsamples, 10); /* figures are not capped */
    for (uint32_t i = 1; i < 4; i++)
        assert_true(m->timeline[i].tick > m->timeline[i - 1].tick);
    assert_true(m->timeline[0].tick >= t_before);
    cp_model_free(m);
    cp_memsampler_free(ms);
    codeprof_session_free(s);
}

/* Processes: at most CP_MEM_MAX_PROCS - 1 watched (one entry is this
 * process); past it, ENOMEM and dropped_procs. */
static void test_procs_cap(void **state) {
    (void)state;
    codeprof_session *s = new_session(0.05, 10);
    cp_memsampler *ms = cp_memsampler_new(s);
    for (int i = 0; i < CP_MEM_MAX_PROCS - 1; i++)
        assert_int_equal(cp_memsampler_watch(ms, 4000000 + i, i, 0), CODEPROF_OK);
    assert_int_equal(cp_memsampler_watch(ms, 3999999, 0, 0), CODEPROF_ENOMEM);
    assert_int_equal(cp_memsampler_watch(ms, 3999998, 0, 0), CODEPROF_ENOMEM);
    assert_int_equal(cp_memsampler_watch(ms, 0, 0, 0), CODEPROF_EINVAL);
    cp_memsampler_tick(ms); /* every fake pid is gone: no samples */
    cp_model *m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    assert_int_equal(m->mem.nprocs, 1);
    assert_int_equal(m->mem.dropped_procs, 2);
    cp_model_free(m);
    cp_memsampler_free(ms);
    codeprof_session_free(s);
}

/* A fork child abandons the parent's thread and state; it can sample on
 * its own; the parent's thread is unaffected. */
static void test_fork_child(void **state) {
    (void)state;
    codeprof_session *s = new_session(0.005, 100);
    cp_memsampler *ms = cp_memsampler_new(s);
    assert_int_equal(cp_memsampler_start(ms), 0);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            cp_memsampler_forget(ms);
            if (cp_memsampler_samples(ms) != 0)
                _exit(1);
            cp_memsampler_stop(ms); /* not ours: a no-op, never a join */
            if (CP_TEST_UNDER_TSAN) {
                /* TSan does not support threads in a child forked from a
                 * multi-threaded process: tick by hand there */
                cp_memsampler_tick(ms);
                cp_memsampler_tick(ms);
            } else {
                if (cp_memsampler_start(ms) != 0)
                    _exit(2);
                while (cp_memsampler_samples(ms) < 2)
                    usleep(1000);
                cp_memsampler_stop(ms);
            }
            cp_model *m = new_model();
            if (cp_memsampler_fill_model(ms, m) != 0 || m->mem.nprocs != 1 ||
                m->mem.procs[0].pid != getpid())
                _exit(3);
            cp_model_free(m);
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    uint64_t n = cp_memsampler_samples(ms);
    for (int i = 0; i < 500 && cp_memsampler_samples(ms) < n + 2; i++)
        usleep(10000);
    assert_true(cp_memsampler_samples(ms) >= n + 2);
    cp_memsampler_stop(ms);
    cp_memsampler_free(ms);
    codeprof_session_free(s);
}

/* A /proc without smaps_rollup: the reading says so and the session gets
 * one warning. */
static void test_fallback_warning(void **state) {
    (void)state;
    char root[64];
    snprintf(root, sizeof root, "/tmp/cp_memsampler_XXXXXX");
    assert_non_null(mkdtemp(root));
    char path[128];
    snprintf(path, sizeof path, "%s/self", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/self/statm", root);
    FILE *f = fopen(path, "w");
    fputs("100 50 10 0 0 0 0\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/77", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/77/statm", root);
    f = fopen(path, "w");
    fputs("100 60 20 0 0 0 0\n", f);
    fclose(f);

    codeprof_session *s = new_session(0.05, 100);
    cp_memsampler *ms = cp_memsampler_new(s);
    cp_memsampler_set_proc_root(ms, root);
    assert_int_equal(cp_memsampler_watch(ms, 77, 0, 0), CODEPROF_OK);
    cp_memsampler_tick(ms);
    cp_memsampler_tick(ms);
    cp_model *m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    const cp_mproc *w = proc_of(m, 77);
    assert_non_null(w);
    assert_int_equal(w->source, CP_PROCMEM_STATM);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(w->rss_last, 60 * page);
    assert_int_equal(w->uss_last, 40 * page);
    assert_int_equal(m->mem.procs[0].rss_last, 50 * page);
    cp_model_free(m);
    cp_warning warn[8];
    uint64_t dropped = 0;
    size_t nw = cp_session_warnings(s, warn, 8, &dropped);
    assert_int_equal(nw, 1);
    assert_string_equal(warn[0].code, "procmem_fallback");
    assert_non_null(strstr(warn[0].message, "statm"));
    cp_memsampler_free(ms);
    codeprof_session_free(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* The public entry point finds the session's sampler, or says there is none. */
static void test_public_watch(void **state) {
    (void)state;
    codeprof_session *s = new_session(0, 100);
    assert_int_equal(codeprof_session_watch_process(s, getpid(), 0, 0), CODEPROF_ENOTSUP);
    assert_int_equal(codeprof_session_watch_process(s, -3, 0, 0), CODEPROF_EINVAL);
    s->cfg.memory_sample_interval_s = 0.1;
    cp_memsampler *ms = cp_memsampler_new(s);
    assert_int_equal(codeprof_session_watch_process(s, getppid(), 2, 0), CODEPROF_OK);
    assert_int_equal(cp_memsampler_describe_dataset(ms, 0, 0, "x", 1, 0), CODEPROF_EINVAL);
    uint32_t l = codeprof_site("test_memsampler.L", NULL, 0, CODEPROF_SITE_LOADER);
    uint32_t d = codeprof_site("test_memsampler.D", NULL, 0, CODEPROF_SITE_DATASET);
    assert_int_equal(cp_memsampler_describe_dataset(ms, l, d, "self.samples: list of 5 str", 5, 0),
                     CODEPROF_OK);
    assert_int_equal(cp_memsampler_describe_dataset(ms, l, d, "self.x: list of 9 int", 9, 0),
                     CODEPROF_OK); /* replaces */
    cp_model *m = new_model();
    assert_int_equal(cp_memsampler_fill_model(ms, m), 0);
    assert_int_equal(m->mem.ndsnotes, 1);
    assert_string_equal(m->mem.dsnotes[0].text, "self.x: list of 9 int");
    assert_string_equal(cp_model_site(m, m->mem.dsnotes[0].loader)->name, "test_memsampler.L");
    assert_string_equal(cp_model_site(m, m->mem.dsnotes[0].dataset)->name, "test_memsampler.D");
    assert_int_equal(m->mem.dsnotes[0].py_objects, 9);
    cp_model_free(m);
    cp_memsampler_free(ms);
    assert_int_equal(codeprof_session_watch_process(s, getpid(), 0, 0), CODEPROF_ENOTSUP);
    codeprof_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_measures_growth),
        cmocka_unit_test(test_thread_start_stop),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_timeline_cap),
        cmocka_unit_test(test_procs_cap),
        cmocka_unit_test(test_fork_child),
        cmocka_unit_test(test_fallback_warning),
        cmocka_unit_test(test_public_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
