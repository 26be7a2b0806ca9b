/* test_jsonw.c -- the streaming JSON writer and the string buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/jsonw.h"
#include "report/strbuf.h"

/* Writes one string value and returns the buffer (caller frees). */
static char *json_of_string(const char *s, size_t n) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw w;
    cp_jsonw_init(&w, &sb);
    cp_jsonw_string_n(&w, s, n);
    assert_int_equal(cp_jsonw_finish(&w), 0);
    return cp_strbuf_detach(&sb, NULL);
}

static void check_json_str(const char *in, size_t n, const char *want) {
    char *got = json_of_string(in, n);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_escapes(void **state) {
    (void)state;
    check_json_str("plain", 5, "\"plain\"");
    check_json_str("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    check_json_str("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    check_json_str("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    /* an embedded NUL is data, not the end */
    check_json_str("a\0b", 3, "\"a\\u0000b\"");
    check_json_str("", 0, "\"\"");
    /* '/' needs no escape */
    check_json_str("a/b", 3, "\"a/b\"");
}

static void test_utf8_valid_kept(void **state) {
    (void)state;
    /* 2-, 3- and 4-byte sequences, including the extremes */
    const char *s = "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5 \xef\xbf\xbf \xf4\x8f\xbf\xbf";
    char want[64];
    snprintf(want, sizeof want, "\"%s\"", s);
    check_json_str(s, strlen(s), want);
}

static void test_utf8_invalid_replaced(void **state) {
    (void)state;
#define FFFD "\xef\xbf\xbd"
    check_json_str("a\x80z", 3, "\"a" FFFD "z\"");                 /* lone continuation */
    check_json_str("\xc0\xaf", 2, "\"" FFFD FFFD "\"");            /* overlong 2-byte lead */
    check_json_str("\xe0\x80\x80", 3, "\"" FFFD FFFD FFFD "\"");   /* overlong 3-byte */
    check_json_str("\xed\xa0\x80", 3, "\"" FFFD FFFD FFFD "\"");   /* surrogate D800 */
    check_json_str("\xf4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    check_json_str("\xf5", 1, "\"" FFFD "\"");
    check_json_str("\xff", 1, "\"" FFFD "\"");
    /* truncated sequence: one replacement for the maximal subpart */
    check_json_str("\xe2\x82", 2, "\"" FFFD "\"");
    check_json_str("\xe2\x82z", 3, "\"" FFFD "z\"");
    check_json_str("\xf0\x9f\x8e", 3, "\"" FFFD "\"");
#undef FFFD
}

static void test_numbers(void **state) {
    (void)state;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw w;
    cp_jsonw_init(&w, &sb);
    cp_jsonw_begin_array(&w);
    cp_jsonw_int(&w, 0);
    cp_jsonw_int(&w, -42);
    cp_jsonw_int(&w, INT64_MIN);
    cp_jsonw_uint(&w, UINT64_MAX);
    cp_jsonw_double(&w, 0.1);
    cp_jsonw_double(&w, -2.5);
    cp_jsonw_double(&w, 1e300);
    cp_jsonw_double(&w, NAN);
    cp_jsonw_double(&w, INFINITY);
    cp_jsonw_double(&w, -INFINITY);
    cp_jsonw_double(&w, 0.30000000000000004); /* needs 17 digits */
    cp_jsonw_seconds_ns(&w, 0);
    cp_jsonw_seconds_ns(&w, 1500000000u);
    cp_jsonw_seconds_ns(&w, 123);
    cp_jsonw_seconds_ns(&w, 2000000000u);
    cp_jsonw_seconds_ns(&w, 1234567891u);
    cp_jsonw_bool(&w, 1);
    cp_jsonw_bool(&w, 0);
    cp_jsonw_null(&w);
    cp_jsonw_string(&w, NULL);
    cp_jsonw_end_array(&w);
    assert_int_equal(cp_jsonw_finish(&w), 0);
    assert_string_equal(sb.data,
                        "[0,-42,-9223372036854775808,18446744073709551615,0.1,-2.5,1e+300,"
                        "null,null,null,0.30000000000000004,0,1.5,0.000000123,2,1.234567891,"
                        "true,false,null,null]");
    /* the long double form reads back exactly */
    assert_true(strtod("0.30000000000000004", NULL) == 0.30000000000000004);
    cp_strbuf_free(&sb);
}

static void test_double_locale_independent(void **state) {
    (void)state;
    /* Any installed locale with a comma decimal point; skip if none. */
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", NULL};
    const char *got = NULL;
    for (int i = 0; names[i] && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    if (!got)
        skip();
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw w;
    cp_jsonw_init(&w, &sb);
    cp_jsonw_double(&w, 2.5);
    setlocale(LC_NUMERIC, "C");
    assert_string_equal(sb.data, "2.5");
    cp_strbuf_free(&sb);
}

static void test_nesting_and_commas(void **state) {
    (void)state;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw w;
    cp_jsonw_init(&w, &sb);
    cp_jsonw_begin_object(&w);
    cp_jsonw_key(&w, "a");
    cp_jsonw_begin_array(&w);
    cp_jsonw_begin_object(&w);
    cp_jsonw_end_object(&w);
    cp_jsonw_begin_array(&w);
    cp_jsonw_end_array(&w);
    cp_jsonw_int(&w, 1);
    cp_jsonw_end_array(&w);
    cp_jsonw_key(&w, "k\"ey");
    cp_jsonw_begin_object(&w);
    cp_jsonw_key(&w, "x");
    cp_jsonw_null(&w);
    cp_jsonw_key(&w, "y");
    cp_jsonw_string(&w, "z");
    cp_jsonw_end_object(&w);
    cp_jsonw_end_object(&w);
    assert_int_equal(cp_jsonw_finish(&w), 0);
    assert_string_equal(sb.data, "{\"a\":[{},[],1],\"k\\\"ey\":{\"x\":null,\"y\":\"z\"}}");
    cp_strbuf_free(&sb);
}

static void test_deep_nesting(void **state) {
    (void)state;
    enum { D = 100000 };
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw w;
    cp_jsonw_init(&w, &sb);
    for (int i = 0; i < D; i++)
        cp_jsonw_begin_array(&w);
    for (int i = 0; i < D; i++)
        cp_jsonw_end_array(&w);
    assert_int_equal(cp_jsonw_finish(&w), 0);
    assert_int_equal(sb.len, 2 * D);
    assert_int_equal(sb.data[D - 1], '[');
    assert_int_equal(sb.data[D], ']');
    cp_strbuf_free(&sb);
}

static void test_misuse_flagged(void **state) {
    (void)state;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw w;

    cp_jsonw_init(&w, &sb); /* unclosed container */
    cp_jsonw_begin_object(&w);
    assert_int_equal(cp_jsonw_finish(&w), -1);

    cp_jsonw_init(&w, &sb); /* too many ends */
    cp_jsonw_end_array(&w);
    assert_int_equal(cp_jsonw_finish(&w), -1);

    cp_jsonw_init(&w, &sb); /* key after key */
    cp_jsonw_begin_object(&w);
    cp_jsonw_key(&w, "a");
    cp_jsonw_key(&w, "b");
    assert_true(cp_jsonw_failed(&w));

    cp_jsonw_init(&w, &sb); /* key with no value */
    cp_jsonw_begin_object(&w);
    cp_jsonw_key(&w, "a");
    cp_jsonw_end_object(&w);
    assert_int_equal(cp_jsonw_finish(&w), -1);
    cp_strbuf_free(&sb);
}

static void test_oom_flag(void **state) {
    (void)state;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    sb.limit = 64;
    cp_jsonw w;
    cp_jsonw_init(&w, &sb);
    cp_jsonw_begin_array(&w);
    for (int i = 0; i < 100; i++)
        cp_jsonw_string(&w, "0123456789");
    cp_jsonw_end_array(&w);
    assert_true(sb.oom);
    assert_true(cp_jsonw_failed(&w));
    assert_int_equal(cp_jsonw_finish(&w), -1);
    assert_true(sb.len <= 64);
    /* sticky: later appends are ignored even if small */
    size_t before = sb.len;
    cp_strbuf_putc(&sb, 'x');
    assert_int_equal(sb.len, before);
    assert_null(cp_strbuf_detach(&sb, NULL));
    assert_null(sb.data);
    assert_int_equal(sb.limit, 64);
    assert_false(sb.oom);
}

static void test_strbuf_basics(void **state) {
    (void)state;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    size_t n = 99;
    char *empty = cp_strbuf_detach(&sb, &n);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    assert_int_equal(n, 0);
    free(empty);

    cp_strbuf_puts(&sb, "ab");
    cp_strbuf_fill(&sb, '-', 3);
    cp_strbuf_printf(&sb, "%d|%s", 42, "x");
    /* a printf longer than the initial capacity grows the buffer */
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cp_strbuf_printf(&sb, "%s", big);
    assert_int_equal(sb.len, 2 + 3 + 4 + 999);
    assert_memory_equal(sb.data, "ab---42|xqq", 11);
    assert_int_equal(sb.data[sb.len], '\0');
    char *s = cp_strbuf_detach(&sb, &n);
    assert_int_equal(n, 1008);
    assert_int_equal(strlen(s), 1008);
    free(s);
    assert_int_equal(sb.len, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8_valid_kept),
        cmocka_unit_test(test_utf8_invalid_replaced),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_double_locale_independent),
        cmocka_unit_test(test_nesting_and_commas),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_misuse_flagged),
        cmocka_unit_test(test_oom_flag),
        cmocka_unit_test(test_strbuf_basics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
