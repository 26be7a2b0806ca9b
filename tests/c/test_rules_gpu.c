/* test_rules_gpu.c -- the GPU rules CP-GPU-001..005 (src/analysis/
 * rules_gpu.c): each fires on a model fixture quoting its numbers, and
 * each has its "must not fire" cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "gpu_fixture.h"
#include "analysis/rules.h"
#include "analysis/rules_gpu.h"
#include "report/report.h"
#include "report/strbuf.h"

static const cp_rule_info *info_of(const char *id) {
    for (size_t i = 0; i < cp_rules_count(); i++)
        if (!strcmp(cp_rule_at(i)->id, id))
            return cp_rule_at(i);
    fail_msg("no rule %s", id);
    return NULL;
}

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing: %s\nin: %s", needle, doc);
}

/* Findings of rule `id` (after running it alone on a cleared list). */
static uint32_t run(cp_model *m, const char *id, int (*fn)(cp_model *, const cp_rule_info *)) {
    uint32_t before = m->nfindings;
    assert_int_equal(fn(m, info_of(id)), 0);
    uint32_t n = 0;
    for (uint32_t i = before; i < m->nfindings; i++)
        n += !strcmp(m->findings[i].rule, id);
    return n;
}

static const cp_finding *last(const cp_model *m) {
    assert_true(m->nfindings > 0);
    return &m->findings[m->nfindings - 1];
}

static void add_loader(cp_model *m, const char *name, uint64_t batches, double stall) {
    uint32_t site = fx_site(m, name, "", 0, CODEPROF_SITE_LOADER);
    cp_mdata *d = &m->data;
    d->loaders = realloc(d->loaders, ((size_t)d->nloaders + 1) * sizeof *d->loaders);
    assert_non_null(d->loaders);
    cp_mloader *L = &d->loaders[d->nloaders++];
    memset(L, 0, sizeof *L);
    L->site = site;
    L->batches = batches;
    L->stall_fraction = stall;
}

static void add_data_finding(cp_model *m, const char *loader) {
    cp_finding f;
    memset(&f, 0, sizeof f);
    strcpy(f.rule, "CP-DATA-001");
    strcpy(f.category, "slow_data_loading");
    snprintf(f.subject, sizeof f.subject, "%s", loader);
    f.value = 0.6;
    assert_int_equal(cp_model_add_finding(m, &f), 0);
}

/* ---- CP-GPU-001 ---------------------------------------------------------- */

static void test_slow_op_fires_and_fills_bottlenecks(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    assert_int_equal(run(m, "CP-GPU-001", cp_rule_gpu_slow), 1);
    const cp_finding *f = last(m);
    assert_string_equal(f->category, "slow_gpu_operations");
    assert_string_equal(f->subject, "model_forward");
    assert_true(f->value > 0.399 && f->value < 0.401);
    assert_true(f->threshold == m->cfg.slow_gpu_op_s);
    assert_true(f->saving_s > 0.749 && f->saving_s < 0.751); /* the two kept slow ops */
    has(f->recommendation, "400 ms on the GPU");
    has(f->recommendation, "5 of 20 calls");
    has(f->recommendation, "2.50 s in total");
    /* through every rule: identify_bottlenecks()["slow_gpu_operations"] */
    m->nfindings = 0;
    assert_int_equal(cp_rules_run(m), 0);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    const char *b = strstr(sb.data, "\"bottlenecks\":");
    assert_non_null(b);
    has(b, "\"slow_gpu_operations\":[{");
    has(strstr(b, "\"slow_gpu_operations\":[{"), "\"context\":\"model_forward\"");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_slow_op_warm_up_and_host(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->gpu.enabled = 1;
    uint32_t s = fx_site(m, "conv", "", 0, CODEPROF_SITE_GPU);
    /* one 900 ms call, 99 calls of 2 ms */
    cp_mgpu_op *o = gx_op(m, s, 100, 100, GX_MS(900 + 99 * 2), GX_MS(2), GX_MS(900), GX_MS(50));
    o->slow = 1;
    assert_int_equal(run(m, "CP-GPU-001", cp_rule_gpu_slow), 1);
    has(last(m)->recommendation, "once, while its other 99 calls average 2.00 ms");
    has(last(m)->recommendation, "warm-up");
    /* host timing only: says so */
    cp_model *h = fx_model();
    h->gpu.enabled = 1;
    s = fx_site(h, "step", "", 0, CODEPROF_SITE_GPU);
    o = gx_op(h, s, 2, 0, 0, 0, 0, GX_MS(500));
    o->host_max_ns = GX_MS(300);
    o->slow = 2;
    assert_int_equal(run(h, "CP-GPU-001", cp_rule_gpu_slow), 1);
    has(last(h)->recommendation, "300 ms on the host (device time not measured");
    cp_model_free(m);
    cp_model_free(h);
}

static void test_slow_op_must_not_fire(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->gpu.enabled = 1;
    uint32_t s = fx_site(m, "fast", "", 0, CODEPROF_SITE_GPU);
    gx_op(m, s, 10, 10, GX_MS(1000), GX_MS(100), GX_MS(100), GX_MS(5)); /* max == threshold */
    assert_int_equal(run(m, "CP-GPU-001", cp_rule_gpu_slow), 0);
    m->cfg.slow_gpu_op_s = 0.5; /* re-rendered with a higher threshold */
    m->gpu.ops[0].device_max_ns = GX_MS(400);
    assert_int_equal(run(m, "CP-GPU-001", cp_rule_gpu_slow), 0);
    cp_model_free(m);
}

/* ---- CP-GPU-002 ---------------------------------------------------------- */

static void test_data_bound_fires_with_evidence(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m); /* GPU 0: 35.5% over 100 samples */
    add_loader(m, "train_loader", 50, 0.62);
    add_data_finding(m, "train_loader");
    assert_int_equal(run(m, "CP-GPU-002", cp_rule_gpu_data_bound), 1);
    const cp_finding *f = last(m);
    assert_string_equal(f->subject, "GPU 0 (Fake H100)");
    assert_true(f->value == 35.5);
    has(f->recommendation, "busy 36% of the time");
    has(f->recommendation, "train_loader 62% of its time");
    has(f->recommendation, "data-bound");
    has(f->recommendation, "see the CP-DATA-001 finding for train_loader");
    /* a stalling loader without the data finding is evidence too */
    cp_model *n = fx_model();
    gx_fill(n);
    add_loader(n, "L", 10, 0.5);
    assert_int_equal(run(n, "CP-GPU-002", cp_rule_gpu_data_bound), 1);
    has(last(n)->recommendation, "more DataLoader workers");
    cp_model_free(m);
    cp_model_free(n);
}

