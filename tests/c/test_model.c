/* test_model.c -- the model (src/model/): its own site table, construction
 * in steps (begin / add_tree / finish), independence from the session that
 * built it, and merging models (totals, site identity, strings, data
 * section, allocation failures). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules.h"
#include "codeprof/codeprof.h"
#include "core/clock.h"
#include "core/session.h"
#include "core/site.h"
#include "cpu/cct.h"
#include "model/build.h"
#include "model/model.h"
#include "model_fixture.h"
#include "session_fixture.h"
#include "report/report.h"
#include "report/strbuf.h"

/* ---- allocation failure injection ----------------------------------------
 * Outside sanitizer builds this file replaces malloc & co. with wrappers
 * over glibc's own that fail the n-th allocation after fault_arm(n).  The
 * ASan build has its own allocator, so the OOM test is skipped there (and
 * LeakSanitizer checks the other paths instead). */
#if defined(__SANITIZE_ADDRESS__)
#define CP_NO_FAULTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CP_NO_FAULTS 1
#endif
#endif
#if !defined(CP_NO_FAULTS) && defined(__GLIBC__)
#define CP_FAULTS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t k);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static long fault_countdown = -1; /* allocations to let through; -1: off */
static long fault_hits;           /* allocations failed */

static int fault_now(void) {
    if (fault_countdown < 0)
        return 0;
    if (fault_countdown-- == 0) {
        fault_hits++;
        return 1;
    }
    return 0;
}
/* Attributes as glibc declares them, so the compiler keeps its view of
 * these as allocation functions. */
__attribute__((noinline, malloc, alloc_size(1))) void *malloc(size_t n);
__attribute__((noinline, malloc, alloc_size(1, 2))) void *calloc(size_t n, size_t k);
__attribute__((noinline, alloc_size(2))) void *realloc(void *p, size_t n);
static long live_blocks; /* blocks allocated and not yet freed */

void *malloc(size_t n) {
    void *p = fault_now() ? NULL : __libc_malloc(n);
    live_blocks += p != NULL;
    return p;
}
void *calloc(size_t n, size_t k) {
    void *p = fault_now() ? NULL : __libc_calloc(n, k);
    live_blocks += p != NULL;
    return p;
}
void *realloc(void *p, size_t n) {
    if (fault_now())
        return NULL;
    void *q = __libc_realloc(p, n);
    live_blocks += !p && q;
    return q;
}
void free(void *p) {
    live_blocks -= p != NULL;
    __libc_free(p);
}
static void fault_arm(long n) { fault_countdown = n; }
static void fault_disarm(void) { fault_countdown = -1; }
#endif

/* ---- helpers ---------------------------------------------------------------- */

static void item(codeprof_session *s, uint32_t ds, uint32_t stage, int64_t index, uint64_t ns) {
    codeprof_scope_begin(s, ds, CODEPROF_SCOPE_ITEM);
    codeprof_scope_attr(s, CODEPROF_ATTR_INDEX, index);
    codeprof_scope_begin(s, stage, 0);
    advance(ns / 2);
    codeprof_scope_end(s, stage, 0);
    advance(ns - ns / 2);
    codeprof_scope_end(s, ds, CODEPROF_SCOPE_ITEM);
}

static cp_model *snapshot(codeprof_session *s) {
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    return m;
}

static char *render(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    cp_strbuf_puts(&sb, "\n---\n");
    assert_int_equal(cp_report_text(m, &sb), 0);
    char *out = cp_strbuf_detach(&sb, NULL);
    assert_non_null(out);
    return out;
}

static const cp_mfunc *func_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (si && strcmp(si->name, name) == 0)
            return &m->funcs[i];
    }
    return NULL;
}

/* The model index of a site by name, 0 if absent. */
static uint32_t index_of(const cp_model *m, const char *name) {
    for (uint32_t i = 1; i < m->sites.n; i++)
        if (strcmp(cp_model_site(m, i)->name, name) == 0)
            return i;
    return 0;
}

/* ---- a model stands alone ----------------------------------------------------- */

