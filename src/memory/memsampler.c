/* memsampler.c -- the process memory sampler (memsampler.h).
 *
 * One thread per session (memory_sample_interval_s > 0), started and
 * stopped by the session's memory state (mem_session.c).  It blocks every
 * signal, never runs Python and never takes the session's locks: each tick
 * it reads /proc (procmem.h, stack buffers only), then updates its own
 * state under its own mutex `mu`, which the model build takes (agg_mu ->
 * mu) to copy that state.  It sleeps on a condition variable with a
 * CLOCK_MONOTONIC deadline, so stop wakes it at once.
 *
 * Its counter readings live in two bounded stores of its own (timeline.h
 * stores: first half, then a ring of the most recent half): this process's
 * RSS (and tracked heap) and the watched processes' RSS/PSS/USS.  They
 * reach the model's timeline at build (cp_memsampler_fill_model) as
 * CP_EV_COUNTER events flagged CP_TLF_PROCESS, so no thread of the
 * profiler ever appears in a call tree or a trace.
 *
 * The thread holds the heap tracker's reentrancy flag for its whole life,
 * so what it allocates (warnings, store pages) is never recorded as the
 * user's.
 */
#include "memory/memsampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/session.h"
#include "core/timeline.h"
#include "memory/heap.h"
#include "memory/procmem.h"
#include "model/build.h"
#include "model/model.h"

/* One followed process (a DataLoader worker). */
typedef struct ms_proc {
    cp_mproc fig; /* figures; fig.loader holds a site id here */
    int gone;     /* exited: no longer sampled                */
} ms_proc;

typedef struct ms_note {
    uint32_t loader, dataset; /* site ids */
    uint64_t py_objects, array_bytes;
    char text[256];
} ms_note;

struct cp_memsampler {
    codeprof_session *s;
    uint64_t interval_ns;
    uint32_t timeline_samples;
    int heap_counter; /* memory_mode > 0: "memory.heap_live" too */
    const char *proc_root;
    struct cp_memsampler *next; /* registry */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* ---- mu ---- */
    pthread_t th;
    int thread_pid; /* pid that runs the thread; 0 none          */
    int quit;
    uint64_t gen;             /* bumped by reset: a tick in flight is dropped */
    cp_mproc self;            /* this process (worker -1)                  */
    uint64_t self_full_every; /* ticks between readings of our smaps_rollup */
    ms_proc *procs;
    uint32_t nprocs, cap_procs;
    uint64_t dropped_procs;
    ms_note notes[CP_MEM_MAX_DSNOTES];
    uint32_t nnotes;
    cp_timeline *self_tl; /* this process's counters                    */
    cp_timeline *proc_tl; /* the watched processes' counters            */
    int warned_source;
    _Atomic uint64_t samples; /* ticks taken (report fingerprint)           */
};

/* ---- the registry of samplers (codeprof_session_watch_process) ---- */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static cp_memsampler *reg_head;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* reg_mu is held across fork.  The session's atfork child handler (which
 * calls cp_memsampler_forget through cp_memsampler_of) may run before
 * reg_child has re-initialised it: a lookup in a child whose reg_mu is
 * still the parent's (reg_fork_pid is not our pid) runs without the lock:
 * only the forking thread exists there. */
static _Atomic int reg_fork_pid;
static void reg_prepare(void) {
    pthread_mutex_lock(&reg_mu);
    atomic_store(&reg_fork_pid, (int)getpid());
}
static void reg_parent(void) {
    atomic_store(&reg_fork_pid, 0);
    pthread_mutex_unlock(&reg_mu);
}
static void reg_child(void) {
    pthread_mutex_init(&reg_mu, NULL);
    atomic_store(&reg_fork_pid, 0);
}
static void reg_init(void) {
    pthread_atfork(reg_prepare, reg_parent, reg_child);
}

/* 1 when the lock was taken (release with reg_unlock(1)). */
static int reg_lock(void) {
    int fp = atomic_load(&reg_fork_pid);
    if (fp && fp != (int)getpid())
        return 0; /* fork child before reg_child: single-threaded */
    pthread_mutex_lock(&reg_mu);
    return 1;
}
static void reg_unlock(int locked) {
    if (locked)
        pthread_mutex_unlock(&reg_mu);
}

/* ---- counter sites (process-wide, interned once) ---- */

