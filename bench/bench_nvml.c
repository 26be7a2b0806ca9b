/*
 * bench_nvml.c -- cost of the NVML sampler (src/gpu/nvml_sampler.c): the
 * CPU time of its thread at 10 Hz as a share of one core (goal: <= 1 %),
 * and the cost of one tick, against the fake NVML (tests/c/fake_nvml.c).
 *
 * One command (from the repository root, against a Release libcodeprof.a):
 *
 *     mkdir -p build-bench && cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
 *        && cmake --build build-bench --target codeprof_static
 *     cc -O2 -shared -fPIC tests/c/fake_nvml.c -lpthread -o build-bench/libfake_nvml.so
 *     cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -Itests/c bench/bench_nvml.c \
 *        build-bench/libcodeprof.a -lpthread -ldl -lm -o build-bench/bench_nvml
 *     build-bench/bench_nvml build-bench/libfake_nvml.so [--seconds S] [--devices D]
 *
 * Two figures:
 *  1. the thread: the sampler runs at 10 Hz for S seconds (default 5) over
 *     D fake devices (default 8); its CPU time (pthread_getcpuclockid, as
 *     m->gpu.sampler_cpu_ns reports it) over the wall time is its share of
 *     one core;
 *  2. one tick: cp_nvml_sampler_tick called back to back on this thread,
 *     median over 15 rounds of 2,000 ticks of this thread's CPU time per
 *     tick (the fake answers from memory, so this is the sampler's own
 *     work: queries through the table, folding, counter events, the
 *     bounded stores).  A real NVML query enters the driver (an ioctl,
 *     typically tens of microseconds): on a GPU the thread's share is
 *     dominated by NVML itself, and this bench says nothing about that.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "gpu/nvml_sampler.h"
#include "model/build.h"
#include "model/model.h"

#include "gpu_fixture.h"

static uint64_t clk(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s libfake_nvml.so [--seconds S] [--devices D]\n", argv[0]);
        return 2;
    }
    double seconds = 5.0;
    unsigned devices = 8;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--devices"))
            devices = (unsigned)atoi(argv[i + 1]);
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    cp_nvml_api api;
    fx_nvml_api(h, &api);
    void (*set_devices)(unsigned);
    void (*set_seq)(unsigned, int, const unsigned long long *, unsigned);
    FX_SYM(h, set_devices, "fake_nvml_set_devices");
    FX_SYM(h, set_seq, "fake_nvml_set_sequence");
    if (!set_devices || !set_seq) {
        fprintf(stderr, "%s is not the fake NVML\n", argv[1]);
        return 1;
    }
    set_devices(devices);
    unsigned long long util[16];
    for (int i = 0; i < 16; i++)
        util[i] = (unsigned long long)(i * 7 % 101);
    for (unsigned d = 0; d < devices; d++)
        set_seq(d, FK_UTIL, util, 16);
    codeprof_config cfg;
    codeprof_config_init(&cfg);

    /* 1. the thread at 10 Hz */
    cp_nvml_sampler *ns = cp_nvml_sampler_new(NULL, 0.1, cfg.max_samples);
    cp_nvml_sampler_use_api(ns, &api);
    if (cp_nvml_sampler_start(ns) != 0) {
        fprintf(stderr, "start: %s\n", cp_nvml_sampler_reason(ns));
        return 1;
    }
    uint64_t w0 = clk(CLOCK_MONOTONIC);
    usleep((useconds_t)(seconds * 1e6));
    cp_model *m = cp_model_begin(&cfg, (int)getpid(), "bench", 0);
    cp_nvml_sampler_fill_model(ns, m);
    uint64_t wall = clk(CLOCK_MONOTONIC) - w0;
    uint64_t ticks = cp_nvml_sampler_fingerprint(ns);
    uint64_t cpu = m->gpu.sampler_cpu_ns;
    printf("nvml sampler thread, 10 Hz, %u fake devices, %.1f s: %llu ticks, thread CPU %.3f ms "
           "= %.4f %% of one core (goal <= 1 %%), %.1f us per tick\n",
           devices, (double)wall / 1e9, (unsigned long long)ticks, (double)cpu / 1e6,
           100.0 * (double)cpu / (double)wall, ticks ? (double)cpu / (double)ticks / 1e3 : 0.0);
    cp_model_free(m);
    cp_nvml_sampler_free(ns);

    /* 2. one tick, back to back on this thread */
    enum { ROUNDS = 15, N = 2000 };
    uint64_t per[ROUNDS];
    ns = cp_nvml_sampler_new(NULL, 3600.0, cfg.max_samples);
    cp_nvml_sampler_use_api(ns, &api);
    if (cp_nvml_sampler_start(ns) != 0)
        return 1;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t c0 = clk(CLOCK_THREAD_CPUTIME_ID);
        for (int i = 0; i < N; i++)
            cp_nvml_sampler_tick(ns, 0);
        per[r] = (clk(CLOCK_THREAD_CPUTIME_ID) - c0) / N;
    }
    qsort(per, ROUNDS, sizeof per[0], cmp_u64);
    printf("one tick (%u devices, 5 queries each, store full after %u readings): median %.2f us "
           "CPU, min %.2f us (%d rounds x %d ticks)\n",
           devices, cfg.max_samples, (double)per[ROUNDS / 2] / 1e3, (double)per[0] / 1e3, ROUNDS,
           N);
    cp_nvml_sampler_free(ns);
    dlclose(h);
    return 0;
}
