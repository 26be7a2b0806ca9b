/* model.c -- the model's memory, its own sites, findings, and merging
 * models (model.h).  Construction is in build.c. */
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

static void data_free(cp_mdata *d) {
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        free(d->datasets[i].bottleneck_indices);
        free(d->datasets[i].bottleneck_ns);
        free(d->datasets[i].bottleneck_epochs);
    }
    free(d->datasets);
    free(d->loaders);
    free(d->workers);
    free(d->stages);
    free(d->records);
    memset(d, 0, sizeof *d);
}

void cp_model_free(cp_model *m) {
    if (!m)
        return;
    cp_model_builder_free(m->builder);
    data_free(&m->data);
    cp_mmem_free(&m->mem);
    cp_msamp_free(&m->samp);
    cp_mlines_free(&m->lines);
    cp_mgpu_free(&m->gpu);
    free(m->nodes);
    free(m->threads);
    free(m->funcs);
    free(m->findings);
    free(m->timeline);
    free(m->timeline_traced);
    free(m->warnings);
    cp_msite_table_free(&m->sites);
    free(m);
}

const cp_msite *cp_model_site(const cp_model *m, uint32_t idx) {
    return cp_msite_get(&m->sites, idx);
}

uint32_t cp_model_intern_site(cp_model *m, const char *name, const char *file, uint32_t line,
                              uint16_t kind) {
    return cp_msite_intern(&m->sites, name, file, line, kind);
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
        while (j > 0 && (m->findings[j - 1].saving_s < tmp.saving_s ||
                         (m->findings[j - 1].saving_s == tmp.saving_s &&
                          m->findings[j - 1].severity < tmp.severity))) {
            m->findings[j] = m->findings[j - 1];
            j--;
        }
        m->findings[j] = tmp;
    }
}

void cp_mloader_derive(cp_mloader *L) {
    /* The stall fraction compares waits and steps over the same batches:
     * an epoch's first wait (worker start-up) has no step before it. */
    uint64_t steady_wait = L->wait_ns - L->first_wait_ns;
    L->stall_fraction = 0;
    if (steady_wait + L->step_ns > 0)
        L->stall_fraction = (double)steady_wait / (double)(steady_wait + L->step_ns);
    else if (L->wait_ns > 0)
        L->stall_fraction = 1.0;
    double total_s = (double)(L->wait_ns + L->step_ns) / 1e9;
    L->samples_per_s = L->batches_per_s = 0;
    if (total_s > 0) {
        L->samples_per_s = (double)L->items / total_s;
        L->batches_per_s = (double)L->batches / total_s;
    }
}

/* ---- merge ---------------------------------------------------------------- */

/* Count-weighted mean of two percentile estimates: the merged distribution's
 * quantile lies between the parts' quantiles; this picks a point between
 * them by weight (approximate, see model.h). */
static uint64_t pct_mix(uint64_t a, uint64_t na, uint64_t b, uint64_t nb) {
    if (!nb)
        return a;
    if (!na)
        return b;
    double w = (double)na / ((double)na + (double)nb);
    return (uint64_t)((double)a * w + (double)b * (1.0 - w) + 0.5);
}

