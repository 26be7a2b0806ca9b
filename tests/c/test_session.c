/* test_session.c -- session lifecycle, scopes, threads, buffer folding and
 * fork, through the public API plus the internal snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
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
#include "core/site.h"
#include "model/model.h"

static _Atomic uint64_t fake_now;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }

static int setup(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    return 0;
}

static codeprof_session *new_session(uint32_t buffer_events) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.buffer_events = buffer_events;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

static const cp_mfunc *func_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (strcmp(cp_model_site(m, m->funcs[i].site)->name, name) == 0)
            return &m->funcs[i];
    return NULL;
}

static void test_states(void **state) {
    (void)state;
    codeprof_session *s = new_session(1024);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_ESTATE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_true(codeprof_session_is_running(s));
    assert_ptr_equal(codeprof_session_current(), s);
    assert_int_equal(codeprof_session_start(s), CODEPROF_ESTATE);
    assert_int_equal(codeprof_session_reset(s), CODEPROF_ESTATE);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    assert_false(codeprof_session_is_running(s));
    assert_int_equal(codeprof_session_reset(s), CODEPROF_OK);
    codeprof_session_free(s);
    assert_null(codeprof_session_current());
    assert_int_equal(codeprof_session_start(NULL), CODEPROF_EINVAL);
}

static void test_config_errors_name_field(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.slow_function_s = -1;
    codeprof_error err = {0};
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, &err), CODEPROF_ECONFIG);
    assert_null(s);
    assert_string_equal(err.field, "slow_function_s");
    assert_non_null(strstr(err.message, "> 0"));
    codeprof_config_init(&cfg);
    cfg.buffer_events = 10;
    assert_int_equal(codeprof_config_validate(&cfg, &err), CODEPROF_ECONFIG);
    assert_string_equal(err.field, "buffer_events");
    assert_string_equal(codeprof_status_name(CODEPROF_ECONFIG), "CODEPROF_ECONFIG");
    assert_string_equal(codeprof_status_message(CODEPROF_OK), "success");
    assert_string_equal(codeprof_status_name((codeprof_status)999), "CODEPROF_UNKNOWN");
}

static void test_scope_times_and_fold_on_full(void **state) {
    (void)state;
    codeprof_session *s = new_session(1024);
    /* Enough free buffers that no hand-off waits for the drain thread. */
    cp_pool_grow(&s->pool, 16);
    uint32_t outer = codeprof_site("outer", "t.c", 1, CODEPROF_SITE_SCOPE);
    uint32_t inner = codeprof_site("inner", "t.c", 2, CODEPROF_SITE_SCOPE);
    atomic_store(&fake_now, 1000);
    codeprof_scope_begin(s, outer, 0); /* not running: ignored */
    codeprof_scope_end(s, outer, 0);
    codeprof_session_start(s);
    codeprof_scope_begin(s, outer, 0);
    for (int i = 0; i < 3000; i++) { /* 6000 events: 5 buffers handed on */
        codeprof_scope_begin(s, inner, 0);
        atomic_fetch_add(&fake_now, 10);
        codeprof_scope_end(s, inner, 0);
    }
    atomic_fetch_add(&fake_now, 5);
    codeprof_scope_end(s, outer, 0);
    codeprof_session_stop(s);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    const cp_mfunc *fo = func_named(m, "outer"), *fi = func_named(m, "inner");
    assert_non_null(fo);
    assert_non_null(fi);
    assert_int_equal(fo->calls, 1);
    assert_int_equal(fo->incl_ns, 30005);
    assert_int_equal(fo->self_ns, 5);
    assert_int_equal(fi->calls, 3000);
    assert_int_equal(fi->incl_ns, 30000);
    assert_int_equal(fi->p50_ns, 10);
    assert_int_equal(m->events_total, 6002);
    assert_int_equal(m->nthreads, 1);
    assert_int_equal(m->duration_ns, 30005);
    /* funcs are sorted by inclusive time */
    assert_ptr_equal(&m->funcs[0], fo);
    cp_model_free(m);
    codeprof_session_free(s);
}

static void test_srcloc_macro_and_current_session(void **state) {
    (void)state;
    codeprof_session *s = new_session(1024);
    codeprof_session_start(s);
    for (int i = 0; i < 2; i++) {
        CODEPROF_SCOPE(NULL, "macro_scope");
        atomic_fetch_add(&fake_now, 7);
    }
    codeprof_session_stop(s);
    cp_model *m = cp_session_snapshot(s);
    const cp_mfunc *f = func_named(m, "macro_scope");
    assert_non_null(f);
    assert_int_equal(f->calls, 2);
    assert_int_equal(f->incl_ns, 14);
    cp_model_free(m);
    codeprof_session_free(s);
}

static void test_stop_truncates_open_scopes(void **state) {
    (void)state;
    codeprof_session *s = new_session(1024);
    uint32_t a = codeprof_site("open_at_stop", NULL, 0, CODEPROF_SITE_SCOPE);
    codeprof_session_start(s);
    codeprof_scope_begin(s, a, 0);
    atomic_fetch_add(&fake_now, 50);
    codeprof_session_stop(s);
    codeprof_scope_end(s, a, 0); /* after stop: ignored */
    cp_model *m = cp_session_snapshot(s);
    assert_int_equal(m->truncated, 1);
    assert_int_equal(func_named(m, "open_at_stop")->incl_ns, 50);
    cp_model_free(m);
    /* restart: the exit with no open scope is ignored, not misattributed */
    codeprof_session_start(s);
    codeprof_scope_end(s, a, 0);
    codeprof_session_stop(s);
    m = cp_session_snapshot(s);
    assert_int_equal(m->unmatched_exits, 1);
    assert_int_equal(func_named(m, "open_at_stop")->calls, 1);
    cp_model_free(m);
    codeprof_session_free(s);
}

