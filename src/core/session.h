/* session.h -- session internals shared by the core, the aggregator, the
 * report writers and the CPython extension.  Public API: codeprof.h. */
#ifndef CP_SESSION_H
#define CP_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "core/tbuf.h"

struct cp_model;   /* src/model/model.h */
struct cp_datalog; /* src/data/datalog.h */

/* A loader's description, by site (codeprof_loader_describe). */
typedef struct cp_loader_entry {
    uint32_t site;
    codeprof_loader_desc desc;
} cp_loader_entry;

struct codeprof_session {
    atomic_int state;          /* CP_STATE_*                               */
    atomic_uint_fast64_t id;   /* generation id; changes after fork        */
    codeprof_config cfg;
    pthread_mutex_t mu;        /* guards `bufs` list and lifecycle          */
    cp_tbuf *bufs;             /* every thread that recorded               */
    uint32_t nthreads;
    uint64_t start_tick;       /* tick of the first start                  */
    uint64_t run_ticks;        /* ticks spent running, summed over runs    */
    uint64_t last_start_tick;
    uint64_t start_unix_ns;    /* wall clock at first start                */
    int ever_started;
    int pid;
    char role[64];
    struct codeprof_session *next_live; /* registry of live sessions (fork) */
    /* data loading */
    struct cp_datalog *log;    /* where item/stage/batch records go        */
    struct cp_datalog *retired;/* logs replaced by attach (freed at free)   */
    char *spool_dir;           /* parent: worker spools merged in reports  */
    struct cp_warnings *warnings; /* codeprof_session_warn (core/warnings.h) */
    int worker_id;             /* worker: DataLoader worker id, else -1    */
    cp_loader_entry *loaders;
    uint32_t nloaders, cap_loaders;
};
typedef struct codeprof_session cp_session;

/* Resolves NULL to the current session. */
static inline cp_session *cp_session_resolve(cp_session *s) {
    extern _Atomic(cp_session *) cp_session_current_g;
    return s ? s : atomic_load_explicit(&cp_session_current_g, memory_order_acquire);
}

/* Appends one event for the calling thread (the hot path shared by every
 * instrument).  Does nothing unless `s` is running. */
static inline void cp_emit(cp_session *s, uint16_t kind, uint16_t flags,
                           uint32_t site, int64_t value, uint64_t aux) {
    cp_tbuf *b;
    if (__builtin_expect(cp_tls.sid == atomic_load_explicit(&s->id, memory_order_relaxed), 1))
        b = cp_tls.buf;
    else if (!(b = cp_tbuf_get_slow(s)))
        return;
    atomic_store_explicit(&b->busy, 1, memory_order_relaxed);
    if (__builtin_expect(cp_tbuf_need_fence, 0))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&s->state, memory_order_relaxed) == CP_STATE_RUNNING, 1)) {
        if (__builtin_expect(b->len == b->cap, 0))
            cp_tbuf_fold(b);
        cp_event *e = &b->ev[b->len++];
        e->tick = cp_clock_ticks();
        e->value = value;
        e->aux = aux;
        e->site = site;
        e->kind = kind;
        e->flags = flags;
    } else {
        b->dropped_paused++;
    }
    atomic_store_explicit(&b->busy, 0, memory_order_release);
}

/* Folds the calling thread's buffer now (owner side of the busy
 * protocol); used so a worker's item records reach its spool at once. */
void cp_session_flush_self(cp_session *s);

/* Pauses recording, waits for appends in flight, folds every buffer,
 * builds a new model (free with cp_model_free) and resumes if it was
 * running.  Returns NULL on OOM. */
struct cp_model *cp_session_snapshot(cp_session *s);

/* Ticks elapsed while running, including the current run. */
uint64_t cp_session_running_ticks(cp_session *s);

#endif /* CP_SESSION_H */
