/*
 * bench_scope.c -- cost of one C scope begin+end pair against the cost of
 * the two clock reads it makes.
 *
 * One command (bench/run_all.sh builds it against a Release libcodeprof.a):
 *
 *     cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_scope.c \
 *        build-bench/libcodeprof.a -lpthread -ldl -lm -o build-bench/bench_scope
 *     build-bench/bench_scope [--pairs N] [--rounds R] [--callgrind]
 *
 * Time: R interleaved rounds (default 15); each round runs every mode once
 * over N pairs (default 250,000: 500k events, fewer than the 64 buffers a
 * thread may hand on, so a drain thread starved by other load does not
 * make the run drop), in order, and each mode's figure is the MEDIAN over
 * the rounds (min beside it).  Timed on the recording thread, over the
 * loop only: wall time, and the thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID), which leaves out the time it was descheduled
 * on a shared machine.  The drain thread folds the events meanwhile, so
 * each running mode also reports process CPU per pair (all threads,
 * CLOCK_PROCESS_CPUTIME_ID over loop + stop) and the events the session
 * dropped (a dropped append is cheaper, so a run that dropped events is
 * flagged).  Modes:
 *   bare loop          the loop itself (compiler barrier only)
 *   2x rdtsc           two RDTSC reads (x86-64): the floor when the event
 *                      clock is the TSC
 *   2x clock_gettime   two clock_gettime(CLOCK_MONOTONIC): the floor when it
 *                      is not (CODEPROF_CLOCK=monotonic forces that)
 *   begin/end (site)   codeprof_scope_begin/end, explicit session, cached id
 *   begin/end (NULL)   the same with s == NULL (current-session lookup)
 *   CODEPROF_SCOPE     the GNU C block macro (static srcloc, cleanup guard)
 *   stopped session    begin/end while the session is not running
 * Goal (issue 6): begin/end (site) <= 1.3x the clock floor of the clock the
 * session uses (meta.clock of its report).
 *
 * --callgrind: instruction counts instead of time, each mode in its own
 * `valgrind --tool=callgrind` child (this program re-executed with
 * --one MODE N):
 *   hot path   instructions executed inside the mode's loop function on the
 *              recording thread (--toggle-collect), per pair
 *   + fold     the same plus every instruction executed inside
 *              cp_drain_all (the drain thread's passes and the final drain
 *              at stop: the fold into the tree and the sinks), per pair,
 *              less the bare loop mode's cp_drain_all count (the fold of the
 *              fixed warm-up runs every mode makes first)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "codeprof/codeprof.h"

#define BARRIER()  __asm__ __volatile__("" ::: "memory")
#define NOINLINE   __attribute__((noinline))
#define MAX_ROUNDS 99

static codeprof_session *g_sess;
static uint32_t g_site;
static volatile uint64_t g_sink;

/* ---- the loops (noinline: callgrind's --toggle-collect names them) ---- */

NOINLINE void bench_loop_bare(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        BARRIER();
    }
}

NOINLINE void bench_loop_clock(uint64_t n) {
    struct timespec a, b;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_MONOTONIC, &b);
        acc += (uint64_t)(b.tv_nsec - a.tv_nsec);
    }
    g_sink = acc;
}

NOINLINE void bench_loop_rdtsc(uint64_t n) {
    uint64_t acc = 0;
#if defined(__x86_64__)
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = __rdtsc();
        uint64_t b = __rdtsc();
        acc += b - a;
    }
#else
    (void)n;
#endif
    g_sink = acc;
}

NOINLINE void bench_loop_site(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_scope_begin(g_sess, g_site, 0);
        codeprof_scope_end(g_sess, g_site, 0);
    }
}

/* A copy of bench_loop_site for warm-up runs, which --toggle-collect must
 * not count. */
NOINLINE void bench_loop_warm(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_scope_begin(g_sess, g_site, 0);
        codeprof_scope_end(g_sess, g_site, 0);
    }
}

NOINLINE void bench_loop_null(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_scope_begin(NULL, g_site, 0);
        codeprof_scope_end(NULL, g_site, 0);
    }
}

NOINLINE void bench_loop_macro(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        CODEPROF_SCOPE(g_sess, "bench_macro_scope");
        BARRIER();
    }
}

typedef struct mode {
    const char *name; /* printed                                   */
    const char *key;  /* --one / --callgrind name                  */
    const char *fn;   /* loop function name (for --toggle-collect) */
    void (*loop)(uint64_t);
    int running;   /* session running during the loop           */
    int callgrind; /* included in --callgrind                   */
} mode;

