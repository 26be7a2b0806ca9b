/*
 * bench_gpu_ops.c -- host overhead of one profiled GPU operation
 * (codeprof_gpu_op_begin + codeprof_gpu_op_end) against the fake CUDA
 * driver (tests/c/fake_cuda.c, whose entry points cost a mutex each), beside
 * the floor it is built on.  Goal (issue 9): <= 5 us per op.
 *
 * One command (after `make test-c`, which builds build/libfake_cuda.so):
 *
 *     cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_gpu_ops.c \
 *        build-bench/libcodeprof.a -lpthread -ldl -lm -o build-bench/bench_gpu_ops
 *     build-bench/bench_gpu_ops [--fake PATH] [--ops N] [--rounds R] [--callgrind]
 *
 * --fake defaults to $CODEPROF_FAKE_CUDA, else build/libfake_cuda.so.
 * Time: R interleaved rounds (default 15), each running every mode once
 * over N ops (default 20,000, below gpu_max_ops so the pending table never
 * fills); a mode's figure is the median over rounds of the calling thread's
 * CPU time per op (CLOCK_THREAD_CPUTIME_ID; wall beside it).  After each
 * round the sessions are reset (pending ops dropped, events pooled), so
 * every round reuses pooled events as a long run does.  Modes:
 *   scope begin/end      codeprof_scope_begin/end with CODEPROF_SCOPE_CPU:
 *                        the host scope a GPU op opens anyway (two
 *                        thread-CPU clock reads; the floor of the API)
 *   fake calls only      the driver calls one op makes, straight into the
 *                        fake (cuCtxGetCurrent + 2 cuEventRecord): the
 *                        fake's own cost, not the profiler's
 *   gpu op, GPU off      begin/end with CODEPROF_CFG_GPU off: host only
 *   gpu op, fake driver  begin/end with the fake driver: two events
 *   gpu op + driver mem  the same with CODEPROF_CFG_GPU_MEMORY (two
 *                        cuMemGetInfo per op)
 * The profiler's own overhead per op is "gpu op, fake driver" minus "fake
 * calls only".  Resolution (at a report) is not on the hot path and not
 * timed here.
 * --callgrind: instructions per op, each mode in a callgrind child
 * (`--toggle-collect` on its loop), (I(2N) - I(N)) / N so fixed costs
 * cancel.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codeprof/codeprof.h"

typedef int (*ctxget_fn)(void **);
typedef int (*evcreate_fn)(void **, unsigned);
typedef int (*evrecord_fn)(void *, void *);

static codeprof_session *s_off, *s_gpu, *s_mem;
static uint32_t site;
static ctxget_fn f_ctxget;
static evrecord_fn f_record;
static void *ev_a, *ev_b;

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define BARRIER() __asm__ __volatile__("" ::: "memory")

__attribute__((noinline)) static void loop_scope(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_scope_begin(s_gpu, site, CODEPROF_SCOPE_CPU);
        BARRIER();
        codeprof_scope_end(s_gpu, site, CODEPROF_SCOPE_CPU);
    }
}
__attribute__((noinline)) static void loop_fake(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        void *c;
        f_ctxget(&c);
        f_record(ev_a, NULL);
        BARRIER();
        f_record(ev_b, NULL);
    }
}
static void ops(codeprof_session *s, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        codeprof_gpu_op op;
        codeprof_gpu_op_begin(s, site, 0, NULL, &op);
        BARRIER();
        codeprof_gpu_op_end(s, &op, NULL);
    }
}
__attribute__((noinline)) static void loop_off(uint64_t n) {
    ops(s_off, n);
}
__attribute__((noinline)) static void loop_gpu(uint64_t n) {
    ops(s_gpu, n);
}
__attribute__((noinline)) static void loop_mem(uint64_t n) {
    ops(s_mem, n);
}

typedef struct mode {
    const char *label, *key, *fn;
    void (*run)(uint64_t);
} mode;
static const mode MODES[] = {
    {"scope begin/end", "scope", "loop_scope", loop_scope},
    {"fake calls only", "fake", "loop_fake", loop_fake},
    {"gpu op, GPU off", "off", "loop_off", loop_off},
    {"gpu op, fake driver", "gpu", "loop_gpu", loop_gpu},
    {"gpu op + driver mem", "mem", "loop_mem", loop_mem},
};
#define NMODES (sizeof MODES / sizeof MODES[0])

static codeprof_session *session(uint32_t flags) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.flags |= flags;
    codeprof_session *s = NULL;
    if (codeprof_session_new(&cfg, &s, NULL) != CODEPROF_OK || codeprof_session_start(s)) {
        fprintf(stderr, "bench_gpu_ops: cannot start a session\n");
        exit(2);
    }
    return s;
}

static void setup(const char *fake) {
    setenv("CODEPROF_CUDA_LIBRARY", fake, 1);
    setenv("CODEPROF_CUPTI_LIBRARY", "/nonexistent/libcupti.so", 1);
    void *h = dlopen(fake, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench_gpu_ops: %s\n", dlerror());
        exit(2);
    }
    f_ctxget = (ctxget_fn)dlsym(h, "cuCtxGetCurrent");
    f_record = (evrecord_fn)dlsym(h, "cuEventRecord");
    evcreate_fn create = (evcreate_fn)dlsym(h, "cuEventCreate");
    if (!f_ctxget || !f_record || !create || create(&ev_a, 0) || create(&ev_b, 0)) {
        fprintf(stderr, "bench_gpu_ops: %s is not the fake driver\n", fake);
        exit(2);
    }
    site = codeprof_site("gpu_op", "bench_gpu_ops.c", 1, CODEPROF_SITE_GPU);
    s_off = session(0);
    s_gpu = session(CODEPROF_CFG_GPU);
    s_mem = session(CODEPROF_CFG_GPU | CODEPROF_CFG_GPU_MEMORY);
}

static void reset_all(void) {
    codeprof_session *ss[] = {s_off, s_gpu, s_mem};
    for (int i = 0; i < 3; i++) {
        codeprof_session_stop(ss[i]);
        codeprof_session_reset(ss[i]);
        codeprof_session_start(ss[i]);
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long long callgrind_count(const char *self, const char *fake, const mode *m, uint64_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=%s "
             "'%s' --fake '%s' --one %s %" PRIu64 " 2>&1",
             m->fn, self, fake, m->key, n);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    long long got = -1;
    while (fgets(line, sizeof line, p)) {
        const char *c = strstr(line, "Collected :");
        if (c)
            got = strtoll(c + strlen("Collected :"), NULL, 10);
    }
    return pclose(p) == 0 ? got : -1;
}

int main(int argc, char **argv) {
    const char *fake = getenv("CODEPROF_FAKE_CUDA");
    if (!fake || !*fake)
        fake = "build/libfake_cuda.so";
    uint64_t n = 20000;
    int rounds = 15, cg = 0;
    const char *one = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fake") && i + 1 < argc)
            fake = argv[++i];
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--callgrind"))
            cg = 1;
        else if (!strcmp(argv[i], "--one") && i + 2 < argc) {
            one = argv[++i];
            n = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_gpu_ops [--fake PATH] [--ops N] [--rounds R] "
                            "[--callgrind]\n");
            return 2;
        }
    }
    if (rounds < 1 || n < 1 || rounds > 1000)
        return 2;
    if (cg) {
        if (system("valgrind --version >/dev/null 2>&1") != 0) {
            printf("bench_gpu_ops --callgrind: valgrind not found; skipped\n");
            return 1;
        }
        printf("bench_gpu_ops --callgrind: instructions per op, (I(2N) - I(N)) / N, N = %" PRIu64
               "\n",
               n);
        for (size_t i = 0; i < NMODES; i++) {
            long long a = callgrind_count(argv[0], fake, &MODES[i], n);
            long long b = callgrind_count(argv[0], fake, &MODES[i], 2 * n);
            if (a < 0 || b < 0)
                printf("  %-22s failed\n", MODES[i].label);
            else
                printf("  %-22s %8.1f instr/op\n", MODES[i].label, (double)(b - a) / (double)n);
        }
        return 0;
    }
    setup(fake);
    if (one) {
        for (size_t i = 0; i < NMODES; i++)
            if (!strcmp(MODES[i].key, one)) {
                MODES[i].run(1000); /* warm: pooled events, thread buffers */
                reset_all();
                MODES[i].run(n);
                return 0;
            }
        return 2;
    }
    for (size_t i = 0; i < NMODES; i++)
        MODES[i].run(1000); /* warm-up */
    reset_all();
    double cpu[NMODES][1000], wall[NMODES][1000];
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < NMODES; i++) {
            double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
            MODES[i].run(n);
            cpu[i][r] = (now(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)n;
            wall[i][r] = (now(CLOCK_MONOTONIC) - w0) / (double)n;
        }
        reset_all();
    }
    printf("bench_gpu_ops: %d rounds x %" PRIu64 " ops, fake driver %s\n", rounds, n, fake);
    printf("  %-22s %12s %12s %12s\n", "mode", "cpu ns/op", "min", "wall ns/op");
    double med[NMODES];
    for (size_t i = 0; i < NMODES; i++) {
        qsort(cpu[i], (size_t)rounds, sizeof(double), cmp_d);
        qsort(wall[i], (size_t)rounds, sizeof(double), cmp_d);
        med[i] = cpu[i][rounds / 2];
        printf("  %-22s %12.1f %12.1f %12.1f\n", MODES[i].label, med[i], cpu[i][0],
               wall[i][rounds / 2]);
    }
    printf("  profiler's own cost per op (gpu op, fake driver - fake calls only): %.1f ns "
           "(goal <= 5000 ns)\n",
           med[3] - med[1]);
    printf("  of which the GPU recorder (minus the host scope with its thread-CPU reads, "
           "CODEPROF_SCOPE_CPU): %.1f ns\n",
           med[3] - med[1] - med[0]);
    codeprof_session_free(s_off);
    codeprof_session_free(s_gpu);
    codeprof_session_free(s_mem);
    return 0;
}