static int cmp_func_incl(const void *a, const void *b) {
    const cp_mfunc *x = a, *y = b;
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

static int cmp_mstage(const void *a, const void *b) {
    const cp_mstage *x = a, *y = b;
    if (x->sum_ns != y->sum_ns)
        return (x->sum_ns < y->sum_ns) - (x->sum_ns > y->sum_ns);
    return (x->site > y->site) - (x->site < y->site);
}

static void func_add(cp_mfunc *f, const cp_mfunc *g, int *approx) {
    if (g->calls && (f->calls == 0 || g->min_ns < f->min_ns))
        f->min_ns = g->min_ns;
    if (g->max_ns > f->max_ns)
        f->max_ns = g->max_ns;
    if (f->calls && g->calls)
        *approx = 1;
    f->p50_ns = pct_mix(f->p50_ns, f->calls, g->p50_ns, g->calls);
    f->p95_ns = pct_mix(f->p95_ns, f->calls, g->p95_ns, g->calls);
    f->p99_ns = pct_mix(f->p99_ns, f->calls, g->p99_ns, g->calls);
    if (g->rss_count && (f->rss_count == 0 || g->rss_delta_max > f->rss_delta_max))
        f->rss_delta_max = g->rss_delta_max;
    f->calls += g->calls;
    f->incl_ns += g->incl_ns;
    f->self_ns += g->self_ns;
    f->cpu_ns += g->cpu_ns;
    f->cpu_count += g->cpu_count;
    f->rss_delta_sum += g->rss_delta_sum;
    f->rss_count += g->rss_count;
    f->samples += g->samples;
    f->samples_self += g->samples_self;
    f->samples_running += g->samples_running;
    f->sampled_ns += g->sampled_ns;
    f->sampled_self_ns += g->sampled_self_ns;
}

/* A dataset with its own outlier arrays (capacity 2 * CP_MAX_BOTTLENECKS,
 * so two lists fit before trimming). */
static int dataset_copy(cp_mdataset *d, const cp_mdataset *s, uint32_t site) {
    *d = *s;
    d->site = site;
    size_t cap = 2 * (size_t)CP_MAX_BOTTLENECKS;
    d->bottleneck_indices = calloc(cap, sizeof *d->bottleneck_indices);
    d->bottleneck_ns = calloc(cap, sizeof *d->bottleneck_ns);
    d->bottleneck_epochs = calloc(cap, sizeof *d->bottleneck_epochs);
    if (!d->bottleneck_indices || !d->bottleneck_ns || !d->bottleneck_epochs)
        return -1;
    d->nbottlenecks = s->nbottlenecks < CP_MAX_BOTTLENECKS ? s->nbottlenecks : CP_MAX_BOTTLENECKS;
    for (uint32_t k = 0; k < d->nbottlenecks; k++) {
        d->bottleneck_indices[k] = s->bottleneck_indices[k];
        d->bottleneck_ns[k] = s->bottleneck_ns[k];
        d->bottleneck_epochs[k] = s->bottleneck_epochs[k];
    }
    return 0;
}

static void dataset_add(cp_mdataset *d, const cp_mdataset *s, int *approx) {
    if (d->items && s->items)
        *approx = 1;
    d->p50_ns = pct_mix(d->p50_ns, d->items, s->p50_ns, s->items);
    d->p95_ns = pct_mix(d->p95_ns, d->items, s->p95_ns, s->items);
    d->p99_ns = pct_mix(d->p99_ns, d->items, s->p99_ns, s->items);
    if (s->items && (d->items == 0 || s->min_ns < d->min_ns))
        d->min_ns = s->min_ns;
    if (s->max_ns > d->max_ns)
        d->max_ns = s->max_ns;
    d->items += s->items;
    d->failures += s->failures;
    d->slow_loads += s->slow_loads;
    d->sum_ns += s->sum_ns;
    if (s->distinct_indices > d->distinct_indices)
        d->distinct_indices = s->distinct_indices; /* a lower bound of the union */
    /* Outliers: the same index on both sides sums its epochs; the list is
     * kept slowest first and trimmed to CP_MAX_BOTTLENECKS. */
    uint32_t n = d->nbottlenecks;
    for (uint32_t j = 0; j < s->nbottlenecks && j < CP_MAX_BOTTLENECKS; j++) {
        uint32_t k = 0;
        while (k < d->nbottlenecks && d->bottleneck_indices[k] != s->bottleneck_indices[j])
            k++;
        if (k < d->nbottlenecks) {
            d->bottleneck_epochs[k] += s->bottleneck_epochs[j];
            if (s->bottleneck_ns[j] > d->bottleneck_ns[k])
                d->bottleneck_ns[k] = s->bottleneck_ns[j];
            continue;
        }
        d->bottleneck_indices[n] = s->bottleneck_indices[j];
        d->bottleneck_ns[n] = s->bottleneck_ns[j];
        d->bottleneck_epochs[n] = s->bottleneck_epochs[j];
        n++;
    }
    /* insertion sort by slowest load, descending (stable; n <= 100) */
    for (uint32_t i = 1; i < n; i++) {
        int64_t xi = d->bottleneck_indices[i];
        uint64_t xn = d->bottleneck_ns[i];
        uint32_t xe = d->bottleneck_epochs[i];
        uint32_t j = i;
        while (j > 0 && d->bottleneck_ns[j - 1] < xn) {
            d->bottleneck_indices[j] = d->bottleneck_indices[j - 1];
            d->bottleneck_ns[j] = d->bottleneck_ns[j - 1];
            d->bottleneck_epochs[j] = d->bottleneck_epochs[j - 1];
            j--;
        }
        d->bottleneck_indices[j] = xi;
        d->bottleneck_ns[j] = xn;
        d->bottleneck_epochs[j] = xe;
    }
    d->nbottlenecks = n < CP_MAX_BOTTLENECKS ? n : CP_MAX_BOTTLENECKS;
    d->repeat_slow = 0;
    for (uint32_t k = 0; k < d->nbottlenecks; k++)
        if (d->bottleneck_epochs[k] >= 2)
            d->repeat_slow++;
}

static void loader_add(cp_mloader *L, const cp_mloader *s, int *approx) {
    if (!L->desc.described && s->desc.described)
        L->desc = s->desc;
    if (L->batches && s->batches)
        *approx = 1;
    L->wait_p50_ns = pct_mix(L->wait_p50_ns, L->batches, s->wait_p50_ns, s->batches);
    L->wait_p95_ns = pct_mix(L->wait_p95_ns, L->batches, s->wait_p95_ns, s->batches);
    if (s->wait_max_ns > L->wait_max_ns)
        L->wait_max_ns = s->wait_max_ns;
    L->batches += s->batches;
    L->items += s->items;
    L->epochs += s->epochs;
    L->wait_ns += s->wait_ns;
    L->step_ns += s->step_ns;
    L->steps += s->steps;
    L->first_wait_ns += s->first_wait_ns;
    cp_mloader_derive(L);
}

static int cmp_mrecord(const void *a, const void *b) {
    const cp_mrecord *x = a, *y = b;
    return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

/* Timed records of both sides, in time order, within CP_MAX_DATA_RECORDS
 * (first and last halves).  Returns 0, or -1 on OOM. */
static int records_merge(cp_mdata *out, const cp_mdata *a, const cp_mdata *b,
                         const uint32_t *smap, uint32_t nsmap, int32_t worker_tag) {
    size_t n = (size_t)a->nrecords + b->nrecords;
    out->records_dropped = a->records_dropped + b->records_dropped;
    if (!n)
        return 0;
    cp_mrecord *r = malloc(n * sizeof *r);
    if (!r)
        return -1;
    if (a->nrecords)
        memcpy(r, a->records, a->nrecords * sizeof *r);
    for (uint32_t i = 0; i < b->nrecords; i++) {
        cp_mrecord *x = &r[a->nrecords + i];
        *x = b->records[i];
        x->site = x->site < nsmap ? smap[x->site] : 0;
        if (x->worker == -1 && worker_tag >= 0)
            x->worker = worker_tag;
    }
    qsort(r, n, sizeof *r, cmp_mrecord);
    if (n > CP_MAX_DATA_RECORDS) {
        size_t head = CP_MAX_DATA_RECORDS / 2, tail = CP_MAX_DATA_RECORDS - head;
        memmove(r + head, r + n - tail, tail * sizeof *r);
        out->records_dropped += n - CP_MAX_DATA_RECORDS;
        n = CP_MAX_DATA_RECORDS;
    }
    out->records = r;
    out->nrecords = (uint32_t)n;
    return 0;
}

/* Builds the merged data section into *out (all new memory).  `smap`
 * (nsmap entries) maps src model indices to dst ones; an index outside it
 * maps to 0. */
static int data_merge(cp_mdata *out, const cp_mdata *a, const cp_mdata *b, const uint32_t *smap,
                      uint32_t nsmap, int32_t worker_tag, int *approx) {
    memset(out, 0, sizeof *out);
    out->cpu_count = a->cpu_count > b->cpu_count ? a->cpu_count : b->cpu_count;
    out->spool_errors = a->spool_errors + b->spool_errors;
    out->item_ns_total = a->item_ns_total + b->item_ns_total;

    size_t nd = (size_t)a->ndatasets + b->ndatasets, nl = (size_t)a->nloaders + b->nloaders;
    size_t nw = (size_t)a->nworkers + b->nworkers, ns = (size_t)a->nstages + b->nstages;
    out->datasets = calloc(nd ? nd : 1, sizeof *out->datasets);
    out->loaders = calloc(nl ? nl : 1, sizeof *out->loaders);
    out->workers = calloc(nw ? nw : 1, sizeof *out->workers);
    out->stages = calloc(ns ? ns : 1, sizeof *out->stages);
    if (!out->datasets || !out->loaders || !out->workers || !out->stages)
        return -1;

    for (uint32_t i = 0; i < a->ndatasets; i++) {
        int rc = dataset_copy(&out->datasets[i], &a->datasets[i], a->datasets[i].site);
        out->ndatasets++; /* on failure its arrays are freed with the rest */
        if (rc != 0)
            return -1;
    }
    for (uint32_t i = 0; i < b->ndatasets; i++) {
        uint32_t site = b->datasets[i].site < nsmap ? smap[b->datasets[i].site] : 0;
        uint32_t k = 0;
        while (k < out->ndatasets && out->datasets[k].site != site)
            k++;
        if (k == out->ndatasets) {
            int rc = dataset_copy(&out->datasets[k], &b->datasets[i], site);
            out->ndatasets++;
            if (rc != 0)
                return -1;
        } else {
            dataset_add(&out->datasets[k], &b->datasets[i], approx);
        }
    }

    for (uint32_t i = 0; i < a->nloaders; i++)
        out->loaders[out->nloaders++] = a->loaders[i];
    for (uint32_t i = 0; i < b->nloaders; i++) {
        uint32_t site = b->loaders[i].site < nsmap ? smap[b->loaders[i].site] : 0;
        uint32_t k = 0;
        while (k < out->nloaders && out->loaders[k].site != site)
            k++;
        if (k == out->nloaders) {
            out->loaders[out->nloaders] = b->loaders[i];
            out->loaders[out->nloaders++].site = site;
        } else {
            loader_add(&out->loaders[k], &b->loaders[i], approx);
        }
    }

    for (uint32_t i = 0; i < a->nworkers; i++)
        out->workers[out->nworkers++] = a->workers[i];
    for (uint32_t i = 0; i < b->nworkers; i++) {
        cp_mworker *w = &out->workers[out->nworkers++];
        *w = b->workers[i];
        if (w->worker == -1 && worker_tag >= 0)
            w->worker = worker_tag;
    }

    for (uint32_t i = 0; i < a->nstages; i++)
        out->stages[out->nstages++] = a->stages[i];
    for (uint32_t i = 0; i < b->nstages; i++) {
        uint32_t site = b->stages[i].site < nsmap ? smap[b->stages[i].site] : 0;
        uint32_t k = 0;
        while (k < out->nstages && out->stages[k].site != site)
            k++;
        if (k == out->nstages) {
            out->stages[out->nstages] = b->stages[i];
            out->stages[out->nstages++].site = site;
        } else {
            cp_mstage *st = &out->stages[k];
            st->calls += b->stages[i].calls;
            st->sum_ns += b->stages[i].sum_ns;
            if (b->stages[i].max_ns > st->max_ns)
                st->max_ns = b->stages[i].max_ns;
        }
    }
    for (uint32_t i = 0; i < out->nstages; i++)
        out->stages[i].share_of_item_time =
            out->item_ns_total ? (double)out->stages[i].sum_ns / (double)out->item_ns_total : 0;
    qsort(out->stages, out->nstages, sizeof *out->stages, cmp_mstage);
    return records_merge(out, a, b, smap, nsmap, worker_tag);
}

int cp_model_merge(cp_model *dst, const cp_model *src, int32_t worker_tag) {
    if (!dst || !src || dst == src || dst->builder || src->builder)
        return -1;
    if ((uint64_t)dst->nnodes + src->nnodes > UINT32_MAX - 1 ||
        (uint64_t)dst->nthreads + src->nthreads > UINT32_MAX ||
        (uint64_t)dst->nfuncs + src->nfuncs > UINT32_MAX)
        return -1;
    int rc = -1, approx = 0;
    cp_mnode *nodes = NULL;
    cp_mthread *threads = NULL;
    cp_mfunc *funcs = NULL;
    uint32_t *pos = NULL;
    cp_mdata data;
    memset(&data, 0, sizeof data);
    cp_mgpu gpu; /* the merged GPU section, committed with the rest */
    memset(&gpu, 0, sizeof gpu);

    /* Sites: src index -> dst index, re-interned by (name, file, line, kind). */
    uint32_t *smap = calloc(src->sites.n ? src->sites.n : 1, sizeof *smap);
    if (!smap)
        return -1;
    for (uint32_t i = 1; i < src->sites.n; i++) {
        const cp_msite *s = &src->sites.v[i];
        smap[i] = cp_msite_intern(&dst->sites, s->name, s->file, s->line, s->kind);
        if (!smap[i])
            goto out;
    }

    /* Trees: src's nodes appended after dst's, links and sites remapped. */
    uint32_t base = dst->nnodes;
    nodes = malloc(((size_t)base + src->nnodes + 1) * sizeof *nodes);
    threads = malloc(((size_t)dst->nthreads + src->nthreads + 1) * sizeof *threads);
    if (!nodes || !threads)
        goto out;
    if (base)
        memcpy(nodes, dst->nodes, (size_t)base * sizeof *nodes);
    for (uint32_t i = 0; i < src->nnodes; i++) {
        cp_mnode *n = &nodes[base + i];
        *n = src->nodes[i];
        n->site = n->site < src->sites.n ? smap[n->site] : 0;
        if (n->parent != CP_NONE)
            n->parent += base;
        if (n->first_child != CP_NONE)
            n->first_child += base;
        if (n->next_sibling != CP_NONE)
            n->next_sibling += base;
    }
    if (dst->nthreads)
        memcpy(threads, dst->threads, (size_t)dst->nthreads * sizeof *threads);
    for (uint32_t i = 0; i < src->nthreads; i++) {
        cp_mthread *t = &threads[dst->nthreads + i];
        *t = src->threads[i];
        t->root += base;
        if (t->worker == -1 && worker_tag >= 0)
            t->worker = worker_tag;
    }

    /* Flat table merged by site. */
    pos = calloc(dst->sites.n ? dst->sites.n : 1, sizeof *pos); /* index + 1 */
    funcs = malloc(((size_t)dst->nfuncs + src->nfuncs + 1) * sizeof *funcs);
    if (!pos || !funcs)
        goto out;
    uint32_t nf = 0;
    for (uint32_t i = 0; i < dst->nfuncs; i++) {
        funcs[nf] = dst->funcs[i];
        if (funcs[nf].site < dst->sites.n)
            pos[funcs[nf].site] = nf + 1;
        nf++;
    }
    for (uint32_t i = 0; i < src->nfuncs; i++) {
        const cp_mfunc *g = &src->funcs[i];
        uint32_t site = g->site < src->sites.n ? smap[g->site] : 0;
        if (site && pos[site]) {
            func_add(&funcs[pos[site] - 1], g, &approx);
        } else {
            funcs[nf] = *g;
            funcs[nf].site = site;
            if (site)
                pos[site] = nf + 1;
            nf++;
        }
    }
    qsort(funcs, nf, sizeof *funcs, cmp_func_incl);

    if (data_merge(&data, &dst->data, &src->data, smap, src->sites.n, worker_tag, &approx) != 0)
        goto out;
    if (cp_mgpu_merge_new(&gpu, &dst->gpu, &src->gpu, smap, src->sites.n, dst->cfg.gpu_max_ops,
                          dst->cfg.max_samples) != 0)
        goto out;
    /* The memory section merges last: on success it has changed dst, and
     * nothing after it fails. */
    if (cp_mmem_merge(&dst->mem, &src->mem, smap) != 0)
        goto out;
    /* Then the sections of later instruments (each leaves its own part of
     * dst unchanged when it fails). */
    if (cp_msamp_merge(&dst->samp, &src->samp, smap, worker_tag, dst->cfg.max_samples) != 0 ||
        cp_mlines_merge(&dst->lines, &src->lines, smap) != 0)
        goto out;

    /* Commit: nothing below fails. */
    free(dst->nodes);
    dst->nodes = nodes;
    dst->nnodes = base + src->nnodes;
    nodes = NULL;
    free(dst->threads);
    dst->threads = threads;
    dst->nthreads += src->nthreads;
    threads = NULL;
    free(dst->funcs);
    dst->funcs = funcs;
    dst->nfuncs = nf;
    funcs = NULL;
    data_free(&dst->data);
    dst->data = data;
    memset(&data, 0, sizeof data);
    cp_mgpu_free(&dst->gpu);
    dst->gpu = gpu;
    memset(&gpu, 0, sizeof gpu);

    if (src->start_unix_ns && (!dst->start_unix_ns || src->start_unix_ns < dst->start_unix_ns))
        dst->start_unix_ns = src->start_unix_ns;
    if (src->duration_ns > dst->duration_ns)
        dst->duration_ns = src->duration_ns;
    dst->events_total += src->events_total;
    dst->dropped_events += src->dropped_events;
    dst->dropped_nodes += src->dropped_nodes;
    dst->unmatched_exits += src->unmatched_exits;
    dst->dropped_full += src->dropped_full;
    dst->dropped_reentrant += src->dropped_reentrant;
    dst->dropped_nothread += src->dropped_nothread;
    dst->dropped_samples += src->dropped_samples;
    dst->dropped_sites += src->dropped_sites;
    dst->exited_threads += src->exited_threads;
    dst->pool_buffers += src->pool_buffers;
    dst->python_traced |= src->python_traced;
    dst->hidden_calls += src->hidden_calls;
    dst->timeline_dropped += src->ntimeline; /* src's timeline is not carried over */
    dst->timeline_traced_dropped += src->ntimeline_traced; /* nor its traced calls */
    dst->truncated += src->truncated;
    dst->alloc_failures += src->alloc_failures;
    dst->merged += 1 + src->merged;
    dst->approx_percentiles |= approx | src->approx_percentiles;
    dst->nfindings = 0;
    rc = 0;

out:
    data_free(&data);
    cp_mgpu_free(&gpu);
    free(smap);
    free(pos);
    free(nodes);
    free(threads);
    free(funcs);
    return rc;
}
