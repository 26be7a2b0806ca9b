/* model_gpu.c -- the model's GPU section (model_gpu.h). */
#include "model/model_gpu.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void cp_mgpu_free(cp_mgpu *g) {
    free(g->ops);
    free(g->slow);
    free(g->spans);
    free(g->syncs);
    free(g->devices);
    free(g->samples);
    memset(g, 0, sizeof *g);
}

static uint64_t usat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static int64_t ssat(int64_t a, int64_t b) {
    int64_t r;
    if (!__builtin_add_overflow(a, b, &r))
        return r;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

static uint64_t umax(uint64_t a, uint64_t b) { return a > b ? a : b; }

static uint32_t map_site(uint32_t site, const uint32_t *smap, uint32_t nsmap) {
    return site < nsmap && smap ? smap[site] : 0;
}

/* An op's time as the order uses it: device time when timed, else host. */
static uint64_t op_time(const cp_mgpu_op *o) { return o->timed ? o->device_ns : o->host_ns; }

static int cmp_op(const void *a, const void *b) {
    const cp_mgpu_op *x = a, *y = b;
    uint64_t tx = op_time(x), ty = op_time(y);
    if (tx != ty)
        return tx < ty ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

static uint64_t span_time(const cp_mgpu_span *s) {
    return s->timed ? s->device_ns
                    : (s->host_end_ns > s->host_start_ns ? s->host_end_ns - s->host_start_ns : 0);
}

static int cmp_sync(const void *a, const void *b) {
    const cp_mgpu_sync *x = a, *y = b;
    if (x->blocked_ns != y->blocked_ns)
        return x->blocked_ns < y->blocked_ns ? 1 : -1;
    if (x->site != y->site)
        return x->site > y->site ? 1 : -1;
    if (x->line != y->line)
        return x->line > y->line ? 1 : -1;
    return (x->kind > y->kind) - (x->kind < y->kind);
}

static void op_add(cp_mgpu_op *d, const cp_mgpu_op *s) {
    if (s->timed) {
        if (!d->timed || s->device_min_ns < d->device_min_ns)
            d->device_min_ns = s->device_min_ns;
        d->device_max_ns = umax(d->device_max_ns, s->device_max_ns);
    }
    if (s->mem_count) {
        if (!d->mem_count || s->mem_delta_max > d->mem_delta_max)
            d->mem_delta_max = s->mem_delta_max;
        if (s->mem_source == CP_GPU_MEM_TORCH || d->mem_source == CP_GPU_MEM_NONE)
            d->mem_source = s->mem_source;
    }
    d->calls = usat(d->calls, s->calls);
    d->timed = usat(d->timed, s->timed);
    d->device_ns = usat(d->device_ns, s->device_ns);
    d->host_ns = usat(d->host_ns, s->host_ns);
    d->host_max_ns = umax(d->host_max_ns, s->host_max_ns);
    d->slow = usat(d->slow, s->slow);
    d->mem_count = usat(d->mem_count, s->mem_count);
    d->mem_delta_sum = ssat(d->mem_delta_sum, s->mem_delta_sum);
    d->mem_peak = umax(d->mem_peak, s->mem_peak);
    d->reserved_delta_sum = ssat(d->reserved_delta_sum, s->reserved_delta_sum);
    d->reserved_peak = umax(d->reserved_peak, s->reserved_peak);
    d->streams = d->streams > s->streams ? d->streams : s->streams;
    d->threads = d->threads + s->threads < d->threads ? UINT32_MAX : d->threads + s->threads;
}

static cp_mgpu_op *merge_ops(const cp_mgpu *a, const cp_mgpu *b, const uint32_t *smap,
                             uint32_t nsmap, uint32_t *n_out) {
    size_t cap = (size_t)a->nops + b->nops + 1;
    cp_mgpu_op *ops = malloc(cap * sizeof *ops);
    if (!ops)
        return NULL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->nops; i++)
        ops[n++] = a->ops[i];
    for (uint32_t i = 0; i < b->nops; i++) {
        cp_mgpu_op o = b->ops[i];
        o.site = map_site(o.site, smap, nsmap);
        uint32_t k = 0;
        while (k < a->nops && ops[k].site != o.site) /* dst sites are distinct */
            k++;
        if (k < a->nops)
            op_add(&ops[k], &o);
        else
            ops[n++] = o;
    }
    qsort(ops, n, sizeof *ops, cmp_op);
    *n_out = n;
    return ops;
}

/* Merges two time-ordered arrays of `elem`-sized records (time at offset 0,
 * a uint64_t) keeping at most `cap`: the first cap/2 and the last
 * cap - cap/2.  *dropped receives the number left out.  `b`'s records are
 * copied then passed to fix(rec) (site remapping).  NULL on OOM (a result
 * of 0 records returns a valid 1-record buffer). */
static void *merge_timed(const void *a, uint32_t na, const void *b, uint32_t nb, size_t elem,
                         uint32_t cap, uint64_t *dropped, uint32_t *n_out,
                         void (*fix)(void *rec, const uint32_t *smap, uint32_t nsmap),
                         const uint32_t *smap, uint32_t nsmap) {
    uint64_t total = (uint64_t)na + nb;
    uint32_t keep = total < cap ? (uint32_t)total : cap;
    char *out = malloc(((size_t)keep + 1) * elem);
    if (!out)
        return NULL;
    uint32_t head = keep / 2, tail = keep - head;
    uint64_t skip_from = head, skip_to = total - tail; /* merged positions left out */
    const char *pa = a, *pb = b;
    uint32_t ia = 0, ib = 0, n = 0;
    for (uint64_t pos = 0; pos < total; pos++) {
        int take_a;
        if (ia >= na)
            take_a = 0;
        else if (ib >= nb)
            take_a = 1;
        else {
            uint64_t ta, tb;
            memcpy(&ta, pa + (size_t)ia * elem, sizeof ta);
            memcpy(&tb, pb + (size_t)ib * elem, sizeof tb);
            take_a = ta <= tb;
        }
        const char *rec = take_a ? pa + (size_t)ia++ * elem : pb + (size_t)ib++ * elem;
        if (pos >= skip_from && pos < skip_to)
            continue;
        memcpy(out + (size_t)n * elem, rec, elem);
        if (!take_a && fix)
            fix(out + (size_t)n * elem, smap, nsmap);
        n++;
    }
    *dropped = total - n;
    *n_out = n;
    return out;
}

static void fix_span(void *rec, const uint32_t *smap, uint32_t nsmap) {
    cp_mgpu_span *s = rec;
    s->site = map_site(s->site, smap, nsmap);
}

static cp_mgpu_span *merge_slow(const cp_mgpu *a, const cp_mgpu *b, const uint32_t *smap,
                                uint32_t nsmap, uint32_t *n_out) {
    cp_mgpu_span *out = malloc((CP_GPU_MAX_SLOW + 1) * sizeof *out);
    if (!out)
        return NULL;
    uint32_t na = a->nslow < CP_GPU_MAX_SLOW ? a->nslow : CP_GPU_MAX_SLOW;
    uint32_t nb = b->nslow < CP_GPU_MAX_SLOW ? b->nslow : CP_GPU_MAX_SLOW;
    uint32_t ia = 0, ib = 0, n = 0;
    while (n < CP_GPU_MAX_SLOW && (ia < na || ib < nb)) {
        int take_a = ib >= nb || (ia < na && span_time(&a->slow[ia]) >= span_time(&b->slow[ib]));
        if (take_a) {
            out[n++] = a->slow[ia++];
        } else {
            out[n] = b->slow[ib++];
            fix_span(&out[n++], smap, nsmap);
        }
    }
    *n_out = n;
    return out;
}

static cp_mgpu_sync *merge_syncs(const cp_mgpu *a, const cp_mgpu *b, const uint32_t *smap,
                                 uint32_t nsmap, uint32_t *n_out, uint64_t *dropped) {
    cp_mgpu_sync *out = malloc(((size_t)a->nsyncs + b->nsyncs + 1) * sizeof *out);
    if (!out)
        return NULL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->nsyncs; i++)
        out[n++] = a->syncs[i];
    for (uint32_t i = 0; i < b->nsyncs; i++) {
        cp_mgpu_sync y = b->syncs[i];
        y.site = map_site(y.site, smap, nsmap);
        uint32_t k = 0;
        while (k < a->nsyncs &&
               !(out[k].site == y.site && out[k].line == y.line && out[k].kind == y.kind))
            k++;
        if (k < a->nsyncs) {
            out[k].count = usat(out[k].count, y.count);
            out[k].blocked_ns = usat(out[k].blocked_ns, y.blocked_ns);
            out[k].max_ns = umax(out[k].max_ns, y.max_ns);
        } else {
            out[n++] = y;
        }
    }
    qsort(out, n, sizeof *out, cmp_sync);
    *dropped = 0;
    if (n > CP_GPU_MAX_SYNC_SITES) {
        *dropped = n - CP_GPU_MAX_SYNC_SITES;
        n = CP_GPU_MAX_SYNC_SITES;
    }
    *n_out = n;
    return out;
}

