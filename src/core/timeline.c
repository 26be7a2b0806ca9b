/* timeline.c -- the bounded timeline sink (timeline.h). */
#include "core/bigmem.h"
#include "core/timeline.h"

#include <stdlib.h>
#include <string.h>

#include "core/tbuf.h"

cp_timeline *cp_timeline_new(uint32_t cap, int traced) {
    cp_timeline *tl = calloc(1, sizeof *tl);
    if (!tl)
        return NULL;
    tl->head_cap = cap / 2;
    tl->ring_cap = cap - cap / 2;
    tl->traced = traced;
    return tl;
}

void cp_timeline_free(cp_timeline *tl) {
    if (!tl)
        return;
    cp_big_free(tl->head);
    cp_big_free(tl->ring);
    free(tl);
}

void cp_timeline_reset(cp_timeline *tl) {
    cp_big_free(tl->head);
    cp_big_free(tl->ring);
    tl->head = tl->ring = NULL;
    tl->head_n = tl->head_alloc = 0;
    tl->ring_total = 0;
    tl->dropped = 0;
}

/* Kinds kept whatever their flags: everything but enter/exit. */
#define KEEP_ALWAYS                                                                                \
    ((1u << CP_EV_ATTR) | (1u << CP_EV_MARK) | (1u << CP_EV_SAMPLE) | (1u << CP_EV_ALLOC) |        \
     (1u << CP_EV_FREE) | (1u << CP_EV_GPU) | (1u << CP_EV_COUNTER))

/* Enter/exit only of explicit scopes unless traced calls are kept too:
 * the tracer's events, millions of them, are rejected by the first test. */
static inline int keep(int traced, const cp_event *e) {
    if (e->kind <= CP_EV_EXIT)
        return e->kind != CP_EV_NONE && (traced || (e->flags & CP_EVF_EXPLICIT));
    return e->kind < 32 && ((KEEP_ALWAYS >> e->kind) & 1u);
}

/* Where the next event goes; NULL when it cannot be stored (OOM, cap 0). */
static cp_tl_event *slot(cp_timeline *tl) {
    if (tl->head_n < tl->head_cap) {
        if (tl->head_n == tl->head_alloc) {
            uint32_t na = tl->head_alloc ? tl->head_alloc * 2 : 1024;
            if (na > tl->head_cap)
                na = tl->head_cap;
            cp_tl_event *nh = cp_big_realloc(tl->head, (size_t)na * sizeof *nh);
            if (!nh)
                return NULL;
            tl->head = nh;
            tl->head_alloc = na;
        }
        return &tl->head[tl->head_n++];
    }
    if (!tl->ring_cap)
        return NULL;
    if (!tl->ring) {
        tl->ring = cp_big_alloc((size_t)tl->ring_cap * sizeof *tl->ring);
        if (!tl->ring)
            return NULL;
    }
    if (tl->ring_total >= tl->ring_cap)
        tl->dropped++;
    return &tl->ring[tl->ring_total++ % tl->ring_cap];
}

static void consume(void *ctx, const cp_tbuf *t, const cp_event *ev, uint32_t n) {
    cp_timeline *tl = ctx;
    int traced = tl->traced;
    for (uint32_t i = 0; i < n; i++) {
        const cp_event *e = &ev[i];
        if (!keep(traced, e))
            continue;
        cp_tl_event *o = slot(tl);
        if (!o) {
            tl->dropped++;
            continue;
        }
        o->tick = e->tick;
        o->value = e->value;
        o->site = e->site;
        o->thread = t->thread_index;
        o->kind = e->kind;
        o->flags = e->flags;
        o->pad_ = 0;
    }
}

static void reset_cb(void *ctx) { cp_timeline_reset(ctx); }

cp_sink cp_timeline_sink(cp_timeline *tl) {
    cp_sink s = {"timeline", tl, consume, reset_cb, NULL};
    return s;
}

cp_tl_event *cp_timeline_copy(const cp_timeline *tl, uint32_t *n) {
    uint32_t nring = tl->ring_total < tl->ring_cap ? (uint32_t)tl->ring_total : tl->ring_cap;
    uint32_t total = tl->head_n + nring;
    *n = 0;
    if (!total)
        return NULL;
    cp_tl_event *out = malloc((size_t)total * sizeof *out);
    if (!out)
        return NULL;
    if (tl->head_n)
        memcpy(out, tl->head, (size_t)tl->head_n * sizeof *out);
    uint32_t start = tl->ring_total > tl->ring_cap ? (uint32_t)(tl->ring_total % tl->ring_cap) : 0;
    for (uint32_t i = 0; i < nring; i++)
        out[tl->head_n + i] = tl->ring[(start + i) % tl->ring_cap];
    *n = total;
    return out;
}
