/* sampler.c -- the stack sampler thread (sampler.h).
 *
 * Life: cp_sampler_start creates the thread with every signal blocked (it
 * inherits the creator's mask, which is set to "all" around
 * pthread_create) and with the heap tracker's reentrancy flag held, so
 * nothing it allocates is recorded as the user's.  It sleeps on a
 * condition variable with an absolute CLOCK_MONOTONIC deadline (period
 * k * interval from its start: a late wake-up skips the periods it missed
 * and counts them), so stop wakes it at once and joins it.
 *
 * Per-thread state (last wall and CPU reading) lives in a fixed open-
 * addressing table of CP_SAMPLER_MAX_THREADS entries that only the sampler
 * thread touches; threads not seen for a tick are swept when it fills.
 */

#include "sampling/sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/session.h"
#include "memory/heap.h"

#define TAB_SLOTS (2u * CP_SAMPLER_MAX_THREADS) /* power of two */

typedef struct th_entry {
    uint64_t tid; /* 0: empty */
    uint64_t last_wall;
    uint64_t last_cpu;
    uint64_t last_wait; /* run-queue wait ns at the previous sample; 0: none */
    uint64_t seen; /* tick it was last visited */
    uint32_t last_id;   /* CPU mode: stack id of its previous sample (0: none) */
    uint32_t last_site; /* ... and that stack's innermost site              */
} th_entry;

struct cp_sampler {
    codeprof_session *s;
    cp_stacktab *tab;
    uint64_t interval_ns;
    int mode;   /* 0 wall, 1 CPU */
    int native; /* CODEPROF_CFG_SAMPLE_NATIVE */
    cp_sampler_capture_fn capture; /* a probe: records go here */
    void *capture_ctx;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* ---- mu ---- */
    pthread_t th;
    int thread_pid; /* pid running the thread; 0: none */
    int quit;

    /* ---- the sampler thread only (or a test's direct tick) ---- */
    th_entry *ents;
    uint32_t nents;
    uint32_t rr;      /* round-robin start of the next tick            */
    uint32_t nlast;   /* threads visited by the last tick              */
    uint64_t tickno;
    uint64_t cpu_base; /* CPU of the threads of earlier starts          */

    /* OS tids of the threads this sampler ran (the last SAMPLER_TIDS), so
     * the build can tell its thread buffers from the user's */
    _Atomic uint64_t tids[8];
    _Atomic uint32_t ntids;
    /* ---- counters (relaxed atomics: read by the model build) ---- */
    _Atomic uint64_t ticks, missed, samples, running, idle, gil, skipped, untracked, read_errors,
        threads, cpu_ns;
};

struct cp_sampler_visit {
    cp_sampler *sp;
    uint32_t index; /* threads visited so far this tick */
    uint32_t taken; /* threads read this tick            */
    uint64_t tick;
};

/* ---- the process-wide reader ---- */

static _Atomic(cp_sampler_reader_fn) reader_fn_g;
static _Atomic(void *) reader_ctx_g;
static _Atomic int reader_inflight_g;
static _Atomic uintptr_t gil_lo_g, gil_hi_g;

void cp_sampler_set_reader(cp_sampler_reader_fn fn, void *ctx) {
    if (fn) {
        atomic_store(&reader_ctx_g, ctx);
        atomic_store(&reader_fn_g, fn);
    } else {
        atomic_store(&reader_fn_g, NULL);
        atomic_store(&reader_ctx_g, NULL);
    }
}

void cp_sampler_reader_quiesce(void) {
    while (atomic_load(&reader_inflight_g) > 0) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

void cp_sampler_set_gil_range(uintptr_t lo, uintptr_t hi) {
    atomic_store(&gil_lo_g, lo);
    atomic_store(&gil_hi_g, hi);
}

/* ---- clocks and /proc ---- */

/* CPU time of thread `tid` of this process (the kernel's per-thread CPU
 * clock id: ~tid << 3 | CPUCLOCK_SCHED (2) | CPUCLOCK_PERTHREAD (4)).
 * Returns 0 or -1 (the thread is gone). */
static int thread_cpu_ns(uint64_t tid, uint64_t *out) {
    clockid_t cid = (clockid_t)((~(unsigned)(pid_t)tid << 3) | 6u);
    struct timespec ts;
    if (clock_gettime(cid, &ts) != 0)
        return -1;
    *out = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return 0;
}

static int read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return (int)n;
}

