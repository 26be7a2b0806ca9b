/* mem_fixture.h -- a hand-filled memory section (cp_model.mem) for the
 * memory report, reader, diff and rules tests.  Header-only, test code
 * only; include after model_fixture.h.  Aborts the test on OOM. */
#ifndef CP_TEST_MEM_FIXTURE_H
#define CP_TEST_MEM_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "model/model.h"

#define FX_MIB(x) ((uint64_t)(x) * 1024u * 1024u)

static inline void *fx_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

/* Appends a context with `count` calls; the rest is zero. */
static inline cp_mmem_ctx *fx_mem_ctx(cp_model *m, uint32_t site, uint64_t count) {
    cp_mmem *mm = &m->mem;
    mm->ctxs = fx_grow(mm->ctxs, mm->nctxs, sizeof *mm->ctxs);
    cp_mmem_ctx *c = &mm->ctxs[mm->nctxs++];
    memset(c, 0, sizeof *c);
    c->site = site;
    c->count = count;
    return c;
}

/* The memory section of a run in mode "all" (every block tracked):
 *   ctx 0 "data_processing" (scope): 1 call keeping 200 MiB (peak 210);
 *   ctx 1 "transient" (function pipe.py:12): 2 calls, peak 800 MiB, net 2 MiB;
 *   ctx 2 "epoch" (scope): 5 calls, floor 10 -> 34 MiB, +6 MiB per call,
 *         4 rises, 24 MiB in 4 blocks still live (peak within 8 MiB);
 *   stacks: 0 unreferenced, 1 load_large_dataset (pipe.py:30) <- main
 *         (pipe.py:50), 2 cache.append (train.py:55);
 *   top allocations: stack 1 in ctx 0 (200 MiB), stack 2 in ctx 2 (24 MiB);
 *   leaks: stack 2 in ctx 2; GC: 0.6 s of the 10 s run; processes: main
 *   and worker 0 of "train_loader" (USS 100 -> 160 MiB); two snapshots of
 *   "epoch" at 1.5 s and 3 s; machine 16 GiB, RSS peak 1.5 GiB. */
