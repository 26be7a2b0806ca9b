/* test_rules_data.c -- the data-loading rules CP-DATA-001..008
 * (src/analysis/rules_data.c): each fires strictly above its threshold and
 * not at or below it, a compute-bound run is never told to tune workers,
 * the needed-workers arithmetic, and severities that rank a planted data
 * stall above a slow function of the same run (real scopes, fake clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "analysis/rules.h"
#include "analysis/rules_data.h"
#include "core/clock.h"
#include "core/session.h"
#include "core/site.h"
#include "model_fixture.h"

/* ---- hand-built data sections ------------------------------------------ */

static uint32_t site(cp_model *m, const char *name, codeprof_site_kind kind) {
    return fx_site(m, name, "data_rules_test.py", 7, kind);
}

/* A dataset of `items` loads of `avg_ms` each (p50 = avg). */
static cp_mdataset *fx_dataset(cp_model *m, const char *name, uint64_t items, double avg_ms) {
    cp_mdata *d = &m->data;
    d->datasets = fx_grow(d->datasets, d->ndatasets, sizeof *d->datasets);
    cp_mdataset *ds = &d->datasets[d->ndatasets++];
    memset(ds, 0, sizeof *ds);
    ds->site = site(m, name, CODEPROF_SITE_DATASET);
    ds->items = items;
    ds->sum_ns = items * FX_S(avg_ms / 1e3);
    ds->min_ns = ds->p50_ns = ds->p95_ns = ds->p99_ns = ds->max_ns = FX_S(avg_ms / 1e3);
    ds->distinct_indices = items;
    d->item_ns_total += ds->sum_ns;
    return ds;
}

/* Adds an outlier index to `ds` (its load replaces a median one). */
static void fx_outlier(cp_model *m, cp_mdataset *ds, int64_t index, uint64_t ns, uint32_t epochs) {
    if (!ds->bottleneck_indices) {
        ds->bottleneck_indices = calloc(CP_MAX_BOTTLENECKS, sizeof *ds->bottleneck_indices);
        ds->bottleneck_ns = calloc(CP_MAX_BOTTLENECKS, sizeof *ds->bottleneck_ns);
        ds->bottleneck_epochs = calloc(CP_MAX_BOTTLENECKS, sizeof *ds->bottleneck_epochs);
        assert_non_null(ds->bottleneck_indices);
        assert_non_null(ds->bottleneck_ns);
        assert_non_null(ds->bottleneck_epochs);
    }
    uint32_t k = ds->nbottlenecks++;
    ds->bottleneck_indices[k] = index;
    ds->bottleneck_ns[k] = ns;
    ds->bottleneck_epochs[k] = epochs;
    if (epochs >= 2)
        ds->repeat_slow++;
    ds->sum_ns += ns - ds->p50_ns;
    m->data.item_ns_total += ns - ds->p50_ns;
    if (ns > ds->max_ns)
        ds->max_ns = ns;
}

/* A loader: `batches` in one epoch, `wait_ms` per batch and `step_ms`
 * between batches; first_wait = one wait; stall as the model defines it. */
static cp_mloader *fx_loader(cp_model *m, const char *name, uint64_t batches, double wait_ms,
                             double step_ms) {
    cp_mdata *d = &m->data;
    d->loaders = fx_grow(d->loaders, d->nloaders, sizeof *d->loaders);
    cp_mloader *L = &d->loaders[d->nloaders++];
    memset(L, 0, sizeof *L);
    L->site = site(m, name, CODEPROF_SITE_LOADER);
    L->batches = batches;
    L->epochs = 1;
    L->items = batches * 8;
    L->wait_ns = batches * FX_S(wait_ms / 1e3);
    L->first_wait_ns = FX_S(wait_ms / 1e3);
    L->steps = batches - 1;
    L->step_ns = L->steps * FX_S(step_ms / 1e3);
    L->wait_p50_ns = L->wait_p95_ns = L->wait_max_ns = FX_S(wait_ms / 1e3);
    L->stall_fraction = wait_ms / (wait_ms + step_ms);
    return L;
}

static void fx_describe(cp_mloader *L, int workers, int batch, int prefetch, int pin,
                        int persistent, int gpu) {
    L->desc.described = 1;
    L->desc.num_workers = workers;
    L->desc.batch_size = batch;
    L->desc.prefetch_factor = prefetch;
    L->desc.pin_memory = pin;
    L->desc.persistent_workers = persistent;
    L->desc.uses_gpu = gpu;
}

