/* test_rules_cow.c -- CP-DATA-009 (src/analysis/rules_data.c): DataLoader
 * workers whose private memory grows while their dataset holds Python
 * containers (copy-on-write of reference counts), on hand-built models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "analysis/rules.h"
#include "analysis/rules_data.h"
#include "model_fixture.h"

#define MIB (1024.0 * 1024.0)

/* Two workers of a loader, USS first -> last (MiB), each with `items`. */
static cp_model *cow_model(double first_mib, double last_mib, uint64_t py_objects,
                           uint64_t array_bytes, const char *text) {
    cp_model *m = fx_model();
    uint32_t loader = fx_site(m, "DataLoader(CowDataset)", NULL, 0, CODEPROF_SITE_LOADER);
    uint32_t dataset = fx_site(m, "CowDataset", NULL, 0, CODEPROF_SITE_DATASET);
    m->mem.machine_bytes = (uint64_t)(16384 * MIB);
    m->mem.procs = calloc(3, sizeof *m->mem.procs);
    assert_non_null(m->mem.procs);
    m->mem.nprocs = 3;
    cp_mproc *p = m->mem.procs;
    p[0] = (cp_mproc){.pid = 4242,
                      .worker = -1,
                      .nsamples = 10,
                      .rss_first = (uint64_t)(900 * MIB),
                      .rss_last = (uint64_t)(900 * MIB)};
    for (int w = 0; w < 2; w++) {
        cp_mproc *q = &p[1 + w];
        q->pid = 5000 + w;
        q->worker = w;
        q->loader = loader;
        q->nsamples = 20;
        q->uss_first = (uint64_t)(first_mib * MIB);
        q->uss_last = (uint64_t)((last_mib - 10 * w) * MIB);
        q->uss_max = q->uss_last;
        q->items = 1500;
    }
    cp_mds_note *n = &m->mem.dsnotes[0];
    n->loader = loader;
    n->dataset = dataset;
    n->py_objects = py_objects;
    n->array_bytes = array_bytes;
    snprintf(n->text, sizeof n->text, "%s", text);
    m->mem.ndsnotes = 1;
    return m;
}

static const cp_finding *find_rule(const cp_model *m, const char *rule) {
    for (uint32_t i = 0; i < m->nfindings; i++)
        if (!strcmp(m->findings[i].rule, rule))
            return &m->findings[i];
    return NULL;
}

static void expect_text(const cp_finding *f, const char *needle) {
    assert_non_null(f);
    if (!strstr(f->recommendation, needle))
        fail_msg("recommendation of %s lacks \"%s\": %s", f->rule, needle, f->recommendation);
}

static void test_fires_on_python_containers(void **state) {
    (void)state;
    cp_model *m = cow_model(20, 220, 3000000, 0, "self.samples: list of 3000000 str");
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find_rule(m, "CP-DATA-009");
    assert_non_null(f);
    assert_string_equal(f->subject, "DataLoader(CowDataset)");
    assert_string_equal(f->category, "slow_data_loading");
    assert_true(f->value == 200 * MIB); /* the largest growth */
    assert_true(f->threshold == 64 * MIB);
    assert_true(f->saving_s == 0);
    assert_true(f->severity >= 1.01);
    expect_text(f, "2 of 2 workers of DataLoader(CowDataset)");
    expect_text(f, "CowDataset [self.samples: list of 3000000 str]");
    expect_text(f, "worker 0 20 -> 220 MiB (136.5 KiB per item)");
    expect_text(f, "worker 1 20 -> 210 MiB");
    expect_text(f, "reference count");
    expect_text(f, "numpy arrays");
    cp_model_free(m);
}

/* The numpy-backed twin: no Python objects in containers, no finding. */
static void test_quiet_on_arrays(void **state) {
    (void)state;
    cp_model *m = cow_model(20, 220, 0, 96000000, "self.samples: ndarray |S32 (3000000,)");
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-009"));
    cp_model_free(m);
}

/* Small growth: below 64 MiB, or below 10% of a large first USS. */
static void test_quiet_on_small_growth(void **state) {
    (void)state;
    cp_model *m = cow_model(20, 70, 3000000, 0, "self.samples: list of 3000000 str");
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-009"));
    cp_model_free(m);
    m = cow_model(1000, 1080, 3000000, 0, "self.samples: list of 3000000 str");
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-009")); /* 80 MiB < 10% of 1000 MiB */
    cp_model_free(m);
    /* one reading only: nothing measured */
    m = cow_model(20, 220, 3000000, 0, "self.samples: list of 3000000 str");
    m->mem.procs[1].nsamples = 1;
    m->mem.procs[2].nsamples = 1;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-009"));
    cp_model_free(m);
}

/* Workers of another loader do not count for this loader's dataset. */
static void test_other_loader(void **state) {
    (void)state;
    cp_model *m = cow_model(20, 220, 3000000, 0, "self.samples: list of 3000000 str");
    uint32_t other = fx_site(m, "DataLoader(Other)", NULL, 0, CODEPROF_SITE_LOADER);
    m->mem.procs[1].loader = other;
    m->mem.procs[2].loader = other;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find_rule(m, "CP-DATA-009"));
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_on_python_containers),
        cmocka_unit_test(test_quiet_on_arrays),
        cmocka_unit_test(test_quiet_on_small_growth),
        cmocka_unit_test(test_other_loader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
