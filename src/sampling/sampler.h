/* sampler.h -- the stack sampler: one thread per session that, every
 * cfg.sample_interval_s, asks a reader (registered by the CPython
 * extension, src/python/pysample.c; a fake one in tests) for every thread's
 * stack and appends one CP_EV_SAMPLE event per sampled thread (event.h).
 *
 * No signals: the thread blocks every signal and reads the other threads'
 * state from outside (the reader copies memory fault-safely), so no user
 * call ever fails with EINTR because of it and no handler is installed or
 * chained.  Python-agnostic: all it knows of a thread is its OS tid, its
 * frames (site id + line, innermost first, stacktab.h) and its CPU clock.
 *
 * Per sampled thread it computes:
 *   weight  wall mode: wall ns since that thread's previous sample;
 *           CPU mode: the thread's CPU ns since then (idle: 0, skipped);
 *   state   RUNNING when its CPU time advanced by >= 20% of the wall time
 *           since its previous sample, or CPU plus run-queue wait
 *           (/proc/self/task/<tid>/schedstat) >= 60% (a computing thread
 *           descheduled on an overloaded machine); else IDLE, or GIL when
 *           it is blocked
 *           on a futex inside the interpreter's GIL structure (the range
 *           given by cp_sampler_set_gil_range; read from
 *           /proc/self/task/<tid>/syscall).
 * It interns the stack in the session's stack table and emits from its own
 * thread (its tbuf holds only CP_EV_SAMPLE events; aux names the sampled
 * thread).  Work per tick is bounded: at most CP_SAMPLER_MAX_PER_TICK
 * threads are read per tick, round-robin; the others are counted in
 * `skipped` and their next sample's wall weight covers the gap.
 */
#ifndef CP_SAMPLER_H
#define CP_SAMPLER_H

#include <stdint.h>

#include "sampling/stacktab.h"

struct codeprof_session;
typedef struct cp_sampler cp_sampler;

#define CP_SAMPLER_MAX_PER_TICK 128u /* threads read per tick          */
#define CP_SAMPLER_MAX_THREADS 4096u /* threads followed (weights, state) */
#define CP_SAMPLER_RUNNING_PCT 20u   /* CPU/wall share that means running */
#define CP_SAMPLER_RUNNABLE_PCT 60u  /* (CPU + run-queue wait)/wall share too */

/* One tick's visit, handed to the reader. */
typedef struct cp_sampler_visit cp_sampler_visit;

/* The reader: visits every thread that runs Python, in a stable order.
 * For each it calls cp_sampler_want(v, tid) and, when that returns 1,
 * reads the thread's frames and calls cp_sampler_record.  Runs on the
 * sampler thread, with every signal blocked, never with the GIL.  Returns
 * 0, or -1 when it cannot read at all now (finalizing: the tick is
 * counted as empty). */
typedef int (*cp_sampler_reader_fn)(void *ctx, cp_sampler_visit *v);

/* Process-wide reader (one interpreter per process); NULL clears.  Safe at
 * any time: a tick in flight finishes with the reader it began with (the
 * caller of a clear must then wait with cp_sampler_reader_quiesce). */
void cp_sampler_set_reader(cp_sampler_reader_fn fn, void *ctx);
/* Waits until no sampler thread of this process is inside a reader call. */
void cp_sampler_reader_quiesce(void);
/* The address range of the interpreter's GIL structure ([lo, hi); 0, 0:
 * unknown: GIL waits count as idle). */
void cp_sampler_set_gil_range(uintptr_t lo, uintptr_t hi);

/* 1 when the reader should read thread `tid`'s frames this tick (bounded
 * round-robin; also counts the thread as seen). */
int cp_sampler_want(cp_sampler_visit *v, uint64_t tid);
/* The thread's frames, innermost first (n may be 0: no Python frame; n is
 * capped at CP_STACK_MAX_DEPTH).  flags: CP_SAMPF_TRUNCATED /
 * CP_SAMPF_NATIVE as read; read_error: the stack could not be read whole
 * (counted; the frames read so far are kept when n > 0). */