static cp_mstage *fx_stage(cp_model *m, const char *name, codeprof_site_kind kind,
                           uint64_t calls, double avg_ms, double share) {
    cp_mdata *d = &m->data;
    d->stages = fx_grow(d->stages, d->nstages, sizeof *d->stages);
    cp_mstage *st = &d->stages[d->nstages++];
    memset(st, 0, sizeof *st);
    st->site = site(m, name, kind);
    st->calls = calls;
    st->sum_ns = calls * FX_S(avg_ms / 1e3);
    st->max_ns = FX_S(avg_ms / 1e3);
    st->share_of_item_time = share;
    return st;
}

static cp_model *data_model(void) {
    cp_model *m = fx_model();
    m->data.cpu_count = 16;
    return m;
}

static const cp_finding *find_rule(const cp_model *m, const char *rule) {
    for (uint32_t i = 0; i < m->nfindings; i++)
        if (!strcmp(m->findings[i].rule, rule))
            return &m->findings[i];
    return NULL;
}

static uint32_t count_rule(const cp_model *m, const char *rule) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nfindings; i++)
        n += !strcmp(m->findings[i].rule, rule);
    return n;
}

static void expect_text(const cp_finding *f, const char *needle) {
    assert_non_null(f);
    if (!strstr(f->recommendation, needle))
        fail_msg("recommendation of %s lacks \"%s\": %s", f->rule, needle, f->recommendation);
}

/* ---- tests ------------------------------------------------------------- */

static void test_needed_workers_arithmetic(void **state) {
    (void)state;
    assert_int_equal(cp_data_needed_workers(8, 0.010, 0.020, 16), 4);
    assert_int_equal(cp_data_needed_workers(8, 0.011, 0.020, 16), 5); /* 4.4 -> 5 */
    assert_int_equal(cp_data_needed_workers(8, 0.100, 0.020, 16), 16); /* 40, capped */
    assert_int_equal(cp_data_needed_workers(8, 0.100, 0.020, 0), 40);  /* no cap */
    assert_int_equal(cp_data_needed_workers(1, 0.001, 1.0, 16), 1);    /* at least one */
    assert_int_equal(cp_data_needed_workers(8, 0.010, 0.0, 16), 0);    /* unknown step */
    assert_int_equal(cp_data_needed_workers(8, 0.0, 0.020, 16), 0);    /* unknown item */
    assert_int_equal(cp_data_needed_workers(0, 0.010, 0.020, 16), 0);  /* unknown batch */
}

static void test_stall_raise_workers(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsA", 800, 10.0);
    cp_mloader *L = fx_loader(m, "loaderA", 100, 30.0, 20.0); /* stall 0.6 */
    fx_describe(L, 1, 8, 2, 1, 1, 0);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-001");
    expect_text(f, "raise num_workers from 1 to 4 (8 items x 10.0 ms per batch = 80.0 ms of "
                   "loading per 20.0 ms step; this machine has 16 CPUs)");
    expect_text(f, "60%");
    assert_string_equal(f->category, "slow_data_loading");
    assert_string_equal(f->subject, "loaderA");
    assert_true(f->value == L->stall_fraction);
    assert_true(f->threshold == m->cfg.data_stall_fraction);
    assert_true(f->severity > 5.99 && f->severity < 6.01); /* stall x 10 */
    cp_model_free(m);
}

static void test_stall_threshold_strict_and_batches(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsB", 100, 10.0);
    cp_mloader *L = fx_loader(m, "loaderB", 10, 20.0, 80.0);
    L->stall_fraction = 0.2; /* == default threshold */
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-001"));
    L->stall_fraction = 0.2001;
    assert_int_equal(cp_rules_run(m), 0);
    assert_non_null(find_rule(m, "CP-DATA-001"));
    /* the configured threshold is read at rule time */
    m->cfg.data_stall_fraction = 0.5;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-001"));
    /* too few batches to judge */
    m->cfg.data_stall_fraction = 0.2;
    L->stall_fraction = 0.9;
    L->batches = 2;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-001"));
    L->batches = 3;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-DATA-001"), 1);
    cp_model_free(m);
}