long cp_sampler_thread_syscall(uint64_t tid, uint64_t *arg0, uint64_t *pc) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%llu/syscall", (unsigned long long)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return -2;
    if (strncmp(buf, "running", 7) == 0)
        return -1;
    char *p = buf, *end;
    long nr = strtol(p, &end, 10);
    if (end == p || nr < 0)
        return -1; /* "-1 sp pc": blocked, not in a syscall */
    /* "nr a0 a1 a2 a3 a4 a5 sp pc" (hex) */
    uint64_t v[8] = {0};
    p = end;
    for (int i = 0; i < 8; i++) {
        v[i] = strtoull(p, &end, 16);
        if (end == p)
            break;
        p = end;
    }
    if (arg0)
        *arg0 = v[0];
    if (pc)
        *pc = v[7];
    return nr;
}

/* Time thread `tid` spent runnable but waiting for a CPU (the second
 * field of /proc/self/task/<tid>/schedstat).  0 or -1. */
static int thread_runq_wait_ns(uint64_t tid, uint64_t *out) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%llu/schedstat", (unsigned long long)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return -1;
    char *end;
    strtoull(buf, &end, 10);
    if (end == buf)
        return -1;
    char *p = end;
    *out = strtoull(p, &end, 10);
    return end == p ? -1 : 0;
}

/* 'R' in /proc/self/task/<tid>/stat: a thread seen for the first time. */
static int thread_is_running(uint64_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%llu/stat", (unsigned long long)tid);
    if (read_small(path, buf, sizeof buf) < 0)
        return 0;
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] == 'R';
}

const char *cp_sampler_syscall_name(long nr) {
    switch (nr) {
#ifdef SYS_read
    case SYS_read: return "read";
#endif
#ifdef SYS_write
    case SYS_write: return "write";
#endif
#ifdef SYS_poll
    case SYS_poll: return "poll";
#endif
#ifdef SYS_ppoll
    case SYS_ppoll: return "ppoll";
#endif
#ifdef SYS_select
    case SYS_select: return "select";
#endif
#ifdef SYS_pselect6
    case SYS_pselect6: return "pselect6";
#endif
#ifdef SYS_epoll_wait
    case SYS_epoll_wait: return "epoll_wait";
#endif
#ifdef SYS_epoll_pwait
    case SYS_epoll_pwait: return "epoll_pwait";
#endif
#ifdef SYS_nanosleep
    case SYS_nanosleep: return "nanosleep";
#endif
#ifdef SYS_clock_nanosleep
    case SYS_clock_nanosleep: return "clock_nanosleep";
#endif
#ifdef SYS_futex
    case SYS_futex: return "futex";
#endif
#ifdef SYS_recvfrom
    case SYS_recvfrom: return "recvfrom";
#endif
#ifdef SYS_recvmsg
    case SYS_recvmsg: return "recvmsg";
#endif
#ifdef SYS_sendto
    case SYS_sendto: return "sendto";
#endif
#ifdef SYS_accept
    case SYS_accept: return "accept";
#endif
#ifdef SYS_accept4
    case SYS_accept4: return "accept4";
#endif
#ifdef SYS_connect
    case SYS_connect: return "connect";
#endif
#ifdef SYS_wait4
    case SYS_wait4: return "wait4";
#endif
#ifdef SYS_waitid
    case SYS_waitid: return "waitid";
#endif
#ifdef SYS_openat
    case SYS_openat: return "openat";
#endif
#ifdef SYS_pread64
    case SYS_pread64: return "pread64";
#endif
#ifdef SYS_readv
    case SYS_readv: return "readv";
#endif
#ifdef SYS_ioctl
    case SYS_ioctl: return "ioctl";
#endif
#ifdef SYS_sched_yield
    case SYS_sched_yield: return "sched_yield";
#endif
#ifdef SYS_pause
    case SYS_pause: return "pause";
#endif
    default: return NULL;
    }
}

/* Site of the native frame "syscall:<name>" (process-wide, cached). */
#define NSYSCALL_SITES 512
static _Atomic uint32_t syscall_sites_g[NSYSCALL_SITES];

static uint32_t syscall_site(long nr) {
    if (nr < 0 || nr >= NSYSCALL_SITES)
        return 0;
    uint32_t id = atomic_load_explicit(&syscall_sites_g[nr], memory_order_acquire);
    if (id)
        return id;
    char name[64];
    const char *n = cp_sampler_syscall_name(nr);
    if (n)
        snprintf(name, sizeof name, "syscall:%s", n);
    else
        snprintf(name, sizeof name, "syscall:%ld", nr);
    id = codeprof_site(name, NULL, 0, CODEPROF_SITE_NATIVE);
    atomic_store_explicit(&syscall_sites_g[nr], id, memory_order_release);
    return id;
}

