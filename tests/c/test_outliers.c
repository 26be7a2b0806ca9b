/* test_outliers.c -- outlier item loads by median + k x MAD
 * (src/data/outliers.c): every planted slow index is found however many
 * there are (the p99 gate it replaced found one of two), the result does
 * not depend on the order of the loads, the floor relative to the median
 * keeps near-equal loads quiet, repeat-slow indices are counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "data/outliers.h"

#define MS 1000000ull

static void free_ds(cp_mdataset *d) {
    free(d->bottleneck_indices);
    free(d->bottleneck_ns);
    free(d->bottleneck_epochs);
    memset(d, 0, sizeof *d);
}

/* Deterministic pseudo-random jitter (no libc rand state). */
static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void test_cutoff_median_and_mad(void **state) {
    (void)state;
    cp_outlier_load l[6] = {{0, 10 * MS}, {1, 12 * MS}, {2, 8 * MS},
                            {3, 11 * MS}, {4, 9 * MS},  {5, 300 * MS}};
    uint64_t med, mad;
    uint64_t cut = cp_outlier_cutoff(l, 6, &med, &mad);
    assert_int_equal(med, 10500000ull); /* mean of 10 and 11 ms */
    assert_int_equal(mad, 1500000ull);  /* |dev| 0.5 0.5 1.5 1.5 2.5 289.5 */
    /* 5 x 1.4826 x 1.5 ms = 11.1 ms < 4 x 10.5 ms: the median floor wins */
    assert_int_equal(cut, med + 4 * med);
    /* too few loads to tell */
    assert_int_equal(cp_outlier_cutoff(l, 4, &med, &mad), UINT64_MAX);
    assert_int_equal(med, 0);
}

static void test_cutoff_spread_by_mad(void **state) {
    (void)state;
    /* widely spread loads: 1..41 ms; median 21, MAD 10: 5 x 1.4826 x 10 ms
     * = 74.1 ms is under the floor 4 x 21 = 84 ms */
    cp_outlier_load l[41];
    for (int i = 0; i < 41; i++)
        l[i] = (cp_outlier_load){i, (uint64_t)(i + 1) * MS};
    uint64_t med, mad, cut = cp_outlier_cutoff(l, 41, &med, &mad);
    assert_int_equal(med, 21 * MS);
    assert_int_equal(mad, 10 * MS);
    assert_int_equal(cut, 21 * MS + 84 * MS);
    /* a bimodal spread: half 1 ms, half 100 ms: MAD is large, the 100 ms
     * loads are a mode, not outliers */
    for (int i = 0; i < 40; i++)
        l[i] = (cp_outlier_load){i, (i % 2 ? 100 : 1) * MS};
    cut = cp_outlier_cutoff(l, 40, &med, &mad);
    assert_true(cut > 100 * MS);
    /* the absolute floor: instant loads do not make 10 us ones outliers */
    for (int i = 0; i < 40; i++)
        l[i] = (cp_outlier_load){i, i == 5 ? 10000ull : 0};
    cut = cp_outlier_cutoff(l, 40, &med, &mad);
    assert_int_equal(cut, CP_OUTLIER_MIN_EXCESS_NS);
}

/* The case: 2 of 20 items ~30x the median.  A detector that
 * admits only loads at or above p99 listed one of them. */
static void test_two_planted_of_twenty(void **state) {
    (void)state;
    cp_outlier_load l[20];
    uint64_t seed = 7;
    for (int i = 0; i < 20; i++)
        l[i] = (cp_outlier_load){i, 10 * MS + lcg(&seed) % (2 * MS)};
    l[4].dur_ns = 300 * MS;
    l[15].dur_ns = 290 * MS;
    cp_mdataset d;
    memset(&d, 0, sizeof d);
    assert_int_equal(cp_outliers_find(&d, l, 20, UINT64_MAX), 0);
    assert_int_equal(d.nbottlenecks, 2);
    assert_int_equal(d.bottleneck_indices[0], 4); /* slowest first */
    assert_int_equal(d.bottleneck_indices[1], 15);
    assert_int_equal(d.bottleneck_ns[0], 300 * MS);
    assert_int_equal(d.bottleneck_epochs[0], 1);
    assert_int_equal(d.repeat_slow, 0);
    free_ds(&d);
}

/* The same durations in any order give the same outliers (the issue's
 * 24x index was missing in 3 of 6 identical runs). */