enum { SITE_RSS, SITE_PSS, SITE_USS, SITE_HEAP, NSITES };
static const char *const site_names[NSITES] = {"memory.rss", "memory.pss", "memory.uss",
                                               "memory.heap_live"};
static _Atomic uint32_t site_ids[NSITES];

static uint32_t counter_site(int which) {
    uint32_t id = atomic_load_explicit(&site_ids[which], memory_order_acquire);
    if (!id) {
        id = codeprof_site(site_names[which], NULL, 0, CODEPROF_SITE_SCOPE);
        atomic_store_explicit(&site_ids[which], id, memory_order_release);
    }
    return id;
}

/* ---- lifecycle ---- */

static int init_sync(cp_memsampler *ms) {
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&ms->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&ms->mu, NULL) != 0) {
        pthread_cond_destroy(&ms->cv);
        return -1;
    }
    return 0;
}

cp_memsampler *cp_memsampler_new(codeprof_session *s) {
    pthread_once(&reg_once, reg_init);
    cp_memsampler *ms = calloc(1, sizeof *ms);
    if (!ms)
        return NULL;
    if (init_sync(ms) != 0) {
        free(ms);
        return NULL;
    }
    ms->s = s;
    double iv = s ? s->cfg.memory_sample_interval_s : 0.0;
    ms->interval_ns = iv > 0 ? (uint64_t)(iv * 1e9) : 0;
    if (ms->interval_ns && ms->interval_ns < 1000000)
        ms->interval_ns = 1000000;
    ms->timeline_samples = s ? s->cfg.memory_timeline_samples : 0;
    ms->heap_counter = s && s->cfg.memory_mode > 0;
    /* our own smaps_rollup walks every page table of a big process: read
     * it about every half second, statm (cheap) every tick */
    ms->self_full_every = ms->interval_ns ? 500000000ull / ms->interval_ns : 1;
    if (!ms->self_full_every)
        ms->self_full_every = 1;
    ms->self.pid = (int32_t)getpid();
    ms->self.worker = -1;
    int locked = reg_lock();
    ms->next = reg_head;
    reg_head = ms;
    reg_unlock(locked);
    return ms;
}

cp_memsampler *cp_memsampler_of(const codeprof_session *s) {
    if (!s)
        return NULL;
    pthread_once(&reg_once, reg_init);
    int locked = reg_lock();
    cp_memsampler *ms = reg_head;
    while (ms && ms->s != s)
        ms = ms->next;
    reg_unlock(locked);
    return ms;
}

void cp_memsampler_set_proc_root(cp_memsampler *ms, const char *root) {
    if (!ms)
        return;
    pthread_mutex_lock(&ms->mu);
    ms->proc_root = root;
    pthread_mutex_unlock(&ms->mu);
}

static cp_timeline *store_new(uint32_t samples, uint32_t per_sample) {
    uint64_t cap = (uint64_t)samples * per_sample;
    if (!cap)
        return NULL;
    return cp_timeline_new(cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap, 0, 0);
}

static void series_add(cp_mproc *p, uint64_t t, uint64_t rss, const cp_procmem *pm) {
    if (!p->nsamples) {
        p->t_first_ns = t;
        p->rss_first = rss;
        if (pm) {
            p->pss_first = pm->pss;
            p->uss_first = pm->uss;
        }
    }
    if (pm && pm->source) {
        if (!p->pss_first && !p->uss_first && p->nsamples) { /* first full reading */
            p->pss_first = pm->pss;
            p->uss_first = pm->uss;
        }
        p->pss_last = pm->pss;
        p->uss_last = pm->uss;
        if (pm->pss > p->pss_max)
            p->pss_max = pm->pss;
        if (pm->uss > p->uss_max)
            p->uss_max = pm->uss;
        p->source = pm->source;
    }
    p->t_last_ns = t;
    p->rss_last = rss;
    if (rss > p->rss_max)
        p->rss_max = rss;
    if (p->nsamples < UINT32_MAX)
        p->nsamples++;
}

static void put_counter(cp_timeline *tl, uint64_t t, int which, int pid, uint64_t v) {
    if (!tl)
        return;
    cp_tl_event e = {t,
                     (int64_t)(v > INT64_MAX ? INT64_MAX : v),
                     counter_site(which),
                     (uint32_t)pid,
                     CP_EV_COUNTER,
                     CP_TLF_PROCESS,
                     0};
    cp_timeline_put(tl, &e);
}