static void test_stall_workers_cannot_help(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsC", 800, 10.0);
    fx_stage(m, "decode_clip", CODEPROF_SITE_SCOPE, 800, 7.2, 0.72);
    fx_stage(m, "normalize", CODEPROF_SITE_PREPROCESS, 800, 1.0, 0.10);
    cp_mloader *L = fx_loader(m, "loaderC", 100, 30.0, 20.0);
    fx_describe(L, 16, 8, 2, 1, 1, 0); /* already at the CPU count */
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-001");
    expect_text(f, "adding workers cannot help");
    expect_text(f, "decode_clip takes 72% of item time");
    expect_text(f, "decode once offline");
    assert_null(strstr(f->recommendation, "raise num_workers"));
    /* enough workers already (8 >= the 4 needed), below the CPU count */
    L->desc.num_workers = 8;
    assert_int_equal(cp_rules_run(m), 0);
    expect_text(find_rule(m, "CP-DATA-001"), "adding workers cannot help (num_workers=8, 4 needed");
    /* exactly the 4 needed: no "raise from 4 to 4" */
    L->desc.num_workers = 4;
    assert_int_equal(cp_rules_run(m), 0);
    expect_text(find_rule(m, "CP-DATA-001"), "adding workers cannot help (num_workers=4, 4 needed");
    /* needs more than the machine has: cap, and say even that is not enough */
    L->desc.num_workers = 2;
    m->data.cpu_count = 3;
    assert_int_equal(cp_rules_run(m), 0);
    f = find_rule(m, "CP-DATA-001");
    expect_text(f, "raise num_workers from 2 to 3");
    expect_text(f, "even 3 workers cannot keep up (4 needed)");
    cp_model_free(m);
}

static void test_compute_bound_no_worker_advice(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsD", 800, 10.0);
    fx_stage(m, "decode_clip", CODEPROF_SITE_PREPROCESS, 800, 7.2, 0.72);
    fx_stage(m, "augment_flip", CODEPROF_SITE_AUGMENT, 800, 2.0, 0.6);
    cp_mloader *L = fx_loader(m, "loaderD", 100, 2.0, 38.0); /* stall 0.05 */
    fx_describe(L, 2, 8, 2, 0, 0, 1);
    L->epochs = 3;
    L->first_wait_ns = FX_S(5); /* big start-up every epoch */
    L->wait_ns = 97 * FX_S(0.002) + L->first_wait_ns;
    L->wait_p50_ns = FX_S(0.0005);
    L->wait_p95_ns = FX_S(0.010); /* bursty */
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-001"));
    assert_null(find_rule(m, "CP-DATA-003"));
    assert_null(find_rule(m, "CP-DATA-004"));
    assert_null(find_rule(m, "CP-DATA-006"));
    for (uint32_t i = 0; i < m->nfindings; i++) {
        assert_null(strstr(m->findings[i].recommendation, "num_workers from"));
        assert_null(strstr(m->findings[i].recommendation, "raise num_workers"));
    }
    /* the start-up is reported on its own, with the fix that shortens it
     * (it is never a stall, and never a reason to add workers) */
    const cp_finding *su = find_rule(m, "CP-DATA-005");
    expect_text(su, "set persistent_workers=True");
    expect_text(su, "more workers would not shorten");
    assert_true(su->saving_s > 3.3 && su->saving_s < 3.34); /* 2 of 3 start-ups, ~1.66 s each */
    /* pin_memory is not worker tuning: it still applies */
    const cp_finding *f = find_rule(m, "CP-DATA-007");
    expect_text(f, "pin_memory=True");
    assert_true(f->severity == 1.01);
    /* the same loader, now data-bound: the worker rules come in */
    L->stall_fraction = 0.5;
    assert_int_equal(cp_rules_run(m), 0);
    assert_non_null(find_rule(m, "CP-DATA-001"));
    assert_non_null(find_rule(m, "CP-DATA-005"));
    assert_non_null(find_rule(m, "CP-DATA-006"));
    cp_model_free(m);
}

static void test_outliers(void **state) {
    (void)state;
    cp_model *m = data_model();
    m->cfg.slow_data_loading_s = 1.0;
    /* 100 items of 10 ms = 1 s; index 7 takes 60 ms: outliers are 60 ms of
     * 1.05 s (5.7%) */
    cp_mdataset *ds = fx_dataset(m, "ClipsE", 100, 10.0);
    fx_outlier(m, ds, 7, FX_S(0.060), 2);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-002");
    expect_text(f, "index 7 (60.0 ms, 6x the median)");
    expect_text(f, "cache them");
    assert_string_equal(f->unit, "fraction");
    assert_true(f->threshold == 0.05);
    assert_true(f->severity > 0.57 * 1.0 && f->severity >= 1.01);
    cp_model_free(m);

    /* exactly 5% of item time, nothing above the slow threshold: quiet */
    m = data_model();
    ds = fx_dataset(m, "ClipsF", 100, 10.0);
    fx_outlier(m, ds, 3, FX_S(0.060), 1);
    ds->sum_ns = FX_S(1.2); /* outliers 60 ms of 1.2 s = 0.05 */
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-002"));
    /* a load above slow_data_loading_s fires however small its share */
    m->cfg.slow_data_loading_s = 0.05;
    assert_int_equal(cp_rules_run(m), 0);
    f = find_rule(m, "CP-DATA-002");
    assert_non_null(f);
    assert_string_equal(f->unit, "s");
    expect_text(f, "slow in one epoch only");
    cp_model_free(m);
}