/* A mean of two parts weighted by their sample counts. */
static double wmean(double ma, uint64_t na, double mb, uint64_t nb) {
    uint64_t n = na + nb;
    return n ? (ma * (double)na + mb * (double)nb) / (double)n : 0.0;
}

static double dmax(double a, double b) { return a > b ? a : b; }

static void dev_add(cp_mgpu_device *d, const cp_mgpu_device *s) {
    uint64_t na = d->samples, nb = s->samples;
    d->util_mean = wmean(d->util_mean, na, s->util_mean, nb);
    d->mem_util_mean = wmean(d->mem_util_mean, na, s->mem_util_mean, nb);
    d->mem_used_mean = (uint64_t)(wmean((double)d->mem_used_mean, na, (double)s->mem_used_mean,
                                        nb) + 0.5);
    d->power_mean_w = wmean(d->power_mean_w, na, s->power_mean_w, nb);
    d->sm_clock_mean_mhz = wmean(d->sm_clock_mean_mhz, na, s->sm_clock_mean_mhz, nb);
    d->samples = usat(na, nb);
    d->util_max = dmax(d->util_max, s->util_max);
    d->mem_used_max = umax(d->mem_used_max, s->mem_used_max);
    d->power_max_w = dmax(d->power_max_w, s->power_max_w);
    d->temp_max_c = dmax(d->temp_max_c, s->temp_max_c);
    d->idle_samples = usat(d->idle_samples, s->idle_samples);
    d->longest_idle_ns = umax(d->longest_idle_ns, s->longest_idle_ns);
    d->mem_total = umax(d->mem_total, s->mem_total);
    if (!d->name[0])
        memcpy(d->name, s->name, sizeof d->name);
}

