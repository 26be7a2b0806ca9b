/* session.c -- session lifecycle, the stop barrier, snapshots and fork
 * handling.  See codeprof.h for the public contract, tbuf.h for the append
 * protocol this file is the other half of, and drain.h for aggregation. */
#include "core/session.h"
#include "gpu/gpu_session.h"
#include "memory/mem_session.h"
#include "sampling/sample_session.h"

#include <linux/membarrier.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/drain.h"
#include "core/errors.h"
#include "core/warnings.h"
#include "core/site.h"
#include "core/timeline.h"
#include "cpu/cct.h"
#include "data/datalog.h"
#include "model/build.h"
#include "model/model.h"

_Atomic(cp_session *) cp_session_current_g;

/* Live sessions, for the fork handlers.  Taken before any session lock. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static cp_session *live_head;
static atomic_uint_fast64_t next_sid = 1;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static int membarrier_register(void) {
#if defined(CP_TSAN_BUILD)
    return -1; /* TSan cannot see membarrier: use fences it understands */
#else
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
    return r == 0 ? 0 : -1;
#endif
}

static void init_locks(cp_session *s) {
    pthread_mutex_init(&s->life_mu, NULL);
    pthread_mutex_init(&s->agg_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->drain_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->drain_cv, &ca);
    pthread_condattr_destroy(&ca);
}

static cp_timeline *new_timeline(const codeprof_config *cfg) {
    return cp_timeline_new(cfg->timeline_events, cfg->timeline_traced_events,
                           (cfg->flags & CODEPROF_CFG_TIMELINE_TRACED) != 0);
}

/* Only the registry lock is held across fork: the aggregation side may be
 * mid-fold on another thread, and the child never touches what it was
 * folding (see atfork_child), so waiting for it would only delay fork. */
static void atfork_prepare(void) {
    pthread_mutex_lock(&live_mu);
    for (cp_session *s = live_head; s; s = s->next_live)
        pthread_mutex_lock(&s->mu);
    cp_site_atfork_prepare();
}

static void atfork_parent(void) {
    cp_site_atfork_parent();
    for (cp_session *s = live_head; s; s = s->next_live)
        pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&live_mu);
}

/* In the child only the forking thread exists.  Everything the recording
 * and aggregation sides held -- buffers, trees, the pool, the timeline, the
 * data log -- belongs to the parent's report and may have been mid-update
 * on a thread that does not exist here: it is abandoned, never freed or
 * read (its pages are copy-on-write, so this costs no memory).  A new
 * generation id makes every thread-local slot miss, and recording goes on
 * into fresh state of the child's own. */
static void atfork_child(void) {
    cp_site_atfork_child();
    pthread_mutex_init(&live_mu, NULL);
    cp_tbuf_need_fence = membarrier_register() != 0;
    for (cp_session *s = live_head; s; s = s->next_live) {
        init_locks(s);
        atomic_store(&s->bufs, NULL);
        s->nthreads = 0;
        if (cp_pool_init(&s->pool, s->cfg.pool_buffers, s->cfg.buffer_events) != 0)
            memset(&s->pool, 0, sizeof s->pool); /* no buffers: every append drops */
        atomic_store(&s->dropped_nothread, 0);
        s->exited = NULL;
        s->nexited = 0;
        s->exited_events = s->exited_paused = s->exited_full = s->exited_reentrant = 0;
        s->sample_budget = s->cfg.sample_budget;
        s->timeline = new_timeline(&s->cfg);
        for (uint32_t i = 0; i < s->nsinks; i++)
            if (strcmp(s->sinks[i].name, "timeline") == 0)
                s->sinks[i] = s->timeline ? cp_timeline_sink(s->timeline)
                                          : s->sinks[--s->nsinks];
        s->drains = 0;
        s->drain_pid = 0;
        atomic_store(&s->drain_quit, 0);
        s->pid = (int)getpid();
        /* The inherited log holds the parent's records (and its mutex may
         * be held by a thread that no longer exists): set it aside. */
        s->log = cp_datalog_new_memory();
        if (s->log)
            cp_datalog_apply_config(s->log, &s->cfg);
        s->retired = NULL; /* the parent's copies; never touched again */
        s->warnings = NULL; /* the parent's (its mutex may be held) */
        s->worker_id = -1;
        s->run_ticks = 0;
        s->start_unix_ns = 0;
        s->ever_started = 0;
        if (atomic_load(&s->state) != CP_STATE_STOPPED) {
            uint64_t now = cp_clock_ticks();
            s->start_tick = s->last_start_tick = now;
            s->ever_started = 1;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            s->start_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        }
        atomic_store(&s->id, atomic_fetch_add(&next_sid, 1));
        cp_mem_session_atfork_child(s);
        cp_samp_session_atfork_child(s);
        cp_gpu_session_atfork_child(s);
    }
    cp_tbuf_forget_thread();
}

