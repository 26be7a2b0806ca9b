/* timeline.c -- the bounded timeline sink (timeline.h). */
#include "core/bigmem.h"
#include "core/timeline.h"

#include <stdlib.h>
#include <string.h>

#include "core/tbuf.h"

static void store_init(cp_tl_store *st, uint32_t cap) {
    memset(st, 0, sizeof *st);
    st->head_cap = cap / 2;
    st->ring_cap = cap - cap / 2;
}

/* Frees the events and empties the store; its caps stay. */
static void store_clear(cp_tl_store *st) {
    cp_big_free(st->head);
    cp_big_free(st->ring);
    st->head = st->ring = NULL;
    st->head_n = st->head_alloc = 0;
    st->ring_pos = 0;
    st->ring_total = 0;
    st->dropped = 0;
}

cp_timeline *cp_timeline_new(uint32_t cap, uint32_t traced_cap, int traced) {
    cp_timeline *tl = calloc(1, sizeof *tl);
    if (!tl)
        return NULL;
    store_init(&tl->scopes, cap);
    store_init(&tl->traced, traced ? traced_cap : 0);
    tl->keep_scopes = cap != 0;
    tl->keep_traced = traced && traced_cap;
    return tl;
}

void cp_timeline_free(cp_timeline *tl) {
    if (!tl)
        return;
    store_clear(&tl->scopes);
    store_clear(&tl->traced);
    free(tl);
}

void cp_timeline_reset(cp_timeline *tl) {
    store_clear(&tl->scopes);
    store_clear(&tl->traced);
}

/* Kinds kept whatever their flags: everything but enter/exit and the
 * memory kinds (CP_EV_ALLOC/FREE: one per recorded block, millions in
 * memory_mode 2; CP_EV_HEAP: a memory scope's figures, which the memory
 * sink aggregates), which would crowd out the scopes. */
#define KEEP_ALWAYS                                                                                \
    ((1u << CP_EV_ATTR) | (1u << CP_EV_MARK) | (1u << CP_EV_SAMPLE) | (1u << CP_EV_GPU) |          \
     (1u << CP_EV_COUNTER))

/* The store an event goes to, NULL when it is not kept: enter/exit of
 * explicit scopes and the other kept kinds to the explicit stream
 * (`scopes`), the tracer's enter/exit (millions of them) to the traced
 * stream (`traced`).  Each is NULL when its stream is off (a cap of 0, or
 * traced calls not asked for): its events are then not counted as
 * dropped. */
static inline cp_tl_store *store_for(cp_tl_store *scopes, cp_tl_store *traced,
                                     const cp_event *e) {
    uint32_t kind = e->kind;
    if (kind - 1u <= CP_EV_EXIT - 1u) /* ENTER or EXIT */
        return (e->flags & CP_EVF_EXPLICIT) ? scopes : traced;
    return kind < 32 && ((KEEP_ALWAYS >> kind) & 1u) ? scopes : NULL;
}

/* Where the next event goes; NULL when it cannot be stored (OOM, cap 0).
 * The ring's steady state (every traced call of a long run lands here) is
 * a few compares: no division. */
static inline cp_tl_event *slot(cp_tl_store *st) {
    if (__builtin_expect(st->ring != NULL, 1)) {
        if (st->ring_total >= st->ring_cap)
            st->dropped++;
        st->ring_total++;
        cp_tl_event *o = &st->ring[st->ring_pos];
        if (++st->ring_pos == st->ring_cap)
            st->ring_pos = 0;
        return o;
    }
    if (st->head_n < st->head_cap) {
        if (st->head_n == st->head_alloc) {
            uint32_t na = st->head_alloc ? st->head_alloc * 2 : 1024;
            if (na > st->head_cap)
                na = st->head_cap;
            cp_tl_event *nh = cp_big_realloc(st->head, (size_t)na * sizeof *nh);
            if (!nh)
                return NULL;
            st->head = nh;
            st->head_alloc = na;
        }
        return &st->head[st->head_n++];
    }
    if (!st->ring_cap)
        return NULL;
    if (!st->ring) {
        st->ring = cp_big_alloc((size_t)st->ring_cap * sizeof *st->ring);
        if (!st->ring)
            return NULL;
    }
    st->ring_total = 1;
    st->ring_pos = st->ring_cap > 1 ? 1 : 0;
    return &st->ring[0];
}

static void consume(void *ctx, const cp_tbuf *t, const cp_event *ev, uint32_t n) {
    cp_timeline *tl = ctx;
    const uint32_t thread = t->thread_index;
    cp_tl_store *scopes = tl->keep_scopes ? &tl->scopes : NULL;
    cp_tl_store *traced = tl->keep_traced ? &tl->traced : NULL;
    for (uint32_t i = 0; i < n; i++) {
        const cp_event *e = &ev[i];
        cp_tl_store *st = store_for(scopes, traced, e);
        if (!st)
            continue;
        cp_tl_event *o = slot(st);
        if (!o) {
            st->dropped++;
            continue;
        }
        *o = (cp_tl_event){e->tick, e->value, e->site, thread, e->kind, e->flags, 0};
    }
}

int cp_timeline_put(cp_timeline *tl, const cp_tl_event *e) {
    if (!tl->keep_scopes)
        return -1;
    cp_tl_event *o = slot(&tl->scopes);
    if (!o) {
        tl->scopes.dropped++;
        return -1;
    }
    *o = *e;
    return 0;
}

static void reset_cb(void *ctx) { cp_timeline_reset(ctx); }

cp_sink cp_timeline_sink(cp_timeline *tl) {
    cp_sink s = {"timeline", tl, consume, reset_cb, NULL};
    return s;
}

cp_tl_event *cp_timeline_copy(const cp_tl_store *st, uint32_t *n) {
    uint32_t nring = st->ring_total < st->ring_cap ? (uint32_t)st->ring_total : st->ring_cap;
    uint32_t total = st->head_n + nring;
    *n = 0;
    if (!total)
        return NULL;
    cp_tl_event *out = malloc((size_t)total * sizeof *out);
    if (!out)
        return NULL;
    if (st->head_n)
        memcpy(out, st->head, (size_t)st->head_n * sizeof *out);
    uint32_t start = st->ring_total > st->ring_cap ? (uint32_t)(st->ring_total % st->ring_cap) : 0;
    for (uint32_t i = 0; i < nring; i++)
        out[st->head_n + i] = st->ring[(start + i) % st->ring_cap];
    *n = total;
    return out;
}

uint32_t cp_timeline_seam(const cp_tl_store *st) {
    return st->ring_total > st->ring_cap ? st->head_n : 0;
}
