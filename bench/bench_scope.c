/*
 * bench_scope.c -- cost of one C scope begin+end pair.
 *
 * One command, one figure (bench/run_all.sh builds it):
 *
 *     cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_scope.c \
 *        build/libcodeprof.a -lpthread -lm -o build/bench_scope
 *     build/bench_scope [iterations]
 *
 * Measures, over N iterations (default 10,000,000), best of 5 runs, in
 * ns per pair:
 *   bare loop          the loop itself (compiler barrier only)
 *   2x clock_gettime   two clock_gettime(CLOCK_MONOTONIC) -- the floor any
 *                      begin/end timer built on the OS clock pays
 *   2x rdtsc           (x86-64) two RDTSC reads -- the floor of a TSC-based
 *                      timer such as libcodeprof's event clock
 *   begin/end (site)   codeprof_scope_begin/end with a cached site id and an
 *                      explicit running session
 *   begin/end (NULL)   the same with s == NULL (current session lookup)
 *   CODEPROF_SCOPE     the GNU C block macro (static srcloc, cleanup guard)
 *   stopped session    begin/end while the session is not running
 * Goal: begin/end (site) <= 25 ns per pair.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "codeprof/codeprof.h"

#define RUNS 5
#define BARRIER() __asm__ __volatile__("" ::: "memory")

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static codeprof_session *g_sess;
static uint32_t g_site;
static volatile uint64_t g_sink;

static void run_bare(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        BARRIER();
    }
}

static void run_clock(uint64_t n) {
    struct timespec a, b;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_MONOTONIC, &b);
        acc += (uint64_t)(b.tv_nsec - a.tv_nsec);
    }
    g_sink = acc;
}

#if defined(__x86_64__)
static void run_rdtsc(uint64_t n) {
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = __rdtsc();
        uint64_t b = __rdtsc();
        acc += b - a;
    }
    g_sink = acc;
}
#endif

static void run_site(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_scope_begin(g_sess, g_site, 0);
        codeprof_scope_end(g_sess, g_site, 0);
    }
}

static void run_site_null(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_scope_begin(NULL, g_site, 0);
        codeprof_scope_end(NULL, g_site, 0);
    }
}

static void run_macro(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        CODEPROF_SCOPE(g_sess, "bench_macro_scope");
        BARRIER();
    }
}

typedef void (*bench_fn)(uint64_t);

/* Best-of-RUNS ns per iteration.  The session is reset between runs so every
 * run folds into an empty model. */
static double measure(bench_fn fn, uint64_t n, int running) {
    double best = 1e30;
    for (int r = 0; r < RUNS; r++) {
        if (running) {
            codeprof_status st = codeprof_session_reset(g_sess);
            if (st != CODEPROF_OK) {
                fprintf(stderr, "bench_scope: codeprof_session_reset: %s\n",
                        codeprof_status_message(st));
                exit(1);
            }
            st = codeprof_session_start(g_sess);
            if (st != CODEPROF_OK) {
                fprintf(stderr, "bench_scope: codeprof_session_start: %s\n",
                        codeprof_status_message(st));
                exit(1);
            }
        }
        double t0 = now_s();
        fn(n);
        if (running) {
            codeprof_status st = codeprof_session_stop(g_sess);
            if (st != CODEPROF_OK) {
                fprintf(stderr, "bench_scope: codeprof_session_stop: %s\n",
                        codeprof_status_message(st));
                exit(1);
            }
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best * 1e9 / (double)n;
}

int main(int argc, char **argv) {
    uint64_t n = 10000000u;
    if (argc > 1) {
        char *end = NULL;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || v == 0) {
            fprintf(stderr, "bench_scope: iterations: expected a positive "
                            "integer, got '%s'\n", argv[1]);
            return 2;
        }
        n = (uint64_t)v;
    }

    codeprof_config cfg;
    codeprof_config_init(&cfg);
    /* The default scope flags: no per-scope CPU time, no percentiles, so the
     * figure is the pure wall-clock begin/end path. */
    cfg.flags = 0;
    codeprof_error err;
    codeprof_status st = codeprof_session_new(&cfg, &g_sess, &err);
    if (st != CODEPROF_OK) {
        fprintf(stderr, "bench_scope: codeprof_session_new: %s (%s)\n",
                err.message, err.field);
        return 1;
    }
    g_site = codeprof_site("bench_scope", __FILE__, __LINE__, CODEPROF_SITE_SCOPE);
    if (g_site == 0) {
        fprintf(stderr, "bench_scope: codeprof_site returned 0\n");
        return 1;
    }

    /* Warm up: the thread's buffer is allocated on its first scope. */
    measure(run_site, n / 10 + 1, 1);

    double bare = measure(run_bare, n, 0);
    double clk = measure(run_clock, n, 0);
#if defined(__x86_64__)
    double tsc = measure(run_rdtsc, n, 0);
#endif
    double site = measure(run_site, n, 1);
    double site_null = measure(run_site_null, n, 1);
    double macro = measure(run_macro, n, 1);
    double stopped = measure(run_site, n, 0);

    printf("bench_scope: %" PRIu64 " iterations, best of %d, ns per begin+end pair "
           "(loop included; the stop/fold is inside the timed run)\n", n, RUNS);
    printf("%-22s %8s %12s\n", "mode", "ns/pair", "x 2*clock");
    printf("%-22s %8.2f %12.2f\n", "bare loop", bare, bare / clk);
    printf("%-22s %8.2f %12.2f\n", "2x clock_gettime", clk, 1.0);
#if defined(__x86_64__)
    printf("%-22s %8.2f %12.2f\n", "2x rdtsc", tsc, tsc / clk);
#endif
    printf("%-22s %8.2f %12.2f\n", "begin/end (site)", site, site / clk);
    printf("%-22s %8.2f %12.2f\n", "begin/end (NULL sess)", site_null, site_null / clk);
    printf("%-22s %8.2f %12.2f\n", "CODEPROF_SCOPE macro", macro, macro / clk);
    printf("%-22s %8.2f %12.2f\n", "stopped session", stopped, stopped / clk);
    printf("goal: begin/end (site) <= 25 ns per pair -> %.2f ns: %s\n", site,
           site <= 25.0 ? "met" : "MISSED");

    /* Sanity: the recorded count must be the number of pairs of the last
     * running measurement (the macro run), visible in the report. */
    char *json = NULL;
    size_t len = 0;
    st = codeprof_session_report(g_sess, CODEPROF_FORMAT_JSON, &json, &len);
    if (st != CODEPROF_OK) {
        fprintf(stderr, "bench_scope: codeprof_session_report: %s\n",
                codeprof_status_message(st));
        codeprof_session_free(g_sess);
        return 1;
    }
    printf("report: %zu bytes of JSON\n", len);
    codeprof_free(json);
    codeprof_session_free(g_sess);
    return 0;
}
