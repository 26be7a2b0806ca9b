/* test_warnings.c -- a session's bounded warning list (core/warnings.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/warnings.h"

static codeprof_session *new_session(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

static void test_no_warnings_by_default(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    cp_warning w[2];
    uint64_t dropped = 7;
    assert_int_equal(cp_session_warnings(s, w, 2, &dropped), 0);
    assert_int_equal(dropped, 0);
    codeprof_session_free(s);
}

static void test_warnings_are_copied_in_order(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    char msg[32];
    snprintf(msg, sizeof msg, "thread %d lost", 1);
    assert_int_equal(codeprof_session_warn(s, "tracer_thread_lost", msg), CODEPROF_OK);
    msg[7] = '2'; /* the session kept its own copy */
    assert_int_equal(codeprof_session_warn(s, "other", "second"), CODEPROF_OK);
    cp_warning w[4];
    assert_int_equal(cp_session_warnings(s, w, 4, NULL), 2);
    assert_string_equal(w[0].code, "tracer_thread_lost");
    assert_string_equal(w[0].message, "thread 1 lost");
    assert_string_equal(w[1].code, "other");
    assert_true(w[0].unix_ns > 0);
    /* a smaller buffer gets the oldest */
    assert_int_equal(cp_session_warnings(s, w, 1, NULL), 1);
    assert_string_equal(w[0].message, "thread 1 lost");
    codeprof_session_free(s);
}

static void test_bounded_with_drop_counter_and_truncation(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < CP_WARNINGS_MAX + 10; i++)
        assert_int_equal(codeprof_session_warn(s, big, big), CODEPROF_OK);
    static cp_warning w[CP_WARNINGS_MAX + 10];
    uint64_t dropped = 0;
    assert_int_equal(cp_session_warnings(s, w, CP_WARNINGS_MAX + 10, &dropped), CP_WARNINGS_MAX);
    assert_int_equal(dropped, 10);
    assert_int_equal(strlen(w[0].code), CP_WARNING_CODE_MAX - 1);
    assert_int_equal(strlen(w[CP_WARNINGS_MAX - 1].message), CP_WARNING_MESSAGE_MAX - 1);
    codeprof_session_free(s);
}

static void test_invalid_arguments(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    assert_int_equal(codeprof_session_warn(NULL, "c", "m"), CODEPROF_EINVAL);
    assert_int_equal(codeprof_session_warn(s, NULL, "m"), CODEPROF_EINVAL);
    assert_int_equal(codeprof_session_warn(s, "c", NULL), CODEPROF_EINVAL);
    assert_int_equal(cp_session_warnings(s, NULL, 0, NULL), 0);
    codeprof_session_free(s);
}

static void *warn_many(void *arg) {
    codeprof_session *s = arg;
    for (int i = 0; i < 1000; i++)
        codeprof_session_warn(s, "t", "concurrent");
    return NULL;
}

static void test_concurrent_warnings_are_all_counted(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, warn_many, s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    static cp_warning w[CP_WARNINGS_MAX];
    uint64_t dropped = 0;
    size_t n = cp_session_warnings(s, w, CP_WARNINGS_MAX, &dropped);
    assert_int_equal(n + dropped, 4000);
    codeprof_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_warnings_by_default),
        cmocka_unit_test(test_warnings_are_copied_in_order),
        cmocka_unit_test(test_bounded_with_drop_counter_and_truncation),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_concurrent_warnings_are_all_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
