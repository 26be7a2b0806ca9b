/* pool.h -- the session's pool of event buffers (the "record" stage's
 * memory).
 *
 * An event buffer (cp_evbuf) is a fixed array of 32-byte events written by
 * exactly one thread, its owner.  The owner publishes each event with a
 * release store of `len`; the aggregation side (drain.c) reads the
 * published prefix at any time, even while the owner keeps appending, and
 * remembers how far it folded in `folded`.  A full buffer is handed on
 * (tbuf.c) and, once folded, returned to the pool.
 *
 * The pool is a fixed array of slots holding free buffers.  Taking a
 * buffer is one atomic exchange per slot scanned: lock-free, no
 * allocation, no syscall, and therefore safe in a signal handler.  Buffers
 * are allocated only on slow paths (a thread's first event, session
 * start), never by an appending thread's hot path, up to `cap` buffers in
 * all; past that an appender that finds no free buffer drops its events
 * and counts them.
 */
#ifndef CP_POOL_H
#define CP_POOL_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/event.h"

typedef struct cp_evbuf {
    _Atomic uint32_t len; /* events published by the owner               */
    uint32_t cap;         /* capacity of ev[]                            */
    uint32_t folded;      /* events already consumed (aggregation side)  */
    uint32_t pad_;
    cp_event ev[];        /* cap events                                  */
} cp_evbuf;

typedef struct cp_pool {
    _Atomic(cp_evbuf *) *slots; /* free buffers; NULL = empty slot       */
    uint32_t nslots;            /* == cap                                */
    uint32_t buffer_events;     /* events per buffer                     */
    _Atomic uint32_t allocated; /* buffers allocated so far (<= cap)     */
    _Atomic uint32_t nfree;     /* buffers in slots (a take that finds 0
                                   returns at once instead of scanning)  */
    cp_evbuf **all;             /* every buffer allocated, for freeing   */
} cp_pool;

/* Initialises `p` for at most `cap` buffers of `buffer_events` events.
 * Returns 0, or -1 on OOM.  Free with cp_pool_destroy. */
int cp_pool_init(cp_pool *p, uint32_t cap, uint32_t buffer_events);

/* Frees every buffer the pool allocated (free or not).  The caller
 * guarantees no thread uses any of them any more. */
void cp_pool_destroy(cp_pool *p);

/* Takes a free buffer, or NULL when none is free.  Lock-free and
 * async-signal-safe.  Scanning from the first slot while puts fill the
 * lowest empty slot makes reuse last-in first-out:
 * the buffers recently written are taken again, and spare buffers that
 * were never written stay untouched mapped pages (no memory). */
cp_evbuf *cp_pool_take(cp_pool *p);

/* Allocates up to `n` new buffers (while under the cap) and puts them in
 * the pool.  Slow path only (mallocs).  Returns the number added. */
uint32_t cp_pool_grow(cp_pool *p, uint32_t n);

/* Allocates one new buffer for the caller, not put in the pool; NULL past
 * the cap or on OOM.  Slow path only. */
cp_evbuf *cp_pool_new_buffer(cp_pool *p);

/* Empties `b` and returns it to the pool.  Aggregation side. */
void cp_pool_put(cp_pool *p, cp_evbuf *b);

/* Free buffers now (for topping the pool up). */
static inline uint32_t cp_pool_free_count(const cp_pool *p) {
    return atomic_load_explicit(&((cp_pool *)p)->nfree, memory_order_relaxed);
}

/* Buffers allocated so far. */
static inline uint32_t cp_pool_allocated(const cp_pool *p) {
    return atomic_load_explicit(&((cp_pool *)p)->allocated, memory_order_relaxed);
}

#endif /* CP_POOL_H */
