/* test_collapsed.c -- the collapsed-stacks export (src/export/collapsed.c)
 * over hand-built models: one line per node with self time, process and
 * thread frames first, values in microseconds whose rounding is carried so
 * that they sum to the total. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "export/collapsed.h"
#include "model_fixture.h"
#include "report/strbuf.h"

static char *render(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_collapsed(m, &sb), 0);
    return cp_strbuf_detach(&sb, NULL);
}

static void test_lines_frames_and_values(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "main", "/src/pkg/app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t b = fx_site(m, "we;ird\nname", "", 0, CODEPROF_SITE_SCOPE);
    uint32_t root = fx_thread(m, 99);
    uint32_t n1 = fx_node(m, root, a, 1, 3000000, 1000000);
    fx_node(m, n1, b, 2, 2000000, 2000000);
    fx_node(m, n1, a, 1, 0, 0); /* no self time: no line */
    uint32_t root2 = fx_thread(m, 100);
    m->threads[1].pid = 555;
    m->threads[1].worker = 1;
    fx_node(m, root2, b, 1, 7000, 7000);
    char *out = render(m);
    assert_string_equal(out, "pid 4242 (main);thread 99;main (app.py:1) 1000\n"
                             "pid 4242 (main);thread 99;main (app.py:1);we:ird name 2000\n"
                             "pid 555 (worker 1);thread 100;we:ird name 7\n");
    free(out);
    cp_model_free(m);
}

static void test_rounding_is_carried(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "a", "f.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    /* ten nodes of 400 ns: none reaches half a microsecond alone, 4 us in all */
    uint32_t parent = root;
    for (int i = 0; i < 10; i++)
        parent = fx_node(m, parent, a, 1, 400, 400);
    char *out = render(m);
    uint64_t sum = 0;
    int lines = 0;
    for (char *ln = strtok(out, "\n"); ln; ln = strtok(NULL, "\n")) {
        sum += strtoull(strrchr(ln, ' ') + 1, NULL, 10);
        lines++;
    }
    assert_int_equal(sum, 4);
    assert_int_equal(lines, 4);
    free(out);
    cp_model_free(m);
}

/* Past the path budget, the smallest subtrees fold into "(other)" lines
 * under their parent; no time is lost. */
static void test_fold_beyond_the_path_budget(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "A", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t b = fx_site(m, "B", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t c = fx_site(m, "C", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t d = fx_site(m, "D", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t root = fx_thread(m, 1);
    uint32_t na = fx_node(m, root, a, 1, 100000, 10000);
    fx_node(m, na, b, 1, 60000, 60000);
    uint32_t nc = fx_node(m, na, c, 1, 30000, 20000);
    fx_node(m, nc, d, 1, 10000, 10000); /* inside the folded subtree */
    fx_node(m, root, d, 1, 5000, 5000);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_collapsed_paths(m, &sb, 2), 0);
    assert_string_equal(sb.data, "pid 4242 (main);thread 1;(other) 5\n"
                                 "pid 4242 (main);thread 1;A 10\n"
                                 "pid 4242 (main);thread 1;A;(other) 30\n"
                                 "pid 4242 (main);thread 1;A;B 60\n");
    cp_strbuf_free(&sb);
    /* within the budget: exact */
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_collapsed_paths(m, &sb, 5), 0);
    assert_null(strstr(sb.data, "(other)"));
    assert_non_null(strstr(sb.data, "thread 1;A;C;D 10\n"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_frames_and_values),
        cmocka_unit_test(test_rounding_is_carried),
        cmocka_unit_test(test_fold_beyond_the_path_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
