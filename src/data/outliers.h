/* outliers.h -- the outlier item loads of one dataset, by a robust
 * statistic (used by data_model.c; read by the CP-DATA-002 rule).
 *
 * With m the median load time of the dataset's stored loads and MAD the
 * median absolute deviation from m, a load of duration d is an outlier when
 *   d > slow_ns                                   (cfg.slow_data_loading_s), or
 *   n >= CP_OUTLIER_MIN_LOADS and d > cutoff, where
 *   cutoff = m + max(CP_OUTLIER_K_MAD x 1.4826 x MAD,
 *                    CP_OUTLIER_R_MEDIAN x m,
 *                    CP_OUTLIER_MIN_EXCESS_NS).
 * 1.4826 x MAD estimates the standard deviation of normally distributed
 * loads, so the first term is "5 sigma" without letting the outliers
 * themselves widen it (as a mean and standard deviation would); the
 * second is a floor relative to the median (an outlier is at least 5x the
 * median), so a dataset whose loads are all nearly equal (MAD ~ 0) does
 * not call its slightly slower loads outliers; the third ignores excesses
 * under 50 us.  Unlike a percentile gate, every load above the cutoff is
 * an outlier, however many there are.
 *
 * Deterministic: the result depends only on the multiset of (index,
 * duration) pairs, never on their order (loads are sorted by duration,
 * descending, then by index, ascending).
 */
#ifndef CP_DATA_OUTLIERS_H
#define CP_DATA_OUTLIERS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define CP_OUTLIER_K_MAD         5.0
#define CP_OUTLIER_R_MEDIAN      4.0
#define CP_OUTLIER_MIN_EXCESS_NS 50000ull
#define CP_OUTLIER_MIN_LOADS     5

/* One item load: its dataset index and duration. */
typedef struct cp_outlier_load {
    int64_t index;
    uint64_t dur_ns;
} cp_outlier_load;

/* The statistic over `n` loads (any order; not modified): writes the
 * median and the MAD (either pointer may be NULL) and returns the cutoff
 * above which a load is an outlier by the statistic (UINT64_MAX when
 * n < CP_OUTLIER_MIN_LOADS: too few loads to tell).  With an even n the
 * median is the mean of the two middle values.  Returns UINT64_MAX and
 * zeros on OOM as well.  Thread-safe. */
uint64_t cp_outlier_cutoff(const cp_outlier_load *loads, size_t n, uint64_t *median, uint64_t *mad);

/* Fills d->bottleneck_indices / bottleneck_ns / bottleneck_epochs (newly
 * allocated, CP_MAX_BOTTLENECKS entries each, owned by `d` as the model
 * frees them), d->nbottlenecks and d->repeat_slow from `n` loads of one
 * dataset: one entry per outlier index, slowest first (ties by index),
 * with the index's slowest load and the number of its loads that were
 * outliers (its epochs; >= 2 counts as repeat-slow).  At most
 * CP_MAX_BOTTLENECKS indices; loads of an index already listed still
 * count.  `loads` is sorted in place.  `slow_ns` is the slow-load
 * threshold in ns.  Returns 0, or -1 on OOM (d's outlier fields are then
 * empty; arrays already allocated stay owned by `d`).  `d` must not be
 * NULL; n may be 0. */
int cp_outliers_find(cp_mdataset *d, cp_outlier_load *loads, size_t n, uint64_t slow_ns);

#endif /* CP_DATA_OUTLIERS_H */