static const mode MODES[] = {
    {"bare loop", "bare", "bench_loop_bare", bench_loop_bare, 0, 1},
    {"2x rdtsc", "rdtsc", "bench_loop_rdtsc", bench_loop_rdtsc, 0, 1},
    {"2x clock_gettime", "clock", "bench_loop_clock", bench_loop_clock, 0, 1},
    {"begin/end (site)", "site", "bench_loop_site", bench_loop_site, 1, 1},
    {"begin/end (NULL sess)", "null", "bench_loop_null", bench_loop_null, 1, 0},
    {"CODEPROF_SCOPE macro", "macro", "bench_loop_macro", bench_loop_macro, 1, 0},
    {"stopped session", "stopped", "bench_loop_site", bench_loop_site, 0, 0},
};
#define NMODES (sizeof MODES / sizeof MODES[0])

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double proc_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(codeprof_status st, const char *what) {
    if (st != CODEPROF_OK) {
        fprintf(stderr, "bench_scope: %s: %s\n", what, codeprof_status_message(st));
        exit(1);
    }
}

/* The unsigned value of "key": N in a JSON text, or -1 when absent. */
static long long json_u(const char *json, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    return strtoll(p, NULL, 10);
}

/* The string value of "key" (copied into out), or "" when absent. */
static void json_s(const char *json, const char *key, char *out, size_t cap) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    out[0] = '\0';
    const char *p = strstr(json, pat);
    if (!p)
        return;
    p += strlen(pat);
    while (*p == ' ' || *p == ':')
        p++;
    if (*p != '"')
        return;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < cap)
        out[i++] = *p++;
    out[i] = '\0';
}

typedef struct counts {
    long long events, dropped, buffers;
    char clock[32];
} counts;

static counts session_counts(void) {
    char *json = NULL;
    size_t len = 0;
    check(codeprof_session_report(g_sess, CODEPROF_FORMAT_JSON, &json, &len), "report");
    counts c;
    c.events = json_u(json, "events");
    c.dropped = json_u(json, "dropped_buffer_full") + json_u(json, "dropped_reentrant") +
                json_u(json, "dropped_no_thread_buffer");
    c.buffers = json_u(json, "event_buffers");
    json_s(json, "clock", c.clock, sizeof c.clock);
    codeprof_free(json);
    return c;
}

static void setup(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    /* No per-scope CPU time, no percentiles: the pure wall-clock path. */
    cfg.flags = 0;
    codeprof_error err;
    codeprof_status st = codeprof_session_new(&cfg, &g_sess, &err);
    if (st != CODEPROF_OK) {
        fprintf(stderr, "bench_scope: codeprof_session_new: %s (%s)\n", err.message, err.field);
        exit(1);
    }
    g_site = codeprof_site("bench_scope", __FILE__, __LINE__, CODEPROF_SITE_SCOPE);
    if (g_site == 0) {
        fprintf(stderr, "bench_scope: codeprof_site returned 0\n");
        exit(1);
    }
}

typedef struct sample {
    double ns;     /* wall ns per pair, loop only          */
    double tns;    /* recording thread's CPU ns per pair   */
    double cpu_ns; /* process CPU ns per pair, loop + stop */
    long long events, dropped;
} sample;

