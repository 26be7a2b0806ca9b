/* model.c -- builds the profile model from the thread trees (build.h) and
 * owns its memory (model.h). */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/site.h"
#include "core/timeline.h"
#include "cpu/cct.h"
#include "data/data_model.h"
#include "model/build.h"

#define T2NS(x) cp_clock_ticks_to_ns(x)

static const double pct_q[3] = {0.50, 0.95, 0.99};

void cp_model_free(cp_model *m) {
    if (!m)
        return;
    for (uint32_t i = 0; i < m->data.ndatasets; i++) {
        free(m->data.datasets[i].bottleneck_indices);
        free(m->data.datasets[i].bottleneck_ns);
        free(m->data.datasets[i].bottleneck_epochs);
    }
    free(m->data.datasets);
    free(m->data.loaders);
    free(m->data.workers);
    free(m->data.stages);
    free(m->nodes);
    free(m->threads);
    free(m->funcs);
    free(m->findings);
    free(m->timeline);
    free(m);
}

int cp_model_add_finding(cp_model *m, const cp_finding *f) {
    if (m->nfindings == m->cap_findings) {
        uint32_t ncap = m->cap_findings ? m->cap_findings * 2 : 16;
        cp_finding *nf = realloc(m->findings, (size_t)ncap * sizeof *nf);
        if (!nf)
            return -1;
        m->findings = nf;
        m->cap_findings = ncap;
    }
    m->findings[m->nfindings++] = *f;
    return 0;
}

void cp_model_sort_findings(cp_model *m) {
    /* insertion sort: stable, and findings are few */
    for (uint32_t i = 1; i < m->nfindings; i++) {
        cp_finding tmp = m->findings[i];
        uint32_t j = i;
        while (j > 0 && m->findings[j - 1].severity < tmp.severity) {
            m->findings[j] = m->findings[j - 1];
            j--;
        }
        m->findings[j] = tmp;
    }
}

/* Percentiles of a reservoir without disturbing it (sorts a scratch copy). */
static void res_pct(const cp_reservoir *r, uint64_t **scratch, uint32_t *scap, uint64_t out[3]) {
    if (r->n > *scap) {
        uint64_t *ns = realloc(*scratch, (size_t)r->n * sizeof *ns);
        if (!ns) {
            out[0] = out[1] = out[2] = 0;
            return;
        }
        *scratch = ns;
        *scap = r->n;
    }
    if (r->n)
        memcpy(*scratch, r->v, (size_t)r->n * sizeof *r->v);
    cp_percentiles(*scratch, r->n, pct_q, 3, out);
}