static void test_order_independent(void **state) {
    (void)state;
    enum { N = 120 };
    cp_outlier_load base[N], l[N];
    uint64_t seed = 99;
    for (int i = 0; i < N; i++) /* 60 indices x 2 epochs, 8..14 ms */
        base[i] = (cp_outlier_load){i % 60, 8 * MS + lcg(&seed) % (6 * MS)};
    base[17].dur_ns = 24 * 11 * MS; /* index 17, epoch 0: 24x the median */
    base[77].dur_ns = 24 * 11 * MS; /* index 17, epoch 1: a tie */
    base[30].dur_ns = 80 * MS;      /* index 30, once: ~7x */
    cp_mdataset ref;
    memset(&ref, 0, sizeof ref);
    memcpy(l, base, sizeof l);
    assert_int_equal(cp_outliers_find(&ref, l, N, UINT64_MAX), 0);
    assert_int_equal(ref.nbottlenecks, 2);
    assert_int_equal(ref.bottleneck_indices[0], 17);
    assert_int_equal(ref.bottleneck_epochs[0], 2);
    assert_int_equal(ref.bottleneck_indices[1], 30);
    assert_int_equal(ref.repeat_slow, 1);
    for (int run = 0; run < 6; run++) {
        memcpy(l, base, sizeof l);
        for (int i = N - 1; i > 0; i--) { /* shuffle */
            int j = (int)(lcg(&seed) % (uint64_t)(i + 1));
            cp_outlier_load t = l[i];
            l[i] = l[j];
            l[j] = t;
        }
        cp_mdataset d;
        memset(&d, 0, sizeof d);
        assert_int_equal(cp_outliers_find(&d, l, N, UINT64_MAX), 0);
        assert_int_equal(d.nbottlenecks, ref.nbottlenecks);
        assert_memory_equal(d.bottleneck_indices, ref.bottleneck_indices,
                            ref.nbottlenecks * sizeof *ref.bottleneck_indices);
        assert_memory_equal(d.bottleneck_ns, ref.bottleneck_ns,
                            ref.nbottlenecks * sizeof *ref.bottleneck_ns);
        assert_memory_equal(d.bottleneck_epochs, ref.bottleneck_epochs,
                            ref.nbottlenecks * sizeof *ref.bottleneck_epochs);
        free_ds(&d);
    }
    free_ds(&ref);
}

static void test_near_equal_loads_quiet_and_slow_threshold(void **state) {
    (void)state;
    cp_outlier_load l[50];
    for (int i = 0; i < 50; i++) /* 10 ms, one at 4.9x: under the floor */
        l[i] = (cp_outlier_load){i, i == 9 ? 49 * MS : 10 * MS};
    cp_mdataset d;
    memset(&d, 0, sizeof d);
    assert_int_equal(cp_outliers_find(&d, l, 50, UINT64_MAX), 0);
    assert_int_equal(d.nbottlenecks, 0);
    /* just above 5x the median */
    for (int i = 0; i < 50; i++)
        l[i] = (cp_outlier_load){i, i == 9 ? 50 * MS + 1 : 10 * MS};
    assert_int_equal(cp_outliers_find(&d, l, 50, UINT64_MAX), 0);
    assert_int_equal(d.nbottlenecks, 1);
    /* the configured slow threshold catches what the statistic does not,
     * also with too few loads to compute it */
    for (int i = 0; i < 3; i++)
        l[i] = (cp_outlier_load){i, (uint64_t)(i + 1) * 100 * MS};
    assert_int_equal(cp_outliers_find(&d, l, 3, 150 * MS), 0);
    assert_int_equal(d.nbottlenecks, 2);
    assert_int_equal(d.bottleneck_indices[0], 2);
    assert_int_equal(d.bottleneck_indices[1], 1);
    assert_int_equal(cp_outliers_find(&d, l, 0, 0), 0);
    assert_int_equal(d.nbottlenecks, 0);
    free_ds(&d);
}

static void test_cap_keeps_counting_listed(void **state) {
    (void)state;
    enum { N = 400 };
    cp_outlier_load *l = calloc(N, sizeof *l);
    assert_non_null(l);
    for (int i = 0; i < N; i++)
        l[i] = (cp_outlier_load){i, 10 * MS};
    /* 60 outlier indices (more than the cap), the slowest one twice */
    for (int i = 0; i < 60; i++)
        l[i].dur_ns = (uint64_t)(200 + i) * MS;
    l[300] = (cp_outlier_load){59, 100 * MS};
    cp_mdataset d;
    memset(&d, 0, sizeof d);
    assert_int_equal(cp_outliers_find(&d, l, N, UINT64_MAX), 0);
    assert_int_equal(d.nbottlenecks, CP_MAX_BOTTLENECKS);
    assert_int_equal(d.bottleneck_indices[0], 59);
    assert_int_equal(d.bottleneck_ns[0], 259 * MS);
    assert_int_equal(d.bottleneck_epochs[0], 2);
    assert_int_equal(d.repeat_slow, 1);
    free_ds(&d);
    free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutoff_median_and_mad),
        cmocka_unit_test(test_cutoff_spread_by_mad),
        cmocka_unit_test(test_two_planted_of_twenty),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_near_equal_loads_quiet_and_slow_threshold),
        cmocka_unit_test(test_cap_keeps_counting_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
