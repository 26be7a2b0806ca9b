/* gpu_fixture.h -- a hand-filled GPU section (model_gpu.h) for the GPU
 * views' tests (test_report_gpu.c, test_model_gpu.c, test_rules_gpu.c,
 * test_trace_gpu.c).  Header-only, test code only; include after
 * model_fixture.h. */
#ifndef CP_TEST_GPU_FIXTURE_H
#define CP_TEST_GPU_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define GX_MS(x) ((uint64_t)((x) * 1e6 + 0.5)) /* ms -> ns */
#define GX_MIB (1024ull * 1024ull)

static inline void *gx_alloc(size_t n, size_t elem) {
    void *p = calloc(n ? n : 1, elem);
    assert_non_null(p);
    return p;
}

/* Appends an operation site; returns it. */
static inline cp_mgpu_op *gx_op(cp_model *m, uint32_t site, uint64_t calls, uint64_t timed,
                                uint64_t device_ns, uint64_t min_ns, uint64_t max_ns,
                                uint64_t host_ns) {
    cp_mgpu *g = &m->gpu;
    g->ops = realloc(g->ops, ((size_t)g->nops + 1) * sizeof *g->ops);
    assert_non_null(g->ops);
    cp_mgpu_op *o = &g->ops[g->nops++];
    memset(o, 0, sizeof *o);
    o->site = site;
    o->calls = calls;
    o->timed = timed;
    o->device_ns = device_ns;
    o->device_min_ns = min_ns;
    o->device_max_ns = max_ns;
    o->host_ns = host_ns;
    o->host_max_ns = host_ns / (calls ? calls : 1) + 1000;
    o->streams = 1;
    o->threads = 1;
    return o;
}

static inline cp_mgpu_span gx_span(uint32_t site, uint64_t t_ns, uint64_t device_ns,
                                   uint64_t stream, int32_t device) {
    cp_mgpu_span s;
    memset(&s, 0, sizeof s);
    s.site = site;
    s.host_start_ns = t_ns;
    s.host_end_ns = t_ns + device_ns / 2 + 1000;
    s.device_start_ns = t_ns + 500;
    s.device_ns = device_ns;
    s.stream = stream;
    s.device = device;
    s.pid = 4242;
    s.os_tid = 77;
    s.timed = 1;
    return s;
}

static inline void gx_add_span(cp_model *m, cp_mgpu_span s) {
    cp_mgpu *g = &m->gpu;
    g->spans = realloc(g->spans, ((size_t)g->nspans + 1) * sizeof *g->spans);
    assert_non_null(g->spans);
    g->spans[g->nspans++] = s;
}

static inline void gx_add_slow(cp_model *m, cp_mgpu_span s) {
    cp_mgpu *g = &m->gpu;
    g->slow = realloc(g->slow, ((size_t)g->nslow + 1) * sizeof *g->slow);
    assert_non_null(g->slow);
    g->slow[g->nslow++] = s;
}

static inline cp_mgpu_sync *gx_sync(cp_model *m, uint32_t site, uint32_t line, uint32_t kind,
                                    uint64_t count, uint64_t blocked_ns) {
    cp_mgpu *g = &m->gpu;
    g->syncs = realloc(g->syncs, ((size_t)g->nsyncs + 1) * sizeof *g->syncs);
    assert_non_null(g->syncs);
    cp_mgpu_sync *y = &g->syncs[g->nsyncs++];
    memset(y, 0, sizeof *y);
    y->site = site;
    y->line = line;
    y->kind = kind;
    y->count = count;
    y->blocked_ns = blocked_ns;
    y->max_ns = count ? blocked_ns / count + 7 : 0;
    return y;
}

static inline cp_mgpu_device *gx_device(cp_model *m, int32_t index, const char *name,
                                        uint64_t samples, double util_mean, uint64_t mem_total,
                                        uint64_t used_max) {
    cp_mgpu *g = &m->gpu;
    g->devices = realloc(g->devices, ((size_t)g->ndevices + 1) * sizeof *g->devices);
    assert_non_null(g->devices);
    cp_mgpu_device *d = &g->devices[g->ndevices++];
    memset(d, 0, sizeof *d);
    d->index = index;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->samples = samples;
    d->util_mean = util_mean;
    d->util_max = util_mean > 0 ? (util_mean * 1.5 < 100 ? util_mean * 1.5 : 100) : 0;
    d->mem_util_mean = util_mean / 2;
    d->mem_total = mem_total;
    d->mem_used_max = used_max;
    d->mem_used_mean = used_max / 2;
    d->power_mean_w = 150.5;
    d->power_max_w = 280;
    d->temp_max_c = 71;
    d->sm_clock_mean_mhz = 1410;
    d->idle_samples = samples / 10;
    d->longest_idle_ns = 300000000;
    return d;
}

