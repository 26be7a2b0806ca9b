/* test_rules_mem.c -- the memory rules CP-MEM-001..004 (src/analysis/
 * rules_mem.c): each fires on a hand-filled model quoting its numbers, and
 * each stays silent where its advice would not help (just under its
 * threshold, a one-off context, a floor that does not keep rising, a
 * working set rather than an accumulation, GC not profiled, unknown
 * machine size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules.h"
#include "analysis/rules_mem.h"
#include "model_fixture.h"
#include "mem_fixture.h"

static const cp_finding *find(const cp_model *m, const char *rule, const char *subject) {
    for (uint32_t i = 0; i < m->nfindings; i++)
        if (!strcmp(m->findings[i].rule, rule) && !strcmp(m->findings[i].subject, subject))
            return &m->findings[i];
    return NULL;
}

static uint32_t count_rule(const cp_model *m, const char *rule) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nfindings; i++)
        n += !strcmp(m->findings[i].rule, rule);
    return n;
}

static void has(const char *s, const char *needle) {
    if (!strstr(s, needle))
        fail_msg("missing: %s\nin: %s", needle, s);
}

static void test_rule_table(void **state) {
    (void)state;
    static const char *const want[][2] = {{"CP-MEM-001", "memory_intensive_functions"},
                                          {"CP-MEM-002", "memory_leaks"},
                                          {"CP-MEM-003", "gc_overhead"},
                                          {"CP-MEM-004", "memory_pressure"}};
    for (size_t k = 0; k < 4; k++) {
        int found = 0;
        for (size_t i = 0; i < cp_rules_count(); i++)
            if (!strcmp(cp_rule_at(i)->id, want[k][0])) {
                assert_string_equal(cp_rule_at(i)->category, want[k][1]);
                found = 1;
            }
        assert_true(found);
    }
}

/* CP-MEM-001 on contexts: a kept 200 MiB (peak 210) and a transient
 * 800 MiB peak fire, each with the advice its numbers call for; an 8 MiB
 * context does not; and with contexts present, the per-function RSS
 * figures are not judged (no duplicate finding). */
static void test_intensive_contexts(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    cp_mfunc *f = fx_func(m, fx_site(m, "rss_hog", "x.py", 1, CODEPROF_SITE_PYTHON), 1, FX_S(1),
                          FX_S(1), FX_S(1));
    f->rss_count = 1;
    f->rss_delta_max = (int64_t)FX_MIB(500);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-001"), 2);
    const cp_finding *x = find(m, "CP-MEM-001", "data_processing");
    assert_non_null(x);
    assert_string_equal(x->category, "memory_intensive_functions");
    assert_string_equal(x->unit, "bytes");
    assert_true(x->value == (double)FX_MIB(210));
    assert_true(x->threshold == (double)FX_MIB(100));
    assert_true(x->saving_s == 0);
    has(x->recommendation, "data_processing kept up to 200.0 MiB in one call (peak 210.0 MiB "
                           "within, 1 call, +200.0 MiB net in total; tracked heap), above the "
                           "100.0 MiB threshold: release references");
    x = find(m, "CP-MEM-001", "transient");
    assert_non_null(x);
    assert_true(x->value == (double)FX_MIB(800));
    assert_true(x->severity == 8.0);
    has(x->recommendation, "transient reached a peak of 800.0 MiB within one call for a net "
                           "+1.0 MiB at most (2 calls; tracked heap), above the 100.0 MiB "
                           "threshold: the memory is transient, so process in chunks, reuse "
                           "preallocated buffers and use in-place operations (out=...");
    assert_null(find(m, "CP-MEM-001", "epoch"));
    assert_null(find(m, "CP-MEM-001", "rss_hog"));
    /* a peak equal to the threshold does not fire (strictly above) */
    m->cfg.memory_intensive_bytes = (double)FX_MIB(800);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-001"), 0);
    cp_model_free(m);
}

/* Mode rss: a context's RSS peak is judged, and the finding says so;
 * sampled figures say they are estimates. */
static void test_intensive_rss_and_sampled(void **state) {
    (void)state;
    cp_model *m = fx_model();
    cp_mmem_ctx *c = fx_mem_ctx(m, fx_site(m, "decode", "", 0, CODEPROF_SITE_SCOPE), 3);
    c->rss_peak_max = FX_MIB(300);
    c->rss_delta_max = (int64_t)FX_MIB(20);
    c->rss_delta_sum = (int64_t)FX_MIB(30);
    c->peak_max = FX_MIB(1); /* not tracked in mode rss */
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *x = find(m, "CP-MEM-001", "decode");
    assert_non_null(x);
    has(x->recommendation, "decode reached a peak of 300.0 MiB within one call for a net "
                           "+20.0 MiB at most (3 calls; process RSS)");
    m->mem.mode = 1;
    m->mem.estimated = 1;
    c->peak_max = FX_MIB(400);
    c->delta_max = (int64_t)FX_MIB(390);
    assert_int_equal(cp_rules_run(m), 0);
    x = find(m, "CP-MEM-001", "decode");
    assert_non_null(x);
    has(x->recommendation, "decode kept up to 390.0 MiB in one call (peak 400.0 MiB within, 3 "
                           "calls, +0.0 MiB net in total; tracked heap, sampled estimates)");
    cp_model_free(m);
}

