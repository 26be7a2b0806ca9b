/* reservoir.h -- per-node duration samples for percentiles.
 *
 * Exact while a node has at most `limit` calls; beyond that a uniform
 * reservoir sample of `limit` durations, so memory per node is bounded by
 * limit * 8 bytes and grows only with the call count.  Past the limit the
 * sampler draws how many values to skip before the next replacement
 * (Li's "algorithm L"), so the common case on the fold's hot path is one
 * comparison, not a random number per value.
 */
#ifndef CP_RESERVOIR_H
#define CP_RESERVOIR_H

#include <stdint.h>

typedef struct cp_reservoir {
    uint64_t *v;   /* owned; NULL until the first sample */
    uint32_t n;    /* samples held                        */
    uint32_t cap;  /* allocated                           */
    uint64_t next; /* `seen` of the next replacement; 0 = not drawn yet */
    double w;      /* algorithm L state                   */
} cp_reservoir;

/* Offers one value; `seen` is the number of values offered so far
 * including this one; `limit` the reservoir size; `rng` a xorshift state.
 * Returns 0, or -1 when growing failed (the sample is skipped). */
int cp_reservoir_add(cp_reservoir *r, uint64_t value, uint64_t seen, uint32_t limit,
                     uint64_t *rng);

/* Inline fast path of cp_reservoir_add for the fold. */
static inline int cp_reservoir_push(cp_reservoir *r, uint64_t value, uint64_t seen,
                                    uint32_t limit, uint64_t *rng) {
    if (r->n < limit) {
        if (r->n < r->cap) {
            r->v[r->n++] = value;
            return 0;
        }
    } else if (seen < r->next) {
        return 0; /* skipped: not in the sample */
    }
    return cp_reservoir_add(r, value, seen, limit, rng);
}

/* Appends every sample of `src` to `dst` (growing it).  -1 on OOM. */
int cp_reservoir_extend(cp_reservoir *dst, const cp_reservoir *src);

void cp_reservoir_free(cp_reservoir *r);

/* Sorts `v[0..n)` ascending and returns the nearest-rank percentiles
 * q in (0,1] of it into out[i] for each q[i]; n == 0 gives zeros. */
void cp_percentiles(uint64_t *v, uint32_t n, const double *q, int nq, uint64_t *out);

/* The same percentiles without sorting: `v` is only partially reordered
 * (selection, linear time on average), for callers that need nothing
 * but the percentiles (the model build, once per node at every
 * snapshot).  `q` must be ascending. */
void cp_percentiles_select(uint64_t *v, uint32_t n, const double *q, int nq, uint64_t *out);

#endif /* CP_RESERVOIR_H */
