/* session.c -- session lifecycle, the stop/snapshot barrier and fork
 * handling.  See codeprof.h for the public contract and tbuf.h for the
 * append protocol this file is the other half of. */
#include "core/session.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/warnings.h"
#include "core/site.h"
#include "cpu/cct.h"
#include "data/datalog.h"
#include "model/model.h"
#include "model/build.h"

_Atomic(cp_session *) cp_session_current_g;

/* Live sessions, for the fork handlers.  Lock order: live_mu, then a
 * session's mu, then the site table's mutex. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static cp_session *live_head;
static atomic_uint_fast64_t next_sid = 1;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static int membarrier_register(void) {
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
    return r == 0 ? 0 : -1;
}

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

/* In the child only the forking thread exists.  Every inherited buffer
 * holds the parent's data (the parent reports it), and may have been
 * mid-append on another thread, so all are dropped without waiting on
 * anything; a new generation id makes every thread-local slot miss, and
 * recording continues into fresh buffers of the child's own. */
static void atfork_child(void) {
    cp_site_atfork_child();
    pthread_mutex_init(&live_mu, NULL);
    cp_tbuf_need_fence = membarrier_register() != 0;
    for (cp_session *s = live_head; s; s = s->next_live) {
        pthread_mutex_init(&s->mu, NULL);
        cp_tbuf *b = s->bufs;
        while (b) {
            cp_tbuf *n = b->next;
            cp_tbuf_free(b);
            b = n;
        }
        s->bufs = NULL;
        s->nthreads = 0;
        s->pid = (int)getpid();
        /* The inherited log holds the parent's records (and its mutex may
         * be held by a thread that no longer exists): set it aside. */
        s->log = cp_datalog_new_memory();
        s->retired = NULL; /* the parent's copies; never touched again */
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
    }
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
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->state, CP_STATE_STOPPED);
    atomic_init(&s->id, atomic_fetch_add(&next_sid, 1));
    s->pid = (int)getpid();
    s->worker_id = -1;
    strcpy(s->role, "main");
    s->log = cp_datalog_new_memory();
    if (!s->log) {
        free(s);
        return cp_error_set(err, CODEPROF_ENOMEM, "", "out of memory creating a session");
    }
    pthread_mutex_lock(&live_mu);
    s->next_live = live_head;
    live_head = s;
    pthread_mutex_unlock(&live_mu);
    *out = s;
    return CODEPROF_OK;
}

/* Waits until no buffer of `s` is mid-append.  The caller has already set
 * a non-running state; after the barrier every appender either is visible
 * as busy or will see that state. */
static void quiesce(cp_session *s) {
    if (!cp_tbuf_need_fence)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        atomic_thread_fence(memory_order_seq_cst);
    for (cp_tbuf *b = s->bufs; b; b = b->next) {
        /* The calling thread cannot be mid-append on its own buffer. */
        unsigned spins = 0;
        while (atomic_load_explicit(&b->busy, memory_order_acquire)) {
            if (++spins > 64)
                sched_yield();
        }
    }
}

static void fold_all(cp_session *s) {
    for (cp_tbuf *b = s->bufs; b; b = b->next)
        cp_tbuf_fold(b);
}

codeprof_status codeprof_session_start(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->state) != CP_STATE_STOPPED) {
        pthread_mutex_unlock(&s->mu);
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
    pthread_mutex_unlock(&s->mu);
    atomic_store_explicit(&cp_session_current_g, s, memory_order_release);
    return CODEPROF_OK;
}

codeprof_status codeprof_session_stop(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->state) != CP_STATE_RUNNING) {
        pthread_mutex_unlock(&s->mu);
        return CODEPROF_ESTATE;
    }
    atomic_store(&s->state, CP_STATE_STOPPED);
    uint64_t now = cp_clock_ticks();
    quiesce(s);
    fold_all(s);
    for (cp_tbuf *b = s->bufs; b; b = b->next)
        cp_tree_close_all(b->tree, now);
    s->run_ticks += now - s->last_start_tick;
    pthread_mutex_unlock(&s->mu);
    return CODEPROF_OK;
}

codeprof_status codeprof_session_reset(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->state) != CP_STATE_STOPPED) {
        pthread_mutex_unlock(&s->mu);
        return CODEPROF_ESTATE;
    }
    for (cp_tbuf *b = s->bufs; b; b = b->next) {
        b->len = 0;
        b->events_total = 0;
        b->dropped_paused = 0;
        cp_tree_reset(b->tree);
    }
    s->run_ticks = 0;
    s->ever_started = 0;
    s->start_unix_ns = 0;
    if (s->log && s->log->fd < 0) { /* a worker's spool is never emptied */
        cp_datalog *fresh = cp_datalog_new_memory();
        if (fresh) {
            cp_datalog_free(s->log);
            s->log = fresh;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return CODEPROF_OK;
}

void codeprof_session_free(codeprof_session *s) {
    if (!s)
        return;
    if (atomic_load(&s->state) == CP_STATE_RUNNING)
        codeprof_session_stop(s);
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
    cp_tbuf *b = s->bufs;
    while (b) {
        cp_tbuf *n = b->next;
        cp_tbuf_free(b);
        b = n;
    }
    cp_datalog_free(s->log);
    cp_datalog_free(s->retired);
    cp_warnings_free(s->warnings);
    free(s->spool_dir);
    free(s->loaders);
    pthread_mutex_destroy(&s->mu);
    free(s);
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

void cp_session_flush_self(cp_session *s) {
    if (cp_tls.sid != atomic_load_explicit(&s->id, memory_order_relaxed))
        return;
    cp_tbuf *b = cp_tls.buf;
    atomic_store_explicit(&b->busy, 1, memory_order_relaxed);
    if (cp_tbuf_need_fence)
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->state, memory_order_relaxed) == CP_STATE_RUNNING)
        cp_tbuf_fold(b);
    atomic_store_explicit(&b->busy, 0, memory_order_release);
}

uint64_t cp_session_running_ticks(cp_session *s) {
    uint64_t t = s->run_ticks;
    if (atomic_load(&s->state) == CP_STATE_RUNNING)
        t += cp_clock_ticks() - s->last_start_tick;
    return t;
}

cp_model *cp_session_snapshot(cp_session *s) {
    pthread_mutex_lock(&s->mu);
    int was_running = atomic_load(&s->state) == CP_STATE_RUNNING;
    if (was_running) {
        atomic_store(&s->state, CP_STATE_PAUSED);
        quiesce(s);
    }
    fold_all(s);
    cp_model *m = cp_model_build(s);
    if (was_running)
        atomic_store(&s->state, CP_STATE_RUNNING);
    pthread_mutex_unlock(&s->mu);
    return m;
}