/* CP-MEM-002: the epoch context whose floor rises 6 MiB per call is a leak
 * suspect naming its top allocation site; a one-off context that keeps
 * what it made is not. */
static void test_leak_rising_floor(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-002"), 1);
    const cp_finding *x = find(m, "CP-MEM-002", "epoch");
    assert_non_null(x);
    assert_string_equal(x->category, "memory_leaks");
    assert_string_equal(x->unit, "bytes/call");
    assert_true(x->value == 6.0 * 1024 * 1024);
    assert_true(x->threshold == 1024.0 * 1024); /* 1% of 34 MiB is below 1 MiB */
    has(x->recommendation, "epoch keeps memory across calls: its floor (live bytes after a "
                           "call) rose after 4 of 4 calls, +6.00 MiB per call (10.0 -> 34.0 "
                           "MiB); 24.0 MiB allocated inside its 5 calls is still live (tracked "
                           "heap). Top allocation sites: train.py:55 train_step via list.append "
                           "(24.0 MiB in 4 blocks). Release what each call keeps");
    assert_null(find(m, "CP-MEM-002", "data_processing"));
    cp_model_free(m);
}

static cp_mmem_ctx *leak_ctx(cp_model *m, uint64_t count, uint64_t rises, double slope_mib,
                             int64_t floor_last) {
    cp_mmem_ctx *c = fx_mem_ctx(m, fx_site(m, "loop", "", 0, CODEPROF_SITE_SCOPE), count);
    c->floor_rises = rises;
    c->floor_slope = slope_mib * 1024 * 1024;
    c->floor_last = floor_last;
    m->mem.mode = 2;
    return c;
}

static int leak_fires(cp_model *m) {
    assert_int_equal(cp_rules_run(m), 0);
    int n = (int)count_rule(m, "CP-MEM-002");
    cp_model_free(m);
    return n;
}

/* CP-MEM-002's negative cases, and the accumulated-blocks branch. */
static void test_leak_thresholds(void **state) {
    (void)state;
    cp_model *m = fx_model();
    leak_ctx(m, 5, 4, 2.0, (int64_t)FX_MIB(20));
    assert_int_equal(leak_fires(m), 1);
    /* the floor rose after only 2 of 4 calls: it goes up and down */
    m = fx_model();
    leak_ctx(m, 5, 2, 2.0, (int64_t)FX_MIB(20));
    assert_int_equal(leak_fires(m), 0);
    /* growth under 1 MiB per call */
    m = fx_model();
    leak_ctx(m, 5, 4, 0.5, (int64_t)FX_MIB(20));
    assert_int_equal(leak_fires(m), 0);
    /* 1.5 MiB per call on a 2 GiB floor is under 1% of it */
    m = fx_model();
    leak_ctx(m, 5, 4, 1.5, (int64_t)FX_MIB(2048));
    assert_int_equal(leak_fires(m), 0);
    /* two calls: too few to call a floor rising */
    m = fx_model();
    leak_ctx(m, 2, 1, 50.0, (int64_t)FX_MIB(100));
    assert_int_equal(leak_fires(m), 0);
    /* blocks of several calls still live: 20 MiB left by calls that
     * never held more than 15 MiB each (> 100 MiB / 10) */
    m = fx_model();
    cp_mmem_ctx *c = leak_ctx(m, 3, 0, 0, 0);
    c->leaked_bytes = FX_MIB(20);
    c->leaked_blocks = 20;
    c->peak_max = FX_MIB(15);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *x = find(m, "CP-MEM-002", "loop");
    assert_non_null(x);
    assert_string_equal(x->unit, "bytes");
    assert_true(x->value == (double)FX_MIB(20));
    assert_true(x->threshold == (double)FX_MIB(10));
    has(x->recommendation, "No allocation site recorded");
    cp_model_free(m);
    /* the same 20 MiB within one call's 30 MiB working set: not a leak */
    m = fx_model();
    c = leak_ctx(m, 3, 0, 0, 0);
    c->leaked_bytes = FX_MIB(20);
    c->peak_max = FX_MIB(30);
    assert_int_equal(leak_fires(m), 0);
    /* 9 MiB left: under the threshold / 10 */
    m = fx_model();
    c = leak_ctx(m, 3, 0, 0, 0);
    c->leaked_bytes = FX_MIB(9);
    assert_int_equal(leak_fires(m), 0);
}