static inline void fx_mem_fill(cp_model *m) {
    cp_mmem *mm = &m->mem;
    mm->mode = 2;
    mm->sample_bytes = 262144;
    mm->stack_depth = 8;
    mm->t0_ns = 1000000000000ull;
    mm->domains[2] = (cp_mmem_domain){100, 6400, 90, 5760, 640, 10, 4096};
    mm->domains[3] = (cp_mmem_domain){4, FX_MIB(1024), 2, FX_MIB(800), (int64_t)FX_MIB(224), 2,
                                      FX_MIB(1010)};
    mm->live_bytes = (int64_t)FX_MIB(224) + 640;
    mm->peak_bytes = FX_MIB(1010) + 4096;
    mm->rss_last = FX_MIB(1200);
    mm->rss_peak = FX_MIB(1536);
    mm->machine_bytes = FX_MIB(16384);

    uint32_t s_dp = fx_site(m, "data_processing", "", 0, CODEPROF_SITE_SCOPE);
    uint32_t s_tr = fx_site(m, "transient", "pipe.py", 12, CODEPROF_SITE_FUNCTION);
    uint32_t s_ep = fx_site(m, "epoch", "", 0, CODEPROF_SITE_SCOPE);
    cp_mmem_ctx *c = fx_mem_ctx(m, s_dp, 1);
    c->delta_sum = c->delta_min = c->delta_max = (int64_t)FX_MIB(200);
    c->peak_max = FX_MIB(210);
    c->rss_delta_sum = c->rss_delta_max = (int64_t)FX_MIB(201);
    c->rss_peak_max = FX_MIB(205);
    c->floor_first = c->floor_last = (int64_t)FX_MIB(200);
    c->leaked_bytes = FX_MIB(200);
    c->leaked_blocks = 1;
    c->gc_collections = 3;
    c = fx_mem_ctx(m, s_tr, 2);
    c->delta_sum = (int64_t)FX_MIB(2);
    c->delta_min = c->delta_max = (int64_t)FX_MIB(1);
    c->peak_max = FX_MIB(800);
    c->rss_delta_sum = (int64_t)FX_MIB(4);
    c->rss_delta_max = (int64_t)FX_MIB(2);
    c->rss_peak_max = FX_MIB(790);
    c = fx_mem_ctx(m, s_ep, 5);
    c->delta_sum = (int64_t)FX_MIB(30);
    c->delta_min = c->delta_max = (int64_t)FX_MIB(6);
    c->peak_max = FX_MIB(8);
    c->floor_first = (int64_t)FX_MIB(10);
    c->floor_last = (int64_t)FX_MIB(34);
    c->floor_rises = 4;
    c->floor_slope = 6.0 * 1024 * 1024;
    c->leaked_bytes = FX_MIB(24);
    c->leaked_blocks = 4;
    c->gc_collections = 40;

    uint32_t f_load = fx_site(m, "load_large_dataset", "pipe.py", 28, CODEPROF_SITE_PYTHON);
    uint32_t f_main = fx_site(m, "main", "pipe.py", 45, CODEPROF_SITE_PYTHON);
    uint32_t f_app = fx_site(m, "list.append", "", 0, CODEPROF_SITE_NATIVE);
    uint32_t f_train = fx_site(m, "train_step", "train.py", 50, CODEPROF_SITE_PYTHON);
    mm->nstacks = 3;
    mm->stacks = fx_calloc(3, sizeof *mm->stacks);
    mm->stacks[0] = (cp_mmem_stack){1, {f_main}, {99}};
    mm->stacks[1] = (cp_mmem_stack){2, {f_load, f_main}, {30, 50}};
    mm->stacks[2] = (cp_mmem_stack){2, {f_app, f_train}, {0, 55}};
    mm->nsites = 2;
    mm->sites = fx_calloc(2, sizeof *mm->sites);
    mm->sites[0] = (cp_mmem_group){1, 0, FX_MIB(200), 1};
    mm->sites[1] = (cp_mmem_group){2, 2, FX_MIB(24), 4};
    mm->nleaks = 1;
    mm->leaks = fx_calloc(1, sizeof *mm->leaks);
    mm->leaks[0] = (cp_mmem_group){2, 2, FX_MIB(24), 4};

    mm->gc.enabled = 1;
    mm->gc.collections[0] = 100;
    mm->gc.collections[1] = 10;
    mm->gc.collections[2] = 1;
    mm->gc.collected[0] = 5000;
    mm->gc.collected[1] = 300;
    mm->gc.collected[2] = 20;
    mm->gc.uncollectable[2] = 2;
    mm->gc.time_ns[0] = FX_S(0.2);
    mm->gc.time_ns[1] = FX_S(0.1);
    mm->gc.time_ns[2] = FX_S(0.3);
    mm->gc.max_pause_ns = FX_S(0.25);

    uint32_t s_loader = fx_site(m, "train_loader", "", 0, CODEPROF_SITE_LOADER);
    mm->nprocs = 2;
    mm->procs = fx_calloc(2, sizeof *mm->procs);
    mm->procs[0] = (cp_mproc){.pid = 4242,
                              .worker = -1,
                              .nsamples = 20,
                              .t_first_ns = 1000000000000ull,
                              .t_last_ns = 1009500000000ull,
                              .rss_first = FX_MIB(300),
                              .rss_last = FX_MIB(1200),
                              .rss_max = FX_MIB(1536),
                              .pss_first = FX_MIB(280),
                              .pss_last = FX_MIB(1100),
                              .pss_max = FX_MIB(1400),
                              .uss_first = FX_MIB(250),
                              .uss_last = FX_MIB(1000),
                              .uss_max = FX_MIB(1300),
                              .source = 1 /* rollup */};
    mm->procs[1] = (cp_mproc){.pid = 5000,
                              .worker = 0,
                              .loader = s_loader,
                              .nsamples = 10,
                              .t_first_ns = 1001000000000ull,
                              .t_last_ns = 1006000000000ull,
                              .rss_first = FX_MIB(400),
                              .rss_last = FX_MIB(460),
                              .rss_max = FX_MIB(470),
                              .pss_first = FX_MIB(150),
                              .pss_last = FX_MIB(200),
                              .pss_max = FX_MIB(210),
                              .uss_first = FX_MIB(100),
                              .uss_last = FX_MIB(160),
                              .uss_max = FX_MIB(170),
                              .items = 64,
                              .source = 1 /* rollup */,
                              .exited = 1};

    mm->nsnaps = 2;
    mm->snaps = fx_calloc(2, sizeof *mm->snaps);
    mm->snaps[0] = (cp_msnap){s_ep, 1001500000000ull, (int64_t)FX_MIB(16), 0, 1};
    mm->snaps[1] = (cp_msnap){s_ep, 1003000000000ull, (int64_t)FX_MIB(22), 1, 1};
    mm->nsnap_groups = 2;
    mm->snap_groups = fx_calloc(2, sizeof *mm->snap_groups);
    mm->snap_groups[0] = (cp_mmem_group){2, CP_NONE, FX_MIB(6), 1};
    mm->snap_groups[1] = (cp_mmem_group){2, CP_NONE, FX_MIB(12), 2};

    mm->own_bytes = 12345;
    mm->dropped_blocks = 7;
    mm->dropped_samples = 1;
}

#endif /* CP_TEST_MEM_FIXTURE_H */