static void test_site_table_interns_and_copies(void **state) {
    (void)state;
    cp_model *m = fx_model();
    char name[32] = "decode";
    uint32_t a = cp_model_intern_site(m, name, "x.py", 3, CODEPROF_SITE_PYTHON);
    assert_true(a > 0);
    assert_int_equal(cp_model_intern_site(m, "decode", "x.py", 3, CODEPROF_SITE_PYTHON), a);
    /* any differing field is another site */
    assert_int_not_equal(cp_model_intern_site(m, "decode", "x.py", 4, CODEPROF_SITE_PYTHON), a);
    assert_int_not_equal(cp_model_intern_site(m, "decode", "y.py", 3, CODEPROF_SITE_PYTHON), a);
    assert_int_not_equal(cp_model_intern_site(m, "decode", "x.py", 3, CODEPROF_SITE_NATIVE), a);
    uint32_t nofile = cp_model_intern_site(m, "decode", NULL, 3, CODEPROF_SITE_PYTHON);
    assert_int_equal(cp_model_intern_site(m, "decode", "", 3, CODEPROF_SITE_PYTHON), nofile);
    assert_string_equal(cp_model_site(m, nofile)->file, "");
    strcpy(name, "changed"); /* the model copied the string */
    assert_string_equal(cp_model_site(m, a)->name, "decode");
    assert_null(cp_model_site(m, 0));
    assert_null(cp_model_site(m, m->sites.n));
    assert_int_equal(cp_model_intern_site(m, NULL, "x.py", 1, 0), 0);
    /* many sites: indices stay dense and lookups stable across growth */
    char buf[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof buf, "f%d", i);
        uint32_t idx = cp_model_intern_site(m, buf, "big.py", (uint32_t)i, 1);
        assert_int_equal(idx, m->sites.n - 1);
    }
    assert_int_equal(cp_model_intern_site(m, "f4321", "big.py", 4321, 1), index_of(m, "f4321"));
    assert_int_equal(cp_model_intern_site(m, "decode", "x.py", 3, CODEPROF_SITE_PYTHON), a);
    cp_model_free(m);
}

static void test_model_outlives_its_session(void **state) {
    (void)state;
    codeprof_session *s = new_session();
    uint32_t outer = gsite("alone_outer", "alone.c", 1, CODEPROF_SITE_SCOPE);
    uint32_t inner = gsite("alone_inner", "alone.c", 2, CODEPROF_SITE_NATIVE);
    uint32_t ds = gsite("AloneDataset", "alone.py", 3, CODEPROF_SITE_DATASET);
    uint32_t st = gsite("alone_decode", "alone.py", 4, CODEPROF_SITE_PREPROCESS);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    codeprof_scope_begin(s, outer, 0);
    calls(s, inner, 3, 2000000000ull); /* slow: a finding */
    codeprof_scope_end(s, outer, 0);
    for (int i = 0; i < 6; i++)
        item(s, ds, st, i, 10000000);
    codeprof_session_stop(s);
    cp_model *m = snapshot(s);
    assert_int_equal(cp_rules_run(m), 0);
    assert_true(m->nfindings > 0);
    char *before = render(m);

    /* the model's strings are its own, not the process-wide table's */
    const cp_mfunc *f = func_named(m, "alone_inner");
    assert_non_null(f);
    assert_int_equal(f->calls, 3);
    assert_ptr_not_equal(cp_model_site(m, f->site)->name, cp_site_get(inner)->name);
    assert_int_equal(m->data.ndatasets, 1);
    assert_string_equal(cp_model_site(m, m->data.datasets[0].site)->name, "AloneDataset");
    for (uint32_t i = 0; i < m->nthreads; i++) {
        assert_int_equal(m->threads[i].pid, m->pid);
        assert_int_equal(m->threads[i].worker, -1);
    }

    codeprof_session_free(s);
    /* scribble over the heap the session gave back */
    for (int i = 0; i < 64; i++) {
        void *p = malloc(4096);
        assert_non_null(p);
        memset(p, 0xa5, 4096);
        free(p);
    }
    char *after = render(m);
    assert_string_equal(before, after);
    assert_int_equal(cp_rules_run(m), 0); /* rules too, without the session */
    char *again = render(m);
    assert_string_equal(before, again);
    free(before);
    free(after);
    free(again);
    cp_model_free(m);
}

