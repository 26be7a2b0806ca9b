/* test_site.c -- the process-wide site table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/site.h"

static void test_intern_is_stable(void **state) {
    (void)state;
    uint32_t a = codeprof_site("decode", "dec.c", 10, CODEPROF_SITE_SCOPE);
    uint32_t b = codeprof_site("decode", "dec.c", 10, CODEPROF_SITE_SCOPE);
    uint32_t c = codeprof_site("decode", "dec.c", 11, CODEPROF_SITE_SCOPE);
    uint32_t d = codeprof_site("decode", "dec.c", 10, CODEPROF_SITE_PYTHON);
    uint32_t e = codeprof_site("decode", NULL, 10, CODEPROF_SITE_SCOPE);
    assert_true(a > 0);
    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
    assert_int_not_equal(a, d);
    assert_int_not_equal(a, e);
    const cp_site_info *s = cp_site_get(a);
    assert_string_equal(s->name, "decode");
    assert_string_equal(s->file, "dec.c");
    assert_int_equal(s->line, 10);
    assert_string_equal(cp_site_get(e)->file, "");
    assert_null(cp_site_get(0));
    assert_null(cp_site_get(cp_site_count() + 1));
    assert_int_equal(codeprof_site(NULL, "x", 0, CODEPROF_SITE_SCOPE), 0);
    assert_int_equal(codeprof_site("x", "x", 0, (codeprof_site_kind)99), 0);
}

static void test_many_sites_keep_their_names(void **state) {
    (void)state;
    char name[32];
    static uint32_t ids[20000];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "fn_%d", i);
        ids[i] = codeprof_site(name, "many.py", (uint32_t)i, CODEPROF_SITE_PYTHON);
        assert_true(ids[i] > 0);
    }
    for (int i = 0; i < 20000; i += 997) {
        snprintf(name, sizeof name, "fn_%d", i);
        assert_string_equal(cp_site_get(ids[i])->name, name);
        assert_int_equal(codeprof_site(name, "many.py", (uint32_t)i, CODEPROF_SITE_PYTHON), ids[i]);
    }
}

static void *intern_same(void *p) {
    uint32_t *out = p;
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "shared_%d", i);
        out[i] = codeprof_site(name, "t.c", 0, CODEPROF_SITE_SCOPE);
    }
    return NULL;
}

static void test_concurrent_interning_agrees(void **state) {
    (void)state;
    static uint32_t res[4][1000];
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, intern_same, res[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int t = 1; t < 4; t++)
        assert_memory_equal(res[0], res[t], sizeof res[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_is_stable),
        cmocka_unit_test(test_many_sites_keep_their_names),
        cmocka_unit_test(test_concurrent_interning_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
