/* clock.c -- clock calibration (see clock.h). */
#include "core/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"

cp_clock_state cp_clock_g = {0, 1.0, 0, 0, NULL};
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
#include <cpuid.h>
/* Invariant TSC: CPUID 0x80000007, EDX bit 8. */
static int tsc_is_invariant(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return 0;
    if (!__get_cpuid(0x80000007u, &a, &b, &c, &d))
        return 0;
    return (d >> 8) & 1u;
}
#endif

static void clock_calibrate(void) {
    const char *force = getenv("CODEPROF_CLOCK");
    cp_clock_g.use_tsc = 0;
    cp_clock_g.ns_per_tick = 1.0;
#if defined(__x86_64__)
    if (!(force && strcmp(force, "monotonic") == 0) && tsc_is_invariant()) {
        /* Two reads ~20 ms apart; the error is a few ppm, far below the
         * resolution that matters for call timing. */
        uint64_t n0 = cp_clock_mono_ns(), t0 = __rdtsc();
        uint64_t n1;
        do {
            n1 = cp_clock_mono_ns();
        } while (n1 - n0 < 20000000ull);
        uint64_t t1 = __rdtsc();
        if (t1 > t0) {
            cp_clock_g.ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
            cp_clock_g.tick0 = t1;
            cp_clock_g.ns0 = n1;
            cp_clock_g.use_tsc = 1;
        }
    }
#else
    (void)force;
#endif
    if (!cp_clock_g.use_tsc) {
        cp_clock_g.ns0 = cp_clock_mono_ns();
        cp_clock_g.tick0 = cp_clock_g.ns0;
    }
}

void cp_clock_init(void) { pthread_once(&clock_once, clock_calibrate); }

void cp_clock_set_fake(cp_fake_clock_fn fn) {
    cp_clock_init();
    cp_clock_g.fake = fn;
}

const char *cp_clock_source(void) {
    if (cp_clock_g.fake)
        return "fake";
    return cp_clock_g.use_tsc ? "tsc" : "monotonic";
}

uint64_t codeprof_now_ns(void) {
    cp_clock_init();
    if (cp_clock_g.fake)
        return cp_clock_g.fake();
    return cp_clock_mono_ns();
}