static void global_init(void) {
    cp_clock_init();
    cp_tbuf_need_fence = membarrier_register() != 0;
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

codeprof_status codeprof_session_new(const codeprof_config *cfg, codeprof_session **out,
                                     codeprof_error *err) {
    if (!out)
        return cp_error_set(err, CODEPROF_EINVAL, "out", "out pointer is NULL");
    *out = NULL;
    pthread_once(&global_once, global_init);
    codeprof_config def;
    if (!cfg) {
        codeprof_config_init(&def);
        cfg = &def;
    }
    codeprof_status st = codeprof_config_validate(cfg, err);
    if (st)
        return st;
    cp_session *s = calloc(1, sizeof *s);
    if (!s)
        return cp_error_set(err, CODEPROF_ENOMEM, "", "out of memory creating a session");
    s->cfg = *cfg;
    init_locks(s);
    atomic_init(&s->state, CP_STATE_STOPPED);
    atomic_init(&s->id, atomic_fetch_add(&next_sid, 1));
    atomic_init(&s->bufs, NULL);
    atomic_init(&s->dropped_nothread, 0);
    atomic_init(&s->drain_quit, 0);
    s->pid = (int)getpid();
    s->worker_id = -1;
    s->sample_budget = cfg->sample_budget;
    s->site_slot = -1;
    strcpy(s->role, "main");
    s->log = cp_datalog_new_memory();
    if (s->log)
        cp_datalog_apply_config(s->log, cfg);
    s->timeline = new_timeline(cfg);
    s->site_slot = cp_site_local_new(cfg->max_sites);
    if (!s->log || !s->timeline || s->site_slot < 0 ||
        cp_pool_init(&s->pool, cfg->pool_buffers, cfg->buffer_events) != 0) {
        cp_datalog_free(s->log);
        cp_timeline_free(s->timeline);
        cp_site_local_free(s->site_slot);
        free(s);
        return cp_error_set(err, CODEPROF_ENOMEM, "", "out of memory creating a session");
    }
    if (cfg->timeline_events || s->timeline->keep_traced)
        s->sinks[s->nsinks++] = cp_timeline_sink(s->timeline);
    if ((st = cp_mem_session_new(s, err)) != CODEPROF_OK) {
        cp_datalog_free(s->log);
        cp_timeline_free(s->timeline);
        cp_site_local_free(s->site_slot);
        cp_pool_destroy(&s->pool);
        free(s);
        return st;
    }
    if ((st = cp_samp_session_new(s, err)) != CODEPROF_OK ||
        (st = cp_gpu_session_new(s, err)) != CODEPROF_OK) {
        cp_gpu_session_free(s);
        cp_mem_session_free(s);
        for (uint32_t i = 0; i < s->nsinks; i++)
            if (s->sinks[i].destroy)
                s->sinks[i].destroy(s->sinks[i].ctx);
        cp_samp_session_free(s);
        cp_datalog_free(s->log);
        cp_timeline_free(s->timeline);
        cp_site_local_free(s->site_slot);
        cp_pool_destroy(&s->pool);
        free(s);
        return st;
    }
    pthread_mutex_lock(&live_mu);
    s->next_live = live_head;
    live_head = s;
    pthread_mutex_unlock(&live_mu);
    *out = s;
    return CODEPROF_OK;
}

cp_thread_tree *cp_session_new_tree(cp_session *s) {
    cp_thread_tree *t = cp_tree_new(s->cfg.max_nodes, s->cfg.max_samples,
                                    (s->cfg.flags & CODEPROF_CFG_PERCENTILES) != 0);
    if (t) {
        cp_tree_set_datalog(t, &s->log);
        cp_tree_set_budget(t, &s->sample_budget);
    }
    return t;
}

int cp_session_add_sink(cp_session *s, const cp_sink *sink) {
    pthread_mutex_lock(&s->agg_mu);
    int r = -1;
    if (s->nsinks < CP_MAX_SINKS) {
        s->sinks[s->nsinks++] = *sink;
        r = 0;
    }
    pthread_mutex_unlock(&s->agg_mu);
    return r;
}

/* Waits until no thread of `s` is mid-append.  The caller has already set
 * a non-running state; after the barrier every appender either is visible
 * as busy or will see that state.  Holds `mu` (so the drain cannot unlink
 * a buffer under us); never agg_mu, which a busy flusher may be waiting
 * for. */
static void quiesce(cp_session *s) {
#if defined(CP_TSAN_BUILD)
    atomic_thread_fence(memory_order_seq_cst);
#else
    if (!cp_tbuf_need_fence)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        atomic_thread_fence(memory_order_seq_cst);
#endif
    pthread_mutex_lock(&s->mu);
    for (cp_tbuf *t = atomic_load(&s->bufs); t; t = t->next) {
        if (cp_tls.buf == t)
            continue; /* the calling thread is not mid-append */
        unsigned spins = 0;
        while (atomic_load_explicit(&t->busy, memory_order_acquire)) {
            if (++spins > 64)
                sched_yield();
        }
    }
    pthread_mutex_unlock(&s->mu);
}

codeprof_status codeprof_session_start(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->life_mu);
    if (atomic_load(&s->state) != CP_STATE_STOPPED) {
        pthread_mutex_unlock(&s->life_mu);
        return CODEPROF_ESTATE;
    }
    uint64_t now = cp_clock_ticks();
    if (!s->ever_started) {
        s->ever_started = 1;
        s->start_tick = now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->start_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    s->last_start_tick = now;
    atomic_store(&s->state, CP_STATE_RUNNING);
    cp_drain_ensure(s);
    cp_mem_session_start(s);
    cp_samp_session_start(s);
    cp_gpu_session_start(s);
    pthread_mutex_unlock(&s->life_mu);
    atomic_store_explicit(&cp_session_current_g, s, memory_order_release);
    return CODEPROF_OK;
}

codeprof_status codeprof_session_stop(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->life_mu);
    if (atomic_load(&s->state) != CP_STATE_RUNNING) {
        pthread_mutex_unlock(&s->life_mu);
        return CODEPROF_ESTATE;
    }
    atomic_store(&s->state, CP_STATE_STOPPED);
    uint64_t now = cp_clock_ticks();
    cp_mem_session_stop(s);
    cp_samp_session_stop(s);
    cp_gpu_session_stop(s);
    quiesce(s);
    cp_drain_stop(s);
    pthread_mutex_lock(&s->agg_mu);
    cp_drain_all(s, 1);
    for (cp_tbuf *t = atomic_load(&s->bufs); t; t = t->next)
        cp_tree_close_all(t->tree, now);
    pthread_mutex_unlock(&s->agg_mu);
    s->run_ticks += now - s->last_start_tick;
    pthread_mutex_unlock(&s->life_mu);
    return CODEPROF_OK;
}

