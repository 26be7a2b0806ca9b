/* test_timeline.c -- the timeline sink (src/core/timeline.c): its two
 * bounded stores.  Explicit scopes, attributes and marks go to one store
 * and traced calls (ENTER/EXIT without CP_EVF_EXPLICIT) to another, each
 * keeping its first half and its last half and counting the middle; a
 * flood of traced calls never pushes a scope out; traced calls are kept
 * only when asked for; reset empties both.  Then the same through a
 * session: the model's timeline_traced stream holds model sites and
 * monotonic ns, with its own drop count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/event.h"
#include "core/session.h"
#include "core/tbuf.h"
#include "core/timeline.h"
#include "model/model.h"

/* One event of thread `t` into the sink; `value` numbers it. */
static void feed(cp_sink *sk, const cp_tbuf *t, uint16_t kind, uint16_t flags, int64_t value) {
    cp_event e;
    memset(&e, 0, sizeof e);
    e.tick = (uint64_t)value + 1;
    e.kind = kind;
    e.flags = flags;
    e.site = 7;
    e.value = value;
    sk->consume(sk->ctx, t, &e, 1);
}

static cp_tbuf *thread_buf(uint32_t index) {
    cp_tbuf *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->thread_index = index;
    return t;
}

/* Explicit events fill their store exactly while 200 traced events go
 * through the traced store: first 3 and last 3 kept, 194 dropped. */
static void test_streams_are_separate_and_bounded(void **state) {
    (void)state;
    cp_timeline *tl = cp_timeline_new(8, 6, 1);
    assert_non_null(tl);
    cp_sink sk = cp_timeline_sink(tl);
    cp_tbuf *t = thread_buf(3);
    int64_t traced_seq = 0, explicit_seq = 1000;
    for (int i = 0; i < 100; i++) {
        feed(&sk, t, CP_EV_ENTER, 0, traced_seq++);
        if (i % 25 == 0 && explicit_seq < 1008) { /* 4 times: 8 explicit-stream events */
            feed(&sk, t, CP_EV_ENTER, CP_EVF_EXPLICIT, explicit_seq++);
            feed(&sk, t, i == 50 ? CP_EV_MARK : CP_EV_EXIT, CP_EVF_EXPLICIT, explicit_seq++);
        }
        feed(&sk, t, CP_EV_EXIT, 0, traced_seq++);
    }
    uint32_t n = 0;
    cp_tl_event *ex = cp_timeline_copy(&tl->scopes, &n);
    assert_int_equal(n, 8);
    assert_int_equal(tl->scopes.dropped, 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(ex[i].value, 1000 + (int64_t)i);
        assert_int_equal(ex[i].thread, 3);
    }
    assert_int_equal(ex[5].kind, CP_EV_MARK);
    assert_int_equal(cp_timeline_seam(&tl->scopes), 0); /* nothing dropped: continuous */
    free(ex);
    cp_tl_event *tr = cp_timeline_copy(&tl->traced, &n);
    assert_int_equal(n, 6);
    assert_int_equal(tl->traced.dropped, 200 - 6);
    const int64_t want[] = {0, 1, 2, 197, 198, 199}; /* first half, last half */
    assert_int_equal(cp_timeline_seam(&tl->traced), 3); /* the jump: between 2 and 197 */
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(tr[i].value, want[i]);
        assert_int_equal(tr[i].kind, want[i] % 2 ? CP_EV_EXIT : CP_EV_ENTER);
        assert_int_equal(tr[i].flags & CP_EVF_EXPLICIT, 0);
        assert_int_equal(tr[i].site, 7);
    }
    free(tr);
    /* reset empties both stores and keeps their caps */
    cp_timeline_reset(tl);
    assert_null(cp_timeline_copy(&tl->scopes, &n));
    assert_int_equal(n, 0);
    assert_null(cp_timeline_copy(&tl->traced, &n));
    assert_int_equal(tl->traced.dropped, 0);
    for (int i = 0; i < 10; i++)
        feed(&sk, t, CP_EV_ENTER, 0, i);
    tr = cp_timeline_copy(&tl->traced, &n);
    assert_int_equal(n, 6);
    assert_int_equal(tl->traced.dropped, 4);
    free(tr);
    free(t);
    cp_timeline_free(tl);
}

/* A full explicit store drops its own middle; the traced store is not
 * touched by it (and the reverse is shown above). */
static void test_full_explicit_store_leaves_traced_alone(void **state) {
    (void)state;
    cp_timeline *tl = cp_timeline_new(4, 100, 1);
    cp_sink sk = cp_timeline_sink(tl);
    cp_tbuf *t = thread_buf(0);
    for (int i = 0; i < 10; i++)
        feed(&sk, t, i % 2 ? CP_EV_EXIT : CP_EV_ENTER, CP_EVF_EXPLICIT | CP_EVF_ITEM, i);
    for (int i = 0; i < 4; i++)
        feed(&sk, t, i % 2 ? CP_EV_EXIT : CP_EV_ENTER, 0, 100 + i);
    uint32_t n = 0;
    cp_tl_event *ex = cp_timeline_copy(&tl->scopes, &n);
    assert_int_equal(n, 4);
    assert_int_equal(tl->scopes.dropped, 6);
    assert_int_equal(ex[0].value, 0);
    assert_int_equal(ex[1].value, 1);
    assert_int_equal(ex[2].value, 8);
    assert_int_equal(ex[3].value, 9);
    free(ex);
    cp_tl_event *tr = cp_timeline_copy(&tl->traced, &n);
    assert_int_equal(n, 4);
    assert_int_equal(tl->traced.dropped, 0);
    assert_int_equal(tr[0].value, 100);
    assert_int_equal(tr[3].value, 103);
    free(tr);
    free(t);
    cp_timeline_free(tl);
}

