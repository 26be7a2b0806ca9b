/* build.c -- construction of a cp_model from thread trees and a session
 * (build.h).  The one place that maps process-wide site ids to model
 * indices. */
#include "model/build.h"
#include "gpu/gpu_session.h"
#include "memory/mem_session.h"
#include "sampling/sample_session.h"
#include "sampling/samplesink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/site.h"
#include "core/timeline.h"
#include "core/u32map.h"
#include "core/warnings.h"
#include "data/datalog.h"
#include "data/data_model.h"
#include "model/model_io.h"

#define T2NS(x) cp_clock_ticks_to_ns(x)

static const double pct_q[3] = {0.50, 0.95, 0.99};

/* Construction state, freed by cp_model_finish / cp_model_free. */
typedef struct cp_model_builder {
    cp_u32map gmap;       /* site id (any 32-bit value) -> model index        */
    cp_mfunc *funcs;      /* flat table by model index                        */
    cp_reservoir *fres;   /* per model index: union of its nodes' samples     */
    uint32_t cap_funcs;
    uint32_t cap_nodes, cap_threads;
    int oom;              /* set by the per-site callback                     */
} cp_model_builder;

void cp_model_builder_free(struct cp_model_builder *b) {
    if (!b)
        return;
    for (uint32_t i = 0; i < b->cap_funcs; i++)
        cp_reservoir_free(&b->fres[i]);
    free(b->fres);
    free(b->funcs);
    cp_u32map_free(&b->gmap);
    free(b);
}

cp_model *cp_model_begin(const codeprof_config *cfg, int pid, const char *role,
                         uint64_t start_unix_ns) {
    cp_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->builder = calloc(1, sizeof *m->builder);
    if (!m->builder) {
        free(m);
        return NULL;
    }
    m->cfg = *cfg;
    m->pid = pid;
    if (role) {
        strncpy(m->role, role, sizeof m->role - 1);
        m->role[sizeof m->role - 1] = '\0';
    }
    m->clock_source = cp_clock_source();
    m->start_unix_ns = start_unix_ns;
    return m;
}

/* Makes the builder's per-index arrays cover model index `idx`. */
static int cover_funcs(cp_model_builder *b, uint32_t idx) {
    if (idx < b->cap_funcs)
        return 0;
    uint32_t ncap = b->cap_funcs ? b->cap_funcs : 64;
    while (ncap <= idx)
        ncap *= 2;
    cp_mfunc *nf = realloc(b->funcs, (size_t)ncap * sizeof *nf);
    if (!nf)
        return -1;
    b->funcs = nf;
    cp_reservoir *nr = realloc(b->fres, (size_t)ncap * sizeof *nr);
    if (!nr)
        return -1;
    b->fres = nr;
    memset(nf + b->cap_funcs, 0, (size_t)(ncap - b->cap_funcs) * sizeof *nf);
    memset(nr + b->cap_funcs, 0, (size_t)(ncap - b->cap_funcs) * sizeof *nr);
    b->cap_funcs = ncap;
    return 0;
}

uint32_t cp_model_map_site(cp_model *m, uint32_t gid) {
    cp_model_builder *b = m->builder;
    if (gid == 0 || !b)
        return 0;
    uint32_t idx;
    if (cp_u32map_get(&b->gmap, gid, &idx))
        return idx;
    const cp_site_info *si = cp_site_get(gid);
    idx = si ? cp_msite_intern(&m->sites, si->name, si->file, si->line, si->kind)
             : cp_msite_intern(&m->sites, "?", "", 0, CODEPROF_SITE_SCOPE);
    if (!idx || cp_u32map_put(&b->gmap, gid, idx) != 0)
        return 0;
    return idx;
}

typedef struct func_ctx {
    cp_model *m;
} func_ctx;

