/* session.h -- session internals shared by the core, the aggregator, the
 * report writers and the CPython extension.  Public API: codeprof.h.
 *
 * Locks, in the order they may be taken:
 *   life_mu   start/stop/reset/free and the drain thread's life
 *   agg_mu    the aggregation side: trees, sinks, the exited-thread tree
 *   mu        the thread registry (`bufs` insertions), loaders, role
 *   (site tables' mutexes, the data log's mutex)
 * A recording thread's hot path takes none of them; its slow path (first
 * event of a thread) takes `mu`; a worker's item flush takes `agg_mu`.
 */
#ifndef CP_SESSION_H
#define CP_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "core/pool.h"
#include "core/sink.h"
#include "core/tbuf.h"

struct cp_model;   /* src/model/model.h */
struct cp_datalog; /* src/data/datalog.h */
struct cp_thread_tree;
struct cp_timeline;

/* A loader's description, by site (codeprof_loader_describe). */
typedef struct cp_loader_entry {
    uint32_t site;
    codeprof_loader_desc desc;
} cp_loader_entry;

struct codeprof_session {
    atomic_int state;            /* CP_STATE_*                               */
    atomic_uint_fast64_t id;     /* generation id; changes after fork        */
    codeprof_config cfg;
    pthread_mutex_t life_mu;
    pthread_mutex_t agg_mu;
    pthread_mutex_t mu;
    _Atomic(cp_tbuf *) bufs;     /* every live thread that recorded          */
    uint32_t nthreads;           /* registered so far (mu)                   */
    cp_pool pool;
    _Atomic uint64_t dropped_nothread; /* async-safe appends, no buffer yet  */
    /* The Python tracer (src/python/tracer.c): it recorded into this
     * session (set at its start, kept by reset), and how many of the
     * profiler's own calls it left out (cleared by reset). */
    atomic_int python_traced;
    _Atomic uint64_t hidden_calls;
    /* Written under life_mu, read by snapshots (agg_mu): atomics. */
    _Atomic uint64_t start_tick;      /* tick of the first start             */
    _Atomic uint64_t run_ticks;       /* ticks spent running, summed over runs */
    _Atomic uint64_t last_start_tick;
    _Atomic uint64_t start_unix_ns;   /* wall clock at first start           */
    _Atomic int ever_started;
    int pid;
    char role[64];
    struct codeprof_session *next_live; /* registry of live sessions (fork) */
    /* ---- aggregation side (agg_mu) ---- */
    struct cp_thread_tree *exited;   /* trees of exited threads, merged       */
    uint32_t nexited;                /* threads merged into `exited`          */
    uint64_t exited_events;
    uint64_t exited_paused, exited_full, exited_reentrant; /* their drops */
    uint64_t sample_budget;          /* duration samples left (all trees)     */
    cp_sink sinks[CP_MAX_SINKS];
    uint32_t nsinks;
    struct cp_timeline *timeline;
    uint64_t drains;                 /* drain passes that found events        */
    /* ---- drain thread (life_mu) ---- */
    pthread_t drain_thread;
    int drain_pid;                   /* pid that runs it; 0 = none            */
    atomic_int drain_quit;
    pthread_mutex_t drain_mu;        /* with drain_cv: the drain thread's nap */
    pthread_cond_t drain_cv;
    /* ---- sites ---- */
    int site_slot;                   /* session-local site table (site.h)     */
    /* ---- data loading ---- */
    struct cp_datalog *log;    /* where item/stage/batch records go        */
    struct cp_datalog *retired;/* logs replaced by attach (freed at free)   */
    char *spool_dir;           /* parent: worker spools merged in reports  */
    struct cp_warnings *warnings; /* codeprof_session_warn (core/warnings.h) */
    int worker_id;             /* worker: DataLoader worker id, else -1    */
    cp_loader_entry *loaders;
    uint32_t nloaders, cap_loaders;
    /* ---- memory profiling (src/memory/mem_session.h; NULL when off) ---- */
    struct cp_mem_state *mem;
    /* ---- statistical profiling (src/sampling/sample_session.h) ---- */
    struct cp_samp_state *samp;
    /* ---- GPU profiling (src/gpu/gpu_session.h) ---- */
    struct cp_gpu_state *gpu;
    /* ---- reports ---- */
    /* The last model built for a report, with its findings, and what the
     * session looked like when it was built (src/report/output.c owns it;
     * the core only frees it, through report_cache_free). */
    _Atomic(void *) report_cache;
    void (*report_cache_free)(void *cache);
};
typedef struct codeprof_session cp_session;

/* Resolves NULL to the current session. */
static inline cp_session *cp_session_resolve(cp_session *s) {
    extern _Atomic(cp_session *) cp_session_current_g;
    return s ? s : atomic_load_explicit(&cp_session_current_g, memory_order_acquire);
}