static sample run_once(const mode *m, uint64_t n) {
    sample r = {0, 0, 0, -1, -1};
    if (m->running) {
        check(codeprof_session_reset(g_sess), "reset");
        check(codeprof_session_start(g_sess), "start");
    }
    double c0 = proc_cpu_s();
    double u0 = thread_cpu_s();
    double t0 = mono_s();
    m->loop(n);
    double t1 = mono_s();
    double u1 = thread_cpu_s();
    if (m->running)
        check(codeprof_session_stop(g_sess), "stop");
    double c1 = proc_cpu_s();
    r.ns = (t1 - t0) * 1e9 / (double)n;
    r.cpu_ns = (c1 - c0) * 1e9 / (double)n;
    r.tns = (u1 - u0) * 1e9 / (double)n;
    if (m->running) {
        counts c = session_counts();
        r.events = c.events;
        r.dropped = c.dropped;
    }
    return r;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int time_bench(uint64_t n, int rounds) {
    static double ns[NMODES][MAX_ROUNDS], cpu[NMODES][MAX_ROUNDS], tns[NMODES][MAX_ROUNDS];
    long long dropped[NMODES] = {0}, bad_events[NMODES] = {0};
    double mins[NMODES];
    for (size_t i = 0; i < NMODES; i++)
        mins[i] = 1e30;

    /* Warm-up: the thread's buffer and the pool fill on the first runs (a
     * run of N pairs needs 2N/buffer_events buffers; the drain thread
     * allocates them while it tops the pool up). */
    for (int w = 0; w < 3; w++)
        run_once(&MODES[3], n);
    counts c0 = session_counts();

    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < NMODES; i++) {
            sample s = run_once(&MODES[i], n);
            ns[i][r] = s.ns;
            cpu[i][r] = s.cpu_ns;
            tns[i][r] = s.tns;
            if (s.ns < mins[i])
                mins[i] = s.ns;
            if (MODES[i].running) {
                dropped[i] += s.dropped;
                if (s.events != (long long)(2 * n))
                    bad_events[i]++;
            }
        }
    }
    counts cl = session_counts();
    double med[NMODES], medcpu[NMODES], medt[NMODES];
    for (size_t i = 0; i < NMODES; i++) {
        med[i] = median(ns[i], rounds);
        medcpu[i] = median(cpu[i], rounds);
        medt[i] = median(tns[i], rounds);
    }
    int tsc = strcmp(c0.clock, "tsc") == 0;
    double floor_ns = tsc ? med[1] : med[2];
    double floor_t = tsc ? medt[1] : medt[2];
    const char *floor_name = tsc ? "2x rdtsc" : "2x clock_gettime";

    printf("bench_scope: %" PRIu64 " pairs per run, %d interleaved rounds; "
           "median (min) ns per begin+end pair, loop only\n",
           n, rounds);
    printf("session clock (meta.clock): %s -> floor = %s\n", c0.clock, floor_name);
    printf("%-22s %9s %9s %9s | %9s %9s | %11s %9s\n", "mode", "wall med", "wall min", "x floor",
           "thr cpu", "x floor", "all cpu", "dropped");
    for (size_t i = 0; i < NMODES; i++) {
        char cpu_s[32] = "-", drop_s[32] = "-";
        if (MODES[i].running) {
            snprintf(cpu_s, sizeof cpu_s, "%.2f", medcpu[i]);
            snprintf(drop_s, sizeof drop_s, "%lld", dropped[i]);
        }
        printf("%-22s %9.2f %9.2f %9.2f | %9.2f %9.2f | %11s %9s%s\n", MODES[i].name, med[i],
               mins[i], med[i] / floor_ns, medt[i], medt[i] / floor_t, cpu_s, drop_s,
               bad_events[i] ? "  (events != 2 x pairs in some runs!)" : "");
    }
    printf("(wall: the loop's wall time; thr cpu: the recording thread's CPU time over "
           "the loop (CLOCK_THREAD_CPUTIME_ID), which leaves out time the thread was "
           "descheduled; all cpu: process CPU of all threads, the drain thread's fold "
           "included, over loop + stop; all ns per pair, medians)\n");
    printf("event buffers allocated by the session: %lld (x buffer_events x 32 B)\n", cl.buffers);
    double ratio = med[3] / floor_ns, ratio_t = medt[3] / floor_t;
    printf("goal: begin/end (site) <= 1.30x %s\n", floor_name);
    printf("  wall:       %.2f ns / %.2f ns = %.2fx: %s\n", med[3], floor_ns, ratio,
           ratio <= 1.30 ? "met" : "MISSED");
    printf("  thread CPU: %.2f ns / %.2f ns = %.2fx: %s\n", medt[3], floor_t, ratio_t,
           ratio_t <= 1.30 ? "met" : "MISSED");
    return 0;
}

/* ---- callgrind ---- */

static const mode *find_mode(const char *key) {
    for (size_t i = 0; i < NMODES; i++)
        if (strcmp(MODES[i].key, key) == 0)
            return &MODES[i];
    return NULL;
}

/* Runs `mode` once over n pairs (the child side of --callgrind). */
static int run_one(const char *key, uint64_t n) {
    const mode *m = find_mode(key);
    if (!m) {
        fprintf(stderr, "bench_scope: --one: unknown mode '%s'\n", key);
        return 2;
    }
    /* Warm-up as in the timed benchmark: a fresh session's pool holds few
     * buffers, and the drain thread allocates more as it tops the pool up. */
    static const mode warm = {"warm-up", "warm", "bench_loop_warm", bench_loop_warm, 1, 0};
    for (int w = 0; w < 3; w++)
        run_once(&warm, 100000); /* fixed: cancels out of the N2 - N1 figure */
    sample s = run_once(m, n);
    counts c = session_counts();
    if (m->running)
        printf("clock %s events %lld dropped %lld\n", c.clock, s.events, s.dropped);
    else
        printf("clock %s\n", c.clock);
    return 0;
}