codeprof_status codeprof_session_reset(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->life_mu);
    if (atomic_load(&s->state) != CP_STATE_STOPPED) {
        pthread_mutex_unlock(&s->life_mu);
        return CODEPROF_ESTATE;
    }
    pthread_mutex_lock(&s->agg_mu);
    cp_drain_all(s, 1); /* stray events; retires exited threads */
    for (cp_tbuf *t = atomic_load(&s->bufs); t; t = t->next) {
        cp_evbuf *c = atomic_load(&t->cur);
        if (c) {
            atomic_store(&c->len, 0);
            c->folded = 0;
        }
        t->events_total = 0;
        atomic_store(&t->dropped_paused, 0);
        atomic_store(&t->dropped_full, 0);
        atomic_store(&t->dropped_reentrant, 0);
        /* A fresh tree gives the old one's memory back. */
        cp_thread_tree *fresh = cp_session_new_tree(s);
        if (fresh) {
            cp_tree_free(t->tree);
            t->tree = fresh;
        } else {
            cp_tree_reset(t->tree);
        }
    }
    cp_tree_free(s->exited);
    s->exited = NULL;
    s->nexited = 0;
    s->exited_events = s->exited_paused = s->exited_full = s->exited_reentrant = 0;
    atomic_store(&s->dropped_nothread, 0);
    atomic_store(&s->hidden_calls, 0);
    s->sample_budget = s->cfg.sample_budget; /* after the trees gave theirs back */
    for (uint32_t i = 0; i < s->nsinks; i++)
        if (s->sinks[i].reset)
            s->sinks[i].reset(s->sinks[i].ctx);
    s->drains = 0;
    s->run_ticks = 0;
    s->ever_started = 0;
    s->start_unix_ns = 0;
    cp_mem_session_reset(s);
    cp_samp_session_reset(s);
    cp_gpu_session_reset(s);
    /* The log is read by the fold (agg_mu) and swapped under mu too. */
    pthread_mutex_lock(&s->mu);
    cp_warnings_clear(s->warnings); /* they described the discarded run */
    if (s->log && s->log->fd < 0) { /* a worker's spool is never emptied */
        cp_datalog *fresh = cp_datalog_new_memory();
        if (fresh) {
            cp_datalog_apply_config(fresh, &s->cfg);
            cp_datalog_free(s->log);
            s->log = fresh;
        }
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->agg_mu);
    pthread_mutex_unlock(&s->life_mu);
    malloc_trim(0);
    return CODEPROF_OK;
}