/* One reading of a watched process, outside the lock. */
typedef struct reading {
    int pid;
    int rc;
    int err;
    cp_procmem pm;
} reading;

static void warn_source(cp_memsampler *ms, int pid, int source) {
    if (!ms->s)
        return;
    char msg[256];
    snprintf(msg, sizeof msg,
             "process %d: /proc/%d/smaps_rollup is missing (kernel before 4.14?); its memory "
             "is read from %s%s",
             pid, pid, source == CP_PROCMEM_SMAPS ? "smaps (summed per mapping)" : "statm",
             source == CP_PROCMEM_STATM ? ": no PSS, USS estimated as RSS - shared" : "");
    codeprof_session_warn(ms->s, "procmem_fallback", msg);
}

void cp_memsampler_tick(cp_memsampler *ms) {
    if (!ms)
        return;
    reading rd[CP_MEM_MAX_PROCS];
    uint32_t nrd = 0;
    pthread_mutex_lock(&ms->mu);
    uint64_t gen = ms->gen;
    const char *root = ms->proc_root;
    uint64_t n = atomic_load_explicit(&ms->samples, memory_order_relaxed);
    int full_self = (n % ms->self_full_every) == 0;
    for (uint32_t i = 0; i < ms->nprocs && nrd < CP_MEM_MAX_PROCS; i++)
        if (!ms->procs[i].gone)
            rd[nrd++].pid = ms->procs[i].fig.pid;
    pthread_mutex_unlock(&ms->mu);

    /* /proc, no lock held */
    uint64_t t = cp_clock_mono_ns();
    cp_procmem self_pm;
    memset(&self_pm, 0, sizeof self_pm);
    uint64_t rss;
    if (root) { /* tests: the fixture's "self" */
        if (cp_procmem_read(root, 0, full_self ? CP_PROCMEM_ROLLUP : CP_PROCMEM_STATM, &self_pm) !=
            0)
            memset(&self_pm, 0, sizeof self_pm);
        rss = self_pm.rss;
    } else {
        rss = codeprof_rss_bytes();
        if (full_self && cp_procmem_read(NULL, 0, CP_PROCMEM_ROLLUP, &self_pm) != 0)
            memset(&self_pm, 0, sizeof self_pm);
    }
    if (!full_self)
        memset(&self_pm, 0, sizeof self_pm);
    if (rss)
        cp_heap_watch_rss(rss);
    int64_t heap_live = 0;
    if (ms->heap_counter) {
        cp_heap_totals tot;
        cp_heap_get_totals(&tot);
        heap_live = tot.live_bytes;
    }
    for (uint32_t i = 0; i < nrd; i++) {
        rd[i].rc = cp_procmem_read(root, rd[i].pid, CP_PROCMEM_ROLLUP, &rd[i].pm);
        rd[i].err = rd[i].rc ? errno : 0;
    }

    pthread_mutex_lock(&ms->mu);
    if (gen != ms->gen) { /* reset meanwhile: this reading belongs to before */
        pthread_mutex_unlock(&ms->mu);
        return;
    }
    if (!ms->self_tl && ms->timeline_samples)
        ms->self_tl = store_new(ms->timeline_samples, ms->heap_counter ? 2 : 1);
    if (!ms->proc_tl && ms->timeline_samples && nrd)
        ms->proc_tl = store_new(ms->timeline_samples, 3);
    if (rss) {
        series_add(&ms->self, t, rss, self_pm.source ? &self_pm : NULL);
        put_counter(ms->self_tl, t, SITE_RSS, 0, rss);
        if (ms->heap_counter)
            put_counter(ms->self_tl, t, SITE_HEAP, 0, heap_live > 0 ? (uint64_t)heap_live : 0);
    }
    int fallback_pid = 0, fallback_src = 0;
    for (uint32_t i = 0; i < nrd; i++) {
        ms_proc *p = NULL;
        for (uint32_t j = 0; j < ms->nprocs && !p; j++)
            if (ms->procs[j].fig.pid == rd[i].pid && !ms->procs[j].gone)
                p = &ms->procs[j];
        if (!p)
            continue;
        if (rd[i].rc != 0) {
            /* gone (ENOENT/ESRCH), or /proc refuses us (EACCES): stop
             * following it, keep its figures */
            p->gone = 1;
            continue;
        }
        series_add(&p->fig, t, rd[i].pm.rss, &rd[i].pm);
        put_counter(ms->proc_tl, t, SITE_RSS, rd[i].pid, rd[i].pm.rss);
        if (rd[i].pm.has_pss)
            put_counter(ms->proc_tl, t, SITE_PSS, rd[i].pid, rd[i].pm.pss);
        put_counter(ms->proc_tl, t, SITE_USS, rd[i].pid, rd[i].pm.uss);
        if (rd[i].pm.source != CP_PROCMEM_ROLLUP && !ms->warned_source) {
            ms->warned_source = 1;
            fallback_pid = rd[i].pid;
            fallback_src = rd[i].pm.source;
        }
    }
    atomic_fetch_add_explicit(&ms->samples, 1, memory_order_relaxed);
    pthread_mutex_unlock(&ms->mu);
    if (fallback_pid)
        warn_source(ms, fallback_pid, fallback_src);
}

