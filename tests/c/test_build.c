/* test_build.c -- the model build (src/model/build.c) from session state the
 * Python tracer fills: meta python_traced and hidden_calls, what reset does
 * to them, and how merging models combines them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>

#include "codeprof/codeprof.h"
#include "core/session.h"
#include "model/model.h"
#include "session_fixture.h"

static cp_model *snap(codeprof_session *s) {
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    return m;
}

static void test_untraced_session_says_so(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    calls(s, gsite("b_plain", "build.c", 1, CODEPROF_SITE_SCOPE), 2, 100);
    cp_model *m = snap(s);
    assert_int_equal(m->python_traced, 0);
    assert_int_equal(m->hidden_calls, 0);
    cp_model_free(m);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    codeprof_session_free(s);
}

static void test_tracer_state_reaches_the_model_and_reset_clears_the_count(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    /* what cp_py_tracer_start and the tracer's hot path do */
    atomic_store(&s->python_traced, 1);
    cp_session_count_hidden(s, 5);
    cp_session_count_hidden(s, 2);
    cp_model *m = snap(s);
    assert_int_equal(m->python_traced, 1);
    assert_int_equal(m->hidden_calls, 7);
    cp_model_free(m);

    /* reset (of a stopped session) discards what was counted; the flag says
     * the tracer recorded into this session, which stays true */
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    assert_int_equal(codeprof_session_reset(s), CODEPROF_OK);
    m = snap(s);
    assert_int_equal(m->hidden_calls, 0);
    assert_int_equal(m->python_traced, 1);
    cp_model_free(m);
    codeprof_session_free(s);
}

static void test_merge_adds_hidden_calls_and_ors_python_traced(void **state) {
    (void)state;
    codeprof_session *a = new_session(), *b = new_session();
    assert_int_equal(codeprof_session_start(a), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(b), CODEPROF_OK);
    cp_session_count_hidden(a, 3);
    atomic_store(&b->python_traced, 1);
    cp_session_count_hidden(b, 4);
    cp_model *ma = snap(a), *mb = snap(b);
    assert_int_equal(ma->python_traced, 0);
    assert_int_equal(cp_model_merge(ma, mb, 1), 0);
    assert_int_equal(ma->python_traced, 1);
    assert_int_equal(ma->hidden_calls, 7);
    cp_model_free(ma);
    cp_model_free(mb);
    assert_int_equal(codeprof_session_stop(a), CODEPROF_OK);
    assert_int_equal(codeprof_session_stop(b), CODEPROF_OK);
    codeprof_session_free(a);
    codeprof_session_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untraced_session_says_so),
        cmocka_unit_test(test_tracer_state_reaches_the_model_and_reset_clears_the_count),
        cmocka_unit_test(test_merge_adds_hidden_calls_and_ors_python_traced),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
