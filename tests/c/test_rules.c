/* test_rules.c -- analysis rules (src/analysis/rules.c) over hand-built
 * models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "analysis/rules.h"
#include "core/site.h"
#include "model_fixture.h"

static uint32_t site(const char *name, codeprof_site_kind kind) {
    uint32_t id = codeprof_site(name, "rules_test.py", 1, kind);
    assert_true(id > 0);
    return id;
}

static const cp_finding *find(const cp_model *m, const char *category, const char *subject) {
    for (uint32_t i = 0; i < m->nfindings; i++)
        if (!strcmp(m->findings[i].category, category) &&
            !strcmp(m->findings[i].subject, subject))
            return &m->findings[i];
    return NULL;
}

static void test_slow_threshold_is_strict(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    fx_func(m, site("above", CODEPROF_SITE_PYTHON), 3, FX_S(3.3), FX_S(3.3), FX_S(1.5));
    fx_func(m, site("equal", CODEPROF_SITE_PYTHON), 2, FX_S(2), FX_S(2), FX_S(1.0));
    fx_func(m, site("below", CODEPROF_SITE_PYTHON), 1, FX_S(0.999), FX_S(0.999), FX_S(0.999));
    fx_func(m, site("just_above", CODEPROF_SITE_NATIVE), 1, 1000000001, 1000000001, 1000000001);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 2);
    const cp_finding *f = find(m, "slow_functions", "above");
    assert_non_null(f);
    assert_string_equal(f->rule, "CP-PERF-001");
    assert_string_equal(f->unit, "s");
    assert_true(f->value == 1.5);
    assert_true(f->threshold == 1.0);
    assert_true(f->severity == 1.5);
    assert_non_null(find(m, "slow_functions", "just_above"));
    assert_null(find(m, "slow_functions", "equal"));
    assert_null(find(m, "slow_functions", "below"));
    cp_model_free(m);
}

static void test_slow_uses_configured_threshold(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_func(m, site("medium", CODEPROF_SITE_FUNCTION), 1, FX_S(0.3), FX_S(0.3), FX_S(0.3));
    m->cfg.slow_function_s = 1.0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 0);
    m->cfg.slow_function_s = 0.25;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    assert_true(m->findings[0].threshold == 0.25);
    assert_non_null(strstr(m->findings[0].recommendation, "250 ms threshold"));
    cp_model_free(m);
}

static void test_slow_only_code_kinds(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    fx_func(m, site("scope_s", CODEPROF_SITE_SCOPE), 1, FX_S(2), FX_S(2), FX_S(2));
    fx_func(m, site("item_load", CODEPROF_SITE_DATASET), 1, FX_S(2), FX_S(2), FX_S(2));
    fx_func(m, site("batch_wait", CODEPROF_SITE_LOADER), 1, FX_S(2), FX_S(2), FX_S(2));
    fx_func(m, site("matmul", CODEPROF_SITE_GPU), 1, FX_S(2), FX_S(2), FX_S(2));
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    assert_string_equal(m->findings[0].subject, "scope_s");
    cp_model_free(m);
}

static void test_recommendation_quotes_numbers(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->duration_ns = FX_S(10);
    /* no tree: neither callee nor self dominates -> the generic advice */
    fx_func(m, site("training_epoch", CODEPROF_SITE_PYTHON), 5, FX_S(4.1), FX_S(1.0),
            FX_S(1.23));
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    const char *r = m->findings[0].recommendation;
    assert_non_null(strstr(r, "training_epoch took up to 1.23 s per call"));
    assert_non_null(strstr(r, "5 calls"));
    assert_non_null(strstr(r, "4.10 s total"));
    assert_non_null(strstr(r, "41% of the run"));
    assert_non_null(strstr(r, "1.00 s threshold"));
    assert_non_null(strstr(r, "enable_cprofile=True"));
    cp_model_free(m);
}

static void test_recommendation_names_heaviest_callee(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t train = site("train_step", CODEPROF_SITE_PYTHON);
    uint32_t decode = site("decode_clip", CODEPROF_SITE_NATIVE);
    uint32_t log = site("log_metrics", CODEPROF_SITE_PYTHON);
    /* train_step is reached on two paths; decode_clip dominates in sum */
    uint32_t root = fx_thread(m, 1);
    uint32_t a = fx_node(m, root, train, 2, FX_S(2), FX_S(0.2));
    fx_node(m, a, decode, 2, FX_S(1.5), FX_S(1.5));
    fx_node(m, a, log, 2, FX_S(0.3), FX_S(0.3));
    uint32_t b = fx_node(m, root, log, 1, FX_S(2.5), FX_S(0.1));
    uint32_t c = fx_node(m, b, train, 1, FX_S(2), FX_S(0.2));
    fx_node(m, c, decode, 1, FX_S(1.5), FX_S(1.5));
    fx_node(m, c, log, 1, FX_S(0.3), FX_S(0.3));
    fx_func(m, train, 3, FX_S(4), FX_S(0.4), FX_S(2));
    fx_func(m, decode, 3, FX_S(3), FX_S(3), FX_S(1.5));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find(m, "slow_functions", "train_step");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation, "callee decode_clip (3.00 s, 75% of its time)"));
    /* decode_clip is a leaf: its advice is about its own code */
    f = find(m, "slow_functions", "decode_clip");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation, "its own code (self 3.00 s)"));
    cp_model_free(m);
}

