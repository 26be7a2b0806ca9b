/* test_config.c -- codeprof_config defaults and validation: every numeric
 * field is bounded, NaN and infinities are rejected, and the error names the
 * field and the accepted range.  One case builds a data-loading report with
 * the largest accepted slow_data_loading_s and shows that a value past the
 * range is refused (it used to be cast to uint64 nanoseconds unchecked:
 * undefined behaviour that UBSan's float-cast-overflow check reports). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"

typedef struct dfield {
    const char *name;
    size_t offset;
    double lo, hi; /* accepted range, inclusive */
} dfield;

#define DF(f, lo, hi)                                                                              \
    { #f, offsetof(codeprof_config, f), lo, hi }
static const dfield dfields[] = {
    DF(slow_function_s, 1e-9, 1e9),     DF(memory_intensive_bytes, 1.0, 9007199254740992.0),
    DF(slow_data_loading_s, 1e-9, 1e9), DF(slow_preprocessing_s, 1e-9, 1e9),
    DF(slow_gpu_op_s, 1e-9, 1e9),
};
#undef DF

static double *dptr(codeprof_config *c, const dfield *f) {
    return (double *)(void *)((char *)c + f->offset);
}

/* Validates `cfg` expecting ECONFIG for `field`, with `want` in the message. */
static void expect_rejected(const codeprof_config *cfg, const char *field, const char *want) {
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = codeprof_config_validate(cfg, &err);
    if (st != CODEPROF_ECONFIG || strcmp(err.field, field) != 0 ||
        (want && !strstr(err.message, want)))
        fail_msg("field %s: status %s, err.field '%s', message '%s' (wanted '%s')", field,
                 codeprof_status_name(st), err.field, err.message, want ? want : "");
    assert_int_equal(err.code, CODEPROF_ECONFIG);
    /* The same refusal through codeprof_session_new, which creates nothing. */
    codeprof_session *s = (codeprof_session *)(uintptr_t)1;
    memset(&err, 0, sizeof err);
    assert_int_equal(codeprof_session_new(cfg, &s, &err), CODEPROF_ECONFIG);
    assert_string_equal(err.field, field);
}

static void expect_ok(const codeprof_config *cfg) {
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = codeprof_config_validate(cfg, &err);
    if (st != CODEPROF_OK)
        fail_msg("expected OK, got %s: %s", codeprof_status_name(st), err.message);
}

static void test_defaults_are_valid(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    expect_ok(&cfg);
    assert_int_equal(codeprof_config_validate(NULL, NULL), CODEPROF_EINVAL);
}

static void test_thresholds_reject_nan_inf_negative_zero_and_out_of_range(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof dfields / sizeof dfields[0]; i++) {
        const dfield *f = &dfields[i];
        const double bad[] = {NAN,  -NAN,      INFINITY,  -INFINITY,  -1.0,  0.0,
                              -0.0, f->lo / 2, f->hi * 2, 2e10 * 1e9, 1e300, -1e300};
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            codeprof_config cfg;
            codeprof_config_init(&cfg);
            *dptr(&cfg, f) = bad[j];
            expect_rejected(&cfg, f->name, "must be a finite number > 0, in [");
        }
        /* The boundaries themselves are accepted. */
        codeprof_config cfg;
        codeprof_config_init(&cfg);
        *dptr(&cfg, f) = f->lo;
        expect_ok(&cfg);
        *dptr(&cfg, f) = f->hi;
        expect_ok(&cfg);
    }
}

static void test_message_names_field_and_range(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.slow_data_loading_s = 2e10;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(codeprof_config_validate(&cfg, &err), CODEPROF_ECONFIG);
    assert_string_equal(err.field, "slow_data_loading_s");
    assert_non_null(strstr(err.message, "slow_data_loading_s must be a finite number > 0, in "
                                        "[1e-09, 1e+09] seconds, got 2e+10"));
    codeprof_config_init(&cfg);
    cfg.memory_intensive_bytes = NAN;
    assert_int_equal(codeprof_config_validate(&cfg, &err), CODEPROF_ECONFIG);
    assert_string_equal(err.field, "memory_intensive_bytes");
    assert_non_null(strstr(err.message, "bytes, got nan"));
}

static void test_data_stall_fraction(void **state) {
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY, 0.0, 1.0, -0.5, 1.5};
    for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
        codeprof_config cfg;
        codeprof_config_init(&cfg);
        cfg.data_stall_fraction = bad[j];
        expect_rejected(&cfg, "data_stall_fraction", "must be a number in (0, 1)");
    }
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.data_stall_fraction = 0.999;
    expect_ok(&cfg);
    cfg.data_stall_fraction = 1e-12;
    expect_ok(&cfg);
}