/* ---- construction in steps ------------------------------------------------------ */

static cp_event ev(uint16_t kind, uint32_t site, uint64_t tick) {
    cp_event e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.site = site;
    e.tick = tick;
    return e;
}

typedef struct seen {
    uint32_t sites[8];
    uint64_t calls[8];
    int n;
} seen;

static void on_func(uint32_t site, const cp_tfunc *f, void *ctx) {
    seen *s = ctx;
    assert_true(s->n < 8);
    s->sites[s->n] = site;
    s->calls[s->n++] = f->calls;
}

static void test_build_in_steps_from_trees(void **state) {
    (void)state;
    uint32_t a = gsite("step_a", "steps.c", 1, CODEPROF_SITE_SCOPE);
    uint32_t b = gsite("step_b", "steps.c", 2, CODEPROF_SITE_SCOPE);
    uint32_t c = gsite("step_c", "steps.c", 3, CODEPROF_SITE_SCOPE);
    cp_thread_tree *t0 = cp_tree_new(1024, 100, 1);
    cp_thread_tree *t1 = cp_tree_new(1024, 100, 1);
    assert_non_null(t0);
    assert_non_null(t1);
    /* ticks from a fake clock are ns */
    cp_event e0[] = {ev(CP_EV_ENTER, a, 0), ev(CP_EV_ENTER, b, 10), ev(CP_EV_EXIT, b, 40),
                     ev(CP_EV_EXIT, a, 100)};
    cp_event e1[] = {ev(CP_EV_ENTER, b, 0), ev(CP_EV_EXIT, b, 20), ev(CP_EV_ENTER, c, 20),
                     ev(CP_EV_EXIT, c, 25)};
    cp_tree_fold(t0, e0, 4);
    cp_tree_fold(t1, e1, 4);
    t1->oom = 2; /* allocations the fold could not make reach the report */

    /* the per-site iterator visits exactly the sites with calls */
    seen sn;
    memset(&sn, 0, sizeof sn);
    cp_tree_func_foreach(t1, on_func, &sn);
    assert_int_equal(sn.n, 2);
    assert_true((sn.sites[0] == b && sn.sites[1] == c) || (sn.sites[0] == c && sn.sites[1] == b));

    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cp_model *m = cp_model_begin(&cfg, 777, "steps", 5);
    assert_non_null(m);
    /* added out of order; each tree freed right after it was added */
    assert_int_equal(cp_model_add_tree(m, t1, 22, 1, 4, 1), 0);
    cp_tree_free(t1);
    assert_int_equal(cp_model_add_tree(m, t0, 11, 0, 4, 0), 0);
    cp_tree_free(t0);
    assert_int_equal(cp_model_finish(m, NULL), 0);
    assert_null(m->builder);

    assert_int_equal(m->pid, 777);
    assert_string_equal(m->role, "steps");
    assert_int_equal(m->nthreads, 2);
    assert_int_equal(m->threads[0].index, 0); /* registration order */
    assert_int_equal(m->threads[0].os_tid, 11);
    assert_int_equal(m->threads[1].os_tid, 22);
    assert_int_equal(m->threads[1].pid, 777);
    assert_int_equal(m->events_total, 8);
    assert_int_equal(m->dropped_events, 1);
    assert_int_equal(m->alloc_failures, 2);
    char *j = render(m);
    assert_non_null(strstr(j, "\"allocation_failures\":2,"));
    free(j);
    assert_int_equal(m->nnodes, 3 + 3);
    /* thread 0's tree: root -> a (100) -> b (30) */
    const cp_mnode *ra = &m->nodes[m->nodes[m->threads[0].root].first_child];
    assert_string_equal(cp_model_site(m, ra->site)->name, "step_a");
    assert_int_equal(ra->incl_ns, 100);
    assert_int_equal(ra->self_ns, 70);
    assert_int_equal(m->nodes[m->threads[0].root].incl_ns, 100);
    const cp_mfunc *fb = func_named(m, "step_b");
    assert_non_null(fb);
    assert_int_equal(fb->calls, 2);
    assert_int_equal(fb->incl_ns, 50);
    assert_int_equal(fb->min_ns, 20);
    assert_int_equal(fb->max_ns, 30);
    /* sorted by inclusive time */
    assert_string_equal(cp_model_site(m, m->funcs[0].site)->name, "step_a");
    /* three sites, no more: every use of a global id maps to one index */
    assert_int_equal(m->sites.n, 4);
    /* a finished model takes no more trees */
    cp_thread_tree *t2 = cp_tree_new(64, 10, 0);
    assert_int_equal(cp_model_add_tree(m, t2, 1, 2, 0, 0), -1);
    cp_tree_free(t2);
    cp_model_free(m);

    /* an unfinished model frees cleanly */
    cp_model *u = cp_model_begin(&cfg, 1, NULL, 0);
    assert_non_null(u);
    assert_string_equal(u->role, "");
    cp_thread_tree *t3 = cp_tree_new(64, 10, 0);
    cp_tree_fold(t3, e0, 4);
    assert_int_equal(cp_model_add_tree(u, t3, 1, 0, 4, 0), 0);
    cp_tree_free(t3);
    cp_model_free(u);
}