/* Without the flag, or with a traced cap of 0, traced calls are neither
 * kept nor counted as dropped (they were never asked for). */
static void test_traced_calls_only_when_asked(void **state) {
    (void)state;
    const struct {
        uint32_t traced_cap;
        int traced;
    } cases[] = {{100, 0}, {0, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cp_timeline *tl = cp_timeline_new(100, cases[c].traced_cap, cases[c].traced);
        assert_int_equal(tl->keep_traced, 0);
        cp_sink sk = cp_timeline_sink(tl);
        cp_tbuf *t = thread_buf(0);
        for (int i = 0; i < 50; i++)
            feed(&sk, t, i % 2 ? CP_EV_EXIT : CP_EV_ENTER, 0, i);
        feed(&sk, t, CP_EV_ENTER, CP_EVF_EXPLICIT, 50);
        uint32_t n = 0;
        assert_null(cp_timeline_copy(&tl->traced, &n));
        assert_int_equal(n, 0);
        assert_int_equal(tl->traced.dropped, 0);
        cp_tl_event *ex = cp_timeline_copy(&tl->scopes, &n);
        assert_int_equal(n, 1);
        assert_int_equal(ex[0].value, 50);
        free(ex);
        free(t);
        cp_timeline_free(tl);
    }
}

/* Through a session and its model: traced calls in m->timeline_traced
 * (model sites, ticks as monotonic ns in order), bounded by
 * timeline_traced_events with timeline_traced_dropped; the explicit
 * timeline holds exactly the scopes. */
static void test_session_model_has_traced_stream(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.flags |= CODEPROF_CFG_TIMELINE_TRACED;
    cfg.timeline_events = 64;
    cfg.timeline_traced_events = 10;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    uint32_t fn = codeprof_site("traced_fn", "t.py", 3, CODEPROF_SITE_FUNCTION);
    uint32_t sc = codeprof_site("tl_scope", NULL, 0, CODEPROF_SITE_SCOPE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    codeprof_scope_begin(s, sc, 0);
    for (int i = 0; i < 50; i++) {
        cp_emit(s, CP_EV_ENTER, 0, fn, 0, 0);
        cp_emit(s, CP_EV_EXIT, 0, fn, 0, 0);
    }
    codeprof_scope_end(s, sc, 0);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(m->ntimeline, 2);
    assert_int_equal(m->timeline_dropped, 0);
    assert_int_equal(m->ntimeline_traced, 10);
    assert_int_equal(m->timeline_traced_dropped, 90);
    assert_int_equal(m->timeline_traced_seam, 5);
    for (uint32_t i = 0; i < m->ntimeline_traced; i++) {
        const cp_tl_event *e = &m->timeline_traced[i];
        assert_string_equal(cp_model_site(m, e->site)->name, "traced_fn");
        assert_int_equal(e->kind, i % 2 ? CP_EV_EXIT : CP_EV_ENTER);
        if (i)
            assert_true(e->tick >= m->timeline_traced[i - 1].tick);
    }
    /* the traced calls lie inside the scope, on the same time axis */
    assert_true(m->timeline[0].tick <= m->timeline_traced[0].tick);
    assert_true(m->timeline_traced[9].tick <= m->timeline[1].tick);
    assert_string_equal(cp_model_site(m, m->timeline[0].site)->name, "tl_scope");
    cp_model_free(m);
    codeprof_session_free(s);

    /* the flag off: no traced stream, nothing counted */
    cfg.flags &= ~(uint32_t)CODEPROF_CFG_TIMELINE_TRACED;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    cp_emit(s, CP_EV_ENTER, 0, fn, 0, 0);
    cp_emit(s, CP_EV_EXIT, 0, fn, 0, 0);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    m = cp_session_snapshot(s);
    assert_int_equal(m->ntimeline_traced, 0);
    assert_null(m->timeline_traced);
    assert_int_equal(m->timeline_traced_dropped, 0);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* timeline_events = 0 turns the explicit stream off (its events neither
 * kept nor counted) but traced calls asked for are still kept (the sink
 * stays registered). */
static void test_traced_without_explicit_stream(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.flags |= CODEPROF_CFG_TIMELINE_TRACED;
    cfg.timeline_events = 0;
    cfg.timeline_traced_events = 100;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    uint32_t fn = codeprof_site("traced_only", NULL, 0, CODEPROF_SITE_FUNCTION);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    codeprof_scope_begin(s, fn, 0);
    cp_emit(s, CP_EV_ENTER, 0, fn, 0, 0);
    cp_emit(s, CP_EV_EXIT, 0, fn, 0, 0);
    codeprof_scope_end(s, fn, 0);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_int_equal(m->ntimeline, 0);
    assert_int_equal(m->timeline_dropped, 0);
    assert_int_equal(m->ntimeline_traced, 2);
    assert_int_equal(m->timeline_traced_seam, 0);
    cp_model_free(m);
    codeprof_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_are_separate_and_bounded),
        cmocka_unit_test(test_full_explicit_store_leaves_traced_alone),
        cmocka_unit_test(test_traced_calls_only_when_asked),
        cmocka_unit_test(test_session_model_has_traced_stream),
        cmocka_unit_test(test_traced_without_explicit_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
