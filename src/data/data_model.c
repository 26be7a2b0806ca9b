/* data_model.c -- data-loading statistics from item, stage and batch
 * records (data_model.h).  Worker spools are decoded by spool_reader.c
 * (plain read(2), every field checked): the parent never maps or writes
 * them, and a spool that is missing, short, not a regular file or corrupt
 * is counted in spool_errors and skipped, never fatal. */
#include "data/data_model.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/reservoir.h"
#include "data/datalog.h"
#include "data/outliers.h"
#include "data/spool_reader.h"
#include "model/build.h"

typedef struct item {
    uint32_t site;
    uint32_t proc;   /* index into the process table */
    int64_t index;
    uint64_t t_ns, dur_ns;
    int failed;
} item;

typedef struct batch {
    uint32_t site;
    uint32_t epoch;
    uint32_t proc;   /* index into the process table */
    int64_t items;
    uint64_t t_ns, dur_ns;
} batch;

typedef struct stage {
    uint32_t site;
    uint64_t dur_ns;
} stage;

typedef struct collect {
    item *items;
    size_t nitems, cap_items;
    batch *batches;
    size_t nbatches, cap_batches;
    stage *stages;
    size_t nstages, cap_stages;
    cp_mworker *procs;
    uint32_t nprocs, cap_procs;
    int oom;
    uint32_t cur_proc;  /* the process whose records are being read */
    int local;          /* records carry this process's site ids        */
    cp_model *m;        /* the model being built: owns the sites        */
    cp_dagg *aggs;      /* the main log's records past its cap */
    size_t naggs, cap_aggs;
} collect;

#define GROW(arr, n, cap, oomflag)                                                                 \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            size_t ncap_ = (cap) ? (cap) * 2 : 64;                                                 \
            void *np_ = realloc((arr), ncap_ * sizeof *(arr));                                     \
            if (!np_) {                                                                            \
                (oomflag) = 1;                                                                     \
                break;                                                                             \
            }                                                                                      \
            (arr) = np_;                                                                           \
            (cap) = ncap_;                                                                         \
        }                                                                                          \
    } while (0)

static void on_record(const cp_drec *r, void *ctx) {
    collect *c = ctx;
    if (r->type != CP_DREC_ITEM && r->type != CP_DREC_BATCH && r->type != CP_DREC_STAGE)
        return;
    /* This process's records carry process-wide (or session) ids, mapped
     * into the model here; a spool's were mapped by spool_site below. */
    uint32_t site = r->u.r.site;
    if (c->local && site) {
        site = cp_model_map_site(c->m, site);
        if (!site)
            c->oom = 1;
    }
    if (!site)
        return;
    if (r->type == CP_DREC_ITEM) {
        GROW(c->items, c->nitems, c->cap_items, c->oom);
        if (c->oom)
            return;
        item *it = &c->items[c->nitems++];
        it->site = site;
        it->proc = c->cur_proc;
        it->index = r->u.r.index;
        it->t_ns = r->u.r.t_ns;
        it->dur_ns = r->u.r.dur_ns;
        it->failed = (r->flags & CP_DRECF_FAILED) != 0;
        cp_mworker *w = &c->procs[c->cur_proc];
        w->items++;
        w->failures += (uint64_t)it->failed;
        w->busy_ns += it->dur_ns;
    } else if (r->type == CP_DREC_BATCH) {
        /* A wait that ended in StopIteration (or an error) is the end of an
         * epoch, not a batch. */
        if (r->flags & CP_DRECF_FAILED)
            return;
        GROW(c->batches, c->nbatches, c->cap_batches, c->oom);
        if (c->oom)
            return;
        batch *b = &c->batches[c->nbatches++];
        b->site = site;
        b->proc = c->cur_proc;
        b->epoch = r->u.r.epoch;
        b->items = r->u.r.index;
        b->t_ns = r->u.r.t_ns;
        b->dur_ns = r->u.r.dur_ns;
    } else {
        GROW(c->stages, c->nstages, c->cap_stages, c->oom);
        if (c->oom)
            return;
        c->stages[c->nstages].site = site;
        c->stages[c->nstages].dur_ns = r->u.r.dur_ns;
        c->nstages++;
    }
}