/* ---- the per-thread table ---- */

static inline uint32_t tid_hash(uint64_t tid) {
    uint64_t h = tid * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 40) & (TAB_SLOTS - 1);
}

static th_entry *ent_find(cp_sampler *sp, uint64_t tid, int insert) {
    uint32_t i = tid_hash(tid);
    for (uint32_t probe = 0; probe < TAB_SLOTS; probe++, i = (i + 1) & (TAB_SLOTS - 1)) {
        th_entry *e = &sp->ents[i];
        if (e->tid == tid)
            return e;
        if (!e->tid) {
            if (!insert || sp->nents >= CP_SAMPLER_MAX_THREADS)
                return NULL;
            memset(e, 0, sizeof *e);
            e->tid = tid;
            sp->nents++;
            return e;
        }
    }
    return NULL;
}

/* Drops the entries of threads not visited by the last two ticks (gone):
 * rebuilds the table in place through a copy of the live ones. */
static void ent_sweep(cp_sampler *sp) {
    uint32_t keep = 0;
    th_entry *tmp = malloc(sizeof(th_entry) * CP_SAMPLER_MAX_THREADS);
    if (!tmp)
        return;
    for (uint32_t i = 0; i < TAB_SLOTS; i++) {
        th_entry *e = &sp->ents[i];
        if (e->tid && e->seen + 2 > sp->tickno && keep < CP_SAMPLER_MAX_THREADS)
            tmp[keep++] = *e;
    }
    memset(sp->ents, 0, sizeof(th_entry) * TAB_SLOTS);
    sp->nents = 0;
    for (uint32_t k = 0; k < keep; k++) {
        th_entry *e = ent_find(sp, tmp[k].tid, 1);
        if (e)
            *e = tmp[k];
    }
    free(tmp);
}

