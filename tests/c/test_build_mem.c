/* test_build_mem.c -- memory scopes through a real session down to the
 * model's memory section (scope.c CODEPROF_SCOPE_HEAP, the memory sink,
 * mem_session.c, build_mem.c) and merging memory sections (model_mem.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/session.h"
#include "core/timeline.h"
#include "core/warnings.h"
#include "cpu/scope_heap.h"
#include "memory/heap.h"
#include "model/build.h"
#include "model/model.h"

#define MiB (1024ll * 1024ll)

static void *fake(uint64_t i) { return (void *)(uintptr_t)(0x200000000ull + i * 64); }

static uint32_t g_alloc_site;
static uint32_t two_frames(cp_heap_frame *out, uint32_t max) {
    if (max < 3)
        return 0;
    out[0] = (cp_heap_frame){0, g_alloc_site, 12};
    /* a Python frame the callback could not name (site 0): left out */
    out[1] = (cp_heap_frame){0, 0, 40};
    /* a native frame: a return address inside this program */
    out[2] = (cp_heap_frame){(uint64_t)(uintptr_t)&two_frames + 4, 0, 0};
    return 3;
}

static codeprof_session *mem_session(uint32_t mode, int snapshots) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.memory_mode = mode;
    if (snapshots)
        cfg.flags |= CODEPROF_CFG_MEM_SNAPSHOTS;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

static const cp_mmem_ctx *ctx_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->mem.nctxs; i++) {
        const cp_msite *si = cp_model_site(m, m->mem.ctxs[i].site);
        if (si && strcmp(si->name, name) == 0)
            return &m->mem.ctxs[i];
    }
    return NULL;
}

/* "epoch" keeps 6 MiB per call and makes an 800 MiB transient;
 * "inner" (nested) keeps nothing. */
static void run_epochs(codeprof_session *s, uint32_t epoch, uint32_t inner, int n) {
    for (int k = 0; k < n; k++) {
        codeprof_scope_begin(s, epoch, CODEPROF_SCOPE_HEAP);
        cp_heap_on_alloc(CP_HEAP_NUMPY, fake(1000 + (uint64_t)k), 6 * MiB);
        codeprof_scope_begin(s, inner, CODEPROF_SCOPE_HEAP);
        cp_heap_on_alloc(CP_HEAP_NUMPY, fake(1), 800 * MiB);
        cp_heap_on_free(CP_HEAP_NUMPY, fake(1));
        codeprof_scope_end(s, inner, CODEPROF_SCOPE_HEAP);
        codeprof_scope_end(s, epoch, CODEPROF_SCOPE_HEAP);
    }
}