static int add_proc(collect *c, int32_t worker, int32_t pid, int incomplete) {
    GROW(c->procs, c->nprocs, c->cap_procs, c->oom);
    if (c->oom)
        return -1;
    cp_mworker *w = &c->procs[c->nprocs];
    memset(w, 0, sizeof *w);
    w->worker = worker;
    w->pid = pid;
    w->incomplete = incomplete;
    c->cur_proc = c->nprocs++;
    return 0;
}

/* A spool's sites go into the model (never the process-wide table). */
static uint32_t spool_site(void *ctx, const char *name, const char *file, uint32_t line,
                           codeprof_site_kind kind) {
    collect *c = ctx;
    return cp_model_intern_site(c->m, name, file, line, (uint16_t)kind);
}

static void spool_record(void *ctx, const cp_drec *r) { on_record(r, ctx); }

/* Reads one spool file (src/data/spool_reader.c decodes and checks it);
 * returns 0, or -1 if it is not a readable spool. */
static int read_spool(collect *c, const char *path) {
    uint32_t proc = c->nprocs;
    if (add_proc(c, -1, 0, 1) != 0)
        return -1;
    cp_spool_visitor v = {spool_site, spool_record, c};
    cp_spool_info info;
    cp_spool_status st = cp_spool_read_file(path, &v, &info);
    if (st != CP_SPOOL_OK && st != CP_SPOOL_ENOMEM) {
        c->nprocs = proc; /* nothing was recorded for it */
        return -1;
    }
    cp_mworker *w = &c->procs[proc];
    w->worker = info.worker;
    w->pid = info.pid;
    w->incomplete = !info.closed || info.error != 0 || info.truncated || st != CP_SPOOL_OK;
    w->spool_errno = info.error;
    w->spool_dropped = info.dropped;
    w->spool_bad = info.bad;
    if (info.error)
        snprintf(w->reason, sizeof w->reason, "%s: %s (errno %d)", cp_spool_op_name(info.error_op),
                 strerror(info.error), (int)info.error);
    else if (st == CP_SPOOL_ENOMEM)
        snprintf(w->reason, sizeof w->reason, "out of memory while reading the spool");
    else if (info.truncated)
        snprintf(w->reason, sizeof w->reason, "spool larger than the read limit or unreadable");
    else if (!info.closed)
        snprintf(w->reason, sizeof w->reason, "worker exited without closing its spool");
    return 0;
}

