/* timeline.h -- the timeline sink: timestamped events for the trace
 * export (Chrome/Perfetto), bounded.
 *
 * Two streams, each with its own bound:
 *  - the explicit stream: ENTER/EXIT of explicit scopes (C API scopes,
 *    profiling_context, profiled functions, dataset items, loader batches,
 *    stages), their attributes (index, epoch, items), marks, and the
 *    reserved kinds of later instruments (samples, allocations, GPU
 *    operations, counters); at most `cap` events;
 *  - the traced stream: ENTER/EXIT of traced Python calls (events without
 *    CP_EVF_EXPLICIT), kept only when the session asks for them
 *    (CODEPROF_CFG_TIMELINE_TRACED); at most `traced_cap` events.  Traced
 *    calls come by the million: in their own store they can never push
 *    the scopes, items and batches out.
 *
 * Policy of each store when full: the first `cap/2` events are kept, then
 * a ring of the last `cap - cap/2`; events that fall out of the ring are
 * counted in the store's `dropped`.  So a long run shows how it began and
 * how it ended, and says how much of the middle is missing.
 */
#ifndef CP_TIMELINE_H
#define CP_TIMELINE_H

#include <stdint.h>

#include "core/sink.h"

typedef struct cp_tl_event {
    uint64_t tick;   /* event tick (clock.h)            */
    int64_t value;   /* as in cp_event                  */
    uint32_t site;
    uint32_t thread; /* cp_tbuf.thread_index            */
    uint16_t kind;   /* cp_event_kind                   */
    uint16_t flags;
    uint32_t pad_;
} cp_tl_event;

/* One bounded store: the first head_cap events, then a ring of the last
 * ring_cap. */
typedef struct cp_tl_store {
    cp_tl_event *head;      /* first head_cap events               */
    uint32_t head_n, head_cap, head_alloc;
    cp_tl_event *ring;      /* last ring_cap events after the head */
    uint32_t ring_cap;
    uint32_t ring_pos;      /* next ring slot (ring_total % ring_cap) */
    uint64_t ring_total;    /* events offered to the ring          */
    uint64_t dropped;       /* events not kept (out of the ring, OOM) */
} cp_tl_store;

typedef struct cp_timeline {
    cp_tl_store scopes;     /* the explicit stream                 */
    cp_tl_store traced;     /* traced Python calls                 */
    int keep_scopes;        /* cap > 0                              */
    int keep_traced;        /* CODEPROF_CFG_TIMELINE_TRACED, traced_cap > 0 */
} cp_timeline;

/* A new timeline of at most `cap` explicit events and, when `traced` is
 * set, at most `traced_cap` traced-call events (0: keep none of that
 * stream); NULL on OOM.  Memory is allocated as events arrive, up to the
 * caps. */
cp_timeline *cp_timeline_new(uint32_t cap, uint32_t traced_cap, int traced);
void cp_timeline_free(cp_timeline *tl);
void cp_timeline_reset(cp_timeline *tl);

/* The sink that feeds `tl`. */
cp_sink cp_timeline_sink(cp_timeline *tl);

/* Counter events that come from no thread's buffer (the memory sampler's
 * readings: memsampler.h) carry this flag; their `thread` is then the pid
 * of the process measured, 0 meaning the model's own process, so writers
 * put them on that process's counter tracks and never make a thread of
 * them. */
#define CP_TLF_PROCESS 0x8000u

/* Appends one event to the explicit store of `tl` under that store's
 * policy (the first cap/2 events, then a ring of the most recent); events
 * that could not be kept (OOM, or pushed out of the ring) are counted in
 * tl->scopes.dropped.  For producers that are not threads recording
 * through cp_emit (the memory sampler's counter store).  The caller
 * serialises it with every other use of `tl` (agg_mu for a session's
 * timeline).  Returns 0 when stored, -1 when not (OOM, cap 0). */
int cp_timeline_put(cp_timeline *tl, const cp_tl_event *e);

/* Events held by a store (&tl->scopes or &tl->traced), oldest first,
 * copied into a new array (free with free()); *n receives the count.
 * NULL with *n == 0 when empty or on OOM. */
cp_tl_event *cp_timeline_copy(const cp_tl_store *st, uint32_t *n);

/* Where the events of cp_timeline_copy(st) jump over the dropped middle:
 * the index of the first event after it, or 0 when nothing fell out of
 * the ring (the copy is then continuous). */
uint32_t cp_timeline_seam(const cp_tl_store *st);

#endif /* CP_TIMELINE_H */