static void add_func(uint32_t gsite, const cp_tfunc *tf, void *ctx) {
    cp_model *m = ((func_ctx *)ctx)->m;
    cp_model_builder *b = m->builder;
    uint32_t site = cp_model_map_site(m, gsite);
    if (!site || cover_funcs(b, site) != 0) {
        b->oom = 1;
        return;
    }
    cp_mfunc *f = &b->funcs[site];
    if (f->calls == 0 || T2NS(tf->min_t) < f->min_ns)
        f->min_ns = T2NS(tf->min_t);
    if (T2NS(tf->max_t) > f->max_ns)
        f->max_ns = T2NS(tf->max_t);
    if (tf->rss_count && (f->rss_count == 0 || tf->rss_delta_max > f->rss_delta_max))
        f->rss_delta_max = tf->rss_delta_max;
    f->calls += tf->calls;
    f->incl_ns += T2NS(tf->incl_t);
    f->self_ns += T2NS(tf->self_t);
    f->cpu_ns += tf->cpu_ns;
    f->cpu_count += tf->cpu_count;
    f->rss_delta_sum += tf->rss_delta_sum;
    f->rss_count += tf->rss_count;
}

/* Room for `need` nodes; `grow`: double past it (trees added one by one),
 * else exactly `need` (the whole model's count known up front, so the
 * array is neither copied nor over-allocated). */
static int reserve_nodes(cp_model *m, uint64_t need, int grow) {
    cp_model_builder *b = m->builder;
    if (need <= b->cap_nodes)
        return 0;
    uint64_t ncap = grow ? (b->cap_nodes ? b->cap_nodes : 1024) : need;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    if (ncap < need)
        return -1;
    cp_mnode *nn = realloc(m->nodes, (size_t)ncap * sizeof *nn);
    if (!nn)
        return -1;
    m->nodes = nn;
    b->cap_nodes = (uint32_t)ncap;
    return 0;
}

int cp_model_reserve_nodes(cp_model *m, uint64_t need) {
    return m->builder ? reserve_nodes(m, need, 1) : -1;
}

int cp_model_reserve_threads(cp_model *m, uint32_t need) {
    cp_model_builder *b = m->builder;
    if (!b)
        return -1;
    if (need <= b->cap_threads)
        return 0;
    uint32_t ncap = b->cap_threads ? b->cap_threads : 16;
    while (ncap < need)
        ncap *= 2;
    cp_mthread *nt = realloc(m->threads, (size_t)ncap * sizeof *nt);
    if (!nt)
        return -1;
    m->threads = nt;
    b->cap_threads = ncap;
    return 0;
}