static int cmp_item_site_dur(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    return (x->dur_ns < y->dur_ns) ? 1 : (x->dur_ns > y->dur_ns) ? -1 : 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_batch(const void *a, const void *b) {
    const batch *x = a, *y = b;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
}

static int cmp_stage_site(const void *a, const void *b) {
    const stage *x = a, *y = b;
    return (x->site > y->site) - (x->site < y->site);
}

static int cmp_mstage(const void *a, const void *b) {
    const cp_mstage *x = a, *y = b;
    return (x->sum_ns < y->sum_ns) - (x->sum_ns > y->sum_ns);
}

static const double q3[3] = {0.50, 0.95, 0.99};

static int cmp_mrecord_t(const void *a, const void *b) {
    const cp_mrecord *x = a, *y = b;
    if (x->t_ns != y->t_ns)
        return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The timed records of the trace export (cp_mdata.records): every item
 * load and batch wait, sorted by start; past CP_MAX_DATA_RECORDS the first
 * and the last halves are kept and the middle counted in records_dropped.
 * Returns 0, or -1 on OOM. */
static int build_records(cp_mdata *d, const collect *c) {
    size_t n = c->nitems + c->nbatches;
    if (!n)
        return 0;
    cp_mrecord *r = malloc(n * sizeof *r);
    if (!r)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < c->nitems; i++, k++) {
        const item *it = &c->items[i];
        memset(&r[k], 0, sizeof r[k]);
        r[k].type = CP_MREC_ITEM;
        r[k].t_ns = it->t_ns;
        r[k].dur_ns = it->dur_ns;
        r[k].index = it->index;
        r[k].site = it->site;
        r[k].pid = c->procs[it->proc].pid;
        r[k].worker = c->procs[it->proc].worker;
        r[k].failed = (uint16_t)it->failed;
    }
    for (size_t i = 0; i < c->nbatches; i++, k++) {
        const batch *b = &c->batches[i];
        memset(&r[k], 0, sizeof r[k]);
        r[k].type = CP_MREC_BATCH;
        r[k].t_ns = b->t_ns;
        r[k].dur_ns = b->dur_ns;
        r[k].index = b->items;
        r[k].site = b->site;
        r[k].epoch = b->epoch;
        r[k].pid = c->procs[b->proc].pid;
        r[k].worker = c->procs[b->proc].worker;
    }
    qsort(r, n, sizeof *r, cmp_mrecord_t);
    if (n > CP_MAX_DATA_RECORDS) {
        size_t head = CP_MAX_DATA_RECORDS / 2, tail = CP_MAX_DATA_RECORDS - head;
        memmove(r + head, r + n - tail, tail * sizeof *r);
        d->records_dropped = n - CP_MAX_DATA_RECORDS;
        n = CP_MAX_DATA_RECORDS;
        cp_mrecord *shrunk = realloc(r, n * sizeof *r);
        if (shrunk)
            r = shrunk;
    }
    d->records = r;
    d->nrecords = (uint32_t)n;
    return 0;
}

/* Items of one dataset: items[lo, hi), sorted by duration, descending. */
static int build_dataset(cp_mdataset *d, const item *it, size_t n, double slow_s) {
    memset(d, 0, sizeof *d);
    d->site = it[0].site;
    d->items = n;
    d->min_ns = it[n - 1].dur_ns;
    d->max_ns = it[0].dur_ns;
    uint64_t *durs = malloc(n * sizeof *durs);
    int64_t *idx = malloc(n * sizeof *idx);
    if (!durs || !idx) {
        free(durs);
        free(idx);
        return -1;
    }
    uint64_t slow_ns = (uint64_t)(slow_s * 1e9);
    for (size_t i = 0; i < n; i++) {
        durs[i] = it[i].dur_ns;
        idx[i] = it[i].index;
        d->sum_ns += it[i].dur_ns;
        d->failures += (uint64_t)it[i].failed;
        if (it[i].dur_ns > slow_ns)
            d->slow_loads++;
    }
    uint64_t p[3];
    cp_percentiles(durs, (uint32_t)n, q3, 3, p);
    d->p50_ns = p[0];
    d->p95_ns = p[1];
    d->p99_ns = p[2];
    qsort(idx, n, sizeof *idx, cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || idx[i] != idx[i - 1])
            d->distinct_indices++;
    free(durs);
    free(idx);

    /* Outlier indices: median + k x MAD (outliers.h), slowest first. */
    cp_outlier_load *loads = malloc(n * sizeof *loads);
    if (!loads)
        return -1;
    for (size_t i = 0; i < n; i++) {
        loads[i].index = it[i].index;
        loads[i].dur_ns = it[i].dur_ns;
    }
    int rc = cp_outliers_find(d, loads, n, slow_ns);
    free(loads);
    return rc;
}

static void build_loader(cp_mloader *L, const batch *b, size_t n, cp_session *s, cp_model *m) {
    memset(L, 0, sizeof *L);
    L->site = b[0].site;
    for (uint32_t i = 0; i < s->nloaders; i++) {
        if (cp_model_map_site(m, s->loaders[i].site) == L->site) {
            const codeprof_loader_desc *d = &s->loaders[i].desc;
            L->desc.described = 1;
            L->desc.num_workers = d->num_workers;
            L->desc.batch_size = d->batch_size;
            L->desc.prefetch_factor = d->prefetch_factor;
            L->desc.pin_memory = d->pin_memory;
            L->desc.persistent_workers = d->persistent_workers;
            L->desc.uses_gpu = d->uses_gpu;
            L->desc.iterable = d->iterable;
        }
    }
    uint64_t *waits = malloc(n * sizeof *waits);
    for (size_t i = 0; i < n; i++) {
        L->batches++;
        if (b[i].items > 0)
            L->items += (uint64_t)b[i].items;
        L->wait_ns += b[i].dur_ns;
        if (b[i].dur_ns > L->wait_max_ns)
            L->wait_max_ns = b[i].dur_ns;
        if (waits)
            waits[i] = b[i].dur_ns;
        int new_epoch = i == 0 || b[i].epoch != b[i - 1].epoch;
        if (new_epoch) {
            L->epochs++;
            L->first_wait_ns += b[i].dur_ns;
        } else {
            uint64_t prev_end = b[i - 1].t_ns + b[i - 1].dur_ns;
            L->step_ns += b[i].t_ns > prev_end ? b[i].t_ns - prev_end : 0;
            L->steps++;
        }
    }
    if (waits) {
        uint64_t p[3];
        cp_percentiles(waits, (uint32_t)n, q3, 3, p);
        L->wait_p50_ns = p[0];
        L->wait_p95_ns = p[1];
        free(waits);
    }
    cp_mloader_derive(L);
}


static void on_agg(const cp_dagg *a, void *ctx) {
    collect *c = ctx;
    uint32_t site = a->site ? cp_model_map_site(c->m, a->site) : 0;
    if (!site)
        return;
    GROW(c->aggs, c->naggs, c->cap_aggs, c->oom);
    if (!c->oom) {
        c->aggs[c->naggs] = *a;
        c->aggs[c->naggs++].site = site;
    }
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return b > UINT64_MAX - a ? UINT64_MAX : a + b; }

/* Item loads past the log's cap: counts, sums, extremes, failures and slow
 * loads join the dataset's (percentiles and outliers come from the stored
 * records only).  Returns -1 on OOM. */
static int merge_item_aggs(cp_mdata *d, collect *c) {
    for (size_t k = 0; k < c->naggs; k++) {
        const cp_dagg *a = &c->aggs[k];
        if (a->type != CP_DREC_ITEM || !a->count)
            continue;
        uint32_t i = 0;
        while (i < d->ndatasets && d->datasets[i].site != a->site)
            i++;
        if (i == d->ndatasets) {
            cp_mdataset *nd = realloc(d->datasets, (size_t)(i + 1) * sizeof *nd);
            if (!nd)
                return -1;
            d->datasets = nd;
            memset(&nd[i], 0, sizeof nd[i]);
            nd[i].site = a->site;
            nd[i].min_ns = a->min_ns;
            d->ndatasets++;
        }
        cp_mdataset *ds = &d->datasets[i];
        ds->items += a->count;
        ds->sum_ns = sat_add(ds->sum_ns, a->sum_ns);
        ds->failures += a->failures;
        ds->slow_loads += a->slow;
        if (a->max_ns > ds->max_ns)
            ds->max_ns = a->max_ns;
        if (a->min_ns < ds->min_ns)
            ds->min_ns = a->min_ns;
        d->item_ns_total = sat_add(d->item_ns_total, a->sum_ns);
        cp_mworker *w = &c->procs[0]; /* the main process's log */
        w->items += a->count;
        w->failures += a->failures;
        w->busy_ns = sat_add(w->busy_ns, a->sum_ns);
    }
    return 0;
}

static int merge_batch_aggs(cp_mdata *d, collect *c) {
    for (size_t k = 0; k < c->naggs; k++) {
        const cp_dagg *a = &c->aggs[k];
        if (a->type != CP_DREC_BATCH || !a->count)
            continue;
        uint32_t i = 0;
        while (i < d->nloaders && d->loaders[i].site != a->site)
            i++;
        if (i == d->nloaders) {
            cp_mloader *nl = realloc(d->loaders, (size_t)(i + 1) * sizeof *nl);
            if (!nl)
                return -1;
            d->loaders = nl;
            memset(&nl[i], 0, sizeof nl[i]);
            nl[i].site = a->site;
            d->nloaders++;
        }
        cp_mloader *L = &d->loaders[i];
        L->batches += a->count;
        L->items += a->items;
        L->wait_ns = sat_add(L->wait_ns, a->sum_ns);
        if (a->max_ns > L->wait_max_ns)
            L->wait_max_ns = a->max_ns;
        L->epochs += a->epochs;
        L->first_wait_ns = sat_add(L->first_wait_ns, a->first_wait_ns);
        L->steps += a->steps;
        L->step_ns = sat_add(L->step_ns, a->step_ns);
        cp_mloader_derive(L);
    }
    return 0;
}

static int merge_stage_aggs(cp_mdata *d, collect *c) {
    for (size_t k = 0; k < c->naggs; k++) {
        const cp_dagg *a = &c->aggs[k];
        if (a->type != CP_DREC_STAGE || !a->count)
            continue;
        uint32_t i = 0;
        while (i < d->nstages && d->stages[i].site != a->site)
            i++;
        if (i == d->nstages) {
            cp_mstage *ns = realloc(d->stages, (size_t)(i + 1) * sizeof *ns);
            if (!ns)
                return -1;
            d->stages = ns;
            memset(&ns[i], 0, sizeof ns[i]);
            ns[i].site = a->site;
            d->nstages++;
        }
        cp_mstage *st = &d->stages[i];
        st->calls += a->count;
        st->sum_ns = sat_add(st->sum_ns, a->sum_ns);
        if (a->max_ns > st->max_ns)
            st->max_ns = a->max_ns;
    }
    return 0;
}

int cp_data_build(cp_model *m, cp_session *s) {
    collect c;
    memset(&c, 0, sizeof c);
    cp_mdata *d = &m->data;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    d->cpu_count = ncpu > 0 ? (uint32_t)ncpu : 1;

    c.m = m;
    if (add_proc(&c, -1, s->pid, 0) != 0)
        goto oom;
    c.local = 1;
    cp_datalog_foreach(s->log, on_record, &c);
    cp_datalog_foreach_agg(s->log, on_agg, &c);
    c.local = 0;
    cp_datalog_counters(s->log, &d->aggregated_records, &d->records_lost_oom);

    if (s->spool_dir) {
        DIR *dir = opendir(s->spool_dir);
        if (dir) {
            struct dirent *de;
            uint32_t nread = 0;
            size_t sl = strlen(CP_SPOOL_SUFFIX);
            while ((de = readdir(dir))) {
                size_t nl = strlen(de->d_name);
                if (nl <= sl || strcmp(de->d_name + nl - sl, CP_SPOOL_SUFFIX) != 0)
                    continue;
                if (atoi(de->d_name) == s->pid)
                    continue; /* our own spool (a worker reporting) */
                if (nread++ >= CP_SPOOL_MAX_FILES) { /* bounds the model's sums */
                    d->spool_errors++;
                    continue;
                }
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", s->spool_dir, de->d_name);
                if (read_spool(&c, path) != 0)
                    d->spool_errors++;
            }
            closedir(dir);
        }
    }
    if (c.oom)
        goto oom;

    /* processes: first item start to last item end */
    {
        uint64_t *lo = calloc(c.nprocs, sizeof *lo), *hi = calloc(c.nprocs, sizeof *hi);
        if (!lo || !hi) {
            free(lo);
            free(hi);
            goto oom;
        }
        for (size_t i = 0; i < c.nitems; i++) {
            uint32_t p = c.items[i].proc;
            uint64_t end = c.items[i].t_ns + c.items[i].dur_ns;
            if (!lo[p] || c.items[i].t_ns < lo[p])
                lo[p] = c.items[i].t_ns;
            if (end > hi[p])
                hi[p] = end;
        }
        for (size_t k = 0; k < c.naggs; k++) { /* the main log's items past its cap */
            const cp_dagg *a = &c.aggs[k];
            if (a->type != CP_DREC_ITEM || !a->count)
                continue;
            if (!lo[0] || a->t_lo < lo[0])
                lo[0] = a->t_lo;
            if (a->t_hi > hi[0])
                hi[0] = a->t_hi;
        }
        for (uint32_t p = 0; p < c.nprocs; p++)
            c.procs[p].span_ns = hi[p] > lo[p] ? hi[p] - lo[p] : 0;
        free(lo);
        free(hi);
    }

    /* timed records (before items and batches are re-sorted below) */
    if (build_records(d, &c) != 0)
        goto oom;

    /* datasets */
    if (c.nitems) {
        qsort(c.items, c.nitems, sizeof *c.items, cmp_item_site_dur);
        size_t ngroups = 0;
        for (size_t i = 0; i < c.nitems; i++)
            if (i == 0 || c.items[i].site != c.items[i - 1].site)
                ngroups++;
        d->datasets = calloc(ngroups, sizeof *d->datasets);
        if (!d->datasets)
            goto oom;
        size_t lo = 0;
        for (size_t i = 1; i <= c.nitems; i++) {
            if (i == c.nitems || c.items[i].site != c.items[lo].site) {
                if (build_dataset(&d->datasets[d->ndatasets++], &c.items[lo], i - lo,
                                  m->cfg.slow_data_loading_s) != 0)
                    goto oom;
                d->item_ns_total += d->datasets[d->ndatasets - 1].sum_ns;
                lo = i;
            }
        }
    }

    if (merge_item_aggs(d, &c) != 0)
        goto oom;

    /* loaders */
    if (c.nbatches) {
        qsort(c.batches, c.nbatches, sizeof *c.batches, cmp_batch);
        size_t ngroups = 0;
        for (size_t i = 0; i < c.nbatches; i++)
            if (i == 0 || c.batches[i].site != c.batches[i - 1].site)
                ngroups++;
        d->loaders = calloc(ngroups, sizeof *d->loaders);
        if (!d->loaders)
            goto oom;
        size_t lo = 0;
        for (size_t i = 1; i <= c.nbatches; i++) {
            if (i == c.nbatches || c.batches[i].site != c.batches[lo].site) {
                build_loader(&d->loaders[d->nloaders++], &c.batches[lo], i - lo, s, m);
                lo = i;
            }
        }
    }

    if (merge_batch_aggs(d, &c) != 0)
        goto oom;

    /* stages */
    if (c.nstages) {
        qsort(c.stages, c.nstages, sizeof *c.stages, cmp_stage_site);
        size_t ngroups = 0;
        for (size_t i = 0; i < c.nstages; i++)
            if (i == 0 || c.stages[i].site != c.stages[i - 1].site)
                ngroups++;
        d->stages = calloc(ngroups, sizeof *d->stages);
        if (!d->stages)
            goto oom;
        for (size_t i = 0; i < c.nstages; i++) {
            if (i == 0 || c.stages[i].site != c.stages[i - 1].site) {
                d->stages[d->nstages].site = c.stages[i].site;
                d->nstages++;
            }
            cp_mstage *st = &d->stages[d->nstages - 1];
            st->calls++;
            st->sum_ns += c.stages[i].dur_ns;
            if (c.stages[i].dur_ns > st->max_ns)
                st->max_ns = c.stages[i].dur_ns;
        }
    }
    if (merge_stage_aggs(d, &c) != 0)
        goto oom;
    for (uint32_t i = 0; i < d->nstages; i++)
        d->stages[i].share_of_item_time =
            d->item_ns_total ? (double)d->stages[i].sum_ns / (double)d->item_ns_total : 0;
    if (d->nstages)
        qsort(d->stages, d->nstages, sizeof *d->stages, cmp_mstage);

    /* workers: keep the main process only if it loaded items itself */
    d->workers = c.procs;
    d->nworkers = c.nprocs;
    if (d->nworkers && d->workers[0].items == 0) {
        memmove(d->workers, d->workers + 1, (d->nworkers - 1) * sizeof *d->workers);
        d->nworkers--;
    }
    c.procs = NULL;
    free(c.items);
    free(c.batches);
    free(c.stages);
    free(c.aggs);
    return 0;

oom:
    free(c.items);
    free(c.batches);
    free(c.stages);
    free(c.procs);
    free(c.aggs);
    return -1;
}