static void *thread_main(void *arg) {
    cp_memsampler *ms = arg;
    /* everything this thread allocates is the profiler's */
    int hooked = cp_heap_hook_enter();
    pthread_mutex_lock(&ms->mu);
    while (!ms->quit) {
        pthread_mutex_unlock(&ms->mu);
        cp_memsampler_tick(ms);
        pthread_mutex_lock(&ms->mu);
        struct timespec now, dl;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t ns = (uint64_t)now.tv_nsec + ms->interval_ns;
        dl.tv_sec = now.tv_sec + (time_t)(ns / 1000000000ull);
        dl.tv_nsec = (long)(ns % 1000000000ull);
        while (!ms->quit) {
            int rc = pthread_cond_timedwait(&ms->cv, &ms->mu, &dl);
            if (rc == ETIMEDOUT)
                break;
        }
    }
    pthread_mutex_unlock(&ms->mu);
    if (hooked)
        cp_heap_hook_leave();
    return NULL;
}

int cp_memsampler_start(cp_memsampler *ms) {
    if (!ms || !ms->interval_ns)
        return 0;
    int pid = (int)getpid();
    pthread_mutex_lock(&ms->mu);
    if (ms->thread_pid == pid) {
        pthread_mutex_unlock(&ms->mu);
        return 0;
    }
    ms->quit = 0;
    ms->self.pid = pid;
    /* the thread is created with every signal blocked (it inherits the
     * mask) and with the tracker's flag held: its stack is ours */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int hooked = cp_heap_hook_enter();
    int rc = pthread_create(&ms->th, NULL, thread_main, ms);
    if (hooked)
        cp_heap_hook_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        ms->thread_pid = pid;
    pthread_mutex_unlock(&ms->mu);
    return rc == 0 ? 0 : -1;
}

void cp_memsampler_stop(cp_memsampler *ms) {
    if (!ms)
        return;
    pthread_mutex_lock(&ms->mu);
    if (ms->thread_pid != (int)getpid()) {
        pthread_mutex_unlock(&ms->mu);
        return;
    }
    ms->quit = 1;
    pthread_cond_broadcast(&ms->cv);
    pthread_t th = ms->th;
    ms->thread_pid = 0;
    pthread_mutex_unlock(&ms->mu);
    pthread_join(th, NULL);
}

void cp_memsampler_reset(cp_memsampler *ms) {
    if (!ms)
        return;
    pthread_mutex_lock(&ms->mu);
    ms->gen++;
    int32_t pid = ms->self.pid;
    memset(&ms->self, 0, sizeof ms->self);
    ms->self.pid = pid;
    ms->self.worker = -1;
    uint32_t keep = 0;
    for (uint32_t i = 0; i < ms->nprocs; i++) {
        ms_proc *p = &ms->procs[i];
        if (p->gone)
            continue; /* nothing left to follow */
        cp_mproc f = {0};
        f.pid = p->fig.pid;
        f.worker = p->fig.worker;
        f.loader = p->fig.loader;
        ms->procs[keep].fig = f;
        ms->procs[keep].gone = 0;
        keep++;
    }
    ms->nprocs = keep;
    ms->dropped_procs = 0;
    cp_timeline_free(ms->self_tl);
    cp_timeline_free(ms->proc_tl);
    ms->self_tl = ms->proc_tl = NULL;
    atomic_store_explicit(&ms->samples, 0, memory_order_relaxed);
    pthread_mutex_unlock(&ms->mu);
}