/* The append shared by both variants below; `t` is the caller's buffer. */
static inline void cp_emit_into(cp_session *s, cp_tbuf *t, uint16_t kind, uint16_t flags,
                                uint32_t site, int64_t value, uint64_t aux) {
    if (__builtin_expect(atomic_load_explicit(&t->busy, memory_order_relaxed) != 0, 0)) {
        /* An instrument fired inside an append on this thread. */
        cp_count(&t->dropped_reentrant);
        return;
    }
    atomic_store_explicit(&t->busy, 1, memory_order_relaxed);
#if defined(CP_TSAN_BUILD)
    atomic_thread_fence(memory_order_seq_cst);
#else
    if (__builtin_expect(cp_tbuf_need_fence, 0))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
#endif
    /* acquire (a plain load on x86): what reset/start did before the
     * session was started again happens-before this append. */
    if (__builtin_expect(atomic_load_explicit(&s->state, memory_order_acquire) ==
                             CP_STATE_RUNNING, 1)) {
        cp_evbuf *b = atomic_load_explicit(&t->cur, memory_order_relaxed);
        uint32_t n = b ? atomic_load_explicit(&b->len, memory_order_relaxed) : 0;
        if (__builtin_expect(!b || n == b->cap, 0)) {
            b = cp_tbuf_swap(t);
            n = 0;
        }
        if (__builtin_expect(b != NULL, 1)) {
            cp_event *e = &b->ev[n];
            e->tick = cp_clock_ticks();
            e->value = value;
            e->aux = aux;
            e->site = site;
            e->kind = kind;
            e->flags = flags;
            atomic_store_explicit(&b->len, n + 1, memory_order_release);
        } else {
            cp_count(&t->dropped_full);
        }
    } else {
        cp_count(&t->dropped_paused);
    }
    atomic_store_explicit(&t->busy, 0, memory_order_release);
}

/* Counts `n` calls of the profiler's own code that the Python tracer left
 * out (model meta.hidden_calls).  Lock-free; any thread. */
static inline void cp_session_count_hidden(cp_session *s, uint64_t n) {
    atomic_fetch_add_explicit(&s->hidden_calls, n, memory_order_relaxed);
}

/* Appends one event for the calling thread: the hot path shared by every
 * instrument.  Does nothing unless `s` is running.  A thread's first event
 * takes the slow path (allocates, takes the session mutex); every later
 * one only writes its own buffer. */
static inline void cp_emit(cp_session *s, uint16_t kind, uint16_t flags, uint32_t site,
                           int64_t value, uint64_t aux) {
    cp_tbuf *t;
    if (__builtin_expect(cp_tls.sid == atomic_load_explicit(&s->id, memory_order_relaxed), 1))
        t = cp_tls.buf;
    else if (!(t = cp_tbuf_get_slow(s)))
        return;
    cp_emit_into(s, t, kind, flags, site, value, aux);
}

/* The async-signal-safe append (for a signal-driven sampler): never takes
 * the slow path; a thread that has not recorded into `s` yet drops the
 * event (counted in s->dropped_nothread). */
static inline void cp_emit_async(cp_session *s, uint16_t kind, uint16_t flags, uint32_t site,
                                 int64_t value, uint64_t aux) {
    if (__builtin_expect(cp_tls.sid != atomic_load_explicit(&s->id, memory_order_relaxed) ||
                             !cp_tls.buf, 0)) {
        atomic_fetch_add_explicit(&s->dropped_nothread, 1, memory_order_relaxed);
        return;
    }
    cp_emit_into(s, cp_tls.buf, kind, flags, site, value, aux);
}

/* Aggregates the calling thread's events now (a worker's item end: its
 * records reach the spool file before the next item starts).  Takes
 * agg_mu; not for a hot path. */
void cp_session_flush_self(cp_session *s);

/* Builds a model of everything recorded so far (free with cp_model_free)
 * without stopping recording: the aggregation side consumes every
 * buffer's published events and the model is built from the aggregates.
 * Returns NULL on OOM.  Thread-safe. */
struct cp_model *cp_session_snapshot(cp_session *s);

/* Ticks elapsed while running, including the current run. */
uint64_t cp_session_running_ticks(cp_session *s);

/* A new empty tree with the session's bounds, data log and sample budget
 * (the one recipe for every tree of a session); NULL on OOM.  Free with
 * cp_tree_free. */
struct cp_thread_tree *cp_session_new_tree(cp_session *s);

/* Registers a sink (sink.h).  Returns 0, or -1 when CP_MAX_SINKS are
 * registered.  Thread-safe. */
int cp_session_add_sink(cp_session *s, const cp_sink *sink);

/* Names folded into "(other ...)" sites: the session's table and the
 * process-wide one. */
uint64_t cp_session_sites_dropped(const cp_session *s);

#endif /* CP_SESSION_H */
