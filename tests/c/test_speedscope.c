/* test_speedscope.c -- the speedscope export (src/export/speedscope.c)
 * over hand-built models: frames, one sampled profile per thread, stacks
 * root first, weights = self ns summing to endValue.  The Python test
 * (tests/python/integration/test_exports.py) checks real files field by
 * field against the published schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "export/speedscope.h"
#include "model_fixture.h"
#include "report/strbuf.h"

static void test_profiles_samples_weights(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "main", "app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t b = fx_site(m, "leaf \"q\"", NULL, 0, CODEPROF_SITE_NATIVE);
    uint32_t root = fx_thread(m, 11);
    uint32_t n1 = fx_node(m, root, a, 1, 300, 100);
    fx_node(m, n1, b, 2, 200, 200);
    uint32_t root2 = fx_thread(m, 12);
    m->threads[1].pid = 77;
    m->threads[1].worker = 0;
    fx_node(m, root2, b, 1, 50, 50);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_speedscope(m, &sb), 0);
    const char *s = sb.data;
    assert_non_null(strstr(s, "\"$schema\":\"https://www.speedscope.app/file-format-schema.json\""));
    assert_non_null(strstr(s, "\"frames\":[{\"name\":\"main\",\"file\":\"app.py\",\"line\":1},"
                              "{\"name\":\"leaf \\\"q\\\"\"}]"));
    assert_non_null(strstr(s, "{\"type\":\"sampled\",\"name\":\"pid 4242 (main) thread 11\","
                              "\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":300,"
                              "\"samples\":[[0],[0,1]],\"weights\":[100,200]}"));
    assert_non_null(strstr(s, "{\"type\":\"sampled\",\"name\":\"pid 77 (worker 0) thread 12\","
                              "\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":50,"
                              "\"samples\":[[1]],\"weights\":[50]}"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_empty_model(void **state) {
    (void)state;
    cp_model *m = fx_model();
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_speedscope(m, &sb), 0);
    assert_non_null(strstr(sb.data, "\"shared\":{\"frames\":[]},\"profiles\":[]}"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_fold_beyond_the_path_budget(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "A", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t b = fx_site(m, "B", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t c = fx_site(m, "C", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t root = fx_thread(m, 1);
    uint32_t na = fx_node(m, root, a, 1, 100, 10);
    fx_node(m, na, b, 1, 60, 60);
    fx_node(m, na, c, 1, 30, 30);
    fx_node(m, root, c, 1, 5, 5);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_speedscope_paths(m, &sb, 2), 0);
    assert_non_null(strstr(sb.data, "\"frames\":[{\"name\":\"(other)\"},{\"name\":\"A\"},"
                                    "{\"name\":\"B\"}]"));
    assert_non_null(strstr(sb.data, "\"endValue\":105,\"samples\":[[0],[1],[1,0],[1,2]],"
                                    "\"weights\":[5,10,30,60]}"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_samples_weights),
        cmocka_unit_test(test_empty_model),
        cmocka_unit_test(test_fold_beyond_the_path_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