static void test_outliers_stay_below_stall(void **state) {
    (void)state;
    cp_model *m = data_model();
    m->cfg.data_stall_fraction = 0.05;
    cp_mdataset *ds = fx_dataset(m, "ClipsG", 100, 10.0);
    for (int i = 0; i < 3; i++)
        fx_outlier(m, ds, 10 + i, FX_S(0.060), 2); /* 180 ms of ~1.15 s: 15% */
    fx_loader(m, "loaderG", 50, 1.0, 9.0); /* stall 0.1: severity 1.01 */
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *stall = find_rule(m, "CP-DATA-001");
    const cp_finding *out = find_rule(m, "CP-DATA-002");
    assert_non_null(stall);
    assert_non_null(out);
    /* the outliers' part of the waits is their share of item time: less
     * than what overlapping the ordinary loading saves */
    assert_true(out->saving_s > 0);
    assert_true(out->saving_s < stall->saving_s);
    assert_string_equal(m->findings[0].rule, "CP-DATA-001");
    expect_text(out, "index 10 (60.0 ms, 6x the median), index 11");
    cp_model_free(m);
}

static void test_decode_dominates(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsH", 100, 10.0);
    fx_stage(m, "VideoReader.Decode", CODEPROF_SITE_PREPROCESS, 100, 7.2, 0.72);
    fx_stage(m, "normalize", CODEPROF_SITE_PREPROCESS, 100, 2.0, 0.72); /* not decode-like */
    cp_mstage *st = &m->data.stages[0]; /* fx_stage may move the array: take it now */
    assert_int_equal(cp_rules_run(m), 0); /* no loader: fires, severity share x 10 */
    assert_int_equal(count_rule(m, "CP-DATA-003"), 1);
    const cp_finding *f = find_rule(m, "CP-DATA-003");
    assert_string_equal(f->subject, "VideoReader.Decode");
    assert_string_equal(f->category, "slow_preprocessing");
    expect_text(f, "72% of item time (avg 7.20 ms per call, 100 calls)");
    expect_text(f, "PreprocessedDataset");
    assert_true(f->severity > 7.19 && f->severity < 7.21);
    assert_null(find_rule(m, "CP-DATA-004")); /* decode is 003's; normalize avg 2 ms */
    st->share_of_item_time = 0.5;             /* at the threshold */
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-003"));
    st->share_of_item_time = 0.72;
    /* a data-bound loader scales the severity by its stall */
    fx_loader(m, "loaderH", 20, 50.0, 50.0);
    assert_int_equal(cp_rules_run(m), 0);
    f = find_rule(m, "CP-DATA-003");
    assert_non_null(f);
    assert_true(f->severity > 3.59 && f->severity < 3.61);
    expect_text(f, "waits for data 50%");
    cp_model_free(m);
}

