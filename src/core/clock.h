/* clock.h -- the event clock: raw ticks on the hot path, ns everywhere else.
 *
 * On x86-64 with an invariant TSC the tick is RDTSC (about 7 ns, no
 * syscall), calibrated once against CLOCK_MONOTONIC; otherwise the tick is
 * CLOCK_MONOTONIC in ns (vDSO).  Ticks are converted to ns only when events
 * are folded.  Tests install a fake clock (cp_clock_set_fake) so timing
 * assertions are exact; with a fake clock, ticks are ns.
 */
#ifndef CP_CLOCK_H
#define CP_CLOCK_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

typedef uint64_t (*cp_fake_clock_fn)(void);

/* Clock state; read-only after cp_clock_init except through the fake hook. */
typedef struct cp_clock_state {
    int use_tsc;               /* 1: tick = RDTSC                     */
    double ns_per_tick;        /* conversion for ticks -> ns          */
    uint64_t tick0;            /* tick at calibration                 */
    uint64_t ns0;              /* CLOCK_MONOTONIC ns at calibration   */
    cp_fake_clock_fn fake;     /* tests only; NULL in production      */
} cp_clock_state;

extern cp_clock_state cp_clock_g;

/* Calibrates once (idempotent, thread-safe via pthread_once). */
void cp_clock_init(void);

/* Installs (or, with NULL, removes) a fake clock returning ns.  Tests only;
 * not thread-safe against concurrent recording. */
void cp_clock_set_fake(cp_fake_clock_fn fn);

/* Name of the active clock source: "tsc", "monotonic" or "fake". */
const char *cp_clock_source(void);

static inline uint64_t cp_clock_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Raw tick for events.  Hot path. */
static inline uint64_t cp_clock_ticks(void) {
    if (__builtin_expect(cp_clock_g.fake != 0, 0))
        return cp_clock_g.fake();
#if defined(__x86_64__)
    if (__builtin_expect(cp_clock_g.use_tsc, 1))
        return __rdtsc();
#endif
    return cp_clock_mono_ns();
}

/* Converts a tick difference to ns. */
static inline uint64_t cp_clock_ticks_to_ns(uint64_t dticks) {
    if (cp_clock_g.fake || !cp_clock_g.use_tsc)
        return dticks;
    return (uint64_t)((double)dticks * cp_clock_g.ns_per_tick + 0.5);
}

/* Thread CPU time in ns (a syscall; only at scope boundaries that ask). */
static inline uint64_t cp_clock_thread_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* CP_CLOCK_H */
