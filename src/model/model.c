/* model.c -- builds the profile model from the thread trees (build.h) and
 * owns its memory (model.h). */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/site.h"
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

    uint32_t nthreads = 0, nnodes = 0, nsites = cp_site_count();
    for (cp_tbuf *b = s->bufs; b; b = b->next) {
        nthreads++;
        nnodes += b->tree->nnodes;
    }
    m->threads = calloc(nthreads ? nthreads : 1, sizeof *m->threads);
    m->nodes = calloc(nnodes ? nnodes : 1, sizeof *m->nodes);
    cp_mfunc *funcs = calloc((size_t)nsites + 1, sizeof *funcs);
    cp_reservoir *fres = calloc((size_t)nsites + 1, sizeof *fres);
    uint64_t *scratch = NULL;
    uint32_t scap = 0;
    if (!m->threads || !m->nodes || !funcs || !fres)
        goto oom;

    /* Threads in registration order. */
    cp_tbuf **order = calloc(nthreads ? nthreads : 1, sizeof *order);
    if (!order)
        goto oom;
    for (cp_tbuf *b = s->bufs; b; b = b->next)
        order[b->thread_index < nthreads ? b->thread_index : 0] = b;

    uint32_t base = 0;
    for (uint32_t ti = 0; ti < nthreads; ti++) {
        cp_tbuf *b = order[ti];
        if (!b)
            continue;
        cp_thread_tree *t = b->tree;
        cp_mthread *mt = &m->threads[m->nthreads++];
        mt->os_tid = b->os_tid;
        mt->index = b->thread_index;
        mt->root = base;
        mt->events = b->events_total;
        mt->dropped = b->dropped_paused;
        m->events_total += b->events_total;
        m->dropped_events += b->dropped_paused;
        m->dropped_nodes += t->dropped_nodes;
        m->unmatched_exits += t->unmatched_exits;
        m->truncated += t->truncated;
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

        uint32_t lim = t->cap_funcs < nsites + 1 ? t->cap_funcs : nsites + 1;
        for (uint32_t site = 1; site < lim; site++) {
            const cp_tfunc *tf = &t->funcs[site];
            if (!tf->calls)
                continue;
            cp_mfunc *f = &funcs[site];
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
        /* Per-site samples: the union of the site's node reservoirs
         * (exact while every node holds all its calls). */
        for (uint32_t i = 1; i < t->nnodes; i++) {
            uint32_t site = t->nodes[i].site;
            if (site <= nsites && cp_reservoir_extend(&fres[site], &t->nodes[i].res) != 0)
                goto oom_order;
        }
    }
    m->nnodes = base;

    /* Flat table: one entry per site with calls, sorted by inclusive time.
     * Percentiles come from the threads' reservoirs concatenated (exact
     * while every thread's reservoir holds all its calls). */
    uint32_t nf = 0;
    for (uint32_t site = 1; site <= nsites; site++)
        if (funcs[site].calls)
            nf++;
    m->funcs = calloc(nf ? nf : 1, sizeof *m->funcs);
    if (!m->funcs)
        goto oom_order;
    for (uint32_t site = 1; site <= nsites; site++) {
        if (!funcs[site].calls)
            continue;
        cp_mfunc *f = &m->funcs[m->nfuncs++];
        *f = funcs[site];
        f->site = site;
        uint64_t p[3];
        cp_percentiles(fres[site].v, fres[site].n, pct_q, 3, p);
        f->p50_ns = T2NS(p[0]);
        f->p95_ns = T2NS(p[1]);
        f->p99_ns = T2NS(p[2]);
    }
    qsort(m->funcs, m->nfuncs, sizeof *m->funcs, cmp_func_incl);

    free(order);
    for (uint32_t i = 0; i <= nsites; i++)
        cp_reservoir_free(&fres[i]);
    free(fres);
    free(funcs);
    free(scratch);
    if (cp_data_build(m, s) != 0) {
        cp_model_free(m);
        return NULL;
    }
    return m;

oom_order:
    free(order);
oom:
    if (fres)
        for (uint32_t i = 0; i <= nsites; i++)
            cp_reservoir_free(&fres[i]);
    free(fres);
    free(funcs);
    free(scratch);
    cp_model_free(m);
    return NULL;
}