static int cmp_func_incl(const void *a, const void *b) {
    const cp_mfunc *x = a, *y = b;
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

/* One tree the model is built from: a live thread, or the merged tree of
 * the threads that exited. */
typedef struct tree_src {
    const cp_thread_tree *tree;
    uint64_t os_tid;
    uint32_t index;
    uint64_t events, dropped;
} tree_src;

static int cmp_src(const void *a, const void *b) {
    const tree_src *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* site id -> dense slot, for the flat table (ids may be session-local:
 * never index an array by a site id). */
typedef struct site_map {
    uint32_t *keys, *vals;
    uint32_t cap, n;
} site_map;

static uint32_t smap_slot(site_map *sm, uint32_t site) {
    uint32_t j = (uint32_t)((site * 0x9e3779b97f4a7c15ull) >> 32) & (sm->cap - 1);
    while (sm->keys[j] && sm->keys[j] != site)
        j = (j + 1) & (sm->cap - 1);
    return j;
}

typedef struct func_acc {
    site_map map;
    cp_mfunc *funcs;      /* by dense index */
    cp_reservoir *fres;   /* by dense index */
    uint32_t cap;
    int oom;
} func_acc;

/* Dense index of `site`, created if new; UINT32_MAX when full. */
static uint32_t acc_index(func_acc *a, uint32_t site) {
    uint32_t j = smap_slot(&a->map, site);
    if (a->map.keys[j])
        return a->map.vals[j];
    if (a->map.n >= a->cap)
        return UINT32_MAX;
    a->map.keys[j] = site;
    a->map.vals[j] = a->map.n++;
    return a->map.vals[j];
}

static void acc_func(uint32_t site, const cp_tfunc *tf, void *ctx) {
    func_acc *a = ctx;
    if (!tf->calls || !site)
        return;
    uint32_t i = acc_index(a, site);
    if (i == UINT32_MAX) {
        a->oom = 1;
        return;
    }
    cp_mfunc *f = &a->funcs[i];
    f->site = site;
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

cp_model *cp_model_build(cp_session *s) {
    cp_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = s->cfg;
    m->pid = s->pid;
    memcpy(m->role, s->role, sizeof m->role);
    m->clock_source = cp_clock_source();
    m->start_unix_ns = s->start_unix_ns;
    m->duration_ns = cp_clock_ticks_to_ns(cp_session_running_ticks(s));

    /* The trees: live threads in registration order, then the exited ones. */
    uint32_t nsrc = 0, cap_src = 16;
    tree_src *src = malloc(cap_src * sizeof *src);
    uint64_t *scratch = NULL;
    uint32_t scap = 0;
    func_acc acc = {0};
    if (!src)
        goto oom;
    for (cp_tbuf *t = atomic_load_explicit(&s->bufs, memory_order_acquire); t; t = t->next) {
        if (nsrc == cap_src) {
            tree_src *ns = realloc(src, (size_t)cap_src * 2 * sizeof *ns);
            if (!ns)
                goto oom;
            src = ns;
            cap_src *= 2;
        }
        tree_src *e = &src[nsrc++];
        e->tree = t->tree;
        e->os_tid = t->os_tid;
        e->index = t->thread_index;
        e->events = t->events_total;
        e->dropped = atomic_load_explicit(&t->dropped_paused, memory_order_relaxed) +
                     atomic_load_explicit(&t->dropped_full, memory_order_relaxed) +
                     atomic_load_explicit(&t->dropped_reentrant, memory_order_relaxed);
        m->dropped_events += atomic_load_explicit(&t->dropped_paused, memory_order_relaxed);
        m->dropped_full += atomic_load_explicit(&t->dropped_full, memory_order_relaxed);
        m->dropped_reentrant += atomic_load_explicit(&t->dropped_reentrant, memory_order_relaxed);
    }
    qsort(src, nsrc, sizeof *src, cmp_src);
    if (s->exited) {
        if (nsrc == cap_src) {
            tree_src *ns = realloc(src, (size_t)cap_src * 2 * sizeof *ns);
            if (!ns)
                goto oom;
            src = ns;
            cap_src *= 2;
        }
        tree_src *e = &src[nsrc++];
        e->tree = s->exited;
        e->os_tid = 0;
        e->index = UINT32_MAX; /* "exited threads" */
        e->events = s->exited_events;
        e->dropped = s->exited_paused + s->exited_full + s->exited_reentrant;
        m->dropped_events += s->exited_paused;
        m->dropped_full += s->exited_full;
        m->dropped_reentrant += s->exited_reentrant;
    }
    m->exited_threads = s->nexited;
    m->dropped_nothread = atomic_load_explicit(&s->dropped_nothread, memory_order_relaxed);
    m->dropped_sites = cp_session_sites_dropped(s);
    m->pool_buffers = cp_pool_allocated(&s->pool);
    if (s->timeline) {
        m->timeline = cp_timeline_copy(s->timeline, &m->ntimeline);
        m->timeline_dropped = s->timeline->dropped;
    }

    uint32_t nnodes = 0, nfuncs_max = 0;
    for (uint32_t i = 0; i < nsrc; i++) {
        nnodes += src[i].tree->nnodes;
        nfuncs_max += src[i].tree->nfuncs;
    }
    m->threads = calloc(nsrc ? nsrc : 1, sizeof *m->threads);
    m->nodes = calloc(nnodes ? nnodes : 1, sizeof *m->nodes);
    acc.cap = nfuncs_max ? nfuncs_max : 1;
    acc.map.cap = 16;
    while (acc.map.cap < acc.cap * 2)
        acc.map.cap *= 2;
    acc.map.keys = calloc(acc.map.cap, sizeof *acc.map.keys);
    acc.map.vals = calloc(acc.map.cap, sizeof *acc.map.vals);
    acc.funcs = calloc(acc.cap, sizeof *acc.funcs);
    acc.fres = calloc(acc.cap, sizeof *acc.fres);
    if (!m->threads || !m->nodes || !acc.map.keys || !acc.map.vals || !acc.funcs || !acc.fres)
        goto oom;

    uint32_t base = 0;
    for (uint32_t ti = 0; ti < nsrc; ti++) {
        const cp_thread_tree *t = src[ti].tree;
        cp_mthread *mt = &m->threads[m->nthreads++];
        mt->os_tid = src[ti].os_tid;
        mt->index = src[ti].index;
        mt->root = base;
        mt->events = src[ti].events;
        mt->dropped = src[ti].dropped;
        m->events_total += src[ti].events;
        m->dropped_nodes += t->dropped_nodes;
        m->dropped_samples += t->dropped_samples;
        m->unmatched_exits += t->unmatched_exits;
        m->truncated += t->truncated;
        m->oom += t->oom;
        for (uint32_t i = 0; i < t->nnodes; i++) {
            const cp_tnode *tn = &t->nodes[i];
            cp_mnode *mn = &m->nodes[base + i];
            mn->site = tn->site;
            mn->parent = tn->parent == CP_TREE_NO_NODE ? CP_NONE : base + tn->parent;
            mn->first_child = tn->first_child == CP_TREE_NO_NODE ? CP_NONE : base + tn->first_child;
            mn->next_sibling =
                tn->next_sibling == CP_TREE_NO_NODE ? CP_NONE : base + tn->next_sibling;
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
            uint64_t p[3];
            res_pct(&tn->res, &scratch, &scap, p);
            mn->p50_ns = T2NS(p[0]);
            mn->p95_ns = T2NS(p[1]);
            mn->p99_ns = T2NS(p[2]);
        }
        /* The root's inclusive time is the sum of its top-level calls. */
        cp_mnode *root = &m->nodes[base];
        for (uint32_t c = root->first_child; c != CP_NONE; c = m->nodes[c].next_sibling)
            root->incl_ns += m->nodes[c].incl_ns;
        base += t->nnodes;

        cp_tree_func_foreach(t, acc_func, &acc);
        /* Per-site samples: the union of the site's node reservoirs
         * (exact while every node holds all its calls). */
        for (uint32_t i = 1; i < t->nnodes; i++) {
            uint32_t j = smap_slot(&acc.map, t->nodes[i].site);
            if (acc.map.keys[j] && cp_reservoir_extend(&acc.fres[acc.map.vals[j]],
                                                       &t->nodes[i].res) != 0)
                goto oom;
        }
    }
    m->nnodes = base;

    /* Flat table: one entry per site with calls, sorted by inclusive time.
     * Percentiles come from the threads' reservoirs concatenated (exact
     * while every thread's reservoir holds all its calls). */
    m->funcs = calloc(acc.map.n ? acc.map.n : 1, sizeof *m->funcs);
    if (!m->funcs)
        goto oom;
    for (uint32_t i = 0; i < acc.map.n; i++) {
        if (!acc.funcs[i].calls)
            continue;
        cp_mfunc *f = &m->funcs[m->nfuncs++];
        *f = acc.funcs[i];
        uint64_t p[3];
        cp_percentiles(acc.fres[i].v, acc.fres[i].n, pct_q, 3, p);
        f->p50_ns = T2NS(p[0]);
        f->p95_ns = T2NS(p[1]);
        f->p99_ns = T2NS(p[2]);
    }
    qsort(m->funcs, m->nfuncs, sizeof *m->funcs, cmp_func_incl);

    for (uint32_t i = 0; i < acc.cap; i++)
        cp_reservoir_free(&acc.fres[i]);
    free(acc.fres);
    free(acc.funcs);
    free(acc.map.keys);
    free(acc.map.vals);
    free(scratch);
    free(src);
    if (cp_data_build(m, s) != 0) {
        cp_model_free(m);
        return NULL;
    }
    return m;

oom:
    if (acc.fres)
        for (uint32_t i = 0; i < acc.cap; i++)
            cp_reservoir_free(&acc.fres[i]);
    free(acc.fres);
    free(acc.funcs);
    free(acc.map.keys);
    free(acc.map.vals);
    free(scratch);
    free(src);
    cp_model_free(m);
    return NULL;
}