static void test_scope_heap_to_model(void **state) {
    (void)state;
    codeprof_session *s = mem_session(2, 1);
    g_alloc_site = codeprof_site("make_frames", "pipeline.py", 12, CODEPROF_SITE_PYTHON);
    uint32_t epoch = codeprof_site("epoch", "train.py", 3, CODEPROF_SITE_SCOPE);
    uint32_t inner = codeprof_site("augment", "train.py", 9, CODEPROF_SITE_SCOPE);
    cp_heap_set_stack_fn(two_frames);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_int_equal(cp_heap_active(), 1);
    run_epochs(s, epoch, inner, 5);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    const cp_mmem *mm = &m->mem;
    assert_int_equal(mm->mode, 2);
    assert_int_equal(mm->estimated, 0);
    assert_int_equal(mm->live_bytes, 30 * MiB);
    assert_int_equal(mm->peak_bytes, 30 * MiB + 800 * MiB - 6 * MiB + 6 * MiB);
    assert_int_equal(mm->domains[CP_HEAP_NUMPY].alloc_count, 10);
    assert_int_equal(mm->nctxs, 2);
    const cp_mmem_ctx *e = ctx_named(m, "epoch"), *a = ctx_named(m, "augment");
    assert_non_null(e);
    assert_non_null(a);
    assert_int_equal(e->count, 5);
    assert_int_equal(e->delta_sum, 30 * MiB);
    assert_int_equal(e->delta_max, 6 * MiB);
    assert_int_equal(e->peak_max, 806 * MiB);
    assert_int_equal(e->floor_rises, 4);
    assert_true(e->floor_slope > 5.9 * MiB && e->floor_slope < 6.1 * MiB);
    assert_int_equal(e->leaked_bytes, 30 * MiB);
    assert_int_equal(e->leaked_blocks, 5);
    assert_int_equal(a->count, 5);
    assert_int_equal(a->delta_sum, 0);
    assert_int_equal(a->peak_max, 800 * MiB);
    assert_int_equal(a->leaked_bytes, 0);
    /* one live group: the 6 MiB blocks, allocated in "epoch" */
    assert_int_equal(mm->nsites, 1);
    assert_int_equal(mm->sites[0].live_bytes, 30 * MiB);
    assert_int_equal(mm->nleaks, 1);
    assert_int_equal(mm->leaks[0].live_blocks, 5);
    assert_ptr_equal(&mm->ctxs[mm->leaks[0].ctx], e);
    /* its stack: the Python frame, then the native one */
    assert_int_equal(mm->nstacks, 1);
    const cp_mmem_stack *st = &mm->stacks[mm->leaks[0].stack];
    assert_int_equal(st->nframes, 2);
    const cp_msite *f0 = cp_model_site(m, st->site[0]);
    assert_string_equal(f0->name, "make_frames");
    assert_int_equal(st->line[0], 12);
    const cp_msite *f1 = cp_model_site(m, st->site[1]);
    assert_int_equal(f1->kind, CODEPROF_SITE_NATIVE);
    assert_true(strlen(f1->name) > 0);
    assert_true(strlen(f1->file) > 0); /* the program itself */
    /* snapshots at every exit: 10 */
    assert_int_equal(mm->nsnaps, 10);
    assert_int_equal(mm->snaps[9].live_bytes, 30 * MiB);
    assert_int_equal(mm->snaps[9].n, 1);
    assert_true(mm->own_bytes > 0);
    /* the CCT is unaffected: HEAP events are not nodes */
    uint32_t nodes_named = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (si && (strcmp(si->name, "epoch") == 0 || strcmp(si->name, "augment") == 0)) {
            nodes_named++;
            assert_int_equal(m->funcs[i].calls, 5);
        }
    }
    assert_int_equal(nodes_named, 2);

    /* merging a model into a copy of itself: sums, same sites */
    cp_model *d = cp_session_snapshot(s);
    assert_non_null(d);
    assert_int_equal(cp_model_merge(d, m, -1), 0);
    const cp_mmem_ctx *e2 = ctx_named(d, "epoch");
    assert_non_null(e2);
    assert_int_equal(d->mem.nctxs, 2);
    assert_int_equal(e2->count, 10);
    assert_int_equal(e2->delta_sum, 60 * MiB);
    assert_int_equal(e2->leaked_bytes, 60 * MiB);
    assert_int_equal(e2->peak_max, 806 * MiB);
    assert_int_equal(d->mem.nstacks, 1);
    assert_int_equal(d->mem.nleaks, 1);
    assert_int_equal(d->mem.leaks[0].live_bytes, 60 * MiB);
    assert_int_equal(d->mem.nsnaps, 20);
    assert_int_equal(d->mem.snaps[19].first + d->mem.snaps[19].n, d->mem.nsnap_groups);
    assert_int_equal(d->mem.live_bytes, 60 * MiB);
    assert_int_equal(d->mem.domains[CP_HEAP_NUMPY].alloc_count, 20);
    cp_model_free(d);
    cp_model_free(m);

    codeprof_session_stop(s);
    assert_int_equal(cp_heap_active(), 0);
    cp_heap_set_stack_fn(NULL);
    codeprof_session_free(s);
}