/* CP-MEM-003: 0.6 s of GC in a 10 s run (6%) fires with its numbers and
 * saving_s = the GC time; 4% does not; nor does an unprofiled GC. */
static void test_gc(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *x = find(m, "CP-MEM-003", "garbage collector");
    assert_non_null(x);
    assert_string_equal(x->category, "gc_overhead");
    assert_string_equal(x->unit, "fraction");
    assert_true(x->value > 0.0599 && x->value < 0.0601);
    assert_true(x->threshold == 0.05);
    assert_true(x->saving_s > 0.5999 && x->saving_s < 0.6001);
    has(x->recommendation, "The garbage collector took 600 ms, 6.0% of the 10.00 s run (111 "
                           "collections: 100/10/1 in generations 0/1/2, 11.1 per second; "
                           "longest pause 250 ms). Call gc.freeze() once start-up is done (and "
                           "before DataLoader workers fork)");
    has(x->recommendation, "gc.set_threshold(");
    m->mem.gc.time_ns[2] = FX_S(0.1); /* 0.4 s: 4% */
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-003"), 0);
    m->mem.gc.time_ns[2] = FX_S(3);
    m->mem.gc.enabled = 0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-003"), 0);
    cp_model_free(m);
}

static cp_model *pressure_model(uint64_t main_pss_mib, uint64_t worker_pss_mib) {
    cp_model *m = fx_model();
    cp_mmem *mm = &m->mem;
    mm->machine_bytes = FX_MIB(16384);
    mm->rss_peak = FX_MIB(main_pss_mib) + FX_MIB(300);
    mm->nprocs = 5;
    mm->procs = fx_calloc(5, sizeof *mm->procs);
    mm->procs[0] = (cp_mproc){.pid = 1, .worker = -1, .pss_max = FX_MIB(main_pss_mib)};
    for (int w = 0; w < 4; w++)
        mm->procs[1 + w] = (cp_mproc){.pid = 10 + w, .worker = w, .pss_max = FX_MIB(worker_pss_mib)};
    m->data.nloaders = 1;
    m->data.loaders = fx_calloc(1, sizeof *m->data.loaders);
    m->data.loaders[0].site = fx_site(m, "loader", "", 0, CODEPROF_SITE_LOADER);
    m->data.loaders[0].desc = (cp_mloader_desc){1, 4, 32, 4, 0, 0, 0, 0};
    return m;
}

/* CP-MEM-004: main 9 GiB + 4 workers x 1 GiB of PSS is 81% of 16 GiB:
 * fires, saying how many workers to drop to get under 70%; 70% does not;
 * nor does an unknown machine size. */
static void test_pressure(void **state) {
    (void)state;
    cp_model *m = pressure_model(9216, 1024);
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *x = find(m, "CP-MEM-004", "process memory");
    assert_non_null(x);
    assert_string_equal(x->category, "memory_pressure");
    assert_true(x->value > 0.81249 && x->value < 0.81251);
    has(x->recommendation, "Peak memory 13312.0 MiB is 81% of this machine's 16384.0 MiB (RSS "
                           "peak of this process 9516.0 MiB; main + 4 workers' peak PSS 13312.0 "
                           "MiB)");
    has(x->recommendation, "each worker holds 1024.0 MiB (PSS): 2 fewer workers (num_workers 4 "
                           "-> 2) would bring it under 70%; or lower prefetch_factor and the "
                           "batch size (now prefetch_factor 4, batch_size 32)");
    cp_model_free(m);
    /* workers of 1 byte each (a corrupt report): all of them, no overflow */
    m = pressure_model(14000, 0);
    for (int w = 1; w < 5; w++)
        m->mem.procs[w].pss_max = 1;
    assert_int_equal(cp_rules_run(m), 0);
    x = find(m, "CP-MEM-004", "process memory");
    assert_non_null(x);
    has(x->recommendation, "4 fewer workers (num_workers 4 -> 0)");
    cp_model_free(m);
    m = pressure_model(7372, 512); /* 9420 MiB: 57% */
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-004"), 0);
    m->mem.machine_bytes = 0;
    m->mem.rss_peak = FX_MIB(1u << 20);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_rule(m, "CP-MEM-004"), 0);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_intensive_contexts),
        cmocka_unit_test(test_intensive_rss_and_sampled),
        cmocka_unit_test(test_leak_rising_floor),
        cmocka_unit_test(test_leak_thresholds),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_pressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