void cp_sampler_record(cp_sampler_visit *v, uint64_t tid, const cp_sframe *frames, uint32_t n,
                       uint16_t flags, int read_error);
/* Counts a failed read without a sample (the thread's state could not be
 * read at all). */
void cp_sampler_read_error(cp_sampler_visit *v);
/* 1 when the session asked for native frames (the reader adds them). */
int cp_sampler_visit_native(const cp_sampler_visit *v);

/* Native mode: the syscall thread `tid` is blocked in, as read from
 * /proc/self/task/<tid>/syscall: returns the syscall number (>= 0), -1
 * running in user space, -2 unreadable.  *arg0 and *pc (may be NULL) get
 * its first argument and user pc. */
long cp_sampler_thread_syscall(uint64_t tid, uint64_t *arg0, uint64_t *pc);
/* Name of a syscall number ("read", "futex", ...) or NULL. */
const char *cp_sampler_syscall_name(long nr);

/* Counters (monotonic since new/reset). */
typedef struct cp_sampler_stats {
    uint64_t ticks;         /* wake-ups that sampled                       */
    uint64_t missed_ticks;  /* periods overrun (the sampler woke late)     */
    uint64_t samples;       /* thread samples emitted                       */
    uint64_t running, idle, gil; /* ... by state (idle/GIL include skipped
                                    CPU-mode ones)                          */
    uint64_t skipped;       /* thread reads deferred by the per-tick cap    */
    uint64_t untracked;     /* threads beyond CP_SAMPLER_MAX_THREADS        */
    uint64_t read_errors;   /* stacks that could not be read whole          */
    uint64_t threads;       /* distinct threads sampled                      */
    uint64_t cpu_ns;        /* the sampler thread's own CPU time             */
    uint64_t interval_ns;
    int mode;               /* 0 wall, 1 CPU                                 */
    int native;
} cp_sampler_stats;

/* A sampler for `s` (cfg.sample_interval_s > 0, else NULL), not started.
 * `tab` is the session's stack table. */
cp_sampler *cp_sampler_new(struct codeprof_session *s, cp_stacktab *tab);
/* Starts the thread in this process (no-op when running here).  0 or -1. */
int cp_sampler_start(cp_sampler *sp);
/* Stops and joins (promptly: the sleep is a condvar wait).  No-op when not
 * running in this process. */
void cp_sampler_stop(cp_sampler *sp);
/* 1 when `os_tid` is (or was, among its last 8 starts) the sampler's own
 * thread: its thread buffer holds only CP_EV_SAMPLE events about other
 * threads and must not become a thread of the report. */
int cp_sampler_is_own_thread(const cp_sampler *sp, uint64_t os_tid);
/* 1 while its thread runs in this process. */
int cp_sampler_running(const cp_sampler *sp);
/* One tick, on the calling thread (tests, bench). */
void cp_sampler_tick(cp_sampler *sp);
void cp_sampler_get_stats(const cp_sampler *sp, cp_sampler_stats *out);
void cp_sampler_reset(cp_sampler *sp);
/* Fork child: the thread is gone; its locks are re-made and its per-thread
 * state dropped (the parent's threads do not exist here). */
void cp_sampler_atfork_child(cp_sampler *sp);
void cp_sampler_free(cp_sampler *sp);

/* A probe: a sampler without a session, thread or stack table, whose
 * records go to `fn` instead of the session (tests and the extension's
 * _core._sample_threads): each cp_sampler_tick on it runs the reader once
 * on the calling thread.  `state` is CP_SAMPF_RUNNING/IDLE/GIL, weight as
 * a wall-mode sample's.  Free with cp_sampler_free. */
typedef void (*cp_sampler_capture_fn)(void *ctx, uint64_t tid, const cp_sframe *frames,
                                      uint32_t n, uint16_t flags, uint64_t weight_ns);
cp_sampler *cp_sampler_probe_new(uint64_t interval_ns, int native, cp_sampler_capture_fn fn,
                                 void *ctx);

#endif /* CP_SAMPLER_H */