typedef struct {
    codeprof_session *s;
    uint32_t site;
    int n;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        codeprof_scope_begin(a->s, a->site, CODEPROF_SCOPE_CPU);
        codeprof_scope_end(a->s, a->site, CODEPROF_SCOPE_CPU);
    }
    return NULL;
}

static void test_threads_each_get_a_buffer(void **state) {
    (void)state;
    codeprof_session *s = new_session(16384);
    uint32_t site = codeprof_site("threaded", NULL, 0, CODEPROF_SITE_SCOPE);
    codeprof_session_start(s);
    pthread_t th[4];
    worker_arg arg = {s, site, 5000};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, &arg);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    codeprof_session_stop(s);
    cp_model *m = cp_session_snapshot(s);
    /* The four threads exited: their trees were merged into one and freed. */
    assert_int_equal(m->exited_threads, 4);
    assert_int_equal(m->nthreads, 1);
    const cp_mfunc *f = func_named(m, "threaded");
    assert_int_equal(f->calls, 20000);
    assert_int_equal(f->cpu_count, 20000);
    assert_int_equal(m->dropped_events, 0);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* Threads keep appending while the main thread stops: nothing is half
 * written, and every refused event is counted. */
static atomic_int stop_flag;
static atomic_uint_fast64_t attempts;
static void *spinner(void *p) {
    worker_arg *a = p;
    uint64_t n = 0;
    while (!atomic_load(&stop_flag)) {
        codeprof_scope_begin(a->s, a->site, 0);
        codeprof_scope_end(a->s, a->site, 0);
        n++;
    }
    atomic_fetch_add(&attempts, n);
    return NULL;
}

static void test_stop_while_threads_record(void **state) {
    (void)state;
    codeprof_session *s = new_session(1024);
    uint32_t site = codeprof_site("spin", NULL, 0, CODEPROF_SITE_SCOPE);
    codeprof_session_start(s);
    worker_arg arg = {s, site, 0};
    pthread_t th[2];
    atomic_store(&stop_flag, 0);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, spinner, &arg);
    usleep(20000);
    for (int round = 0; round < 20; round++) {
        cp_model *m = cp_session_snapshot(s); /* pause + resume while running */
        assert_non_null(m);
        cp_model_free(m);
    }
    codeprof_session_stop(s);
    usleep(5000);
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cp_model *m = cp_session_snapshot(s);
    const cp_mfunc *f = func_named(m, "spin");
    assert_non_null(f);
    assert_true(f->calls > 0);
    /* Every recorded call was made; an event refused in a pause (counted
     * in dropped_events) can only leave one exit unmatched or one scope
     * truncated per refusal and thread, never a corrupt record. */
    assert_true(f->calls <= atomic_load(&attempts));
    assert_true(m->unmatched_exits + m->truncated <= m->dropped_events + 2 * 21 * 2);
    uint64_t events = 0;
    for (uint32_t i = 0; i < m->nthreads; i++)
        events += m->threads[i].events;
    assert_int_equal(events, m->events_total);
    cp_model_free(m);
    codeprof_session_free(s);
}

static void test_fork_child_records_its_own_data(void **state) {
    (void)state;
    if (CP_TEST_UNDER_TSAN) {
        /* ThreadSanitizer does not support threads in a child forked from
         * a multi-threaded process; the plain and ASan runs cover this. */
        skip();
    }
    codeprof_session *s = new_session(1024);
    uint32_t parent_site = codeprof_site("in_parent", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t child_site = codeprof_site("in_child", NULL, 0, CODEPROF_SITE_SCOPE);
    codeprof_session_start(s);
    codeprof_scope_begin(s, parent_site, 0);
    codeprof_scope_end(s, parent_site, 0);
    codeprof_scope_begin(s, parent_site, 0); /* open across fork */
    pid_t pid = fork();
    if (pid == 0) {
        codeprof_scope_begin(s, child_site, 0);
        codeprof_scope_end(s, child_site, 0);
        codeprof_scope_end(s, parent_site, 0); /* opened by the parent */
        codeprof_session_stop(s);
        cp_model *m = cp_session_snapshot(s);
        int ok = m && func_named(m, "in_child") && func_named(m, "in_child")->calls == 1 &&
                 func_named(m, "in_parent") == NULL && m->pid == (int)getpid() &&
                 m->unmatched_exits == 1;
        cp_model_free(m);
        _exit(ok ? 0 : 3);
    }
    assert_true(pid > 0);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    codeprof_scope_end(s, parent_site, 0);
    codeprof_session_stop(s);
    cp_model *m = cp_session_snapshot(s);
    assert_int_equal(func_named(m, "in_parent")->calls, 2);
    assert_null(func_named(m, "in_child"));
    cp_model_free(m);
    codeprof_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_config_errors_name_field),
        cmocka_unit_test(test_scope_times_and_fold_on_full),
        cmocka_unit_test(test_srcloc_macro_and_current_session),
        cmocka_unit_test(test_stop_truncates_open_scopes),
        cmocka_unit_test(test_threads_each_get_a_buffer),
        cmocka_unit_test(test_stop_while_threads_record),
        cmocka_unit_test(test_fork_child_records_its_own_data),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
