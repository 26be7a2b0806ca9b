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

/* Uniform double in (0, 1). */
static double unit(uint64_t *rng) {
    return ((double)(xorshift64(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Values to skip before the next replacement, for algorithm L. */
static uint64_t skip(cp_reservoir *r, uint64_t *rng) {
    double d = floor(log(unit(rng)) / log1p(-r->w));
    return d > 1e18 ? (uint64_t)1e18 : (uint64_t)d;
}

int cp_reservoir_add(cp_reservoir *r, uint64_t value, uint64_t seen, uint32_t limit,
                     uint64_t *rng) {
    if (r->n < limit) {
        if (r->n == r->cap && grow(r, r->n < limit / 2 ? r->n * 2 + 4 : limit) != 0)
            return -1;
        r->v[r->n++] = value;
        return 0;
    }
    if (r->next == 0) { /* the reservoir just filled up */
        r->w = exp(log(unit(rng)) / (double)limit);
        r->next = seen + skip(r, rng);
        if (seen < r->next)
            return 0;
    }
    if (seen < r->next)
        return 0;
    r->v[(uint64_t)(((unsigned __int128)xorshift64(rng) * limit) >> 64)] = value;
    r->w *= exp(log(unit(rng)) / (double)limit);
    r->next = seen + skip(r, rng) + 1;
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
    r->next = 0;
    r->w = 0;
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

static inline void swap_u64(uint64_t *a, uint64_t *b) {
    uint64_t t = *a;
    *a = *b;
    *b = t;
}

/* Places the k-th smallest of v[lo..hi] at v[k], smaller-or-equal values
 * before it, greater-or-equal after (Hoare partition around a median of
 * three).  Falls back to sorting the range after 64 rounds, so adversarial
 * orders cannot make it quadratic. */
static void select_kth(uint64_t *v, uint32_t lo, uint32_t hi, uint32_t k) {
    for (int rounds = 0; hi > lo; rounds++) {
        if (rounds == 64 || hi - lo < 16) {
            qsort(v + lo, (size_t)(hi - lo) + 1, sizeof *v, cmp_u64);
            return;
        }
        uint32_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap_u64(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swap_u64(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swap_u64(&v[hi], &v[mid]);
        uint64_t pivot = v[mid];
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                swap_u64(&v[i], &v[j]);
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        /* now v[lo..j] <= pivot <= v[i..hi], and j < i */
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return; /* lo..hi between j and i equal the pivot */
    }
}

void cp_percentiles_select(uint64_t *v, uint32_t n, const double *q, int nq, uint64_t *out) {
    if (n == 0) {
        for (int i = 0; i < nq; i++)
            out[i] = 0;
        return;
    }
    uint32_t from = 0;
    for (int i = 0; i < nq; i++) {
        double rank = ceil(q[i] * (double)n);
        uint32_t k = rank < 1.0 ? 0 : (uint32_t)rank - 1;
        if (k >= n)
            k = n - 1;
        if (k < from) /* q not ascending: select in the whole array again */
            from = 0;
        select_kth(v, from, n - 1, k);
        out[i] = v[k];
        from = k; /* everything from k on is >= v[k] */
    }
}
