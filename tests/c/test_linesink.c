/* test_linesink.c -- line-level timing (src/cpu/linesink.c): CP_EV_LINE
 * events recorded into a real session on the fake clock become exact
 * per-line hits and time in m->lines (callees included), through
 * recursion, generators (a frame closed at a yield and resumed), frames
 * that end unseen, the caps, and the source text read from the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "core/session.h"
#include "core/tbuf.h"
#include "cpu/linesink.h"
#include "model/model.h"
#include "session_fixture.h"

static codeprof_session *lines_session(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.flags |= CODEPROF_CFG_LINES;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    return s;
}

static void line(codeprof_session *s, uint32_t site, uint32_t ln, uint64_t frame) {
    cp_emit(s, CP_EV_LINE, 0, site, ln, frame);
}
static void resume(codeprof_session *s, uint32_t site, uint32_t ln, uint64_t frame) {
    cp_emit(s, CP_EV_LINE, CP_LINEF_RESUME, site, ln, frame);
}
static void leave(codeprof_session *s, uint32_t site, uint64_t frame) {
    cp_emit(s, CP_EV_LINE, 0, site, 0, frame);
}

/* The row of (function named `name`, line `ln`) or NULL. */
static const cp_mline *row(const cp_model *m, const char *name, uint32_t ln) {
    for (uint32_t i = 0; i < m->lines.n; i++) {
        const cp_msite *st = cp_model_site(m, m->lines.v[i].site);
        if (st && strcmp(st->name, name) == 0 && m->lines.v[i].line == ln)
            return &m->lines.v[i];
    }
    return NULL;
}

static void test_hits_and_time_per_line(void **state) {
    (void)state;
    codeprof_session *s = lines_session();
    uint32_t f = gsite("ls.loop", "/nonexistent/ls.py", 10, CODEPROF_SITE_PYTHON);
    line(s, f, 10, 0xA0);
    advance(100);
    for (int i = 0; i < 3; i++) {
        line(s, f, 11, 0xA0); /* the loop header */
        advance(10);
        line(s, f, 12, 0xA0); /* the body */
        advance(1000);
    }
    line(s, f, 13, 0xA0);
    advance(5);
    leave(s, f, 0xA0);
    advance(77777); /* outside the frame: not counted */
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(m->lines.exact, 1);
    assert_int_equal(m->lines.n, 4);
    const cp_mline *r = row(m, "ls.loop", 12);
    assert_non_null(r);
    assert_int_equal(r->hits, 3);
    assert_int_equal(r->time_ns, 3000);
    assert_int_equal(row(m, "ls.loop", 11)->hits, 3);
    assert_int_equal(row(m, "ls.loop", 11)->time_ns, 30);
    assert_int_equal(row(m, "ls.loop", 10)->time_ns, 100);
    assert_int_equal(row(m, "ls.loop", 13)->time_ns, 5);
    assert_null(cp_mlines_text(&m->lines, 0)); /* no such file: no text */
    cp_model_free(m);
    codeprof_session_free(s);
}

/* Recursion: each frame has its own identity; the caller's line holds the
 * callee's time (line_profiler's convention). */