static inline void bump(_Atomic uint64_t *c, uint64_t n) {
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- the visit ---- */

int cp_sampler_want(cp_sampler_visit *v, uint64_t tid) {
    cp_sampler *sp = v->sp;
    uint32_t i = v->index++;
    th_entry *e = ent_find(sp, tid, 1);
    if (!e) {
        bump(&sp->untracked, 1);
        return 0;
    }
    e->seen = v->tick;
    if (v->taken >= CP_SAMPLER_MAX_PER_TICK) {
        bump(&sp->skipped, 1);
        return 0;
    }
    uint32_t n = sp->nlast;
    if (n > CP_SAMPLER_MAX_PER_TICK && i < n) {
        /* the window [rr, rr + cap) of last tick's order, wrapping */
        uint32_t rel = (i + n - sp->rr) % n;
        if (rel >= CP_SAMPLER_MAX_PER_TICK) {
            bump(&sp->skipped, 1);
            return 0;
        }
    }
    v->taken++;
    return 1;
}

int cp_sampler_visit_native(const cp_sampler_visit *v) { return v->sp->native; }

void cp_sampler_read_error(cp_sampler_visit *v) { bump(&v->sp->read_errors, 1); }

void cp_sampler_record(cp_sampler_visit *v, uint64_t tid, const cp_sframe *frames, uint32_t n,
                       uint16_t flags, int read_error) {
    cp_sampler *sp = v->sp;
    if (read_error)
        bump(&sp->read_errors, 1);
    th_entry *e = ent_find(sp, tid, 0);
    if (!e)
        return;
    uint64_t cpu;
    if (thread_cpu_ns(tid, &cpu) != 0)
        return; /* exited meanwhile */
    uint64_t now = cp_clock_mono_ns();
    uint64_t dwall, dcpu;
    int running;
    if (!e->last_wall) { /* first sample of this thread */
        bump(&sp->threads, 1);
        dwall = sp->interval_ns;
        running = thread_is_running(tid);
        dcpu = running ? dwall : 0;
    } else {
        dwall = now > e->last_wall ? now - e->last_wall : 0;
        dcpu = cpu > e->last_cpu ? cpu - e->last_cpu : 0;
        running = dcpu * 100u >= dwall * CP_SAMPLER_RUNNING_PCT && dcpu > 0;
        /* runnable but descheduled (an overloaded machine): CPU plus time
         * spent waiting in the run queue covers most of the interval: it
         * computes, it does not wait */
        uint64_t wait;
        if (!running && thread_runq_wait_ns(tid, &wait) == 0) {
            uint64_t dwait = e->last_wait && wait > e->last_wait ? wait - e->last_wait : 0;
            e->last_wait = wait;
            running = (dcpu + dwait) * 100u >= dwall * CP_SAMPLER_RUNNABLE_PCT;
        } else {
            e->last_wait = 0; /* stale baseline: not read this time */
        }
    }
    e->last_wall = now;
    e->last_cpu = cpu;

    uint16_t state = running ? CP_SAMPF_RUNNING : CP_SAMPF_IDLE;
    cp_sframe buf[CP_STACK_MAX_DEPTH];
    const cp_sframe *fr = frames;
    if (n > CP_STACK_MAX_DEPTH) {
        n = CP_STACK_MAX_DEPTH;
        flags |= CP_SAMPF_TRUNCATED;
    }
    if (!running) {
        uintptr_t lo = atomic_load_explicit(&gil_lo_g, memory_order_relaxed);
        uintptr_t hi = atomic_load_explicit(&gil_hi_g, memory_order_relaxed);
        if ((n > 0 && hi > lo) || sp->native) {
            uint64_t a0 = 0;
            long nr = cp_sampler_thread_syscall(tid, &a0, NULL);
#ifdef SYS_futex
            if (nr == SYS_futex && n > 0 && a0 >= lo && a0 < hi)
                state = CP_SAMPF_GIL;
#endif
            if (sp->native && nr >= 0 && state != CP_SAMPF_GIL) {
                uint32_t site = syscall_site(nr);
                if (site) {
                    buf[0].site = site;
                    buf[0].line = 0;
                    uint32_t keep = n < CP_STACK_MAX_DEPTH - 1 ? n : CP_STACK_MAX_DEPTH - 1;
                    if (keep < n)
                        flags |= CP_SAMPF_TRUNCATED;
                    memcpy(buf + 1, frames, keep * sizeof *frames);
                    fr = buf;
                    n = keep + 1;
                    flags |= CP_SAMPF_NATIVE;
                }
            }
        }
    }
    if (state == CP_SAMPF_RUNNING)
        bump(&sp->running, 1);
    else if (state == CP_SAMPF_GIL)
        bump(&sp->gil, 1);
    else
        bump(&sp->idle, 1);
    if (!n)
        return; /* no frame to attribute */
    uint64_t weight;
    if (sp->mode == 1) {
        if (state != CP_SAMPF_RUNNING || !dcpu)
            return; /* CPU mode: an idle thread weighs nothing */
        weight = dcpu;
        flags |= CP_SAMPF_CPU_MODE;
    } else {
        weight = dwall;
    }
    if (weight > UINT32_MAX)
        weight = UINT32_MAX;
    if (sp->capture) {
        sp->capture(sp->capture_ctx, tid, fr, n, (uint16_t)(flags | state), weight);
        bump(&sp->samples, 1);
        return;
    }
    uint32_t id = cp_stacktab_intern(sp->tab, fr, n);
    uint32_t site = fr[0].site;
    if (sp->mode == 1) {
        /* CPU mode: the CPU time since the previous sample was spent before
         * now.  A thread that moved to another stack and is blocked in a
         * syscall at this instant (it computed, then went to sleep) used it
         * in the stack it was in before: charge that one, not the frame it
         * sleeps in (a 5 ms compute / 5 ms sleep loop otherwise gave the
         * sleeping function ~10% of the CPU).  One /proc read, only at such
         * transitions. */
        const cp_sframe *pf;
        uint32_t pn;
        if (e->last_id && e->last_id != id && cp_sampler_thread_syscall(tid, NULL, NULL) >= 0 &&
            cp_stacktab_get(sp->tab, e->last_id, &pf, &pn) == 0) { /* not reset since */
            uint32_t cur_id = id, cur_site = site;
            id = e->last_id;
            site = e->last_site;
            e->last_id = cur_id;
            e->last_site = cur_site;
        } else {
            e->last_id = id;
            e->last_site = site;
        }
    }
    uint64_t value = (uint64_t)id | (weight << 32);
    cp_emit(sp->s, CP_EV_SAMPLE, (uint16_t)(flags | state), site, (int64_t)value, tid);
    bump(&sp->samples, 1);
}

/* ---- ticks ---- */

static uint64_t self_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cp_sampler_tick(cp_sampler *sp) {
    if (!sp)
        return;
    sp->tickno++;
    cp_sampler_visit v = {sp, 0, 0, sp->tickno};
    atomic_fetch_add(&reader_inflight_g, 1);
    cp_sampler_reader_fn fn = atomic_load(&reader_fn_g);
    void *ctx = atomic_load(&reader_ctx_g);
    if (fn)
        fn(ctx, &v);
    atomic_fetch_sub(&reader_inflight_g, 1);
    if (v.index) {
        if (v.index > CP_SAMPLER_MAX_PER_TICK)
            sp->rr = (sp->rr + CP_SAMPLER_MAX_PER_TICK) % v.index;
        else
            sp->rr = 0;
        sp->nlast = v.index;
    }
    if (sp->nents > CP_SAMPLER_MAX_THREADS / 2 || (sp->tickno & 1023) == 0)
        ent_sweep(sp);
    bump(&sp->ticks, 1);
}

static void *thread_main(void *arg) {
    cp_sampler *sp = arg;
    pthread_setname_np(pthread_self(), "codeprof-sample"); /* top -H, /proc/.../comm */
    uint32_t k = atomic_fetch_add(&sp->ntids, 1);
    atomic_store(&sp->tids[k % 8], (uint64_t)syscall(SYS_gettid));
    int hooked = cp_heap_hook_enter();
    uint64_t next = cp_clock_mono_ns() + sp->interval_ns;
    pthread_mutex_lock(&sp->mu);
    while (!sp->quit) {
        /* sleep until `next` (absolute) or stop */
        struct timespec dl = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
        while (!sp->quit) {
            if (pthread_cond_timedwait(&sp->cv, &sp->mu, &dl) == ETIMEDOUT)
                break;
        }
        if (sp->quit)
            break;
        pthread_mutex_unlock(&sp->mu);
        cp_sampler_tick(sp);
        atomic_store_explicit(&sp->cpu_ns, sp->cpu_base + self_cpu_ns(), memory_order_relaxed);
        uint64_t now = cp_clock_mono_ns();
        next += sp->interval_ns;
        if (now >= next) { /* overran: skip the periods already past */
            uint64_t late = (now - next) / sp->interval_ns + 1;
            bump(&sp->missed, late);
            next += late * sp->interval_ns;
        }
        pthread_mutex_lock(&sp->mu);
    }
    pthread_mutex_unlock(&sp->mu);
    sp->cpu_base += self_cpu_ns();
    atomic_store_explicit(&sp->cpu_ns, sp->cpu_base, memory_order_relaxed);
    if (hooked)
        cp_heap_hook_leave();
    return NULL;
}

/* ---- lifecycle ---- */

static int init_sync(cp_sampler *sp) {
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&sp->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&sp->mu, NULL) != 0) {
        pthread_cond_destroy(&sp->cv);
        return -1;
    }
    return 0;
}