/* memory_mode 0: memory scopes still give RSS and GC figures; no tracker. */
static void test_rss_only_mode(void **state) {
    (void)state;
    codeprof_session *s = mem_session(0, 0);
    uint32_t site = codeprof_site("rss_ctx", "x.py", 1, CODEPROF_SITE_SCOPE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    assert_int_equal(cp_heap_active(), 0);
    codeprof_scope_begin(s, site, CODEPROF_SCOPE_HEAP);
    char *p = malloc(48 * MiB);
    assert_non_null(p);
    memset(p, 3, 48 * MiB);
    codeprof_scope_end(s, site, CODEPROF_SCOPE_HEAP);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    free(p);
    assert_int_equal(m->mem.mode, 0);
    const cp_mmem_ctx *c = ctx_named(m, "rss_ctx");
    assert_non_null(c);
    assert_int_equal(c->count, 1);
    assert_int_equal(c->delta_sum, 0);
    assert_true(c->rss_delta_sum > 24 * MiB);
    assert_true(c->rss_peak_max > 24 * (uint64_t)MiB);
    assert_true(m->mem.rss_peak > 0);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* A scope stopped between begin and end keeps the mark stack matched. */
static void test_stop_inside_scope(void **state) {
    (void)state;
    codeprof_session *s = mem_session(2, 0);
    uint32_t a = codeprof_site("a_ctx", "x.py", 1, CODEPROF_SITE_SCOPE);
    uint32_t b = codeprof_site("b_ctx", "x.py", 2, CODEPROF_SITE_SCOPE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    codeprof_scope_begin(s, a, CODEPROF_SCOPE_HEAP);
    codeprof_session_stop(s);
    codeprof_scope_end(s, a, CODEPROF_SCOPE_HEAP);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    codeprof_scope_begin(s, b, CODEPROF_SCOPE_HEAP);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(5), 4096);
    codeprof_scope_end(s, b, CODEPROF_SCOPE_HEAP);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    const cp_mmem_ctx *c = ctx_named(m, "b_ctx");
    assert_non_null(c);
    assert_int_equal(c->delta_sum, 4096);
    assert_null(ctx_named(m, "a_ctx"));
    cp_model_free(m);
    codeprof_session_free(s);
    assert_int_equal(cp_heap_active(), 0);
}

/* Two sessions: the second one's tracking is refused (the tracker is one
 * per process) and says so in its warnings; the first keeps recording. */
static void test_second_session_busy(void **state) {
    (void)state;
    codeprof_session *a = mem_session(2, 0), *b = mem_session(1, 0);
    assert_int_equal(codeprof_session_start(a), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(b), CODEPROF_OK);
    cp_warning w[4];
    size_t n = cp_session_warnings(b, w, 4, NULL);
    assert_int_equal(n, 1);
    assert_string_equal(w[0].code, "memory_tracking_unavailable");
    assert_non_null(strstr(w[0].message, "another session"));
    assert_int_equal(cp_session_warnings(a, w, 4, NULL), 0);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(9), 100);
    cp_model *ma = cp_session_snapshot(a), *mb = cp_session_snapshot(b);
    assert_non_null(ma);
    assert_non_null(mb);
    assert_int_equal(ma->mem.mode, 2);
    assert_int_equal(ma->mem.live_bytes, 100);
    assert_int_equal(mb->mem.mode, 0);
    assert_int_equal(mb->mem.live_bytes, 0);
    cp_model_free(ma);
    cp_model_free(mb);
    codeprof_session_free(b);
    assert_int_equal(cp_heap_active(), 1); /* b's free does not stop a's tracking */
    codeprof_session_free(a);
    assert_int_equal(cp_heap_active(), 0);
}

/* A stopped session's ledger taken over by a later session: the first
 * session's model no longer shows the tracker's figures (they are not its). */
static void test_ledger_taken_over(void **state) {
    (void)state;
    codeprof_session *a = mem_session(2, 0), *b = mem_session(2, 0);
    assert_int_equal(codeprof_session_start(a), CODEPROF_OK);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(1), 100);
    codeprof_session_stop(a);
    cp_model *ma = cp_session_snapshot(a);
    assert_int_equal(ma->mem.live_bytes, 100);
    cp_model_free(ma);
    assert_int_equal(codeprof_session_start(b), CODEPROF_OK);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(2), 50);
    ma = cp_session_snapshot(a);
    cp_model *mb = cp_session_snapshot(b);
    assert_int_equal(ma->mem.live_bytes, 0);
    assert_int_equal(ma->mem.mode, 0);
    assert_int_equal(mb->mem.live_bytes, 50);
    cp_model_free(ma);
    cp_model_free(mb);
    codeprof_session_free(a);
    assert_int_equal(cp_heap_active(), 1);
    codeprof_session_free(b);
    assert_int_equal(cp_heap_active(), 0);
}

/* Recorded allocations and frees reach the session's event stream (a sink
 * sees them): every recorded block in mode 1, blocks of at least
 * memory_sample_bytes in mode 2. */
typedef struct ev_count {
    uint64_t alloc, free, alloc_bytes;
} ev_count;
static void count_events(void *ctx, const struct cp_tbuf *t, const cp_event *ev, uint32_t n) {
    (void)t;
    ev_count *c = ctx;
    for (uint32_t i = 0; i < n; i++) {
        if (ev[i].kind == CP_EV_ALLOC) {
            c->alloc++;
            c->alloc_bytes += (uint64_t)ev[i].value;
            assert_int_equal(ev[i].flags, CP_HEAP_NUMPY);
        } else if (ev[i].kind == CP_EV_FREE) {
            c->free++;
        }
    }
}