static void test_data_bound_must_not_fire(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    /* low utilization, no data evidence */
    assert_int_equal(run(m, "CP-GPU-002", cp_rule_gpu_data_bound), 0);
    /* a loader that does not stall, or too few batches */
    add_loader(m, "ok_loader", 50, 0.05);
    add_loader(m, "short", 2, 0.9);
    assert_int_equal(run(m, "CP-GPU-002", cp_rule_gpu_data_bound), 0);
    /* evidence, but the GPU is busy, or too few samples */
    add_data_finding(m, "ok_loader");
    m->gpu.devices[0].util_mean = 55;
    assert_int_equal(run(m, "CP-GPU-002", cp_rule_gpu_data_bound), 0);
    m->gpu.devices[0].util_mean = 20;
    m->gpu.devices[0].samples = 9;
    assert_int_equal(run(m, "CP-GPU-002", cp_rule_gpu_data_bound), 0);
    cp_model_free(m);
}

/* ---- CP-GPU-003 ---------------------------------------------------------- */

static void test_sync_fires_naming_the_line(void **state) {
    (void)state;
    cp_model *m = fx_model(); /* 10 s run */
    gx_fill(m);
    assert_int_equal(run(m, "CP-GPU-003", cp_rule_gpu_sync), 1); /* line 66, not 70 */
    const cp_finding *f = last(m);
    assert_string_equal(f->category, "gpu_synchronization");
    has(f->subject, "train.py:66 (train_step)");
    has(f->recommendation, "500 times for 900 ms in all (9.0% of the 10.00 s run");
    has(f->recommendation, ".item()");
    assert_true(f->saving_s > 0.899 && f->saving_s < 0.901);
    /* few calls but 6% of the run blocked */
    cp_model *n = fx_model();
    uint32_t s = fx_site(n, "f", "a.py", 1, CODEPROF_SITE_PYTHON);
    gx_sync(n, s, 9, CP_GPU_SYNC_DEVICE, 3, FX_S(0.6));
    assert_int_equal(run(n, "CP-GPU-003", cp_rule_gpu_sync), 1);
    has(last(n)->recommendation, "torch.cuda.synchronize()");
    cp_model_free(m);
    cp_model_free(n);
}

