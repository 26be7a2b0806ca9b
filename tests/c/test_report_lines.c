/* test_report_lines.c -- the report's "lines" section (report_lines.c):
 * functions ordered by total, shares, the top_functions bound, the text
 * block, and the round trip through a saved report (read_lines in
 * model_json.c); a malformed section is an error naming its path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "model/model_json.h"
#include "model_fixture.h"
#include "report/report.h"
#include "report/strbuf.h"

/* Two timed functions (slow: 3 s, fast: 1 s) and one sampled-only one. */
static cp_model *lines_model(void) {
    cp_model *m = fx_model();
    uint32_t slow = fx_site(m, "app.slow", "/src/app.py", 10, CODEPROF_SITE_PYTHON);
    uint32_t fast = fx_site(m, "app.fast", "/src/app.py", 30, CODEPROF_SITE_PYTHON);
    uint32_t smp = fx_site(m, "lib.sampled", "/src/lib.py", 5, CODEPROF_SITE_PYTHON);
    assert_int_equal(cp_mlines_add(&m->lines, fast, 31, 10, FX_S(1), 0, 0), 0);
    assert_int_equal(cp_mlines_add(&m->lines, slow, 12, 1000, FX_S(2.25), 7, FX_S(0.07)), 0);
    assert_int_equal(cp_mlines_add(&m->lines, slow, 11, 1, FX_S(0.75), 0, 0), 0);
    assert_int_equal(cp_mlines_add(&m->lines, smp, 6, 0, 0, 30, FX_S(0.3)), 0);
    assert_int_equal(cp_mlines_add(&m->lines, smp, 7, 0, 0, 10, FX_S(0.1)), 0);
    cp_mlines_finish(&m->lines);
    for (uint32_t i = 0; i < m->lines.n; i++)
        if (m->lines.v[i].line == 12)
            assert_int_equal(cp_mlines_set_text(&m->lines, i, "    y = \"hot\" * n\n", 18), 0);
    m->lines.exact = 1;
    m->lines.dropped = 3;
    return m;
}

static char *json_of(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

/* The "lines" value of a report (copied). */
static char *lines_section(const char *json) {
    const char *p = strstr(json, "\"lines\": {");
    if (!p)
        p = strstr(json, "\"lines\":{");
    assert_non_null(p);
    const char *q = strstr(p, "\"dropped\"");
    assert_non_null(q);
    q = strchr(q, '}');
    assert_non_null(q);
    size_t n = (size_t)(q + 1 - p);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void test_section_order_and_shares(void **state) {
    (void)state;
    cp_model *m = lines_model();
    char *j = json_of(m);
    char *sec = lines_section(j);
    /* by total: slow 3 s, fast 1 s, then the sampled-only one (0.4 s) */
    const char *ps = strstr(sec, "app.slow"), *pf = strstr(sec, "app.fast"),
               *pl = strstr(sec, "lib.sampled");
    assert_non_null(ps);
    assert_non_null(pf);
    assert_non_null(pl);
    assert_true(ps < pf && pf < pl);
    assert_non_null(strstr(sec, "\"exact\": true") ? strstr(sec, "\"exact\": true")
                                                   : strstr(sec, "\"exact\":true"));
    assert_non_null(strstr(sec, "\"share\": 0.75") ? strstr(sec, "\"share\": 0.75")
                                                   : strstr(sec, "\"share\":0.75"));
    assert_non_null(strstr(sec, "y = \\\"hot\\\" * n"));
    free(sec);
    free(j);
    /* at most report_top_functions functions */
    m->cfg.report_top_functions = 1;
    j = json_of(m);
    sec = lines_section(j);
    assert_non_null(strstr(sec, "app.slow"));
    assert_null(strstr(sec, "app.fast"));
    free(sec);
    free(j);
    cp_model_free(m);
}

static void test_text_block(void **state) {
    (void)state;
    cp_model *m = lines_model();
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_text(m, &sb), 0);
    const char *t = sb.data;
    assert_non_null(strstr(t, "Line timing"));
    assert_non_null(strstr(t, "app.slow (/src/app.py:10)"));
    assert_non_null(strstr(t, "line    12  75.0%"));
    assert_non_null(strstr(t, "1000 hits  y = \"hot\" * n"));
    assert_non_null(strstr(t, "lib.sampled"));
    assert_non_null(strstr(t, "30 samples"));
    assert_non_null(strstr(t, "3 line records dropped"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_round_trip(void **state) {
    (void)state;
    cp_model *m = lines_model();
    char *j = json_of(m);
    cp_model *r = NULL;
    codeprof_error err;
    if (cp_model_from_json(j, strlen(j), "lines.json", &r, &err) != CODEPROF_OK)
        fail_msg("read back: %s", err.message);
    assert_int_equal(r->lines.n, m->lines.n);
    assert_int_equal(r->lines.exact, 1);
    assert_int_equal(r->lines.dropped, 3);
    char *j2 = json_of(r);
    char *a = lines_section(j), *b = lines_section(j2);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(j2);
    free(j);
    cp_model_free(r);
    cp_model_free(m);
}

static void test_bad_section_names_path(void **state) {
    (void)state;
    cp_model *m = lines_model();
    char *j = json_of(m);
    char *p = strstr(j, "\"hits\": 1000");
    if (!p)
        p = strstr(j, "\"hits\":1000");
    assert_non_null(p);
    p = strstr(p, "1000");
    memcpy(p, "\"10\"", 4); /* a string where an integer belongs */
    cp_model *r = NULL;
    codeprof_error err;
    assert_int_equal(cp_model_from_json(j, strlen(j), "bad.json", &r, &err), CODEPROF_EFORMAT);
    assert_non_null(strstr(err.message, "lines.functions[0].lines[1].hits"));
    assert_null(r);
    free(j);
    cp_model_free(m);
}

static void test_empty_section(void **state) {
    (void)state;
    cp_model *m = fx_model();
    char *j = json_of(m);
    char *sec = lines_section(j);
    assert_non_null(strstr(sec, "\"enabled\": false") ? strstr(sec, "\"enabled\": false")
                                                      : strstr(sec, "\"enabled\":false"));
    free(sec);
    free(j);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_text(m, &sb), 0);
    assert_null(strstr(sb.data, "Line timing"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section_order_and_shares),
        cmocka_unit_test(test_text_block),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_section_names_path),
        cmocka_unit_test(test_empty_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