static void test_alloc_events(void **state) {
    (void)state;
    for (uint32_t mode = 1; mode <= 2; mode++) {
        codeprof_session *s = mem_session(mode, 0);
        ev_count c = {0};
        cp_sink sk = {"count", &c, count_events, NULL, NULL};
        assert_int_equal(cp_session_add_sink(s, &sk), 0);
        assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
        cp_heap_on_alloc(CP_HEAP_NUMPY, fake(1), 64 * MiB); /* always recorded */
        for (uint64_t i = 0; i < 100; i++)
            cp_heap_on_alloc(CP_HEAP_NUMPY, fake(10 + i), 64); /* small */
        cp_heap_on_free(CP_HEAP_NUMPY, fake(1));
        cp_model *m = cp_session_snapshot(s);
        assert_non_null(m);
        if (mode == 2) {
            assert_int_equal(c.alloc, 1);
            assert_int_equal(c.alloc_bytes, 64 * MiB);
        } else {
            assert_true(c.alloc >= 1 && c.alloc <= 3);
            assert_true(c.alloc_bytes >= 64 * MiB);
        }
        assert_int_equal(c.free, 1);
        cp_model_free(m);
        codeprof_session_free(s);
    }
}

/* The timeline keeps a memory scope's ENTER and EXIT only: its CP_EV_HEAP
 * events and the recorded blocks' CP_EV_ALLOC/FREE do not fill it. */
static void test_timeline_ignores_memory_events(void **state) {
    (void)state;
    codeprof_session *s = mem_session(2, 0);
    uint32_t site = codeprof_site("tl_ctx", "x.py", 1, CODEPROF_SITE_SCOPE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    codeprof_scope_begin(s, site, CODEPROF_SCOPE_HEAP);
    cp_heap_on_alloc(CP_HEAP_NUMPY, fake(1), 64 * MiB); /* emitted: >= sample_bytes */
    cp_heap_on_free(CP_HEAP_NUMPY, fake(1));
    codeprof_scope_end(s, site, CODEPROF_SCOPE_HEAP);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_non_null(s->timeline);
    assert_int_equal(s->timeline->scopes.head_n + s->timeline->scopes.ring_total, 2);
    const cp_mmem_ctx *c = ctx_named(m, "tl_ctx");
    assert_non_null(c);
    assert_int_equal(c->peak_max, 64 * MiB);
    cp_model_free(m);
    codeprof_session_free(s);
}

/* Memory scopes nested deeper than CP_SCOPE_HEAP_DEPTH on one thread are
 * counted (dropped marks), not measured; the shallower ones still are. */
static void test_scope_depth_cap(void **state) {
    (void)state;
    codeprof_session *s = mem_session(2, 0);
    uint32_t site[CP_SCOPE_HEAP_DEPTH + 3];
    char name[32];
    for (int i = 0; i < CP_SCOPE_HEAP_DEPTH + 3; i++) {
        snprintf(name, sizeof name, "deep_%d", i);
        site[i] = codeprof_site(name, "x.py", (uint32_t)i + 1, CODEPROF_SITE_SCOPE);
    }
    uint64_t before = cp_scope_heap_overflow();
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    for (int i = 0; i < CP_SCOPE_HEAP_DEPTH + 3; i++)
        codeprof_scope_begin(s, site[i], CODEPROF_SCOPE_HEAP);
    cp_heap_on_alloc(CP_HEAP_PYMEM, fake(3), 700);
    for (int i = CP_SCOPE_HEAP_DEPTH + 3; i-- > 0;)
        codeprof_scope_end(s, site[i], CODEPROF_SCOPE_HEAP);
    assert_int_equal(cp_scope_heap_overflow() - before, 3);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(m->mem.nctxs, CP_SCOPE_HEAP_DEPTH);
    assert_true(m->mem.dropped_marks >= 3);
    const cp_mmem_ctx *c = ctx_named(m, "deep_0");
    assert_non_null(c);
    assert_int_equal(c->delta_sum, 700);
    assert_null(ctx_named(m, "deep_64"));
    cp_model_free(m);
    codeprof_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_heap_to_model),
        cmocka_unit_test(test_rss_only_mode),
        cmocka_unit_test(test_stop_inside_scope),
        cmocka_unit_test(test_second_session_busy),
        cmocka_unit_test(test_ledger_taken_over),
        cmocka_unit_test(test_alloc_events),
        cmocka_unit_test(test_timeline_ignores_memory_events),
        cmocka_unit_test(test_scope_depth_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