void codeprof_session_free(codeprof_session *s) {
    if (!s)
        return;
    if (atomic_load(&s->state) == CP_STATE_RUNNING)
        codeprof_session_stop(s);
    pthread_mutex_lock(&s->life_mu);
    cp_drain_stop(s);
    pthread_mutex_unlock(&s->life_mu);
    cp_session *expect = s;
    atomic_compare_exchange_strong(&cp_session_current_g, &expect, NULL);
    pthread_mutex_lock(&live_mu);
    for (cp_session **pp = &live_head; *pp; pp = &(*pp)->next_live) {
        if (*pp == s) {
            *pp = s->next_live;
            break;
        }
    }
    pthread_mutex_unlock(&live_mu);
    cp_tbuf *t = atomic_load(&s->bufs);
    while (t) {
        cp_tbuf *n = t->next;
        cp_tbuf_free(t);
        t = n;
    }
    cp_tree_free(s->exited);
    cp_mem_session_free(s);
    cp_gpu_session_free(s);
    for (uint32_t i = 0; i < s->nsinks; i++)
        if (s->sinks[i].destroy)
            s->sinks[i].destroy(s->sinks[i].ctx);
    cp_samp_session_free(s); /* after the sinks: the sample sink reads its table */
    cp_timeline_free(s->timeline);
    cp_pool_destroy(&s->pool);
    cp_site_local_free(s->site_slot);
    cp_datalog_free(s->log);
    cp_datalog_free(s->retired);
    cp_warnings_free(s->warnings);
    void *cache = atomic_load(&s->report_cache);
    if (cache && s->report_cache_free)
        s->report_cache_free(cache);
    free(s->spool_dir);
    free(s->loaders);
    pthread_mutex_destroy(&s->life_mu);
    pthread_mutex_destroy(&s->agg_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->drain_mu);
    pthread_cond_destroy(&s->drain_cv);
    free(s);
    malloc_trim(0); /* give freed arenas back to the OS */
}

int codeprof_session_is_running(const codeprof_session *s) {
    return s && atomic_load(&((codeprof_session *)s)->state) == CP_STATE_RUNNING;
}

codeprof_session *codeprof_session_current(void) {
    return atomic_load_explicit(&cp_session_current_g, memory_order_acquire);
}

codeprof_status codeprof_session_set_role(codeprof_session *s, const char *role) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->mu);
    snprintf(s->role, sizeof s->role, "%s", role ? role : "main");
    pthread_mutex_unlock(&s->mu);
    return CODEPROF_OK;
}

uint32_t codeprof_session_site(codeprof_session *s, const char *name, const char *file,
                               uint32_t line, codeprof_site_kind kind) {
    if (!s || !name || (unsigned)kind >= CODEPROF_SITE_KIND_COUNT_)
        return 0;
    return cp_site_local_intern(s->site_slot, name, file, line, (uint16_t)kind);
}

uint64_t cp_session_sites_dropped(const cp_session *s) {
    return cp_site_local_dropped(s->site_slot) + cp_site_dropped();
}

void cp_session_flush_self(cp_session *s) {
    if (cp_tls.sid != atomic_load_explicit(&s->id, memory_order_relaxed) || !cp_tls.buf)
        return;
    cp_tbuf *t = cp_tls.buf;
    if (atomic_load_explicit(&t->busy, memory_order_relaxed))
        return;
    /* busy keeps instruments that fire while we fold (allocations) out of
     * this thread's buffer, and makes a stopper wait for us. */
    atomic_store_explicit(&t->busy, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->state, memory_order_relaxed) == CP_STATE_RUNNING) {
        pthread_mutex_lock(&s->agg_mu);
        cp_drain_thread(s, t, 1);
        pthread_mutex_unlock(&s->agg_mu);
    }
    atomic_store_explicit(&t->busy, 0, memory_order_release);
}

uint64_t cp_session_running_ticks(cp_session *s) {
    uint64_t t = s->run_ticks;
    if (atomic_load(&s->state) == CP_STATE_RUNNING)
        t += cp_clock_ticks() - s->last_start_tick;
    return t;
}

cp_model *cp_session_snapshot(cp_session *s) {
    pthread_mutex_lock(&s->agg_mu);
    /* Head-room for recording threads while the model is built: the drain
     * thread waits for agg_mu meanwhile. */
    uint32_t nthreads = 0; /* live threads */
    pthread_mutex_lock(&s->mu);
    for (cp_tbuf *t = atomic_load_explicit(&s->bufs, memory_order_relaxed); t; t = t->next)
        nthreads++;
    pthread_mutex_unlock(&s->mu);
    uint32_t want = 2 * nthreads + 4, have = cp_pool_free_count(&s->pool);
    if (have < want) /* top up, don't add: reports are often periodic */
        cp_pool_grow(&s->pool, want - have);
    cp_drain_all(s, 1);
    cp_model *m = cp_model_build(s);
    pthread_mutex_unlock(&s->agg_mu);
    return m;
}
