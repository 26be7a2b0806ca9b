/* sink.h -- consumers of recorded events (the "aggregate" stage).
 *
 * A sink is registered on a session (cp_session_add_sink) and is fed, on
 * the aggregation side only (the drain thread, a snapshot, stop, or a
 * worker's item flush; never two at once: the session's agg_mu serialises
 * them), every event of every thread in the order each thread recorded
 * them.  Sinks never run on an emitting thread's hot path, so they may
 * allocate, lock and do I/O.
 *
 * The calling-context tree is built in (each cp_tbuf owns its tree); the
 * timeline (timeline.h) is a registered sink; the memory, sampling and GPU
 * sinks of later instruments register the same way.  Events keep the one
 * 32-byte shape (event.h): a new instrument adds a kind, not a field.
 */
#ifndef CP_SINK_H
#define CP_SINK_H

#include <stdint.h>

#include "core/event.h"

struct cp_tbuf;

typedef struct cp_sink {
    const char *name;
    void *ctx;
    /* Events [ev, ev+n) of thread `t`, in that thread's order. */
    void (*consume)(void *ctx, const struct cp_tbuf *t, const cp_event *ev, uint32_t n);
    /* Session reset: discard what was aggregated (may be NULL). */
    void (*reset)(void *ctx);
    /* Session free (may be NULL). */
    void (*destroy)(void *ctx);
} cp_sink;

#define CP_MAX_SINKS 8

#endif /* CP_SINK_H */