static int cmp_dev(const void *a, const void *b) {
    const cp_mgpu_device *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static cp_mgpu_device *merge_devices(const cp_mgpu *a, const cp_mgpu *b, uint32_t *n_out) {
    cp_mgpu_device *out = malloc(((size_t)a->ndevices + b->ndevices + 1) * sizeof *out);
    if (!out)
        return NULL;
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->ndevices; i++)
        out[n++] = a->devices[i];
    for (uint32_t i = 0; i < b->ndevices; i++) {
        uint32_t k = 0;
        while (k < a->ndevices && out[k].index != b->devices[i].index)
            k++;
        if (k < a->ndevices)
            dev_add(&out[k], &b->devices[i]);
        else
            out[n++] = b->devices[i];
    }
    qsort(out, n, sizeof *out, cmp_dev);
    *n_out = n;
    return out;
}

int cp_mgpu_merge_new(cp_mgpu *out, const cp_mgpu *dst, const cp_mgpu *src, const uint32_t *smap,
                      uint32_t nsmap, uint32_t max_ops, uint32_t max_samples) {
    _Static_assert(offsetof(cp_mgpu_span, host_start_ns) == 0, "spans merge by their first field");
    _Static_assert(offsetof(cp_mgpu_sample, t_ns) == 0, "samples merge by their first field");
    memset(out, 0, sizeof *out);
    uint32_t nops = 0, nslow = 0, nspans = 0, nsyncs = 0, ndev = 0, nsamp = 0;
    uint64_t span_drop = 0, sync_drop = 0, samp_drop = 0;
    cp_mgpu_op *ops = merge_ops(dst, src, smap, nsmap, &nops);
    cp_mgpu_span *slow = ops ? merge_slow(dst, src, smap, nsmap, &nslow) : NULL;
    cp_mgpu_span *spans = slow ? merge_timed(dst->spans, dst->nspans, src->spans, src->nspans,
                                             sizeof(cp_mgpu_span), max_ops, &span_drop, &nspans,
                                             fix_span, smap, nsmap)
                               : NULL;
    cp_mgpu_sync *syncs = spans ? merge_syncs(dst, src, smap, nsmap, &nsyncs, &sync_drop) : NULL;
    cp_mgpu_device *devs = syncs ? merge_devices(dst, src, &ndev) : NULL;
    cp_mgpu_sample *samp = devs ? merge_timed(dst->samples, dst->nsamples, src->samples,
                                              src->nsamples, sizeof(cp_mgpu_sample), max_samples,
                                              &samp_drop, &nsamp, NULL, NULL, 0)
                                : NULL;
    if (!samp) {
        free(ops);
        free(slow);
        free(spans);
        free(syncs);
        free(devs);
        return -1;
    }
    *out = *dst; /* scalars and strings; the arrays are replaced below */
    out->ops = ops;
    out->nops = nops;
    out->slow = slow;
    out->nslow = nslow;
    out->spans = spans;
    out->nspans = nspans;
    out->syncs = syncs;
    out->nsyncs = nsyncs;
    out->devices = devs;
    out->ndevices = ndev;
    out->samples = samp;
    out->nsamples = nsamp;

    if (!out->enabled && src->enabled) { /* dst knew nothing: take src's libraries */
        out->driver = src->driver;
        out->nvml = src->nvml;
        out->cupti = src->cupti;
    }
    if (!out->reason[0])
        memcpy(out->reason, src->reason, sizeof out->reason);
    out->enabled |= src->enabled;
    out->available |= src->available;
    if (out->sync_source == CP_GPU_SYNC_SRC_NONE)
        out->sync_source = src->sync_source;
    out->device_mem_total = umax(out->device_mem_total, src->device_mem_total);
    out->idle_gap_ns = usat(out->idle_gap_ns, src->idle_gap_ns);
    out->idle_gap_max_ns = umax(out->idle_gap_max_ns, src->idle_gap_max_ns);
    out->idle_gaps = usat(out->idle_gaps, src->idle_gaps);
    out->busy_ns = usat(out->busy_ns, src->busy_ns);
    out->span_ns = umax(out->span_ns, src->span_ns);
    out->ops_dropped = usat(usat(out->ops_dropped, src->ops_dropped), span_drop);
    out->ops_unresolved = usat(out->ops_unresolved, src->ops_unresolved);
    out->ops_host_only = usat(out->ops_host_only, src->ops_host_only);
    out->syncs_dropped = usat(usat(out->syncs_dropped, src->syncs_dropped), sync_drop);
    out->samples_dropped = usat(usat(out->samples_dropped, src->samples_dropped), samp_drop);
    out->sampler_cpu_ns = usat(out->sampler_cpu_ns, src->sampler_cpu_ns);
    return 0;
}

int cp_mgpu_merge(cp_mgpu *dst, const cp_mgpu *src, const uint32_t *smap, uint32_t nsmap,
                  uint32_t max_ops, uint32_t max_samples) {
    cp_mgpu out;
    if (cp_mgpu_merge_new(&out, dst, src, smap, nsmap, max_ops, max_samples) != 0)
        return -1;
    cp_mgpu_free(dst);
    *dst = out;
    return 0;
}