/* Instructions "Collected" by callgrind for `self --one key n`, or -1. */
static long long callgrind_count(const char *self, const char *key, uint64_t n, const char *toggle,
                                 int fold, char *info, size_t info_cap) {
    char cmd[2048];
    char tog[256];
    snprintf(tog, sizeof tog, "--toggle-collect=%s%s", toggle,
             fold ? " --toggle-collect=cp_drain_all" : "");
    snprintf(cmd, sizeof cmd,
             "valgrind --tool=callgrind --callgrind-out-file=/dev/null %s "
             "'%s' --one %s %" PRIu64 " 2>&1",
             tog, self, key, n);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    long long got = -1;
    while (fgets(line, sizeof line, p)) {
        const char *c = strstr(line, "Collected :");
        if (c)
            got = strtoll(c + strlen("Collected :"), NULL, 10);
        if (strncmp(line, "clock ", 6) == 0 && info) {
            line[strcspn(line, "\n")] = '\0';
            size_t k = strlen(line) < info_cap - 1 ? strlen(line) : info_cap - 1;
            memcpy(info, line, k);
            info[k] = '\0';
        }
    }
    int st = pclose(p);
    if (st != 0)
        return -1;
    return got;
}

static int callgrind_bench(const char *self, uint64_t n2) {
    if (system("valgrind --version >/dev/null 2>&1") != 0) {
        printf("bench_scope --callgrind: valgrind not found (Debian: apt-get install "
               "valgrind); skipped\n");
        return 1;
    }
    printf("bench_scope --callgrind: instructions per begin+end pair "
           "(valgrind --tool=callgrind)\n");
    printf("  hot path: inside the loop function on the recording thread, %" PRIu64
           " pairs (--toggle-collect)\n",
           n2);
    printf("  + fold: the same plus everything inside cp_drain_all (drain thread and stop: "
           "the fold into the tree and the sinks), less the warm-up's fold (bare loop row)\n");
    printf("%-22s %12s %12s %12s\n", "mode", "hot path", "+ fold", "hot - bare");
    double hot[NMODES] = {0};
    double bare_hot = 0, warm_fold = 0;
    int failed = 0;
    for (size_t i = 0; i < NMODES; i++) {
        if (!MODES[i].callgrind)
            continue;
        char info[2][256] = {"", ""};
        long long h = callgrind_count(self, MODES[i].key, n2, MODES[i].fn, 0, info[0], 256);
        long long a = callgrind_count(self, MODES[i].key, n2, MODES[i].fn, 1, info[1], 256);
        if (h < 0 || a < 0) {
            printf("%-22s valgrind failed\n", MODES[i].name);
            failed = 1;
            continue;
        }
        hot[i] = (double)h / (double)n2;
        double all = (double)a / (double)n2;
        if (i == 0) {
            bare_hot = hot[i];
            warm_fold = all - hot[i];
        }
        all -= warm_fold;
        printf("%-22s %12.1f %12.1f %12.1f  %s\n", MODES[i].name, hot[i], all, hot[i] - bare_hot,
               info[0]);
        if (MODES[i].running)
            printf("%-22s %12s %12s %12s  (+ fold run: %s)\n", "", "", "", "", info[1]);
    }
    if (hot[3] > 0 && hot[1] > 0) {
        printf("begin/end (site) hot path / 2x rdtsc hot path = %.2fx (loop included in "
               "both); net of the bare loop: %.2fx\n",
               hot[3] / hot[1], (hot[3] - bare_hot) / (hot[1] - bare_hot));
        printf("(valgrind counts RDTSC as one instruction and runs clock_gettime through "
               "its own syscall path, so instruction ratios are not time ratios)\n");
    }
    return failed;
}

static uint64_t parse_u64(const char *s, const char *what) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || v == 0) {
        fprintf(stderr, "bench_scope: %s: expected a positive integer, got '%s'\n", what, s);
        exit(2);
    }
    return (uint64_t)v;
}

int main(int argc, char **argv) {
    uint64_t n = 250000u;
    int rounds = 15;
    int cg = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc) {
            n = parse_u64(argv[++i], "--pairs");
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            uint64_t r = parse_u64(argv[++i], "--rounds");
            rounds = r > MAX_ROUNDS ? MAX_ROUNDS : (int)r;
        } else if (strcmp(argv[i], "--callgrind") == 0) {
            cg = 1;
        } else if (strcmp(argv[i], "--one") == 0 && i + 2 < argc) {
            setup();
            int rc = run_one(argv[i + 1], parse_u64(argv[i + 2], "--one N"));
            codeprof_session_free(g_sess);
            return rc;
        } else {
            fprintf(stderr, "usage: bench_scope [--pairs N] [--rounds R] [--callgrind]\n");
            return 2;
        }
    }
    if (cg) {
        char self[4096];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0) {
            fprintf(stderr, "bench_scope: readlink /proc/self/exe failed\n");
            return 1;
        }
        self[k] = '\0';
        return callgrind_bench(self, 300000);
    }
    setup();
    int rc = time_bench(n, rounds);
    codeprof_session_free(g_sess);
    return rc;
}