/* ---- merge ------------------------------------------------------------------------ */

/* Two runs that share "m_alpha" and "m_beta" but meet the sites in another
 * order, so their model indices differ. */
static cp_model *run_a(void) {
    codeprof_session *s = new_session();
    uint32_t alpha = gsite("m_alpha", "merge.c", 1, CODEPROF_SITE_SCOPE);
    uint32_t beta = gsite("m_beta", "merge.c", 2, CODEPROF_SITE_SCOPE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    calls(s, alpha, 4, 1000);
    calls(s, beta, 1, 5000);
    codeprof_session_stop(s);
    cp_model *m = snapshot(s);
    codeprof_session_free(s);
    return m;
}

static cp_model *run_b(void) {
    codeprof_session *s = new_session();
    uint32_t gamma = gsite("m_gamma", "merge.c", 3, CODEPROF_SITE_SCOPE);
    uint32_t beta = gsite("m_beta", "merge.c", 2, CODEPROF_SITE_SCOPE);
    uint32_t alpha = gsite("m_alpha", "merge.c", 1, CODEPROF_SITE_SCOPE);
    /* same name, other file: another site */
    uint32_t alpha2 = gsite("m_alpha", "other.c", 1, CODEPROF_SITE_SCOPE);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    calls(s, gamma, 2, 300);
    calls(s, beta, 3, 2000);
    calls(s, alpha, 6, 500);
    calls(s, alpha2, 1, 700);
    codeprof_session_stop(s);
    cp_model *m = snapshot(s);
    codeprof_session_free(s);
    return m;
}

static void test_merge_two_runs(void **state) {
    (void)state;
    cp_model *a = run_a();
    cp_model *b = run_b();
    assert_int_not_equal(index_of(a, "m_alpha"), index_of(b, "m_alpha"));
    uint64_t ev_a = a->events_total, ev_b = b->events_total;
    uint32_t nodes_a = a->nnodes, threads_a = a->nthreads, threads_b = b->nthreads;
    a->findings = calloc(1, sizeof *a->findings); /* stale findings are dropped */
    a->nfindings = a->cap_findings = 1;

    assert_int_equal(cp_model_merge(a, b, 3), 0);
    assert_int_equal(a->nthreads, threads_a + threads_b);
    assert_int_equal(a->nnodes, nodes_a + b->nnodes);
    assert_int_equal(a->events_total, ev_a + ev_b);
    assert_int_equal(a->merged, 1);
    assert_int_equal(a->nfindings, 0);
    for (uint32_t i = 0; i < a->nthreads; i++)
        assert_int_equal(a->threads[i].worker, i < threads_a ? -1 : 3);

    const cp_mfunc *al = func_named(a, "m_alpha");
    assert_non_null(al);
    /* two "m_alpha" entries: merge.c (4 + 6 calls) and other.c (1 call) */
    uint32_t merged_alpha = 0, other_alpha = 0;
    for (uint32_t i = 0; i < a->nfuncs; i++) {
        const cp_msite *si = cp_model_site(a, a->funcs[i].site);
        if (strcmp(si->name, "m_alpha") != 0)
            continue;
        if (strcmp(si->file, "merge.c") == 0) {
            merged_alpha++;
            assert_int_equal(a->funcs[i].calls, 10);
            assert_int_equal(a->funcs[i].incl_ns, 4 * 1000 + 6 * 500);
            assert_int_equal(a->funcs[i].min_ns, 500);
            assert_int_equal(a->funcs[i].max_ns, 1000);
            /* both sides had it: the percentile lies between the parts' */
            assert_true(a->funcs[i].p50_ns >= 500 && a->funcs[i].p50_ns <= 1000);
        } else {
            other_alpha++;
            assert_int_equal(a->funcs[i].calls, 1);
        }
    }
    assert_int_equal(merged_alpha, 1);
    assert_int_equal(other_alpha, 1);
    assert_int_equal(func_named(a, "m_beta")->calls, 4);
    assert_int_equal(func_named(a, "m_beta")->max_ns, 5000);
    assert_int_equal(func_named(a, "m_gamma")->calls, 2);
    assert_true(a->approx_percentiles);
    /* sorted by inclusive time after the merge */
    for (uint32_t i = 1; i < a->nfuncs; i++)
        assert_true(a->funcs[i - 1].incl_ns >= a->funcs[i].incl_ns);
    /* nodes of b point at a's sites and a's node indices */
    for (uint32_t i = nodes_a; i < a->nnodes; i++) {
        const cp_mnode *n = &a->nodes[i];
        if (n->parent != CP_NONE)
            assert_true(n->parent >= nodes_a && n->parent < a->nnodes);
        if (n->site)
            assert_non_null(cp_model_site(a, n->site));
    }
    char *j = render(a);
    /* schema v2: the worker's thread, its nodes referring to the site table */
    const char *wt = strstr(j, "\"worker\":3,\"inclusive_s\":");
    assert_non_null(wt);
    assert_non_null(strstr(wt, "\"children\":[{\"site\":"));
    assert_non_null(strstr(j, "\"merged_models\":1,\"approximate_percentiles\":true"));
    free(j);
    /* the source is untouched and still renders */
    assert_int_equal(b->merged, 0);
    char *jb = render(b);
    free(jb);
    cp_model_free(b);
    cp_model_free(a);
}

static void test_merge_strings_idempotent(void **state) {
    (void)state;
    cp_model *a = run_a();
    cp_model *b = run_b();
    assert_int_equal(cp_model_merge(a, b, -1), 0);
    uint32_t nsites = a->sites.n;
    uint64_t bytes = a->sites.string_bytes;
    assert_int_equal(nsites, 1 + 4);
    assert_int_equal(cp_model_merge(a, b, -1), 0); /* same sites again */
    assert_int_equal(a->sites.n, nsites);
    assert_int_equal(a->sites.string_bytes, bytes);
    assert_int_equal(func_named(a, "m_gamma")->calls, 4);
    assert_int_equal(a->merged, 2);
    for (uint32_t i = 0; i < a->nthreads; i++)
        assert_int_equal(a->threads[i].worker, -1); /* -1: tags kept */
    /* a merged model merges again: the counter carries over */
    cp_model *c = run_a();
    assert_int_equal(cp_model_merge(c, a, -1), 0);
    assert_int_equal(c->merged, 3);
    assert_int_equal(func_named(c, "m_alpha")->calls, 4 + (4 + 2 * 6));
    /* refused: a model into itself, an unfinished model */
    assert_int_equal(cp_model_merge(c, c, -1), -1);
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cp_model *u = cp_model_begin(&cfg, 1, "u", 0);
    assert_int_equal(cp_model_merge(c, u, -1), -1);
    assert_int_equal(cp_model_merge(u, c, -1), -1);
    cp_model_free(u);
    cp_model_free(c);
    cp_model_free(b);
    cp_model_free(a);
}

/* Hand-built data sections. */
static cp_mdataset *add_dataset(cp_model *m, const char *name, uint64_t items, uint64_t each_ns) {
    cp_mdata *d = &m->data;
    d->datasets = realloc(d->datasets, (d->ndatasets + 1) * sizeof *d->datasets);
    assert_non_null(d->datasets);
    cp_mdataset *ds = &d->datasets[d->ndatasets++];
    memset(ds, 0, sizeof *ds);
    ds->site = fx_site(m, name, "data.py", 1, CODEPROF_SITE_DATASET);
    ds->items = items;
    ds->sum_ns = items * each_ns;
    ds->min_ns = ds->p50_ns = ds->p95_ns = ds->p99_ns = ds->max_ns = each_ns;
    ds->distinct_indices = items;
    ds->bottleneck_indices = calloc(CP_MAX_BOTTLENECKS, sizeof *ds->bottleneck_indices);
    ds->bottleneck_ns = calloc(CP_MAX_BOTTLENECKS, sizeof *ds->bottleneck_ns);
    ds->bottleneck_epochs = calloc(CP_MAX_BOTTLENECKS, sizeof *ds->bottleneck_epochs);
    assert_non_null(ds->bottleneck_epochs);
    d->item_ns_total += ds->sum_ns;
    return ds;
}

static void add_outlier(cp_mdataset *ds, int64_t index, uint64_t ns) {
    uint32_t k = ds->nbottlenecks++;
    ds->bottleneck_indices[k] = index;
    ds->bottleneck_ns[k] = ns;
    ds->bottleneck_epochs[k] = 1;
    if (ns > ds->max_ns)
        ds->max_ns = ns;
}

static void add_stage(cp_model *m, const char *name, codeprof_site_kind k, uint64_t calls,
                      uint64_t sum_ns) {
    cp_mdata *d = &m->data;
    d->stages = realloc(d->stages, (d->nstages + 1) * sizeof *d->stages);
    assert_non_null(d->stages);
    cp_mstage *st = &d->stages[d->nstages++];
    memset(st, 0, sizeof *st);
    st->site = fx_site(m, name, "data.py", 2, k);
    st->calls = calls;
    st->sum_ns = sum_ns;
    st->max_ns = sum_ns / calls;
}

static void add_worker(cp_model *m, int32_t worker, int32_t pid, uint64_t items) {
    cp_mdata *d = &m->data;
    d->workers = realloc(d->workers, (d->nworkers + 1) * sizeof *d->workers);
    assert_non_null(d->workers);
    cp_mworker *w = &d->workers[d->nworkers++];
    memset(w, 0, sizeof *w);
    w->worker = worker;
    w->pid = pid;
    w->items = items;
}

static cp_mloader *add_loader(cp_model *m, uint64_t batches, uint64_t wait_ns, uint64_t step_ns) {
    cp_mdata *d = &m->data;
    d->loaders = realloc(d->loaders, (d->nloaders + 1) * sizeof *d->loaders);
    assert_non_null(d->loaders);
    cp_mloader *L = &d->loaders[d->nloaders++];
    memset(L, 0, sizeof *L);
    L->site = fx_site(m, "train_loader", "data.py", 3, CODEPROF_SITE_LOADER);
    L->batches = batches;
    L->items = batches * 4;
    L->epochs = 1;
    L->steps = batches - 1;
    L->wait_ns = wait_ns * batches;
    L->first_wait_ns = wait_ns;
    L->step_ns = step_ns * (batches - 1);
    L->wait_p50_ns = L->wait_p95_ns = L->wait_max_ns = wait_ns;
    cp_mloader_derive(L);
    return L;
}

/* The parent: a tree, its loader, a dataset loaded in the main process. */
static cp_model *parent_model(void) {
    cp_model *m = fx_model();
    m->pid = 100;
    uint32_t root = fx_thread(m, 1);
    uint32_t train = fx_site(m, "train", "t.py", 1, CODEPROF_SITE_PYTHON);
    fx_node(m, root, train, 1, FX_S(2), FX_S(2));
    fx_func(m, train, 1, FX_S(2), FX_S(2), FX_S(2));
    m->events_total = 100;
    cp_mdataset *ds = add_dataset(m, "Clips", 10, 1000000);
    add_outlier(ds, 7, 9000000);
    add_stage(m, "decode", CODEPROF_SITE_PREPROCESS, 10, 4000000);
    add_worker(m, -1, 100, 10);
    add_loader(m, 5, 2000000, 8000000);
    return m;
}

/* A worker: its own view of the same dataset, another stage. */
static cp_model *worker_model(void) {
    cp_model *m = fx_model();
    m->pid = 201;
    uint32_t flip = fx_site(m, "flip", "data.py", 2, CODEPROF_SITE_AUGMENT);
    uint32_t root = fx_thread(m, 2);
    fx_node(m, root, flip, 30, FX_S(0.003), FX_S(0.003));
    fx_func(m, flip, 30, FX_S(0.003), FX_S(0.003), FX_S(0.0002));
    m->events_total = 60;
    m->dropped_nodes = 2;
    m->alloc_failures = 1;
    cp_mdataset *ds = add_dataset(m, "Clips", 30, 3000000);
    add_outlier(ds, 9, 20000000);
    add_outlier(ds, 7, 8000000);
    add_stage(m, "flip", CODEPROF_SITE_AUGMENT, 30, 3000000);
    add_stage(m, "decode", CODEPROF_SITE_PREPROCESS, 30, 60000000);
    add_worker(m, -1, 201, 30);
    add_loader(m, 3, 1000000, 8000000);
    return m;
}

static void test_merge_data_section(void **state) {
    (void)state;
    cp_model *p = parent_model();
    cp_model *w = worker_model();
    assert_int_equal(cp_model_merge(p, w, 2), 0);
    const cp_mdata *d = &p->data;
    assert_int_equal(d->ndatasets, 1); /* by site */
    const cp_mdataset *ds = &d->datasets[0];
    assert_string_equal(cp_model_site(p, ds->site)->name, "Clips");
    assert_int_equal(ds->items, 40);
    assert_int_equal(ds->sum_ns, 10 * 1000000ull + 30 * 3000000ull);
    assert_int_equal(ds->min_ns, 1000000);
    assert_int_equal(ds->max_ns, 20000000);
    assert_int_equal(ds->distinct_indices, 30);
    /* outliers: slowest first, index 7 seen on both sides */
    assert_int_equal(ds->nbottlenecks, 2);
    assert_int_equal(ds->bottleneck_indices[0], 9);
    assert_int_equal(ds->bottleneck_indices[1], 7);
    assert_int_equal(ds->bottleneck_epochs[1], 2);
    assert_int_equal(ds->bottleneck_ns[1], 9000000);
    assert_int_equal(ds->repeat_slow, 1);
    assert_true(ds->p50_ns > 1000000 && ds->p50_ns < 3000000); /* weighted: 2.5 ms */
    assert_int_equal(ds->p50_ns, 2500000);
    assert_int_equal(d->item_ns_total, ds->sum_ns);

    /* stages summed by site, shares recomputed, sorted */
    assert_int_equal(d->nstages, 2);
    assert_string_equal(cp_model_site(p, d->stages[0].site)->name, "decode");
    assert_int_equal(d->stages[0].calls, 40);
    assert_int_equal(d->stages[0].sum_ns, 64000000);
    assert_true(d->stages[0].share_of_item_time == 64000000.0 / 100000000.0);
    assert_string_equal(cp_model_site(p, d->stages[1].site)->name, "flip");
    assert_true(d->stages[1].share_of_item_time == 3000000.0 / 100000000.0);

    /* workers appended, the worker's own "main" entry tagged */
    assert_int_equal(d->nworkers, 2);
    assert_int_equal(d->workers[0].worker, -1);
    assert_int_equal(d->workers[0].pid, 100);
    assert_int_equal(d->workers[1].worker, 2);
    assert_int_equal(d->workers[1].pid, 201);

    /* loaders by site: sums exact, derived values recomputed */
    assert_int_equal(d->nloaders, 1);
    const cp_mloader *L = &d->loaders[0];
    assert_int_equal(L->batches, 8);
    assert_int_equal(L->epochs, 2);
    assert_int_equal(L->wait_ns, 5 * 2000000ull + 3 * 1000000ull);
    assert_int_equal(L->step_ns, 4 * 8000000ull + 2 * 8000000ull);
    double steady = (double)(L->wait_ns - L->first_wait_ns);
    assert_true(L->stall_fraction == steady / (steady + (double)L->step_ns));

    /* meta and threads */
    assert_int_equal(p->events_total, 160);
    assert_int_equal(p->dropped_nodes, 2);
    assert_int_equal(p->alloc_failures, 1);
    assert_int_equal(p->nthreads, 2);
    assert_int_equal(p->threads[1].worker, 2);
    assert_int_equal(p->threads[1].pid, 201);
    assert_int_equal(p->nfuncs, 2);

    /* the merged model analyses and renders */
    assert_int_equal(cp_rules_run(p), 0);
    char *j = render(p);
    assert_non_null(strstr(j, "\"pid\":201,\"worker\":2"));
    free(j);
    cp_model_free(w);
    cp_model_free(p);
}

static void test_merge_out_of_memory_leaves_dst_intact(void **state) {
    (void)state;
#ifndef CP_FAULTS
    skip();
#else
    long failures = 0;
    /* pass 0: every allocation, site interning included; pass 1: src's
     * sites already in dst, so a failed merge must give back every block
     * it took */
    for (int pass = 0; pass < 2; pass++) {
        for (long n = 0;; n++) {
            cp_model *p = parent_model();
            cp_model *w = worker_model();
            if (pass == 1)
                for (uint32_t i = 1; i < w->sites.n; i++) {
                    const cp_msite *si = cp_model_site(w, i);
                    fx_site(p, si->name, si->file, si->line, (codeprof_site_kind)si->kind);
                }
            char *before = render(p);
            uint32_t nnodes = p->nnodes, nthreads = p->nthreads;
            fault_hits = 0;
            long live = live_blocks;
            fault_arm(n);
            int rc = cp_model_merge(p, w, 1);
            fault_disarm();
            if (pass == 1 && rc != 0)
                assert_int_equal(live_blocks, live);
            if (fault_hits == 0) {
                assert_int_equal(rc, 0); /* every allocation of the merge got through */
                assert_int_equal(p->nnodes, nnodes + w->nnodes);
                free(before);
                cp_model_free(w);
                cp_model_free(p);
                break;
            }
            failures++;
            assert_int_equal(rc, -1);
            assert_int_equal(p->nnodes, nnodes);
            assert_int_equal(p->nthreads, nthreads);
            assert_int_equal(p->merged, 0);
            char *after = render(p);
            assert_string_equal(before, after);
            free(after);
            free(before);
            /* and a retry with memory succeeds */
            assert_int_equal(cp_model_merge(p, w, 1), 0);
            assert_int_equal(p->data.datasets[0].items, 40);
            cp_model_free(w);
            cp_model_free(p);
        }
    }
    assert_true(failures >= 16); /* every allocation of the merge was failed once */

    /* construction: a failed step leaves a model cp_model_free takes */
    uint32_t a = gsite("oom_a", "oom.c", 1, CODEPROF_SITE_SCOPE);
    cp_event e[] = {ev(CP_EV_ENTER, a, 0), ev(CP_EV_EXIT, a, 10)};
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    for (long n = 0;; n++) {
        cp_thread_tree *t = cp_tree_new(64, 10, 1);
        assert_non_null(t);
        cp_tree_fold(t, e, 2);
        fault_hits = 0;
        fault_arm(n);
        cp_model *m = cp_model_begin(&cfg, 1, "oom", 0);
        int rc = m ? cp_model_add_tree(m, t, 1, 0, 2, 0) : -1;
        if (rc == 0)
            rc = cp_model_finish(m, NULL);
        long hits = fault_hits;
        fault_disarm();
        cp_tree_free(t);
        if (hits == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(func_named(m, "oom_a")->calls, 1);
            cp_model_free(m);
            break;
        }
        assert_int_equal(rc, -1);
        cp_model_free(m);
    }
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_site_table_interns_and_copies),
        cmocka_unit_test(test_model_outlives_its_session),
        cmocka_unit_test(test_build_in_steps_from_trees),
        cmocka_unit_test(test_merge_two_runs),
        cmocka_unit_test(test_merge_strings_idempotent),
        cmocka_unit_test(test_merge_data_section),
        cmocka_unit_test(test_merge_out_of_memory_leaves_dst_intact),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
