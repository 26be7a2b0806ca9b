/* reservoir.c -- bounded duration samples and percentiles (reservoir.h). */
#include "cpu/reservoir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t xorshift64(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int grow(cp_reservoir *r, uint32_t want) {
    if (want <= r->cap)
        return 0;
    uint32_t ncap = r->cap ? r->cap : 4;
    while (ncap < want)
        ncap = ncap > (UINT32_MAX / 2) ? want : ncap * 2;
    uint64_t *nv = realloc(r->v, (size_t)ncap * sizeof *nv);
    if (!nv)
        return -1;
    r->v = nv;
    r->cap = ncap;
    return 0;
}

int cp_reservoir_add(cp_reservoir *r, uint64_t value, uint64_t seen, uint32_t limit,
                     uint64_t *rng) {
    if (r->n < limit) {
        if (r->n == r->cap && grow(r, r->n < limit / 2 ? r->n * 2 + 4 : limit) != 0)
            return -1;
        r->v[r->n++] = value;
        return 0;
    }
    /* uniform in [0, seen) by multiply-high: no 64-bit division */
    uint64_t j = (uint64_t)(((unsigned __int128)xorshift64(rng) * (seen ? seen : 1)) >> 64);
    if (j < limit)
        r->v[j] = value;
    return 0;
}

int cp_reservoir_extend(cp_reservoir *dst, const cp_reservoir *src) {
    if (!src->n)
        return 0;
    if (grow(dst, dst->n + src->n) != 0)
        return -1;
    memcpy(dst->v + dst->n, src->v, (size_t)src->n * sizeof *src->v);
    dst->n += src->n;
    return 0;
}

void cp_reservoir_free(cp_reservoir *r) {
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void cp_percentiles(uint64_t *v, uint32_t n, const double *q, int nq, uint64_t *out) {
    if (n == 0) {
        for (int i = 0; i < nq; i++)
            out[i] = 0;
        return;
    }
    qsort(v, n, sizeof *v, cmp_u64);
    for (int i = 0; i < nq; i++) {
        /* nearest rank: the smallest value with at least q*n values <= it */
        double rank = ceil(q[i] * (double)n);
        uint32_t k = rank < 1.0 ? 0 : (uint32_t)rank - 1;
        if (k >= n)
            k = n - 1;
        out[i] = v[k];
    }
}