static void test_memory_rule(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.memory_intensive_bytes = 100.0 * 1024 * 1024;
    cp_mfunc *f = fx_func(m, site("load_video", CODEPROF_SITE_PYTHON), 4, FX_S(0.1), FX_S(0.1),
                          FX_S(0.05));
    f->rss_count = 4;
    f->rss_delta_max = 200ll * 1024 * 1024;
    f->rss_delta_sum = 300ll * 1024 * 1024;
    f = fx_func(m, site("not_measured", CODEPROF_SITE_PYTHON), 1, FX_S(0.01), FX_S(0.01),
                FX_S(0.01));
    f->rss_count = 0;
    f->rss_delta_max = 900ll * 1024 * 1024; /* ignored: nothing measured */
    f = fx_func(m, site("exactly", CODEPROF_SITE_PYTHON), 1, FX_S(0.01), FX_S(0.01),
                FX_S(0.01));
    f->rss_count = 1;
    f->rss_delta_max = 100ll * 1024 * 1024;
    f = fx_func(m, site("shrinks", CODEPROF_SITE_PYTHON), 1, FX_S(0.01), FX_S(0.01),
                FX_S(0.01));
    f->rss_count = 1;
    f->rss_delta_max = -500ll * 1024 * 1024;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    const cp_finding *x = &m->findings[0];
    assert_string_equal(x->rule, "CP-MEM-001");
    assert_string_equal(x->category, "memory_intensive_functions");
    assert_string_equal(x->subject, "load_video");
    assert_string_equal(x->unit, "bytes");
    assert_true(x->value == 200.0 * 1024 * 1024);
    assert_true(x->severity == 2.0);
    assert_non_null(strstr(x->recommendation, "up to 200.0 MB in one call"));
    assert_non_null(strstr(x->recommendation, "4 calls measured"));
    assert_non_null(strstr(x->recommendation, "+300.0 MB net"));
    assert_non_null(strstr(x->recommendation, "100.0 MB threshold"));
    cp_model_free(m);
}

static void test_severity_order_and_idempotence(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->cfg.memory_intensive_bytes = 1000;
    fx_func(m, site("sev15", CODEPROF_SITE_PYTHON), 1, FX_S(9), FX_S(9), FX_S(1.5));
    fx_func(m, site("sev3", CODEPROF_SITE_PYTHON), 1, FX_S(3), FX_S(3), FX_S(3));
    cp_mfunc *f = fx_func(m, site("mem2", CODEPROF_SITE_PYTHON), 1, FX_S(0.1), FX_S(0.1),
                          FX_S(0.1));
    f->rss_count = 1;
    f->rss_delta_max = 2000;
    f->rss_delta_sum = 2000;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 3);
    assert_string_equal(m->findings[0].subject, "sev3");
    assert_string_equal(m->findings[1].subject, "mem2");
    assert_string_equal(m->findings[2].subject, "sev15");
    assert_true(m->findings[0].severity >= m->findings[1].severity);
    assert_true(m->findings[1].severity >= m->findings[2].severity);
    /* running again replaces, never duplicates */
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 3);
    cp_model_free(m);
}

static void test_empty_model(void **state) {
    (void)state;
    cp_model *m = fx_model();
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 0);
    cp_model_free(m);
}

static void test_rule_table(void **state) {
    (void)state;
    size_t n = cp_rules_count();
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        const cp_rule_info *r = cp_rule_at(i);
        assert_non_null(r);
        assert_true(strlen(r->id) > 0 && strlen(r->id) < sizeof(((cp_finding *)0)->rule));
        assert_true(strlen(r->category) > 0 &&
                    strlen(r->category) < sizeof(((cp_finding *)0)->category));
        assert_true(strlen(r->summary) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(cp_rule_at(j)->id, r->id);
    }
    assert_null(cp_rule_at(n));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_threshold_is_strict),
        cmocka_unit_test(test_slow_uses_configured_threshold),
        cmocka_unit_test(test_slow_only_code_kinds),
        cmocka_unit_test(test_recommendation_quotes_numbers),
        cmocka_unit_test(test_recommendation_names_heaviest_callee),
        cmocka_unit_test(test_memory_rule),
        cmocka_unit_test(test_severity_order_and_idempotence),
        cmocka_unit_test(test_empty_model),
        cmocka_unit_test(test_rule_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