cp_sampler *cp_sampler_new(codeprof_session *s, cp_stacktab *tab) {
    if (!s || !tab || !(s->cfg.sample_interval_s > 0))
        return NULL;
    cp_sampler *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->ents = calloc(TAB_SLOTS, sizeof(th_entry));
    if (!sp->ents || init_sync(sp) != 0) {
        free(sp->ents);
        free(sp);
        return NULL;
    }
    sp->s = s;
    sp->tab = tab;
    sp->interval_ns = (uint64_t)(s->cfg.sample_interval_s * 1e9);
    if (sp->interval_ns < 100000)
        sp->interval_ns = 100000;
    sp->mode = s->cfg.sample_mode == 1;
    sp->native = (s->cfg.flags & CODEPROF_CFG_SAMPLE_NATIVE) != 0;
    return sp;
}

cp_sampler *cp_sampler_probe_new(uint64_t interval_ns, int native, cp_sampler_capture_fn fn,
                                 void *ctx) {
    if (!fn)
        return NULL;
    cp_sampler *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->ents = calloc(TAB_SLOTS, sizeof(th_entry));
    if (!sp->ents || init_sync(sp) != 0) {
        free(sp->ents);
        free(sp);
        return NULL;
    }
    sp->interval_ns = interval_ns ? interval_ns : 10000000ull;
    sp->native = native != 0;
    sp->capture = fn;
    sp->capture_ctx = ctx;
    return sp;
}

