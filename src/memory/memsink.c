/* memsink.c -- per-context memory figures from CP_EV_HEAP events
 * (memsink.h).
 *
 * Each memory-scope exit brings four events for its site (SPAN, FLOOR,
 * RSS, GC; event.h); each updates its own figures, so their order and a
 * buffer boundary between them do not matter.  The floor's growth per
 * call is the least-squares slope of the floors against their call
 * number (1, 2, ...), from running sums. */
#include "memory/memsink.h"

#include <stdlib.h>
#include <string.h>

#include "core/u32map.h"

typedef struct ctx_acc {
    cp_mmem_ctx c;
    uint64_t nfloor;
    double sk, skk, sy, sky; /* floor regression sums (k = 1..nfloor) */
    uint64_t nrss;
} ctx_acc;

struct cp_memsink {
    cp_u32map idx; /* site -> index + 1 */
    ctx_acc *acc;
    uint32_t n, cap;
    uint64_t events, dropped;
    uint64_t rss_last, rss_peak;
};

cp_memsink *cp_memsink_new(void) { return calloc(1, sizeof(cp_memsink)); }

void cp_memsink_reset(cp_memsink *ms) {
    if (!ms)
        return;
    cp_u32map_free(&ms->idx);
    free(ms->acc);
    memset(ms, 0, sizeof *ms);
}

void cp_memsink_free(cp_memsink *ms) {
    cp_memsink_reset(ms);
    free(ms);
}

/* The accumulator of `site`, created on first use; NULL when full/OOM. */
static ctx_acc *acc_for(cp_memsink *ms, uint32_t site) {
    uint32_t v;
    if (cp_u32map_get(&ms->idx, site, &v))
        return &ms->acc[v - 1];
    if (ms->n >= CP_MEM_MAX_CTXS)
        return NULL;
    if (ms->n == ms->cap) {
        uint32_t nc = ms->cap ? ms->cap * 2 : 16;
        if (nc > CP_MEM_MAX_CTXS)
            nc = CP_MEM_MAX_CTXS;
        ctx_acc *na = realloc(ms->acc, (size_t)nc * sizeof *na);
        if (!na)
            return NULL;
        ms->acc = na;
        ms->cap = nc;
    }
    if (cp_u32map_put(&ms->idx, site, ms->n + 1) != 0)
        return NULL;
    ctx_acc *a = &ms->acc[ms->n++];
    memset(a, 0, sizeof *a);
    a->c.site = site;
    return a;
}

static void on_heap(cp_memsink *ms, const cp_event *e) {
    ms->events++;
    ctx_acc *a = e->site ? acc_for(ms, e->site) : NULL;
    if (!a) {
        ms->dropped++;
        return;
    }
    cp_mmem_ctx *c = &a->c;
    if (e->flags & CP_HEAPF_ESTIMATED)
        c->estimated = 1;
    switch (e->flags & 0xff) {
    case CP_HEAPF_SPAN:
        if (c->count == 0 || e->value < c->delta_min)
            c->delta_min = e->value;
        if (c->count == 0 || e->value > c->delta_max)
            c->delta_max = e->value;
        c->count++;
        c->delta_sum += e->value;
        if (e->aux > c->peak_max)
            c->peak_max = e->aux;
        break;
    case CP_HEAPF_FLOOR: {
        int64_t y = e->value;
        a->nfloor++;
        if (a->nfloor == 1)
            c->floor_first = y;
        else if (y > c->floor_last)
            c->floor_rises++;
        c->floor_last = y;
        double k = (double)a->nfloor;
        a->sk += k;
        a->skk += k * k;
        a->sy += (double)y;
        a->sky += k * (double)y;
        double n = k, den = n * a->skk - a->sk * a->sk;
        c->floor_slope = den > 0 ? (n * a->sky - a->sk * a->sy) / den : 0.0;
        ms->rss_last = e->aux;
        if (e->aux > ms->rss_peak)
            ms->rss_peak = e->aux;
        break;
    }
    case CP_HEAPF_RSS:
        if (a->nrss == 0 || e->value > c->rss_delta_max)
            c->rss_delta_max = e->value;
        a->nrss++;
        c->rss_delta_sum += e->value;
        if (e->aux > c->rss_peak_max)
            c->rss_peak_max = e->aux;
        break;
    case CP_HEAPF_GC:
        c->gc_collections += (uint64_t)e->value;
        break;
    default:
        break;
    }
}

void cp_memsink_consume(cp_memsink *ms, const cp_event *ev, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        if (__builtin_expect(ev[i].kind == CP_EV_HEAP, 0))
            on_heap(ms, &ev[i]);
}

static void consume_cb(void *ctx, const struct cp_tbuf *t, const cp_event *ev, uint32_t n) {
    (void)t;
    cp_memsink_consume(ctx, ev, n);
}

static void reset_cb(void *ctx) { cp_memsink_reset(ctx); }

cp_sink cp_memsink_sink(cp_memsink *ms) {
    cp_sink s = {"memory", ms, consume_cb, reset_cb, NULL};
    return s;
}

void cp_memsink_foreach(const cp_memsink *ms, cp_memsink_ctx_fn fn, void *arg) {
    for (uint32_t i = 0; ms && i < ms->n; i++)
        fn(arg, &ms->acc[i].c);
}

uint32_t cp_memsink_count(const cp_memsink *ms) { return ms ? ms->n : 0; }

void cp_memsink_stats_get(const cp_memsink *ms, cp_memsink_stats *out) {
    memset(out, 0, sizeof *out);
    if (!ms)
        return;
    out->events = ms->events;
    out->dropped_ctxs = ms->dropped;
    out->rss_last = ms->rss_last;
    out->rss_peak = ms->rss_peak;
    out->own_bytes = sizeof *ms + (uint64_t)ms->cap * sizeof(ctx_acc) +
                     (uint64_t)ms->idx.cap * 2 * sizeof(uint32_t);
}