int cp_model_add_tree(cp_model *m, const cp_thread_tree *t, uint64_t os_tid, uint32_t index,
                      uint64_t events, uint64_t dropped) {
    cp_model_builder *b = m->builder;
    if (!b || t->nnodes == 0)
        return b ? 0 : -1;
    if (m->nnodes > UINT32_MAX - t->nnodes || reserve_nodes(m, m->nnodes + t->nnodes, 1) != 0)
        return -1;
    if (m->nthreads == b->cap_threads) {
        uint32_t ncap = b->cap_threads ? b->cap_threads * 2 : 16;
        cp_mthread *nt = realloc(m->threads, (size_t)ncap * sizeof *nt);
        if (!nt)
            return -1;
        m->threads = nt;
        b->cap_threads = ncap;
    }

    /* Map every site first, so a failure leaves nothing half-added. */
    for (uint32_t i = 1; i < t->nnodes; i++)
        if (!cp_model_map_site(m, t->nodes[i].site) && t->nodes[i].site)
            return -1;

    uint32_t base = m->nnodes;
    for (uint32_t i = 0; i < t->nnodes; i++) {
        const cp_tnode *tn = &t->nodes[i];
        cp_mnode *mn = &m->nodes[base + i];
        memset(mn, 0, sizeof *mn);
        mn->site = cp_model_map_site(m, tn->site);
        mn->parent = tn->parent == CP_TREE_NO_NODE ? CP_NONE : base + tn->parent;
        mn->first_child = tn->first_child == CP_TREE_NO_NODE ? CP_NONE : base + tn->first_child;
        mn->next_sibling = tn->next_sibling == CP_TREE_NO_NODE ? CP_NONE : base + tn->next_sibling;
        mn->depth = tn->depth;
        mn->count = tn->count;
        mn->incl_ns = T2NS(tn->incl_t);
        mn->self_ns = T2NS(tn->self_t);
        mn->cpu_ns = tn->cpu_ns;
        mn->cpu_count = tn->cpu_count;
        mn->min_ns = tn->count ? T2NS(tn->min_t) : 0;
        mn->max_ns = T2NS(tn->max_t);
        mn->truncated = tn->truncated;
        mn->rss_delta_sum = tn->rss_delta_sum;
        mn->rss_delta_max = tn->rss_delta_max;
        mn->rss_count = tn->rss_count;
        /* p50/p95/p99 of a node stay 0: no writer or rule reads them (the
         * report's tree has none since schema 2), and selecting them was
         * half of a snapshot's cost.  Per-site percentiles come below. */
    }
    /* The root's inclusive time is the sum of its top-level calls. */
    cp_mnode *root = &m->nodes[base];
    for (uint32_t c = root->first_child; c != CP_NONE; c = m->nodes[c].next_sibling)
        root->incl_ns += m->nodes[c].incl_ns;
    m->nnodes = base + t->nnodes;

    cp_mthread *mt = &m->threads[m->nthreads++];
    memset(mt, 0, sizeof *mt);
    mt->os_tid = os_tid;
    mt->pid = m->pid;
    mt->worker = -1;
    mt->index = index;
    mt->root = base;
    mt->events = events;
    mt->dropped = dropped;
    m->events_total += events;
    m->dropped_events += dropped;
    m->dropped_nodes += t->dropped_nodes;
    m->unmatched_exits += t->unmatched_exits;
    m->truncated += t->truncated;
    m->alloc_failures += t->oom;

    func_ctx fc = {m};
    cp_tree_func_foreach(t, add_func, &fc);
    if (b->oom)
        return -1;
    /* Per-site samples: the union of the site's node reservoirs (exact
     * while every node holds all its calls). */
    for (uint32_t i = 1; i < t->nnodes; i++) {
        uint32_t site = m->nodes[base + i].site;
        if (cover_funcs(b, site) != 0 || cp_reservoir_extend(&b->fres[site], &t->nodes[i].res) != 0)
            return -1;
    }
    return 0;
}

