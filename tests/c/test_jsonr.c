/* test_jsonr.c -- the JSON reader: grammar, strings, numbers read back
 * exactly, limits, and errors that give the byte offset and what was
 * expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/jsonr.h"

static cp_jsonr_doc *parse_ok(const char *s) {
    cp_jsonr_doc *d = NULL;
    cp_jsonr_error e = {0, ""};
    int rc = cp_jsonr_parse(s, strlen(s), NULL, &d, &e);
    if (rc != 0)
        fail_msg("parse of %s failed at %zu: %s", s, e.offset, e.message);
    assert_non_null(d);
    return d;
}

/* Parses `s`, expects failure at `offset` with `needle` in the message. */
static void parse_bad(const char *s, size_t len, size_t offset, const char *needle) {
    cp_jsonr_doc *d = (cp_jsonr_doc *)0x1;
    cp_jsonr_error e = {0, ""};
    assert_int_equal(cp_jsonr_parse(s, len, NULL, &d, &e), -1);
    assert_null(d);
    if (e.offset != offset || !strstr(e.message, needle))
        fail_msg("input %.40s: error at %zu \"%s\", expected %zu and \"%s\"", s, e.offset,
                 e.message, offset, needle);
}

static void test_values_and_lookup(void **state) {
    (void)state;
    cp_jsonr_doc *d = parse_ok(
        " {\"a\": [1, -2, 3.5e2, true, false, null, \"x\"], \"b\": {}, \"c\": [] ,\"a\":0}\n");
    const cp_jval *root = cp_jsonr_root(d);
    assert_int_equal(root->type, CP_JOBJECT);
    assert_int_equal(root->len, 4);
    const cp_jval *a = cp_jsonr_get(root, "a");
    assert_non_null(a); /* the first of two members named "a" */
    assert_int_equal(a->type, CP_JARRAY);
    assert_int_equal(a->len, 7);
    uint64_t u = 0;
    int64_t i = 0;
    double x = 0;
    assert_int_equal(cp_jsonr_u64(&a->u.kids[0], &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(cp_jsonr_u64(&a->u.kids[1], &u), -1); /* negative */
    assert_int_equal(cp_jsonr_i64(&a->u.kids[1], &i), 0);
    assert_int_equal(i, -2);
    assert_int_equal(cp_jsonr_i64(&a->u.kids[2], &i), -1); /* not an integer */
    assert_int_equal(cp_jsonr_double(&a->u.kids[2], &x), 0);
    assert_true(x == 350.0);
    assert_int_equal(a->u.kids[3].type, CP_JBOOL);
    assert_int_equal(a->u.kids[3].boolean, 1);
    assert_int_equal(a->u.kids[4].boolean, 0);
    assert_int_equal(a->u.kids[5].type, CP_JNULL);
    assert_string_equal(a->u.kids[6].u.str, "x");
    assert_int_equal(cp_jsonr_u64(&a->u.kids[6], &u), -1); /* a string is no number */
    assert_int_equal(cp_jsonr_get(root, "b")->type, CP_JOBJECT);
    assert_int_equal(cp_jsonr_get(root, "b")->len, 0);
    assert_int_equal(cp_jsonr_get(root, "c")->len, 0);
    assert_null(cp_jsonr_get(root, "missing"));
    assert_null(cp_jsonr_get(a, "a")); /* not an object */
    assert_null(cp_jsonr_get(NULL, "a"));
    cp_jsonr_free(d);
    cp_jsonr_free(NULL);
}

static void test_strings(void **state) {
    (void)state;
    cp_jsonr_doc *d = parse_ok("[\"a\\\"b\\\\c\\/\\n\\t\\r\\b\\f\", \"\\u00e9\\u20ac\", "
                               "\"\\ud83d\\ude00\", \"\\ud800x\", \"\\udc00\", \"caf\xc3\xa9\", "
                               "\"nul\\u0000in\"]");
    const cp_jval *r = cp_jsonr_root(d);
    assert_string_equal(r->u.kids[0].u.str, "a\"b\\c/\n\t\r\b\f");
    assert_string_equal(r->u.kids[1].u.str, "\xc3\xa9\xe2\x82\xac");
    assert_string_equal(r->u.kids[2].u.str, "\xf0\x9f\x98\x80"); /* surrogate pair */
    assert_string_equal(r->u.kids[3].u.str, "\xef\xbf\xbdx");    /* lone high: U+FFFD */
    assert_string_equal(r->u.kids[4].u.str, "\xef\xbf\xbd");     /* lone low */
    assert_string_equal(r->u.kids[5].u.str, "caf\xc3\xa9");      /* raw UTF-8 kept */
    assert_int_equal(r->u.kids[6].len, 6);                       /* embedded NUL counted */
    assert_memory_equal(r->u.kids[6].u.str, "nul\0in", 6);
    cp_jsonr_free(d);
}

/* JSON text is UTF-8: a string holding bytes that are not is refused at
 * the first bad byte (the writer would print them as U+FFFD). */
static void test_invalid_utf8_refused(void **state) {
    (void)state;
    parse_bad("[\"ab\xff\"]", 6, 4, "invalid UTF-8 byte 0xff");
    parse_bad("[\"\xc3\"]", 4, 2, "invalid UTF-8 byte 0xc3");      /* cut sequence */
    parse_bad("[\"\xc0\xaf\"]", 5, 2, "invalid UTF-8 byte 0xc0"); /* overlong */
    parse_bad("[\"\xed\xa0\x80\"]", 6, 2, "invalid UTF-8");     /* surrogate */
    cp_jsonr_doc *d = parse_ok("[\"\xf0\x9f\x98\x80\"]");
    assert_string_equal(cp_jsonr_root(d)->u.kids[0].u.str, "\xf0\x9f\x98\x80");
    cp_jsonr_free(d);
}

static void check_ns(const char *num, int rc, uint64_t want) {
    cp_jsonr_doc *d = parse_ok(num);
    uint64_t got = 12345;
    int r = cp_jsonr_ns(cp_jsonr_root(d), &got);
    if (r != rc || (rc == 0 && got != want))
        fail_msg("%s: rc %d ns %llu, expected rc %d ns %llu", num, r, (unsigned long long)got, rc,
                 (unsigned long long)want);
    cp_jsonr_free(d);
}

static void test_seconds_to_ns_exact(void **state) {
    (void)state;
    check_ns("0", 0, 0);
    check_ns("-0", 0, 0);
    check_ns("1.5", 0, 1500000000ull);
    check_ns("0.000000123", 0, 123);
    check_ns("12345.123456789", 0, 12345123456789ull); /* more digits than a double keeps exactly */
    check_ns("18446744073.709551615", 0, UINT64_MAX);
    check_ns("18446744073.709551616", -1, 0); /* past 2^64 ns */
    check_ns("0.0000000015", 0, 2);           /* rounded half up */
    check_ns("0.0000000014", 0, 1);
    check_ns("1e-9", 0, 1);
    check_ns("2.5E+3", 0, 2500000000000ull);
    check_ns("1e-400", 0, 0);
    check_ns("1e400", -1, 0);
    check_ns("-1", -1, 0);
    check_ns("0.000", 0, 0);
    /* integers exact past 2^53 */
    cp_jsonr_doc *d = parse_ok("[18446744073709551615, 18446744073709551616, -9223372036854775808, "
                               "9223372036854775808]");
    const cp_jval *r = cp_jsonr_root(d);
    uint64_t u;
    int64_t i;
    assert_int_equal(cp_jsonr_u64(&r->u.kids[0], &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(cp_jsonr_u64(&r->u.kids[1], &u), -1);
    assert_int_equal(cp_jsonr_i64(&r->u.kids[2], &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(cp_jsonr_i64(&r->u.kids[3], &i), -1);
    cp_jsonr_free(d);
}

static void test_double_ignores_locale(void **state) {
    (void)state;
    /* a locale whose decimal separator is ',' must not change the result */
    const char *had = setlocale(LC_NUMERIC, NULL);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", had ? had : "C");
    int switched = setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL ||
                   setlocale(LC_NUMERIC, "fr_FR.UTF-8") != NULL;
    cp_jsonr_doc *d = parse_ok("0.25");
    double x = 0;
    assert_int_equal(cp_jsonr_double(cp_jsonr_root(d), &x), 0);
    assert_true(x == 0.25);
    cp_jsonr_free(d);
    setlocale(LC_NUMERIC, saved);
    (void)switched; /* without such a locale installed the check is the plain one */
}

static void test_errors_name_offset_and_expectation(void **state) {
    (void)state;
    parse_bad("", 0, 0, "expected a value");
    parse_bad("{\"a\" 1}", 7, 5, "expected ':'");
    parse_bad("{\"a\":1,}", 8, 7, "expected a string key");
    parse_bad("[1,]", 4, 3, "expected a value");
    parse_bad("[1 2]", 5, 3, "expected ',' or ']'");
    parse_bad("{\"a\":1 \"b\"}", 11, 7, "expected ',' or '}'");
    parse_bad("[1", 2, 2, "expected ',' or ']'");
    parse_bad("\"abc", 4, 0, "unterminated string");
    parse_bad("\"a\\qb\"", 6, 2, "invalid escape");
    parse_bad("\"\\u12g4\"", 8, 1, "four hex digits");
    parse_bad("\"a\tb\"", 5, 2, "control character");
    parse_bad("01", 2, 1, "leading zero");
    parse_bad("1.", 2, 2, "after the decimal point");
    parse_bad("1e+", 3, 3, "exponent");
    parse_bad("-", 1, 1, "expected a digit");
    parse_bad("tru", 3, 0, "expected a value");
    parse_bad("nul", 3, 0, "expected a value");
    parse_bad("NaN", 3, 0, "expected a value");
    parse_bad("{} x", 4, 3, "unexpected data after");
    parse_bad("[\"a\\", 4, 1, "unterminated string");
    /* a NUL byte inside the input is not whitespace */
    parse_bad("[1]\0", 4, 3, "unexpected data after");
}

static void test_limits(void **state) {
    (void)state;
    /* depth: 4 levels allowed, the fifth refused at its bracket */
    cp_jsonr_limits lim = {0, 4};
    cp_jsonr_doc *d = NULL;
    cp_jsonr_error e = {0, ""};
    assert_int_equal(cp_jsonr_parse("[[[[1]]]]", 9, &lim, &d, &e), 0);
    cp_jsonr_free(d);
    assert_int_equal(cp_jsonr_parse("[[[[[1]]]]]", 11, &lim, &d, &e), -1);
    assert_int_equal(e.offset, 4);
    assert_non_null(strstr(e.message, "nesting deeper than 4"));
    /* the default depth cap holds against a deep document without crashing */
    size_t n = 200000;
    char *deep = malloc(n);
    assert_non_null(deep);
    memset(deep, '[', n);
    assert_int_equal(cp_jsonr_parse(deep, n, NULL, &d, &e), -1);
    assert_int_equal(e.offset, CP_JSONR_MAX_DEPTH);
    free(deep);
    /* size */
    cp_jsonr_limits small = {8, 0};
    assert_int_equal(cp_jsonr_parse("[1,2,3,4,5]", 11, &small, &d, &e), -1);
    assert_non_null(strstr(e.message, "at most 8"));
    assert_null(d);
    /* NULL arguments */
    assert_int_equal(cp_jsonr_parse(NULL, 3, NULL, &d, &e), -1);
    assert_int_equal(cp_jsonr_parse("1", 1, NULL, NULL, NULL), -1);
}

static void test_many_values(void **state) {
    (void)state;
    /* containers larger than one arena chunk and than the scratch stack's first size */
    size_t n = 100000;
    char *s = malloc(n * 8 + 16);
    assert_non_null(s);
    size_t k = 0;
    s[k++] = '[';
    for (size_t i = 0; i < n; i++)
        k += (size_t)sprintf(s + k, "%s[%zu]", i ? "," : "", i);
    s[k++] = ']';
    cp_jsonr_doc *d = NULL;
    assert_int_equal(cp_jsonr_parse(s, k, NULL, &d, NULL), 0);
    const cp_jval *r = cp_jsonr_root(d);
    assert_int_equal(r->len, n);
    uint64_t u;
    assert_int_equal(cp_jsonr_u64(&r->u.kids[n - 1].u.kids[0], &u), 0);
    assert_int_equal(u, n - 1);
    cp_jsonr_free(d);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_lookup),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_invalid_utf8_refused),
        cmocka_unit_test(test_seconds_to_ns_exact),
        cmocka_unit_test(test_double_ignores_locale),
        cmocka_unit_test(test_errors_name_offset_and_expectation),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
