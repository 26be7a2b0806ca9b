/* outliers.c -- outlier item loads by median + k x MAD (outliers.h). */
#include "data/outliers.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Slowest first; equal durations by index, ascending. */
static int cmp_load(const void *a, const void *b) {
    const cp_outlier_load *x = a, *y = b;
    if (x->dur_ns != y->dur_ns)
        return x->dur_ns < y->dur_ns ? 1 : -1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Median of v[0..n) sorted ascending (n > 0): the mean of the two middle
 * values when n is even, rounded down. */
static uint64_t median_sorted(const uint64_t *v, size_t n) {
    if (n % 2)
        return v[n / 2];
    uint64_t a = v[n / 2 - 1], b = v[n / 2];
    return a + (b - a) / 2;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

uint64_t cp_outlier_cutoff(const cp_outlier_load *loads, size_t n, uint64_t *median,
                           uint64_t *mad) {
    if (median)
        *median = 0;
    if (mad)
        *mad = 0;
    if (n < CP_OUTLIER_MIN_LOADS || !loads)
        return UINT64_MAX;
    uint64_t *v = malloc(n * sizeof *v);
    if (!v)
        return UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        v[i] = loads[i].dur_ns;
    qsort(v, n, sizeof *v, cmp_u64);
    uint64_t med = median_sorted(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = v[i] > med ? v[i] - med : med - v[i];
    qsort(v, n, sizeof *v, cmp_u64);
    uint64_t dev = median_sorted(v, n);
    free(v);
    if (median)
        *median = med;
    if (mad)
        *mad = dev;
    double by_mad = CP_OUTLIER_K_MAD * 1.4826 * (double)dev;
    double by_median = CP_OUTLIER_R_MEDIAN * (double)med;
    double excess = by_mad > by_median ? by_mad : by_median;
    if (excess < (double)CP_OUTLIER_MIN_EXCESS_NS)
        excess = (double)CP_OUTLIER_MIN_EXCESS_NS;
    if (excess >= 1.8e19)
        return UINT64_MAX;
    return sat_add(med, (uint64_t)excess);
}

int cp_outliers_find(cp_mdataset *d, cp_outlier_load *loads, size_t n, uint64_t slow_ns) {
    d->nbottlenecks = 0;
    d->repeat_slow = 0;
    if (!d->bottleneck_indices)
        d->bottleneck_indices = calloc(CP_MAX_BOTTLENECKS, sizeof *d->bottleneck_indices);
    if (!d->bottleneck_ns)
        d->bottleneck_ns = calloc(CP_MAX_BOTTLENECKS, sizeof *d->bottleneck_ns);
    if (!d->bottleneck_epochs)
        d->bottleneck_epochs = calloc(CP_MAX_BOTTLENECKS, sizeof *d->bottleneck_epochs);
    if (!d->bottleneck_indices || !d->bottleneck_ns || !d->bottleneck_epochs)
        return -1;
    if (!n)
        return 0;
    uint64_t cutoff = cp_outlier_cutoff(loads, n, NULL, NULL);
    if (cutoff == UINT64_MAX && n >= CP_OUTLIER_MIN_LOADS) {
        /* could not compute the statistic (OOM): slow loads only would be a
         * silently different answer */
        return -1;
    }
    qsort(loads, n, sizeof *loads, cmp_load);
    for (size_t i = 0; i < n; i++) {
        uint64_t dur = loads[i].dur_ns;
        if (!(dur > slow_ns || dur > cutoff))
            break; /* sorted: nothing below is an outlier either */
        uint32_t k = 0;
        while (k < d->nbottlenecks && d->bottleneck_indices[k] != loads[i].index)
            k++;
        if (k < d->nbottlenecks) {
            d->bottleneck_epochs[k]++;
            continue;
        }
        if (d->nbottlenecks == CP_MAX_BOTTLENECKS)
            continue;
        d->bottleneck_indices[k] = loads[i].index;
        d->bottleneck_ns[k] = dur;
        d->bottleneck_epochs[k] = 1;
        d->nbottlenecks++;
    }
    for (uint32_t k = 0; k < d->nbottlenecks; k++)
        if (d->bottleneck_epochs[k] >= 2)
            d->repeat_slow++;
    return 0;
}
