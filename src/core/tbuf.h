/* tbuf.h -- a thread's recording state in one session (the "record"
 * stage).
 *
 * Each (thread, session) pair owns one cp_tbuf.  The owning thread appends
 * events to its current buffer (`cur`, from the session's pool, pool.h)
 * and never does anything else on the hot path: no fold, no lock, no
 * allocation, no syscall.  When `cur` is full the owner hands it on
 * through a small single-producer/single-consumer ring and takes a fresh
 * buffer from the pool (cp_tbuf_swap: lock-free, async-signal-safe); when
 * the ring is full or the pool has no free buffer the event is dropped and
 * counted, never waited for.
 *
 * The aggregation side (drain.c: the session's drain thread, a snapshot,
 * stop, or a worker's item flush, serialised by the session's agg_mu)
 * consumes handed-on buffers in order, then the published prefix of `cur`,
 * and feeds the events to the session's sinks.  Only it touches `tree`.
 *
 * `busy` is both the reentrancy guard and the stop barrier: an instrument
 * that fires while the same thread is inside an append (a signal handler,
 * an allocation made by the profiler itself) sees busy set, records
 * nothing and counts the event in `dropped_reentrant`.  Stop sets the
 * session state to not-running, issues a process-wide barrier and waits
 * until no buffer is busy (session.c).
 *
 * Thread exit: a pthread key destructor marks the thread's cp_thread_mark
 * exited; the drain folds what the thread left, closes its open scopes,
 * merges its tree into the session's tree of exited threads and frees the
 * cp_tbuf.
 */
#ifndef CP_TBUF_H
#define CP_TBUF_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/event.h"
#include "core/pool.h"

struct codeprof_session;
struct cp_thread_tree; /* src/cpu/cct.h */

#define CP_TBUF_RING 64 /* handed-on buffers a thread may have waiting */

/* Shared by every cp_tbuf of one OS thread: tells the aggregation side that
 * the thread has exited.  Freed when the last cp_tbuf referring to it is. */
typedef struct cp_thread_mark {
    _Atomic int exited;
    _Atomic uint32_t refs; /* cp_tbufs referring to it */
} cp_thread_mark;

typedef struct cp_tbuf {
    /* ---- owner side (hot) ---- */
    atomic_uint busy;             /* 1 while the owner appends or flushes */
    _Atomic(cp_evbuf *) cur;      /* current buffer; NULL: none (drop)    */
    _Atomic uint32_t ring_head;   /* handed-on buffers (owner writes)     */
    _Atomic uint32_t ring_tail;   /* consumed (aggregation side writes)   */
    cp_evbuf *ring[CP_TBUF_RING];
    _Atomic uint64_t dropped_paused;    /* refused: session not running   */
    _Atomic uint64_t dropped_full;      /* no free buffer / ring full     */
    _Atomic uint64_t dropped_reentrant; /* instrument inside an append    */
    /* ---- identity ---- */
    struct codeprof_session *s;
    cp_thread_mark *mark;
    uint64_t os_tid;              /* gettid() of the owner                */
    uint64_t token;               /* process-unique thread token          */
    uint32_t thread_index;        /* 0-based order of registration        */
    struct cp_tbuf *next;         /* session's list (s->mu)               */
    /* ---- aggregation side (agg_mu) ---- */
    struct cp_thread_tree *tree;
    uint64_t events_total;        /* events consumed                      */
} cp_tbuf;

/* Session states (cp_session.state). */
enum { CP_STATE_STOPPED = 0, CP_STATE_RUNNING = 1 };

/* Thread-local one-entry cache: the buffer of the last session used. */
typedef struct cp_tls_slot {
    uint64_t sid; /* session generation id; 0 = empty */
    cp_tbuf *buf;
} cp_tls_slot;
/* initial-exec: one %fs-relative load, no lazy allocation (so the
 * async-signal-safe append may read it); 16 bytes of glibc's static TLS
 * surplus for dlopen'ed modules. */
extern _Thread_local cp_tls_slot cp_tls __attribute__((tls_model("initial-exec")));

/* 1 when membarrier is unavailable (or a TSan build) and appends must use
 * a full fence. */
extern int cp_tbuf_need_fence;

/* Relaxed single-writer counter increment (no locked instruction). */
static inline void cp_count(_Atomic uint64_t *c) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Slow path: find or create this thread's cp_tbuf in `s` (takes the
 * session mutex; allocates).  Returns NULL on OOM, after the thread's exit
 * began, or when called re-entrantly from inside itself.  Not
 * async-signal-safe. */
cp_tbuf *cp_tbuf_get_slow(struct codeprof_session *s);

/* Owner side: hands the full current buffer on and installs a fresh one.
 * Returns the fresh buffer, or NULL (the event must be dropped).
 * Lock-free, async-signal-safe. */
cp_evbuf *cp_tbuf_swap(cp_tbuf *t);

/* Frees a cp_tbuf and its tree (aggregation side; the owner must not use
 * it any more).  Its buffers are returned to the pool unless `abandon`. */
void cp_tbuf_free(cp_tbuf *t);

/* Drops this thread's cached slot (fork child, tests). */
void cp_tbuf_forget_thread(void);

#endif /* CP_TBUF_H */
