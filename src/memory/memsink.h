/* memsink.h -- the memory sink: aggregates the CP_EV_HEAP events of memory
 * scopes (CODEPROF_SCOPE_HEAP; scope.c emits them just before the scope's
 * EXIT) per site into the figures of cp_mmem_ctx (model_mem.h).
 *
 * Registered on a session by mem_session.c; fed on the aggregation side
 * only (sink.h: agg_mu held), read by the model build under the same lock.
 * Bounded: at most CP_MEM_MAX_CTXS sites; events of further sites are
 * counted in dropped_ctxs.  Its own memory is malloc'd (aggregation side,
 * never inside an allocator hook). */
#ifndef CP_MEMSINK_H
#define CP_MEMSINK_H

#include <stdint.h>

#include "core/sink.h"
#include "model/model_mem.h"

typedef struct cp_memsink cp_memsink;

/* A new empty sink; NULL on OOM. */
cp_memsink *cp_memsink_new(void);
void cp_memsink_free(cp_memsink *ms);
/* The sink to register (consume, reset; destroy is left to the owner). */
cp_sink cp_memsink_sink(cp_memsink *ms);
/* Feeds events directly (what consume does; for tests and replays). */
void cp_memsink_consume(cp_memsink *ms, const cp_event *ev, uint32_t n);
void cp_memsink_reset(cp_memsink *ms);

/* Per-context figures: calls fn once per site seen, in first-seen order,
 * with `c->site` holding the event's site id (not a model index). */
typedef void (*cp_memsink_ctx_fn)(void *arg, const cp_mmem_ctx *c);
void cp_memsink_foreach(const cp_memsink *ms, cp_memsink_ctx_fn fn, void *arg);
uint32_t cp_memsink_count(const cp_memsink *ms);

/* Aggregate readings. */
typedef struct cp_memsink_stats {
    uint64_t events;       /* CP_EV_HEAP events consumed (report cache)    */
    uint64_t dropped_ctxs; /* events of sites past CP_MEM_MAX_CTXS          */
    uint64_t rss_last;     /* RSS at the latest memory-scope exit            */
    uint64_t rss_peak;     /* the highest RSS seen at or within scopes       */
    uint64_t own_bytes;    /* the sink's own memory                          */
} cp_memsink_stats;
void cp_memsink_stats_get(const cp_memsink *ms, cp_memsink_stats *out);

#endif /* CP_MEMSINK_H */