static void test_recursion_includes_callees(void **state) {
    (void)state;
    codeprof_session *s = lines_session();
    uint32_t f = gsite("ls.fib", "/nonexistent/ls.py", 20, CODEPROF_SITE_PYTHON);
    line(s, f, 21, 1); /* outer frame: the recursive call line */
    advance(10);
    line(s, f, 21, 2); /* inner frame */
    advance(40);
    line(s, f, 22, 2);
    advance(50);
    leave(s, f, 2);
    advance(10);
    leave(s, f, 1);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    const cp_mline *r21 = row(m, "ls.fib", 21), *r22 = row(m, "ls.fib", 22);
    assert_non_null(r21);
    assert_non_null(r22);
    assert_int_equal(r21->hits, 2);
    /* outer 21: 10 + 40 + 50 + 10 = 110; inner 21: 40 */
    assert_int_equal(r21->time_ns, 150);
    assert_int_equal(r22->hits, 1);
    assert_int_equal(r22->time_ns, 50);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* A generator: closed at each yield (the time it is suspended is not its
 * own), resumed mid-line without a new hit. */
static void test_generator_suspension_not_counted(void **state) {
    (void)state;
    codeprof_session *s = lines_session();
    uint32_t g = gsite("ls.gen", "/nonexistent/ls.py", 30, CODEPROF_SITE_PYTHON);
    line(s, g, 31, 0xB0);
    advance(20);
    leave(s, g, 0xB0); /* yield */
    advance(100000);   /* the consumer runs */
    resume(s, g, 31, 0xB0);
    advance(20);
    line(s, g, 32, 0xB0);
    advance(7);
    leave(s, g, 0xB0); /* return */
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(row(m, "ls.gen", 31)->hits, 1);
    assert_int_equal(row(m, "ls.gen", 31)->time_ns, 40);
    assert_int_equal(row(m, "ls.gen", 32)->time_ns, 7);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* A frame left without its end event (an exception the hook missed) is
 * closed when its caller's next line arrives. */
static void test_frame_ended_unseen(void **state) {
    (void)state;
    codeprof_session *s = lines_session();
    uint32_t f = gsite("ls.outer", "/nonexistent/ls.py", 40, CODEPROF_SITE_PYTHON);
    uint32_t g = gsite("ls.inner", "/nonexistent/ls.py", 50, CODEPROF_SITE_PYTHON);
    line(s, f, 41, 1);
    advance(5);
    line(s, g, 51, 2);
    advance(30);
    line(s, f, 42, 1); /* inner vanished */
    advance(3);
    leave(s, f, 1);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(row(m, "ls.inner", 51)->time_ns, 30);
    assert_int_equal(row(m, "ls.outer", 41)->time_ns, 35);
    assert_int_equal(row(m, "ls.outer", 42)->time_ns, 3);
    /* An end of a frame never opened, and the open line of a frame still
     * running, add nothing. */
    leave(s, f, 99);
    line(s, f, 43, 3);
    advance(1000);
    cp_model *m2 = cp_session_snapshot(s);
    assert_non_null(m2);
    assert_int_equal(row(m2, "ls.outer", 43)->hits, 1);
    assert_int_equal(row(m2, "ls.outer", 43)->time_ns, 0);
    cp_model_free(m2);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* Source text of every row, read from the function's file. */
static void test_source_text(void **state) {
    (void)state;
    char path[] = "/tmp/codeprof_linesink_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *src = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n"
                      "    return total\n";
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    codeprof_session *s = lines_session();
    uint32_t f = gsite("ls.textf", path, 1, CODEPROF_SITE_PYTHON);
    line(s, f, 2, 7);
    advance(1);
    line(s, f, 4, 7);
    advance(1);
    line(s, f, 9, 7); /* past the end of the file */
    leave(s, f, 7);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    unlink(path);
    int seen = 0;
    for (uint32_t i = 0; i < m->lines.n; i++) {
        const cp_mline *r = &m->lines.v[i];
        const char *t = cp_mlines_text(&m->lines, i);
        if (r->line == 2) {
            assert_string_equal(t, "    total = 0");
            seen++;
        } else if (r->line == 4) {
            assert_string_equal(t, "        total += i");
            seen++;
        } else if (r->line == 9) {
            assert_null(t);
            seen++;
        }
    }
    assert_int_equal(seen, 3);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* The caps: open frames per thread and rows; drops counted. */
static void test_caps_count_drops(void **state) {
    (void)state;
    cp_linesink *k = cp_linesink_new();
    assert_non_null(k);
    cp_tbuf tb;
    memset(&tb, 0, sizeof tb);
    tb.token = 42;
    cp_event e;
    memset(&e, 0, sizeof e);
    e.kind = CP_EV_LINE;
    e.site = 5;
    e.value = 1;
    for (uint32_t d = 0; d < CP_LINESINK_MAX_DEPTH + 10; d++) {
        e.aux = d + 1;
        e.tick = d;
        cp_linesink_consume(k, &tb, &e, 1);
    }
    assert_int_equal(cp_linesink_dropped(k), 10);
    /* threads: past the cap, a thread with no open frame gives its slot up
     * (nothing lost); while every one has one, events are dropped */
    cp_linesink_reset(k);
    for (uint32_t i = 0; i < CP_LINESINK_MAX_THREADS; i++) {
        tb.token = 1000 + i;
        e.aux = 1;
        e.value = 1;
        cp_linesink_consume(k, &tb, &e, 1); /* one open frame each */
    }
    tb.token = 99999;
    cp_linesink_consume(k, &tb, &e, 1);
    assert_int_equal(cp_linesink_dropped(k), 1);
    tb.token = 1000; /* its frame ends: its slot may go */
    e.value = 0;
    cp_linesink_consume(k, &tb, &e, 1);
    tb.token = 99999;
    e.value = 1;
    cp_linesink_consume(k, &tb, &e, 1);
    assert_int_equal(cp_linesink_dropped(k), 1);
    tb.token = 42;
    e.site = 5;
    /* rows: one frame walking through more lines than the cap */
    cp_linesink_reset(k);
    assert_int_equal(cp_linesink_dropped(k), 0);
    static cp_event many[1024];
    uint32_t total = CP_LINESINK_MAX_ROWS + 100, done = 0;
    while (done < total) {
        uint32_t n = 0;
        for (; n < 1024 && done < total; n++, done++) {
            memset(&many[n], 0, sizeof many[n]);
            many[n].kind = CP_EV_LINE;
            many[n].site = 5;
            many[n].value = done + 1;
            many[n].aux = 1;
            many[n].tick = done;
        }
        cp_linesink_consume(k, &tb, many, n);
    }
    assert_int_equal(cp_linesink_count(k), total);
    /* the rows past the cap: their hit and, for all but the last, their
     * close are refused */
    assert_true(cp_linesink_dropped(k) >= 100);
    assert_true(cp_linesink_dropped(k) <= 200);
    cp_linesink_free(k);
}

/* Threads have their own frame stacks: the same frame identity on two
 * threads is two frames. */
typedef struct th_arg {
    codeprof_session *s;
    uint32_t site;
} th_arg;

static void *th_body(void *p) {
    th_arg *a = p;
    for (int i = 0; i < 1000; i++) {
        line(a->s, a->site, 70, 1);
        line(a->s, a->site, 71, 1);
    }
    leave(a->s, a->site, 1);
    return NULL;
}

static void test_threads_apart(void **state) {
    (void)state;
    codeprof_session *s = lines_session();
    th_arg a = {s, gsite("ls.threaded", "/nonexistent/ls.py", 69, CODEPROF_SITE_PYTHON)};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, th_body, &a), 0);
    assert_int_equal(pthread_create(&t2, NULL, th_body, &a), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(row(m, "ls.threaded", 70)->hits, 2000);
    assert_int_equal(row(m, "ls.threaded", 71)->hits, 2000);
    assert_int_equal(m->lines.dropped, 0);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* Reset discards what was folded. */
static void test_reset(void **state) {
    (void)state;
    codeprof_session *s = lines_session();
    uint32_t f = gsite("ls.reset", "/nonexistent/ls.py", 60, CODEPROF_SITE_PYTHON);
    line(s, f, 61, 1);
    advance(10);
    leave(s, f, 1);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    assert_int_equal(codeprof_session_reset(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_null(row(m, "ls.reset", 61));
    cp_model_free(m);
    codeprof_session_free(s);
}

int main(void) {
    (void)new_session; /* the fixture's helpers this file does not use */
    (void)calls;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_and_time_per_line),
        cmocka_unit_test(test_recursion_includes_callees),
        cmocka_unit_test(test_generator_suspension_not_counted),
        cmocka_unit_test(test_frame_ended_unseen),
        cmocka_unit_test(test_source_text),
        cmocka_unit_test(test_caps_count_drops),
        cmocka_unit_test(test_threads_apart),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
