/* test_output.c -- the public report entry points end to end: a session
 * records, the report renders with findings, saves are atomic and a failed
 * save loses nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "core/clock.h"
#include "model/model.h"
#include "report/output.h"

static _Atomic uint64_t fake_now;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }

static codeprof_session *recorded_session(void) {
    cp_clock_set_fake(fake_clock);
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.slow_function_s = 0.5;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    uint32_t slow = codeprof_site("slow_stage", "pipe.c", 12, CODEPROF_SITE_SCOPE);
    uint32_t fast = codeprof_site("fast_stage", "pipe.c", 20, CODEPROF_SITE_SCOPE);
    codeprof_session_start(s);
    codeprof_scope_begin(s, slow, 0);
    atomic_fetch_add(&fake_now, 1200000000ull); /* 1.2 s */
    codeprof_scope_end(s, slow, 0);
    codeprof_scope_begin(s, fast, 0);
    atomic_fetch_add(&fake_now, 1000000ull);
    codeprof_scope_end(s, fast, 0);
    codeprof_session_stop(s);
    return s;
}

static void test_json_report_has_functions_and_findings(void **state) {
    (void)state;
    codeprof_session *s = recorded_session();
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(codeprof_session_report(s, CODEPROF_FORMAT_JSON, &json, &len), CODEPROF_OK);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    assert_non_null(strstr(json, "\"schema_version\":4"));
    assert_non_null(strstr(json, "\"total_functions_profiled\":2"));
    assert_non_null(strstr(json, "\"function\":\"slow_stage\""));
    assert_non_null(strstr(json, "\"slow_functions\":[{"));
    /* the fast stage is under the 0.5 s threshold: one slow function only */
    const char *sf = strstr(json, "\"slow_functions\":[");
    const char *end = strchr(sf, ']');
    assert_null(memmem(sf, (size_t)(end - sf), "fast_stage", 10));
    codeprof_free(json);
    char *text = NULL;
    assert_int_equal(codeprof_session_report(s, CODEPROF_FORMAT_TEXT, &text, NULL), CODEPROF_OK);
    assert_non_null(strstr(text, "slow_stage"));
    codeprof_free(text);
    assert_int_equal(codeprof_session_report(s, (codeprof_format)7, &text, NULL), CODEPROF_EINVAL);
    codeprof_session_free(s);
}

static void test_save_is_atomic_and_failure_keeps_data(void **state) {
    (void)state;
    codeprof_session *s = recorded_session();
    codeprof_error err = {0};
    assert_int_equal(
        codeprof_session_save(s, "/nonexistent-dir/x/report.json", CODEPROF_FORMAT_JSON, &err),
        CODEPROF_EIO);
    assert_string_equal(err.field, "path");
    assert_non_null(strstr(err.message, "/nonexistent-dir/x/report.json"));
    char dir[] = "/tmp/codeprof-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/report.json", dir);
    assert_int_equal(codeprof_session_save(s, path, CODEPROF_FORMAT_JSON, &err), CODEPROF_OK);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[4096] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "slow_stage"));
    /* only the report is left in the directory: no temp file */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/report.json.tmp.%d.0", dir, (int)getpid());
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
    unlink(path);
    rmdir(dir);
    assert_int_equal(codeprof_session_save(s, NULL, CODEPROF_FORMAT_JSON, &err), CODEPROF_EINVAL);
    codeprof_session_free(s);
}

static uint64_t calls_of(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (si && strcmp(si->name, name) == 0)
            return m->funcs[i].calls;
    }
    return 0;
}

/* The session's report model is built once and reused while nothing new
 * is recorded; new events, a warning, a start/stop or a reset make the
 * next report build a new one, and a model in use outlives that. */
static void test_model_cache_reuse_and_invalidation(void **state) {
    (void)state;
    codeprof_session *s = recorded_session();
    uint64_t built, reused;
    codeprof_status st;
    cp_model_ref *a = cp_session_model(s, &st);
    assert_non_null(a);
    char *json = NULL;
    assert_int_equal(codeprof_session_report(s, CODEPROF_FORMAT_JSON, &json, NULL), CODEPROF_OK);
    codeprof_free(json);
    char *text = NULL;
    assert_int_equal(codeprof_session_report(s, CODEPROF_FORMAT_TEXT, &text, NULL), CODEPROF_OK);
    codeprof_free(text);
    cp_model_ref *a2 = cp_session_model(s, &st);
    assert_ptr_equal(cp_model_ref_get(a2), cp_model_ref_get(a)); /* the same model */
    cp_model_ref_release(a2);
    cp_session_model_counts(s, &built, &reused);
    assert_int_equal(built, 1);
    assert_int_equal(reused, 3);
    assert_int_equal(calls_of(cp_model_ref_get(a), "fast_stage"), 1);

    /* new events: a new model that holds them; the old one is unchanged */
    uint32_t fast = codeprof_site("fast_stage", "pipe.c", 20, CODEPROF_SITE_SCOPE);
    codeprof_session_start(s);
    codeprof_scope_begin(s, fast, 0);
    atomic_fetch_add(&fake_now, 1000ull);
    codeprof_scope_end(s, fast, 0);
    codeprof_session_stop(s);
    cp_model_ref *b = cp_session_model(s, &st);
    assert_non_null(b);
    assert_ptr_not_equal(cp_model_ref_get(b), cp_model_ref_get(a));
    assert_int_equal(calls_of(cp_model_ref_get(b), "fast_stage"), 2);
    assert_int_equal(calls_of(cp_model_ref_get(a), "fast_stage"), 1);
    cp_model_ref_release(a);
    cp_session_model_counts(s, &built, &reused);
    assert_int_equal(built, 2);

    /* a warning is new data too */
    assert_int_equal(codeprof_session_warn(s, "test_note", "something happened"), CODEPROF_OK);
    cp_model_ref *c = cp_session_model(s, &st);
    assert_ptr_not_equal(cp_model_ref_get(c), cp_model_ref_get(b));
    assert_int_equal(cp_model_ref_get(c)->nwarnings, 1);
    cp_model_ref_release(b);
    cp_model_ref_release(c);

    /* so is a reset: the next model is empty */
    assert_int_equal(codeprof_session_reset(s), CODEPROF_OK);
    cp_model_ref *d = cp_session_model(s, &st);
    assert_int_equal(calls_of(cp_model_ref_get(d), "fast_stage"), 0);
    /* the model outlives its session */
    codeprof_session_free(s);
    assert_int_equal(cp_model_ref_get(d)->nfindings, 0);
    cp_model_ref_release(d);
    assert_null(cp_session_model(NULL, &st));
    assert_int_equal(st, CODEPROF_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_report_has_functions_and_findings),
        cmocka_unit_test(test_save_is_atomic_and_failure_keeps_data),
        cmocka_unit_test(test_model_cache_reuse_and_invalidation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