static void test_integer_fields(void **state) {
    (void)state;
    struct {
        const char *name;
        size_t off;
        uint32_t lo, hi;
    } u[] = {
        {"buffer_events", offsetof(codeprof_config, buffer_events), 1024, 1u << 24},
        {"max_nodes", offsetof(codeprof_config, max_nodes), 16, 1u << 26},
        {"max_samples", offsetof(codeprof_config, max_samples), 1, 1u << 20},
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        codeprof_config cfg;
        codeprof_config_init(&cfg);
        uint32_t *p = (uint32_t *)(void *)((char *)&cfg + u[i].off);
        *p = u[i].lo - 1;
        expect_rejected(&cfg, u[i].name, "must be an integer in [");
        *p = u[i].hi + 1;
        expect_rejected(&cfg, u[i].name, "must be an integer in [");
        *p = UINT32_MAX;
        expect_rejected(&cfg, u[i].name, NULL);
        *p = u[i].lo;
        expect_ok(&cfg);
        *p = u[i].hi;
        expect_ok(&cfg);
    }
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.struct_size = 8;
    expect_rejected(&cfg, "struct_size", "call codeprof_config_init");
    codeprof_config_init(&cfg);
    cfg.flags = 1u << 30;
    expect_rejected(&cfg, "flags", "unknown bits");
}

/* Loads `n` items of 2 ms each, builds the JSON report and returns it. */
static char *report_with_items(codeprof_session *s, int n) {
    uint32_t ds = codeprof_site("ConfigDataset", "cfg.py", 1, CODEPROF_SITE_DATASET);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    for (int i = 0; i < n; i++) {
        codeprof_scope_begin(s, ds, CODEPROF_SCOPE_ITEM);
        codeprof_scope_attr(s, CODEPROF_ATTR_INDEX, i);
        codeprof_scope_end(s, ds, CODEPROF_SCOPE_ITEM);
    }
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    char *out = NULL;
    assert_int_equal(codeprof_session_report(s, CODEPROF_FORMAT_JSON, &out, NULL), CODEPROF_OK);
    assert_non_null(out);
    return out;
}

/* Regression: slow_data_loading_s = 2e10 used to be accepted and converted
 * with (uint64_t)(2e10 * 1e9), which overflows (UBSan: float-cast-overflow)
 * and made every load "slow".  Now it is refused; the largest accepted
 * value builds a report in which no load is slow. */
static void test_slow_data_loading_past_range_never_reaches_the_model(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.slow_data_loading_s = 2e10;
    codeprof_session *s = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = codeprof_session_new(&cfg, &s, &err);
    if (st == CODEPROF_OK) {
        /* The old behaviour: build the model anyway so that UBSan sees the
         * conversion, then fail. */
        char *out = report_with_items(s, 8);
        codeprof_free(out);
        codeprof_session_free(s);
        fail_msg("slow_data_loading_s = 2e10 was accepted");
    }
    assert_int_equal(st, CODEPROF_ECONFIG);
    assert_string_equal(err.field, "slow_data_loading_s");

    cfg.slow_data_loading_s = 1e9; /* the maximum: 1e18 ns fits a uint64 */
    s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, &err), CODEPROF_OK);
    char *out = report_with_items(s, 8);
    assert_non_null(strstr(out, "ConfigDataset"));
    assert_non_null(strstr(out, "\"slow_loads\":0"));
    codeprof_free(out);
    codeprof_session_free(s);
}

static void test_report_policy_fields(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    assert_int_equal(cfg.report_top_functions, 50);
    assert_int_equal(cfg.report_tree_max_nodes, 2000);
    assert_true(cfg.report_tree_min_share == 0.001);
    cfg.report_top_functions = 0;
    cfg.report_tree_max_nodes = 0;
    cfg.report_tree_min_share = 0;
    expect_ok(&cfg); /* totals only, every node folded */
    cfg.report_tree_min_share = 1;
    expect_ok(&cfg);
    cfg.report_top_functions = (1u << 24) + 1;
    expect_rejected(&cfg, "report_top_functions", "[0, 16777216]");
    codeprof_config_init(&cfg);
    cfg.report_tree_max_nodes = (1u << 26) + 1;
    expect_rejected(&cfg, "report_tree_max_nodes", "[0, 67108864]");
    codeprof_config_init(&cfg);
    const double bad[] = {-0.001, 1.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.report_tree_min_share = bad[i];
        expect_rejected(&cfg, "report_tree_min_share", "[0, 1]");
    }
}

/* The traced-call timeline's own bound: default 1<<18, [0, 1<<24], the
 * error names the field. */
static void test_timeline_traced_events(void **state) {
    (void)state;
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    assert_int_equal(cfg.timeline_traced_events, 1u << 18);
    assert_int_equal(cfg.flags & CODEPROF_CFG_TIMELINE_TRACED, 0);
    cfg.flags |= CODEPROF_CFG_TIMELINE_TRACED;
    cfg.timeline_traced_events = 0;
    expect_ok(&cfg);
    cfg.timeline_traced_events = 1u << 24;
    expect_ok(&cfg);
    cfg.timeline_traced_events = (1u << 24) + 1;
    expect_rejected(&cfg, "timeline_traced_events", "timeline_traced_events must be an integer "
                                                    "in [0, 16777216], got 16777217");
    cfg.timeline_traced_events = UINT32_MAX;
    expect_rejected(&cfg, "timeline_traced_events", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeline_traced_events),
        cmocka_unit_test(test_report_policy_fields),
        cmocka_unit_test(test_defaults_are_valid),
        cmocka_unit_test(test_thresholds_reject_nan_inf_negative_zero_and_out_of_range),
        cmocka_unit_test(test_message_names_field_and_range),
        cmocka_unit_test(test_data_stall_fraction),
        cmocka_unit_test(test_integer_fields),
        cmocka_unit_test(test_slow_data_loading_past_range_never_reaches_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
