/* timeline.h -- the timeline sink: timestamped events for the trace
 * export (Chrome/Perfetto), bounded.
 *
 * Kept: ENTER/EXIT of explicit scopes (C API scopes, profiling_context,
 * profiled functions, dataset items, loader batches, stages), their
 * attributes (index, epoch, items), marks, and the reserved kinds of later
 * instruments (samples, allocations, GPU operations, counters).  Traced
 * Python calls are not kept unless the session asks for them
 * (CODEPROF_CFG_TIMELINE_TRACED): they would fill any bound in
 * milliseconds.
 *
 * Policy when full: the first `cap/2` events are kept, then a ring of the
 * last `cap - cap/2`; events that fall out of the ring are counted in
 * `dropped`.  So a long run shows how it began and how it ended, and says
 * how much of the middle is missing.
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

typedef struct cp_timeline {
    cp_tl_event *head;      /* first head_cap events               */
    uint32_t head_n, head_cap, head_alloc;
    cp_tl_event *ring;      /* last ring_cap events after the head */
    uint32_t ring_cap;
    uint64_t ring_total;    /* events offered to the ring          */
    uint64_t dropped;       /* events that fell out of the ring    */
    int traced;             /* keep traced Python calls too        */
} cp_timeline;

/* A new timeline of at most `cap` events (0: keep nothing); NULL on OOM.
 * Memory is allocated as events arrive, up to the cap. */
cp_timeline *cp_timeline_new(uint32_t cap, int traced);
void cp_timeline_free(cp_timeline *tl);
void cp_timeline_reset(cp_timeline *tl);

/* The sink that feeds `tl`. */
cp_sink cp_timeline_sink(cp_timeline *tl);

/* Events held, oldest first, copied into a new array (free with free());
 * *n receives the count.  NULL with *n == 0 when empty or on OOM. */
cp_tl_event *cp_timeline_copy(const cp_timeline *tl, uint32_t *n);

#endif /* CP_TIMELINE_H */