static void test_slow_stage(void **state) {
    (void)state;
    cp_model *m = data_model();
    m->cfg.slow_preprocessing_s = 0.5;
    fx_dataset(m, "ClipsI", 10, 1000.0);
    fx_stage(m, "resize_frames", CODEPROF_SITE_PREPROCESS, 10, 600.0, 0.3);
    fx_stage(m, "at_threshold", CODEPROF_SITE_PREPROCESS, 10, 500.0, 0.3);
    fx_stage(m, "plain_scope", CODEPROF_SITE_SCOPE, 10, 900.0, 0.3); /* not a stage kind */
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-DATA-004"), 1);
    const cp_finding *f = find_rule(m, "CP-DATA-004");
    assert_string_equal(f->subject, "resize_frames");
    assert_string_equal(f->unit, "s");
    assert_true(f->value > 0.599 && f->value < 0.601);
    expect_text(f, "(preprocessing) takes avg 600 ms per call, above the 500 ms threshold");
    expect_text(f, "GPU");
    assert_true(f->severity >= 1.01);
    cp_model_free(m);

    /* share-based: only when data-bound */
    m = data_model();
    fx_dataset(m, "ClipsJ", 100, 10.0);
    fx_stage(m, "color_jitter", CODEPROF_SITE_AUGMENT, 100, 6.0, 0.6);
    assert_int_equal(cp_rules_run(m), 0); /* no loader: not data-bound */
    assert_null(find_rule(m, "CP-DATA-004"));
    fx_loader(m, "loaderJ", 20, 40.0, 60.0); /* stall 0.4 */
    assert_int_equal(cp_rules_run(m), 0);
    f = find_rule(m, "CP-DATA-004");
    expect_text(f, "color_jitter (augmentation)");
    expect_text(f, "60% of item time");
    expect_text(f, "cheaper augmentation");
    assert_true(f->severity > 2.39 && f->severity < 2.41); /* 0.6 x 10 x 0.4 */
    cp_model_free(m);
}

static void test_worker_startup(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsK", 100, 10.0);
    cp_mloader *L = fx_loader(m, "loaderK", 20, 30.0, 20.0); /* stall 0.6 */
    fx_describe(L, 4, 8, 2, 1, 0, 0);
    L->epochs = 2;
    /* loader time = wait + step = 600 + 380 = 980 ms; start-up 2 x 200 ms */
    L->wait_ns = FX_S(0.600);
    L->step_ns = FX_S(0.380);
    L->first_wait_ns = FX_S(0.098); /* exactly 10% */
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-005"));
    L->first_wait_ns = FX_S(0.400);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-005");
    expect_text(f, "set persistent_workers=True");
    /* steady wait (600 - 400 ms) / 18 = 11.1 ms; start-up 400 - 2 x 11.1 ms */
    expect_text(f, "waits 189 ms longer than a steady one (11.1 ms)");
    expect_text(f, "costs 39% of loader time");
    assert_true(f->severity > 3.85 && f->severity < 3.87);
    assert_true(f->saving_s > 0.188 && f->saving_s < 0.19); /* one of two start-ups */
    L->desc.persistent_workers = 1;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-005"));
    L->desc.persistent_workers = 0;
    L->epochs = 1;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-005"));
    L->epochs = 2;
    L->desc.num_workers = 0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-005"));
    cp_model_free(m);
}

static void test_bursty_waits(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsL", 100, 10.0);
    cp_mloader *L = fx_loader(m, "loaderL", 50, 10.0, 20.0); /* stall 0.33 */
    fx_describe(L, 2, 8, 3, 1, 1, 0);
    L->wait_p50_ns = FX_S(0.001);
    L->wait_p95_ns = FX_S(0.004); /* exactly 4x: quiet */
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-006"));
    L->wait_p95_ns = FX_S(0.0041);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-006");
    expect_text(f, "raise prefetch_factor from 3 to 6");
    assert_true(f->severity > 1.66 && f->severity < 1.67); /* stall x 5 */
    /* a median wait that is not small (>= a tenth of the step) is no burst */
    L->wait_p50_ns = FX_S(0.002);
    L->wait_p95_ns = FX_S(0.050);
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-006"));
    cp_model_free(m);
}

static void test_pin_memory_and_failures(void **state) {
    (void)state;
    cp_model *m = data_model();
    cp_mdataset *ds = fx_dataset(m, "ClipsM", 100, 10.0);
    cp_mloader *L = fx_loader(m, "loaderM", 10, 1.0, 99.0);
    fx_describe(L, 2, 8, 2, 1, 1, 1);
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-007")); /* pinned already */
    assert_null(find_rule(m, "CP-DATA-008"));
    L->desc.pin_memory = 0;
    ds->failures = 3;
    assert_int_equal(cp_rules_run(m), 0);
    expect_text(find_rule(m, "CP-DATA-007"), "set pin_memory=True on loaderM");
    const cp_finding *f = find_rule(m, "CP-DATA-008");
    expect_text(f, "3 of 100 item loads of ClipsM raised (3.0%)");
    assert_true(f->severity == 1.01);
    L->desc.uses_gpu = 0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-007"));
    cp_model_free(m);
}

