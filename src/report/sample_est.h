/* sample_est.h -- the error bar of a sampled (estimated) time, one
 * definition for the report, the text summary, the rules and the diff
 * (docs/report-schema.md, "Sampled estimates").
 *
 * N samples of total weight T (wall or CPU ns) were taken; n of them fall
 * on a node or function.  Its share p = n / N is a binomial proportion, so
 * its standard error is sqrt(p (1 - p) / N) and the estimated time
 * T x p has the standard error
 *
 *     error = T x sqrt(p (1 - p) / N)
 *
 * (95% interval: estimate +- 1.96 x error).  Totals are those of the
 * node's thread for call-tree nodes and of the whole run for functions.
 * Totals count each sample once: the sum of samples_self (and
 * sampled_self_ns) over the nodes concerned.
 */
#ifndef CP_SAMPLE_EST_H
#define CP_SAMPLE_EST_H

#include <stdint.h>

struct cp_model;

typedef struct cp_samp_totals {
    uint64_t n;         /* samples (N)            */
    uint64_t weight_ns; /* their weight (T, ns)   */
} cp_samp_totals;

/* Whole-run totals: every node of every thread. */
cp_samp_totals cp_samp_totals_run(const struct cp_model *m);
/* Per-thread totals into out[0 .. m->nthreads).  Returns 0, -1 on OOM. */
int cp_samp_totals_threads(const struct cp_model *m, cp_samp_totals *out);
/* Standard error (ns) of the estimate of `n` samples out of `t`; 0 when
 * there are no samples. */
double cp_samp_error_ns(uint64_t n, const cp_samp_totals *t);

/* 1.96: the two-sided 95% normal quantile rules and readers use. */
#define CP_SAMP_Z95 1.96

#endif /* CP_SAMPLE_EST_H */