static void test_sync_must_not_fire(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t s = fx_site(m, "f", "a.py", 1, CODEPROF_SITE_PYTHON);
    gx_sync(m, s, 5, CP_GPU_SYNC_MEMCPY, 5000, GX_MS(50)); /* many but cheap: 0.5% */
    gx_sync(m, s, 6, CP_GPU_SYNC_MEMCPY, 99, FX_S(0.4));  /* 4%, < 100 calls */
    assert_int_equal(run(m, "CP-GPU-003", cp_rule_gpu_sync), 0);
    cp_model_free(m);
}

/* ---- CP-GPU-004 ---------------------------------------------------------- */

static void test_memory_fires(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    m->gpu.ops[0].mem_peak = 15000 * GX_MIB; /* of 16000 */
    assert_int_equal(run(m, "CP-GPU-004", cp_rule_gpu_memory), 1);
    const cp_finding *f = last(m);
    has(f->recommendation, "94% of the device's memory (15000.0 of 16000.0 MiB, torch's peak");
    has(f->recommendation, "gradient checkpointing");
    has(f->recommendation, "mixed precision");
    /* NVML's used maximum */
    cp_model *n = fx_model();
    gx_fill(n);
    n->gpu.devices[0].mem_used_max = 15500 * GX_MIB;
    assert_int_equal(run(n, "CP-GPU-004", cp_rule_gpu_memory), 1);
    assert_string_equal(last(n)->subject, "GPU 0 (Fake H100)");
    cp_model_free(m);
    cp_model_free(n);
}

static void test_memory_must_not_fire(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m); /* 3000 and 4000 of 16000 MiB */
    assert_int_equal(run(m, "CP-GPU-004", cp_rule_gpu_memory), 0);
    m->gpu.ops[0].mem_peak = 14400 * GX_MIB; /* exactly 90% */
    assert_int_equal(run(m, "CP-GPU-004", cp_rule_gpu_memory), 0);
    m->gpu.device_mem_total = 0; /* total unknown: no share */
    m->gpu.ops[0].mem_peak = 20000 * GX_MIB;
    assert_int_equal(run(m, "CP-GPU-004", cp_rule_gpu_memory), 0);
    cp_model_free(m);
}

/* ---- CP-GPU-005 ---------------------------------------------------------- */

static void test_batch_fires(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m); /* 35.5%, 4000 of 16000 MiB */
    assert_int_equal(run(m, "CP-GPU-005", cp_rule_gpu_batch), 1);
    const cp_finding *f = last(m);
    has(f->recommendation, "busy only 36% of the time");
    has(f->recommendation, "at most 4000.0 of 16000.0 MiB (25%)");
    has(f->recommendation, "batch size");
    has(f->recommendation, "3.6x");
    cp_model_free(m);
}

static void test_batch_must_not_fire(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    add_loader(m, "L", 10, 0.5); /* data-bound: 002's case */
    assert_int_equal(run(m, "CP-GPU-005", cp_rule_gpu_batch), 0);
    cp_model *n = fx_model();
    gx_fill(n);
    n->gpu.devices[0].mem_used_max = 9000 * GX_MIB; /* > 50% */
    assert_int_equal(run(n, "CP-GPU-005", cp_rule_gpu_batch), 0);
    n->gpu.devices[0].mem_used_max = 1000 * GX_MIB;
    n->gpu.devices[0].util_mean = 45;
    assert_int_equal(run(n, "CP-GPU-005", cp_rule_gpu_batch), 0);
    n->gpu.devices[0].util_mean = 0; /* never busy: not this program's GPU */
    n->gpu.devices[0].util_max = 0;
    assert_int_equal(run(n, "CP-GPU-005", cp_rule_gpu_batch), 0);
    cp_model_free(m);
    cp_model_free(n);
}

/* GPU off: no GPU finding from the whole rule set. */
static void test_off_no_findings(void **state) {
    (void)state;
    cp_model *m = fx_model();
    assert_int_equal(cp_rules_run(m), 0);
    for (uint32_t i = 0; i < m->nfindings; i++)
        assert_true(strncmp(m->findings[i].rule, "CP-GPU-", 7) != 0);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_op_fires_and_fills_bottlenecks),
        cmocka_unit_test(test_slow_op_warm_up_and_host),
        cmocka_unit_test(test_slow_op_must_not_fire),
        cmocka_unit_test(test_data_bound_fires_with_evidence),
        cmocka_unit_test(test_data_bound_must_not_fire),
        cmocka_unit_test(test_sync_fires_naming_the_line),
        cmocka_unit_test(test_sync_must_not_fire),
        cmocka_unit_test(test_memory_fires),
        cmocka_unit_test(test_memory_must_not_fire),
        cmocka_unit_test(test_batch_fires),
        cmocka_unit_test(test_batch_must_not_fire),
        cmocka_unit_test(test_off_no_findings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