void cp_memsampler_free(cp_memsampler *ms) {
    if (!ms)
        return;
    cp_memsampler_stop(ms);
    int locked = reg_lock();
    for (cp_memsampler **pp = &reg_head; *pp; pp = &(*pp)->next)
        if (*pp == ms) {
            *pp = ms->next;
            break;
        }
    reg_unlock(locked);
    cp_timeline_free(ms->self_tl);
    cp_timeline_free(ms->proc_tl);
    free(ms->procs);
    pthread_mutex_destroy(&ms->mu);
    pthread_cond_destroy(&ms->cv);
    free(ms);
}

void cp_memsampler_forget(cp_memsampler *ms) {
    if (!ms)
        return;
    /* Fork child: the thread does not exist here and `mu` may have been
     * held by it.  The parent's series, stores and watched processes (its
     * workers, not ours) are abandoned, never freed: their pages are the
     * parent's, copy-on-write. */
    init_sync(ms);
    ms->thread_pid = 0;
    ms->quit = 0;
    ms->gen++;
    memset(&ms->self, 0, sizeof ms->self);
    ms->self.pid = (int32_t)getpid();
    ms->self.worker = -1;
    ms->procs = NULL;
    ms->nprocs = ms->cap_procs = 0;
    ms->dropped_procs = 0;
    ms->self_tl = ms->proc_tl = NULL;
    ms->nnotes = 0;
    ms->warned_source = 0;
    atomic_store_explicit(&ms->samples, 0, memory_order_relaxed);
}

uint64_t cp_memsampler_samples(const cp_memsampler *ms) {
    return ms ? atomic_load_explicit(&ms->samples, memory_order_relaxed) : 0;
}

/* ---- watching ---- */

codeprof_status cp_memsampler_watch(cp_memsampler *ms, int pid, int worker, uint32_t loader_site) {
    if (!ms || pid <= 0)
        return CODEPROF_EINVAL;
    if (!ms->interval_ns)
        return CODEPROF_ENOTSUP;
    codeprof_status st = CODEPROF_OK;
    pthread_mutex_lock(&ms->mu);
    ms_proc *p = NULL;
    for (uint32_t i = 0; i < ms->nprocs && !p; i++)
        if (ms->procs[i].fig.pid == pid && !ms->procs[i].gone)
            p = &ms->procs[i];
    if (!p) {
        if (ms->nprocs >= CP_MEM_MAX_PROCS - 1) { /* one entry is this process */
            ms->dropped_procs++;
            st = CODEPROF_ENOMEM;
        } else {
            if (ms->nprocs == ms->cap_procs) {
                uint32_t nc = ms->cap_procs ? 2 * ms->cap_procs : 8;
                ms_proc *np = realloc(ms->procs, nc * sizeof *np);
                if (!np) {
                    pthread_mutex_unlock(&ms->mu);
                    return CODEPROF_ENOMEM;
                }
                ms->procs = np;
                ms->cap_procs = nc;
            }
            p = &ms->procs[ms->nprocs++];
            memset(p, 0, sizeof *p);
            p->fig.pid = pid;
        }
    }
    if (p) {
        p->fig.worker = worker;
        p->fig.loader = loader_site;
    }
    pthread_mutex_unlock(&ms->mu);
    return st;
}

codeprof_status codeprof_session_watch_process(codeprof_session *s, int pid, int worker,
                                               uint32_t loader_site) {
    s = cp_session_resolve(s);
    if (!s || pid <= 0)
        return CODEPROF_EINVAL;
    cp_memsampler *ms = cp_memsampler_of(s);
    if (!ms)
        return CODEPROF_ENOTSUP;
    return cp_memsampler_watch(ms, pid, worker, loader_site);
}

codeprof_status cp_memsampler_describe_dataset(cp_memsampler *ms, uint32_t loader_site,
                                               uint32_t dataset_site, const char *text,
                                               uint64_t py_objects, uint64_t array_bytes) {
    if (!ms || !loader_site || !text)
        return CODEPROF_EINVAL;
    codeprof_status st = CODEPROF_OK;
    pthread_mutex_lock(&ms->mu);
    ms_note *n = NULL;
    for (uint32_t i = 0; i < ms->nnotes && !n; i++)
        if (ms->notes[i].loader == loader_site)
            n = &ms->notes[i];
    if (!n && ms->nnotes < CP_MEM_MAX_DSNOTES)
        n = &ms->notes[ms->nnotes++];
    if (n) {
        n->loader = loader_site;
        n->dataset = dataset_site;
        n->py_objects = py_objects;
        n->array_bytes = array_bytes;
        snprintf(n->text, sizeof n->text, "%s", text);
    } else {
        st = CODEPROF_ENOMEM;
    }
    pthread_mutex_unlock(&ms->mu);
    return st;
}