static int cmp_func_incl(const void *a, const void *b) {
    const cp_mfunc *x = a, *y = b;
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

static int cmp_thread_index(const void *a, const void *b) {
    const cp_mthread *x = a, *y = b;
    if (x->index != y->index)
        return (x->index > y->index) - (x->index < y->index);
    return (x->root > y->root) - (x->root < y->root); /* order added */
}

int cp_model_finish(cp_model *m, cp_session *s) {
    cp_model_builder *b = m->builder;
    if (!b)
        return -1;
    /* Flat table: one entry per site with calls, sorted by inclusive time.
     * Percentiles come from the node samples concatenated (exact while
     * every node's reservoir holds all its calls). */
    uint32_t nf = 0;
    for (uint32_t site = 1; site < b->cap_funcs; site++)
        nf += b->funcs[site].calls > 0;
    m->funcs = calloc(nf ? nf : 1, sizeof *m->funcs);
    if (!m->funcs)
        return -1;
    for (uint32_t site = 1; site < b->cap_funcs; site++) {
        if (!b->funcs[site].calls)
            continue;
        cp_mfunc *f = &m->funcs[m->nfuncs++];
        *f = b->funcs[site];
        f->site = site;
        uint64_t p[3];
        cp_percentiles_select(b->fres[site].v, b->fres[site].n, pct_q, 3, p);
        f->p50_ns = T2NS(p[0]);
        f->p95_ns = T2NS(p[1]);
        f->p99_ns = T2NS(p[2]);
    }
    qsort(m->funcs, m->nfuncs, sizeof *m->funcs, cmp_func_incl);
    /* Threads in registration order (roots keep their node indices). */
    if (m->nthreads > 1)
        qsort(m->threads, m->nthreads, sizeof *m->threads, cmp_thread_index);

    if (s) {
        m->duration_ns = T2NS(cp_session_running_ticks(s));
        if (cp_data_build(m, s) != 0)
            return -1;
        if (cp_mem_model_build(m, s) != 0)
            return -1;
        if (cp_samp_model_build(m, s) != 0)
            return -1;
        if (cp_gpu_model_build(m, s) != 0)
            return -1;
    }
    cp_model_builder_free(b);
    m->builder = NULL;
    return 0;
}

/* One tree the model is built from: a live thread's. */
typedef struct tree_src {
    const cp_tbuf *t;
    uint32_t index;
} tree_src;

static int cmp_src(const void *a, const void *b) {
    const tree_src *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* A model's timeline is self-contained: model sites, and ticks as
 * CLOCK_MONOTONIC ns, the axis of the data records and workers.  Converts
 * `n` events in place; -1 on OOM. */
static int timeline_to_model(cp_model *m, cp_tl_event *ev, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        cp_tl_event *e = &ev[i];
        e->tick = cp_tick_to_mono_ns(e->tick);
        if (e->site && !(e->site = cp_model_map_site(m, e->site)))
            return -1;
    }
    return 0;
}

/* Called by cp_session_snapshot with agg_mu held and every buffer
 * consumed: live threads in registration order, then the merged tree of
 * the threads that exited, then the engine's counters and the timeline. */
cp_model *cp_model_build(cp_session *s) {
    char role[sizeof s->role];
    pthread_mutex_lock(&s->mu); /* set_role writes it under mu */
    memcpy(role, s->role, sizeof role);
    pthread_mutex_unlock(&s->mu);
    cp_model *m = cp_model_begin(&s->cfg, s->pid, role, atomic_load(&s->start_unix_ns));
    if (!m)
        return NULL;
    uint32_t n = 0;
    for (const cp_tbuf *t = atomic_load_explicit(&s->bufs, memory_order_acquire); t; t = t->next)
        n++;
    tree_src *src = calloc(n ? n : 1, sizeof *src);
    if (!src)
        goto fail;
    n = 0;
    for (const cp_tbuf *t = atomic_load_explicit(&s->bufs, memory_order_acquire); t; t = t->next)
        src[n++] = (tree_src){t, t->thread_index};
    qsort(src, n, sizeof *src, cmp_src);
    uint64_t total = s->exited ? s->exited->nnodes : 0;
    for (uint32_t i = 0; i < n; i++)
        total += src[i].t->tree->nnodes;
    if (total > UINT32_MAX || reserve_nodes(m, total, 0) != 0)
        goto fail;
    /* The sampler thread's buffer holds only CP_EV_SAMPLE events (folded
     * into the sampled threads' trees): it is no thread of the report; its
     * counters still count.  The tree of exited threads is left out the same
     * way when it is only a root and samples were taken (the sampler thread
     * exits at stop). */
    const cp_samplesink *ssink = cp_samp_session_sink(s);
    for (uint32_t i = 0; i < n; i++) {
        const cp_tbuf *t = src[i].t;
        if (t->tree->nnodes <= 1 && cp_samplesink_only_samples(ssink, t->os_tid, t->events_total)) {
            m->events_total += t->events_total;
            m->dropped_full += atomic_load_explicit(&t->dropped_full, memory_order_relaxed);
            continue;
        }
        uint64_t paused = atomic_load_explicit(&t->dropped_paused, memory_order_relaxed);
        uint64_t full = atomic_load_explicit(&t->dropped_full, memory_order_relaxed);
        uint64_t reent = atomic_load_explicit(&t->dropped_reentrant, memory_order_relaxed);
        if (cp_model_add_tree(m, t->tree, t->os_tid, t->thread_index, t->events_total, paused) != 0)
            goto fail;
        m->threads[m->nthreads - 1].dropped += full + reent;
        m->dropped_full += full;
        m->dropped_reentrant += reent;
        m->dropped_samples += t->tree->dropped_samples;
    }
    free(src);
    src = NULL;
    if (s->exited && s->exited->nnodes <= 1 && cp_samplesink_count(ssink) > 0) {
        m->events_total += s->exited_events;
        m->dropped_full += s->exited_full;
    } else if (s->exited) {
        /* index UINT32_MAX: "exited threads", after the live ones */
        if (cp_model_add_tree(m, s->exited, 0, UINT32_MAX, s->exited_events, s->exited_paused) != 0)
            goto fail;
        m->threads[m->nthreads - 1].dropped += s->exited_full + s->exited_reentrant;
        m->dropped_full += s->exited_full;
        m->dropped_reentrant += s->exited_reentrant;
        m->dropped_samples += s->exited->dropped_samples;
    }
    m->exited_threads = s->nexited;
    m->dropped_nothread = atomic_load_explicit(&s->dropped_nothread, memory_order_relaxed);
    m->dropped_sites = cp_session_sites_dropped(s);
    m->pool_buffers = cp_pool_allocated(&s->pool);
    m->python_traced = atomic_load_explicit(&s->python_traced, memory_order_relaxed) != 0;
    m->hidden_calls = atomic_load_explicit(&s->hidden_calls, memory_order_relaxed);
    if (s->timeline) {
        m->timeline = cp_timeline_copy(&s->timeline->scopes, &m->ntimeline);
        m->timeline_dropped = s->timeline->scopes.dropped;
        m->timeline_traced = cp_timeline_copy(&s->timeline->traced, &m->ntimeline_traced);
        m->timeline_traced_dropped = s->timeline->traced.dropped;
        m->timeline_traced_seam = m->timeline_traced ? cp_timeline_seam(&s->timeline->traced) : 0;
        if (timeline_to_model(m, m->timeline, m->ntimeline) != 0 ||
            timeline_to_model(m, m->timeline_traced, m->ntimeline_traced) != 0)
            goto fail;
    }
    {
        cp_warning w[CP_WARNINGS_MAX];
        size_t nw = cp_session_warnings(s, w, CP_WARNINGS_MAX, &m->warnings_dropped);
        if (nw) {
            m->warnings = calloc(nw, sizeof *m->warnings);
            if (!m->warnings)
                goto fail;
            for (size_t i = 0; i < nw; i++) {
                snprintf(m->warnings[i].code, sizeof m->warnings[i].code, "%s", w[i].code);
                snprintf(m->warnings[i].message, sizeof m->warnings[i].message, "%s",
                         w[i].message);
                m->warnings[i].unix_ns = w[i].unix_ns;
            }
            m->nwarnings = (uint32_t)nw;
        }
    }
    if (cp_model_finish(m, s) != 0)
        goto fail;
    /* The call trees of DataLoader workers that exited cleanly (each wrote
     * "<spool dir>/<pid>.cpmodel" at close): merged here, before any rule
     * runs on the model (cp_model_merge drops findings).  A worker never
     * merges its siblings' models into its own. */
    if (s->spool_dir && s->worker_id < 0)
        cp_model_merge_dir(m, s->spool_dir, s->pid);
    return m;

fail:
    free(src);
    cp_model_free(m);
    return NULL;
}

/* The counter readings of an instrument's own store (a sampler thread's:
 * memory, NVML) appended to the model's timeline, sites mapped into the
 * model (build.h). */
int cp_model_append_counters(cp_model *m, const cp_timeline *tl) {
    if (!tl)
        return 0;
    uint32_t n = 0;
    cp_tl_event *ev = cp_timeline_copy(&tl->scopes, &n);
    if (!n)
        return 0;
    if (!ev || (uint64_t)m->ntimeline + n > UINT32_MAX) {
        free(ev);
        return -1;
    }
    cp_tl_event *nt = realloc(m->timeline, ((size_t)m->ntimeline + n) * sizeof *nt);
    if (!nt) {
        free(ev);
        return -1;
    }
    m->timeline = nt;
    uint32_t k = m->ntimeline;
    for (uint32_t i = 0; i < n; i++) {
        cp_tl_event e = ev[i];
        if (!(e.site = cp_model_map_site(m, e.site)))
            continue;
        nt[k++] = e;
    }
    m->ntimeline = k;
    free(ev);
    return 0;
}