static inline void gx_sample(cp_model *m, uint64_t t_ns, int32_t device, uint32_t util) {
    cp_mgpu *g = &m->gpu;
    g->samples = realloc(g->samples, ((size_t)g->nsamples + 1) * sizeof *g->samples);
    assert_non_null(g->samples);
    cp_mgpu_sample *s = &g->samples[g->nsamples++];
    memset(s, 0, sizeof *s);
    s->t_ns = t_ns;
    s->device = device;
    s->util_pct = util;
    s->mem_used = 1000ull * util;
}

/* A GPU section with every part filled: two op sites (one slow), a slow
 * list, two sync points, one device, libraries and counters. */
static inline void gx_fill(cp_model *m) {
    cp_mgpu *g = &m->gpu;
    g->enabled = 1;
    g->available = 1;
    g->driver.status = CP_GPU_LIB_OK;
    g->driver.version = 12040;
    strcpy(g->driver.path, "libcuda.so.1");
    g->nvml.status = CP_GPU_LIB_OK;
    g->nvml.version = 12550;
    strcpy(g->nvml.path, "libnvidia-ml.so.1");
    g->cupti.status = CP_GPU_LIB_NOT_FOUND;
    strcpy(g->cupti.path, "libcupti.so");
    strcpy(g->cupti.reason, "libcupti.so: cannot open shared object file");
    g->sync_source = CP_GPU_SYNC_SRC_FALLBACK;
    g->device_mem_total = 16000 * GX_MIB;
    uint32_t fwd = fx_site(m, "model_forward", "train.py", 40, CODEPROF_SITE_GPU);
    uint32_t pre = fx_site(m, "preprocess_gpu", "train.py", 12, CODEPROF_SITE_GPU);
    uint32_t loop = fx_site(m, "train_step", "train.py", 60, CODEPROF_SITE_PYTHON);
    cp_mgpu_op *a = gx_op(m, fwd, 20, 20, GX_MS(2500), GX_MS(50), GX_MS(400), GX_MS(300));
    a->slow = 5;
    a->mem_source = CP_GPU_MEM_TORCH;
    a->mem_count = 20;
    a->mem_delta_sum = 40 * (int64_t)GX_MIB;
    a->mem_delta_max = 8 * (int64_t)GX_MIB;
    a->mem_peak = 3000 * GX_MIB;
    a->reserved_delta_sum = 64 * (int64_t)GX_MIB;
    a->reserved_peak = 3500 * GX_MIB;
    a->streams = 2;
    cp_mgpu_op *b = gx_op(m, pre, 100, 100, GX_MS(150), GX_MS(1), GX_MS(3), GX_MS(40));
    b->mem_source = CP_GPU_MEM_TORCH;
    b->mem_count = 100;
    b->mem_delta_sum = -2 * (int64_t)GX_MIB;
    b->mem_delta_max = 1 * (int64_t)GX_MIB;
    b->mem_peak = 100 * GX_MIB;
    for (int i = 0; i < 3; i++) {
        cp_mgpu_span s = gx_span(fwd, 1000000000ull + 500000000ull * (uint64_t)i,
                                 GX_MS(400 - 50 * i), 0x7f00 + (uint64_t)i % 2, 0);
        gx_add_span(m, s);
    }
    gx_add_slow(m, gx_span(fwd, 1000000000ull, GX_MS(400), 0x7f00, 0));
    gx_add_slow(m, gx_span(fwd, 1500000000ull, GX_MS(350), 0x7f01, 0));
    gx_sync(m, loop, 66, CP_GPU_SYNC_MEMCPY, 500, GX_MS(900));
    gx_sync(m, loop, 70, CP_GPU_SYNC_DEVICE, 20, GX_MS(40));
    gx_device(m, 0, "Fake H100", 100, 35.5, 16000 * GX_MIB, 4000 * GX_MIB);
    gx_sample(m, 1000000000ull, 0, 20);
    gx_sample(m, 1100000000ull, 0, 60);
    g->idle_gap_ns = GX_MS(120);
    g->idle_gap_max_ns = GX_MS(80);
    g->idle_gaps = 4;
    g->busy_ns = GX_MS(2650);
    g->span_ns = GX_MS(5000);
    g->ops_dropped = 3;
    g->ops_unresolved = 1;
    g->sampler_cpu_ns = 12345678;
}

#endif /* CP_TEST_GPU_FIXTURE_H */