static void test_rules_table_lists_data_rules(void **state) {
    (void)state;
    int seen = 0;
    for (size_t i = 0; i < cp_rules_count(); i++) {
        const cp_rule_info *r = cp_rule_at(i);
        if (!strncmp(r->id, "CP-DATA-", 8)) {
            seen++;
            assert_true(!strcmp(r->category, "slow_data_loading") ||
                        !strcmp(r->category, "slow_preprocessing"));
        }
    }
    assert_int_equal(seen, 9);
}

/* ---- real scopes, fake clock ------------------------------------------- */

static _Atomic uint64_t fake_now = 1000000;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }
static void advance(uint64_t ns) { atomic_fetch_add(&fake_now, ns); }

/* num_workers=0: the loop loads 8 items of 10 ms inside every batch wait,
 * then trains 20 ms; a slow function (1.5 s once) also runs.  The stall
 * (80%) must rank above the slow function, and the advice must be
 * "from 0 to 4" workers. */
static void test_planted_stall_outranks_slow_function(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    uint32_t ds = codeprof_site("PlantedClips", "p.py", 1, CODEPROF_SITE_DATASET);
    uint32_t dec = codeprof_site("decode_frames", "p.py", 2, CODEPROF_SITE_PREPROCESS);
    uint32_t ld = codeprof_site("planted_loader", "p.py", 3, CODEPROF_SITE_LOADER);
    uint32_t fn = codeprof_site("export_checkpoint", "p.py", 4, CODEPROF_SITE_PYTHON);
    codeprof_loader_desc desc = {sizeof desc, 0, 8, 2, 0, 0, 0, 0};
    assert_int_equal(codeprof_loader_describe(s, ld, &desc), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    int64_t index = 0;
    for (int b = 0; b < 20; b++) {
        codeprof_scope_begin(s, ld, CODEPROF_SCOPE_BATCH);
        codeprof_scope_attr(s, CODEPROF_ATTR_ITEMS, 8);
        codeprof_scope_attr(s, CODEPROF_ATTR_EPOCH, 0);
        for (int i = 0; i < 8; i++) {
            codeprof_scope_begin(s, ds, CODEPROF_SCOPE_ITEM);
            codeprof_scope_attr(s, CODEPROF_ATTR_INDEX, index++);
            codeprof_scope_begin(s, dec, 0);
            advance(7000000ull);
            codeprof_scope_end(s, dec, 0);
            advance(3000000ull);
            codeprof_scope_end(s, ds, CODEPROF_SCOPE_ITEM);
        }
        codeprof_scope_end(s, ld, CODEPROF_SCOPE_BATCH);
        advance(20000000ull); /* training step */
    }
    codeprof_scope_begin(s, fn, 0);
    advance(1500000000ull);
    codeprof_scope_end(s, fn, 0);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(m->data.nloaders, 1);
    assert_true(m->data.loaders[0].stall_fraction > 0.799 &&
                m->data.loaders[0].stall_fraction < 0.801);
    m->data.cpu_count = 16; /* the advice must not depend on the test machine */
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *perf = find_rule(m, "CP-PERF-001");
    assert_non_null(perf); /* the slow function is reported too ... */
    assert_string_equal(m->findings[0].rule, "CP-DATA-001"); /* ... but ranks lower */
    assert_true(m->findings[0].severity > perf->severity);
    expect_text(&m->findings[0], "raise num_workers from 0 to 4 (8 items x 10.0 ms per batch");
    /* decode is 70% of item time in a data-bound run */
    expect_text(find_rule(m, "CP-DATA-003"), "decode_frames takes 70% of item time");
    cp_model_free(m);
    codeprof_session_free(s);
    cp_clock_set_fake(NULL);
}

/* Records one batch wait of `items` loads of `item_ns` each (a dataset
 * item with a decode stage of 70% of it, when `dec` is set), plus `extra_ns`
 * spent in next() outside the items, then a step of `step_ns`. */
static void batch(codeprof_session *s, uint32_t ld, uint32_t ds, uint32_t dec, int epoch,
                  int items, uint64_t item_ns, uint64_t extra_ns, uint64_t step_ns,
                  int64_t *index) {
    codeprof_scope_begin(s, ld, CODEPROF_SCOPE_BATCH);
    codeprof_scope_attr(s, CODEPROF_ATTR_ITEMS, items);
    codeprof_scope_attr(s, CODEPROF_ATTR_EPOCH, epoch);
    advance(extra_ns);
    for (int i = 0; i < items; i++) {
        codeprof_scope_begin(s, ds, CODEPROF_SCOPE_ITEM);
        codeprof_scope_attr(s, CODEPROF_ATTR_INDEX, (*index)++);
        if (dec) {
            codeprof_scope_begin(s, dec, 0);
            advance(item_ns * 7 / 10);
            codeprof_scope_end(s, dec, 0);
            advance(item_ns - item_ns * 7 / 10);
        } else {
            advance(item_ns);
        }
        codeprof_scope_end(s, ds, CODEPROF_SCOPE_ITEM);
    }
    codeprof_scope_end(s, ld, CODEPROF_SCOPE_BATCH);
    advance(step_ns);
}

static codeprof_session *fake_session(void) {
    cp_clock_set_fake(fake_clock);
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

/* Regression (issue 7): a profiling_context epoch that contains a data
 * stall outranked the stall (its severity, 10 s / 1 s, beat the stall's
 * 8).  Ranked by saving, the epoch keeps only the time the stall does not
 * explain. */
static void test_epoch_context_below_its_stall(void **state) {
    (void)state;
    codeprof_session *s = fake_session();
    uint32_t ds = codeprof_site("EpochClips", "e.py", 1, CODEPROF_SITE_DATASET);
    uint32_t dec = codeprof_site("decode_e", "e.py", 2, CODEPROF_SITE_PREPROCESS);
    uint32_t ld = codeprof_site("epoch_loader", "e.py", 3, CODEPROF_SITE_LOADER);
    uint32_t ep = codeprof_site("epoch_0", "e.py", 4, CODEPROF_SITE_SCOPE);
    codeprof_loader_desc desc = {sizeof desc, 0, 8, 2, 0, 0, 0, 0};
    assert_int_equal(codeprof_loader_describe(s, ld, &desc), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    int64_t index = 0;
    codeprof_scope_begin(s, ep, 0);
    for (int b = 0; b < 100; b++) /* 80 ms of loading, 20 ms of step: 10 s */
        batch(s, ld, ds, dec, 0, 8, 10000000ull, 0, 20000000ull, &index);
    codeprof_scope_end(s, ep, 0);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    m->data.cpu_count = 16;
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *perf = find_rule(m, "CP-PERF-001");
    const cp_finding *stall = find_rule(m, "CP-DATA-001");
    assert_non_null(perf);
    assert_non_null(stall);
    assert_string_equal(perf->subject, "epoch_0");
    assert_true(perf->severity > stall->severity); /* what used to rank it first */
    assert_string_equal(m->findings[0].rule, "CP-DATA-001");
    /* steady waits: 99 x 80 ms */
    assert_true(stall->saving_s > 7.91 && stall->saving_s < 7.93);
    /* the epoch: 10 s less the 8 s of loader waits inside it */
    assert_true(perf->saving_s > 1.99 && perf->saving_s < 2.01);
    expect_text(perf, "is the loop waiting for batches from epoch_loader");
    for (uint32_t i = 1; i < m->nfindings; i++)
        assert_true(m->findings[i - 1].saving_s >= m->findings[i].saving_s);
    cp_model_free(m);
    codeprof_session_free(s);
    cp_clock_set_fake(NULL);
}

/* Regression (issue 7): a compute-bound loop without workers (items of
 * 104 us, 50 ms steps) was told "raise num_workers from 0 to 1" because
 * the first batch's start-up counted as a stall. */
static void test_compute_bound_in_loop_loader(void **state) {
    (void)state;
    codeprof_session *s = fake_session();
    uint32_t ds = codeprof_site("CheapItems", "c.py", 1, CODEPROF_SITE_DATASET);
    uint32_t ld = codeprof_site("cheap_loader", "c.py", 2, CODEPROF_SITE_LOADER);
    codeprof_loader_desc desc = {sizeof desc, 0, 8, 2, 0, 0, 0, 0};
    assert_int_equal(codeprof_loader_describe(s, ld, &desc), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    int64_t index = 0;
    for (int e = 0; e < 2; e++)
        for (int b = 0; b < 15; b++) /* each epoch's first batch: 1.5 s of warm-up */
            batch(s, ld, ds, 0, e, 8, 104000ull, b == 0 ? 1500000000ull : 0, 50000000ull,
                  &index);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    m->data.cpu_count = 16;
    assert_true(m->data.loaders[0].stall_fraction < 0.02);
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-001"));
    assert_null(find_rule(m, "CP-DATA-005")); /* no workers: persistent_workers cannot help */
    for (uint32_t i = 0; i < m->nfindings; i++)
        assert_null(strstr(m->findings[i].recommendation, "num_workers"));
    cp_model_free(m);
    codeprof_session_free(s);

    /* the loop waits 30 ms per batch outside the items (collate, transfer):
     * a stall, but not item loading, so no "add workers" */
    s = fake_session();
    ds = codeprof_site("CheapItems2", "c.py", 3, CODEPROF_SITE_DATASET);
    ld = codeprof_site("cheap_loader2", "c.py", 4, CODEPROF_SITE_LOADER);
    assert_int_equal(codeprof_loader_describe(s, ld, &desc), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    index = 0;
    for (int b = 0; b < 20; b++)
        batch(s, ld, ds, 0, 0, 8, 104000ull, 30000000ull, 50000000ull, &index);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    m = cp_session_snapshot(s);
    m->data.cpu_count = 16;
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-001");
    expect_text(f, "item loading does not explain the waits");
    expect_text(f, "more workers would not help");
    assert_null(strstr(f->recommendation, "raise num_workers"));
    cp_model_free(m);
    codeprof_session_free(s);
    cp_clock_set_fake(NULL);
}

/* One batch per epoch: every wait is a first (start-up) wait, nothing to
 * judge a stall by, whatever stall fraction the model derives. */
static void test_first_batches_never_a_stall(void **state) {
    (void)state;
    cp_model *m = data_model();
    fx_dataset(m, "ClipsS", 24, 10.0);
    cp_mloader *L = fx_loader(m, "loaderS", 3, 500.0, 0.0);
    fx_describe(L, 0, 8, 2, 0, 0, 0);
    L->epochs = 3;
    L->first_wait_ns = L->wait_ns;
    L->steps = 0;
    L->step_ns = 0;
    cp_mloader_derive(L);
    assert_true(L->stall_fraction == 1.0);
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-001"));
    for (uint32_t i = 0; i < m->nfindings; i++)
        assert_null(strstr(m->findings[i].recommendation, "num_workers"));
    cp_model_free(m);
}

/* Regression (issue 7): a slow preprocessing function called outside any
 * dataset said "0% of item time"; one that sleeps was told to vectorize. */
static void test_slow_stage_outside_items_and_waiting(void **state) {
    (void)state;
    cp_model *m = data_model();
    cp_mstage *st = fx_stage(m, "slow_preprocessing", CODEPROF_SITE_PREPROCESS, 4, 800.0, 0.0);
    uint32_t site_id = st->site;
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-004");
    expect_text(f, "slow_preprocessing (preprocessing) takes avg 800 ms per call, above the "
                   "500 ms threshold (4 calls): ");
    assert_null(strstr(f->recommendation, "item time"));
    assert_null(strstr(f->recommendation, "waits for data"));
    assert_true(f->saving_s > 3.19 && f->saving_s < 3.21); /* its whole time */
    expect_text(f, "vectorize it"); /* CPU not measured: the compute advice */
    /* measured: on a CPU 2% of its time -> it waits */
    cp_mfunc *fn = fx_func(m, site_id, 4, FX_S(3.2), FX_S(3.2), FX_S(0.8));
    fn->cpu_count = 4;
    fn->cpu_ns = FX_S(0.064);
    assert_int_equal(cp_rules_run(m), 0);
    f = find_rule(m, "CP-DATA-004");
    expect_text(f, "it waits (I/O, sleep, a lock) rather than computes (on a CPU 2%");
    assert_null(strstr(f->recommendation, "vectorize it"));
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needed_workers_arithmetic),
        cmocka_unit_test(test_stall_raise_workers),
        cmocka_unit_test(test_stall_threshold_strict_and_batches),
        cmocka_unit_test(test_stall_workers_cannot_help),
        cmocka_unit_test(test_compute_bound_no_worker_advice),
        cmocka_unit_test(test_outliers),
        cmocka_unit_test(test_outliers_stay_below_stall),
        cmocka_unit_test(test_decode_dominates),
        cmocka_unit_test(test_slow_stage),
        cmocka_unit_test(test_worker_startup),
        cmocka_unit_test(test_bursty_waits),
        cmocka_unit_test(test_pin_memory_and_failures),
        cmocka_unit_test(test_rules_table_lists_data_rules),
        cmocka_unit_test(test_planted_stall_outranks_slow_function),
        cmocka_unit_test(test_epoch_context_below_its_stall),
        cmocka_unit_test(test_compute_bound_in_loop_loader),
        cmocka_unit_test(test_first_batches_never_a_stall),
        cmocka_unit_test(test_slow_stage_outside_items_and_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
