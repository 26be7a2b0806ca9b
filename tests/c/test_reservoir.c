/* test_reservoir.c -- percentiles and the bounded reservoir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cpu/reservoir.h"

static const double q[3] = {0.5, 0.95, 0.99};

static void test_nearest_rank_exact(void **state) {
    (void)state;
    uint64_t v[100], out[3];
    for (int i = 0; i < 100; i++)
        v[i] = (uint64_t)(100 - i); /* 100..1, unsorted */
    cp_percentiles(v, 100, q, 3, out);
    assert_int_equal(out[0], 50);
    assert_int_equal(out[1], 95);
    assert_int_equal(out[2], 99);
    uint64_t one = 7;
    cp_percentiles(&one, 1, q, 3, out);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[2], 7);
    cp_percentiles(NULL, 0, q, 3, out);
    assert_int_equal(out[1], 0);
}

static void test_reservoir_is_exact_below_limit_and_bounded_above(void **state) {
    (void)state;
    cp_reservoir r = {0};
    uint64_t rng = 1;
    for (uint64_t i = 1; i <= 50; i++)
        assert_int_equal(cp_reservoir_add(&r, i, i, 64, &rng), 0);
    assert_int_equal(r.n, 50);
    for (uint64_t i = 51; i <= 100000; i++)
        cp_reservoir_add(&r, i, i, 64, &rng);
    assert_int_equal(r.n, 64);
    assert_true(r.cap <= 64);
    /* a uniform sample of 1..100000: its median is far from the first 64 */
    uint64_t out[3];
    cp_percentiles(r.v, r.n, q, 3, out);
    assert_true(out[0] > 20000 && out[0] < 80000);
    cp_reservoir dst = {0};
    assert_int_equal(cp_reservoir_extend(&dst, &r), 0);
    assert_int_equal(dst.n, 64);
    cp_reservoir_free(&r);
    cp_reservoir_free(&dst);
    assert_null(r.v);
}

/* Past the limit the skip-based sampler must stay uniform: the sample's
 * percentiles track the stream's. */
static void test_skip_sampler_is_uniform(void **state) {
    (void)state;
    cp_reservoir r = {0};
    uint64_t rng = 12345;
    for (uint64_t i = 1; i <= 1000000; i++)
        cp_reservoir_push(&r, i, i, 2000, &rng);
    assert_int_equal(r.n, 2000);
    uint64_t out[3];
    cp_percentiles(r.v, r.n, q, 3, out);
    assert_true(out[0] > 460000 && out[0] < 540000);
    assert_true(out[1] > 930000 && out[1] < 970000);
    assert_true(out[2] > 980000);
    /* late values do get in: the sampler keeps replacing */
    uint64_t late = 0;
    for (uint32_t k = 0; k < r.n; k++)
        late += r.v[k] > 900000;
    assert_true(late > 120 && late < 280); /* ~10% of 2000 */
    cp_reservoir_free(&r);
}

/* cp_percentiles_select (the model build's) equals the sorting version on
 * random, sorted, reversed and constant inputs, with many duplicates. */
static void test_select_equals_sort(void **state) {
    (void)state;
    const double q[3] = {0.5, 0.95, 0.99};
    uint64_t rng = 88172645463325252ull;
    for (uint32_t n = 1; n <= 3000; n = n * 3 + 1) {
        uint64_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        for (int shape = 0; shape < 5; shape++) {
            for (uint32_t i = 0; i < n; i++) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                a[i] = shape == 0   ? rng % 1000000
                       : shape == 1 ? rng % 7 /* many duplicates */
                       : shape == 2 ? i
                       : shape == 3 ? n - i
                                    : 42;
            }
            memcpy(b, a, n * sizeof *a);
            uint64_t want[3], got[3];
            cp_percentiles(a, n, q, 3, want);
            cp_percentiles_select(b, n, q, 3, got);
            assert_memory_equal(want, got, sizeof want);
        }
        free(a);
        free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_equals_sort),
        cmocka_unit_test(test_nearest_rank_exact),
        cmocka_unit_test(test_reservoir_is_exact_below_limit_and_bounded_above),
        cmocka_unit_test(test_skip_sampler_is_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
