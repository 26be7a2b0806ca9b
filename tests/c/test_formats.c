/* test_formats.c -- format names and the file endings that ask for them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "codeprof/codeprof.h"

static void names_round_trip(void **state) {
    (void)state;
    for (int i = 0; i < CODEPROF_FORMAT_COUNT_; i++) {
        const char *n = codeprof_format_name((codeprof_format)i);
        assert_non_null(n);
        codeprof_format f;
        assert_int_equal(codeprof_format_parse(n, &f), CODEPROF_OK);
        assert_int_equal(f, i);
    }
    codeprof_format f;
    assert_null(codeprof_format_name(CODEPROF_FORMAT_COUNT_));
    assert_int_equal(codeprof_format_parse("JSON", &f), CODEPROF_EINVAL);
    assert_int_equal(codeprof_format_parse(NULL, &f), CODEPROF_EINVAL);
}

static void endings(void **state) {
    (void)state;
    static const struct {
        const char *path;
        codeprof_status st;
        codeprof_format fmt;
    } cases[] = {
        {"r.json", CODEPROF_OK, CODEPROF_FORMAT_JSON},
        {"a/b/r.speedscope.json", CODEPROF_OK, CODEPROF_FORMAT_SPEEDSCOPE},
        {"r.trace.json", CODEPROF_OK, CODEPROF_FORMAT_TRACE},
        {"r.perfetto.json", CODEPROF_OK, CODEPROF_FORMAT_TRACE},
        {"r.txt", CODEPROF_OK, CODEPROF_FORMAT_TEXT},
        {"r.prof", CODEPROF_OK, CODEPROF_FORMAT_PSTATS},
        {"r.pstats", CODEPROF_OK, CODEPROF_FORMAT_PSTATS},
        {"r.collapsed", CODEPROF_OK, CODEPROF_FORMAT_COLLAPSED},
        {".json", CODEPROF_EINVAL, 0}, /* a name that is only the ending */
        {"r.html", CODEPROF_EINVAL, 0},
        {"r", CODEPROF_EINVAL, 0},
        {"r.JSON", CODEPROF_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        codeprof_format f = (codeprof_format)99;
        assert_int_equal(codeprof_format_for_path(cases[i].path, &f), cases[i].st);
        if (cases[i].st == CODEPROF_OK)
            assert_int_equal(f, cases[i].fmt);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_round_trip),
        cmocka_unit_test(endings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