/* ---- the model ---- */


/* Memory a counter store holds (its head and, once used, its ring). */
static uint64_t store_bytes(const cp_timeline *tl) {
    if (!tl)
        return 0;
    const cp_tl_store *st = &tl->scopes;
    return sizeof *tl +
           ((uint64_t)st->head_alloc + (st->ring ? st->ring_cap : 0)) * sizeof(cp_tl_event);
}

static uint64_t items_of(const cp_model *m, int32_t pid) {
    for (uint32_t i = 0; i < m->data.nworkers; i++)
        if (m->data.workers[i].pid == pid)
            return m->data.workers[i].items;
    return 0;
}

int cp_memsampler_fill_model(const cp_memsampler *cms, cp_model *m) {
    static _Atomic uint64_t machine;
    uint64_t mb = atomic_load_explicit(&machine, memory_order_relaxed);
    if (!mb) {
        mb = cp_procmem_machine_bytes();
        atomic_store_explicit(&machine, mb, memory_order_relaxed);
    }
    m->mem.machine_bytes = mb;
    if (!cms)
        return 0;
    cp_memsampler *ms = (cp_memsampler *)cms; /* the lock is not the data */
    int rc = 0;
    pthread_mutex_lock(&ms->mu);
    uint32_t want = (ms->self.nsamples ? 1u : 0u);
    for (uint32_t i = 0; i < ms->nprocs; i++)
        want += ms->procs[i].fig.nsamples ? 1u : 0u;
    if (want) {
        cp_mproc *np = realloc(m->mem.procs, ((size_t)m->mem.nprocs + want) * sizeof *np);
        if (!np) {
            rc = -1;
        } else {
            m->mem.procs = np;
            if (ms->self.nsamples) {
                cp_mproc *p = &np[m->mem.nprocs++];
                *p = ms->self;
                p->loader = 0;
                if (p->rss_last > m->mem.rss_last || !m->mem.rss_last)
                    m->mem.rss_last = p->rss_last;
                if (p->rss_max > m->mem.rss_peak)
                    m->mem.rss_peak = p->rss_max;
            }
            for (uint32_t i = 0; i < ms->nprocs; i++) {
                const ms_proc *src = &ms->procs[i];
                if (!src->fig.nsamples)
                    continue;
                cp_mproc *p = &np[m->mem.nprocs++];
                *p = src->fig;
                p->exited = src->gone;
                p->loader = src->fig.loader ? cp_model_map_site(m, src->fig.loader) : 0;
                p->items = items_of(m, p->pid);
            }
        }
    }
    m->mem.ndsnotes = 0;
    for (uint32_t i = 0; i < ms->nnotes; i++) {
        cp_mds_note *d = &m->mem.dsnotes[m->mem.ndsnotes];
        d->loader = cp_model_map_site(m, ms->notes[i].loader);
        if (!d->loader)
            continue;
        d->dataset = ms->notes[i].dataset ? cp_model_map_site(m, ms->notes[i].dataset) : 0;
        d->py_objects = ms->notes[i].py_objects;
        d->array_bytes = ms->notes[i].array_bytes;
        memcpy(d->text, ms->notes[i].text, sizeof d->text);
        m->mem.ndsnotes++;
    }
    m->mem.dropped_procs += ms->dropped_procs;
    m->mem.own_bytes += sizeof *ms + (uint64_t)ms->cap_procs * sizeof *ms->procs +
                        store_bytes(ms->self_tl) + store_bytes(ms->proc_tl);
    if (ms->self_tl)
        m->mem.dropped_samples += ms->self_tl->scopes.dropped / (ms->heap_counter ? 2 : 1);
    if (ms->proc_tl)
        m->mem.dropped_samples += ms->proc_tl->scopes.dropped / 3;
    if (cp_model_append_counters(m, ms->self_tl) != 0 ||
        cp_model_append_counters(m, ms->proc_tl) != 0)
        rc = -1;
    pthread_mutex_unlock(&ms->mu);
    return rc;
}