int cp_sampler_start(cp_sampler *sp) {
    if (!sp || sp->capture)
        return -1;
    int pid = (int)getpid();
    pthread_mutex_lock(&sp->mu);
    if (sp->thread_pid == pid) {
        pthread_mutex_unlock(&sp->mu);
        return 0;
    }
    sp->quit = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int hooked = cp_heap_hook_enter();
    int rc = pthread_create(&sp->th, NULL, thread_main, sp);
    if (hooked)
        cp_heap_hook_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        sp->thread_pid = pid;
    pthread_mutex_unlock(&sp->mu);
    return rc == 0 ? 0 : -1;
}

void cp_sampler_stop(cp_sampler *sp) {
    if (!sp)
        return;
    pthread_mutex_lock(&sp->mu);
    if (sp->thread_pid != (int)getpid()) {
        pthread_mutex_unlock(&sp->mu);
        return;
    }
    sp->quit = 1;
    pthread_cond_broadcast(&sp->cv);
    pthread_t th = sp->th;
    sp->thread_pid = 0;
    pthread_mutex_unlock(&sp->mu);
    pthread_join(th, NULL);
}

int cp_sampler_is_own_thread(const cp_sampler *sp, uint64_t os_tid) {
    if (!sp || !os_tid)
        return 0;
    for (int i = 0; i < 8; i++)
        if (atomic_load(&((cp_sampler *)sp)->tids[i]) == os_tid)
            return 1;
    return 0;
}

int cp_sampler_running(const cp_sampler *sp) {
    if (!sp)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&sp->mu);
    int r = sp->thread_pid == (int)getpid();
    pthread_mutex_unlock((pthread_mutex_t *)&sp->mu);
    return r;
}

void cp_sampler_get_stats(const cp_sampler *sp, cp_sampler_stats *o) {
    memset(o, 0, sizeof *o);
    if (!sp)
        return;
    o->ticks = atomic_load_explicit(&sp->ticks, memory_order_relaxed);
    o->missed_ticks = atomic_load_explicit(&sp->missed, memory_order_relaxed);
    o->samples = atomic_load_explicit(&sp->samples, memory_order_relaxed);
    o->running = atomic_load_explicit(&sp->running, memory_order_relaxed);
    o->idle = atomic_load_explicit(&sp->idle, memory_order_relaxed);
    o->gil = atomic_load_explicit(&sp->gil, memory_order_relaxed);
    o->skipped = atomic_load_explicit(&sp->skipped, memory_order_relaxed);
    o->untracked = atomic_load_explicit(&sp->untracked, memory_order_relaxed);
    o->read_errors = atomic_load_explicit(&sp->read_errors, memory_order_relaxed);
    o->threads = atomic_load_explicit(&sp->threads, memory_order_relaxed);
    o->cpu_ns = atomic_load_explicit(&sp->cpu_ns, memory_order_relaxed);
    o->interval_ns = sp->interval_ns;
    o->mode = sp->mode;
    o->native = sp->native;
}

/* Stopped (reset needs a stopped session): no thread touches the table. */
void cp_sampler_reset(cp_sampler *sp) {
    if (!sp)
        return;
    memset(sp->ents, 0, sizeof(th_entry) * TAB_SLOTS);
    sp->nents = 0;
    sp->rr = sp->nlast = 0;
    sp->cpu_base = 0;
    _Atomic uint64_t *cs[] = {&sp->ticks,   &sp->missed,    &sp->samples,     &sp->running,
                              &sp->idle,    &sp->gil,       &sp->skipped,     &sp->untracked,
                              &sp->read_errors, &sp->threads, &sp->cpu_ns};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        atomic_store(cs[i], 0);
}

void cp_sampler_atfork_child(cp_sampler *sp) {
    if (!sp)
        return;
    init_sync(sp); /* the parent's may have been held by its sampler */
    sp->thread_pid = 0;
    sp->quit = 0;
    cp_sampler_reset(sp); /* the parent's threads and counts are not ours */
    for (int i = 0; i < 8; i++)
        atomic_store(&sp->tids[i], 0);
    atomic_store(&sp->ntids, 0);
    atomic_store(&reader_inflight_g, 0);
}

void cp_sampler_free(cp_sampler *sp) {
    if (!sp)
        return;
    cp_sampler_stop(sp);
    pthread_mutex_destroy(&sp->mu);
    pthread_cond_destroy(&sp->cv);
    free(sp->ents);
    free(sp);
}
