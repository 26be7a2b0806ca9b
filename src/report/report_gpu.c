/* report_gpu.c -- the gpu section of the report and the "GPU" block of the
 * text summary (report_gpu.h).  Every key and its meaning is in
 * docs/report-schema.md ("gpu"). */
#include "report/report_gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "report/docw.h"
#include "report/report.h"

#define MIB (1024.0 * 1024.0)
#define TEXT_TOP_OPS 10
#define TEXT_TOP_SYNCS 5

static const char *const lib_status_names[] = {"not_tried",   "ok",         "not_found", "too_old",
                                                "init_failed", "no_context", "disabled"};
static const char *const sync_kind_names[CP_GPU_SYNC_KINDS_] = {"device", "stream", "event",
                                                                "memcpy", "other"};
static const char *const sync_source_names[] = {"none", "cupti", "fallback"};
static const char *const mem_source_names[] = {"none", "torch", "driver"};

#define NAMES_N(a) (sizeof(a) / sizeof((a)[0]))

static int parse_in(const char *const *names, size_t n, const char *s) {
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *cp_report_gpu_lib_status_name(int st) {
    return st >= 0 && (size_t)st < NAMES_N(lib_status_names) ? lib_status_names[st] : "unknown";
}
int cp_report_gpu_lib_status_parse(const char *s) {
    return parse_in(lib_status_names, NAMES_N(lib_status_names), s);
}
const char *cp_report_gpu_sync_kind_name(unsigned k) {
    return k < CP_GPU_SYNC_KINDS_ ? sync_kind_names[k] : "unknown";
}
int cp_report_gpu_sync_kind_parse(const char *s) {
    return parse_in(sync_kind_names, NAMES_N(sync_kind_names), s);
}
const char *cp_report_gpu_sync_source_name(int s) {
    return s >= 0 && (size_t)s < NAMES_N(sync_source_names) ? sync_source_names[s] : "unknown";
}
int cp_report_gpu_sync_source_parse(const char *s) {
    return parse_in(sync_source_names, NAMES_N(sync_source_names), s);
}
const char *cp_report_gpu_mem_source_name(int s) {
    return s >= 0 && (size_t)s < NAMES_N(mem_source_names) ? mem_source_names[s] : "unknown";
}
int cp_report_gpu_mem_source_parse(const char *s) {
    return parse_in(mem_source_names, NAMES_N(mem_source_names), s);
}

uint64_t cp_report_gpu_op_total_ns(const cp_mgpu_op *op) {
    return op->timed ? op->device_ns : op->host_ns;
}

uint64_t cp_report_gpu_span_ns(const cp_mgpu_span *s) {
    return s->timed ? s->device_ns : (s->host_end_ns > s->host_start_ns
                                          ? s->host_end_ns - s->host_start_ns
                                          : 0);
}

int cp_report_gpu_mem_source(const cp_mgpu *g) {
    int src = CP_GPU_MEM_NONE;
    for (uint32_t i = 0; i < g->nops; i++) {
        if (!g->ops[i].mem_count)
            continue;
        if (g->ops[i].mem_source == CP_GPU_MEM_TORCH)
            return CP_GPU_MEM_TORCH;
        if (g->ops[i].mem_source == CP_GPU_MEM_DRIVER)
            src = CP_GPU_MEM_DRIVER;
    }
    return src;
}

static const cp_msite unknown_site = {"?", "", 0, CODEPROF_SITE_SCOPE};

static const cp_msite *site_of(const cp_model *m, uint32_t id) {
    const cp_msite *si = cp_model_site(m, id);
    return si ? si : &unknown_site;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- ordering ------------------------------------------------------------ */

static int cmp_sites(const cp_msite *x, const cp_msite *y) {
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    c = strcmp(x->file, y->file);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

static _Thread_local const cp_model *sort_m;

/* Largest time first, then most calls, then (name, file, line): a total
 * order that does not depend on site numbering (a read report sorts the
 * same). */
static int cmp_op(const void *a, const void *b) {
    const cp_mgpu_op *x = &sort_m->gpu.ops[*(const uint32_t *)a];
    const cp_mgpu_op *y = &sort_m->gpu.ops[*(const uint32_t *)b];
    uint64_t tx = cp_report_gpu_op_total_ns(x), ty = cp_report_gpu_op_total_ns(y);
    if (tx != ty)
        return tx < ty ? 1 : -1;
    if (x->calls != y->calls)
        return x->calls < y->calls ? 1 : -1;
    return cmp_sites(site_of(sort_m, x->site), site_of(sort_m, y->site));
}

static int cmp_sync(const void *a, const void *b) {
    const cp_mgpu_sync *x = &sort_m->gpu.syncs[*(const uint32_t *)a];
    const cp_mgpu_sync *y = &sort_m->gpu.syncs[*(const uint32_t *)b];
    if (x->blocked_ns != y->blocked_ns)
        return x->blocked_ns < y->blocked_ns ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int c = cmp_sites(site_of(sort_m, x->site), site_of(sort_m, y->site));
    if (c)
        return c;
    if (x->line != y->line)
        return x->line > y->line ? 1 : -1;
    return (x->kind > y->kind) - (x->kind < y->kind);
}

/* Indices 0..n-1 sorted by `cmp` over m; NULL on OOM. */
static uint32_t *order(const cp_model *m, uint32_t n, int (*cmp)(const void *, const void *)) {
    uint32_t *idx = malloc(((size_t)n + 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    sort_m = m;
    qsort(idx, n, sizeof *idx, cmp);
    sort_m = NULL;
    return idx;
}

/* ---- section figures ---------------------------------------------------- */

typedef struct gstats {
    uint64_t calls, timed, device_ns, host_ns, max_ns, host_max_ns;
    int64_t mem_delta, reserved_delta;
    uint64_t mem_count, peak;
    uint64_t sync_count, sync_ns;
} gstats;

static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (!__builtin_add_overflow(a, b, &r))
        return r;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

static uint64_t usat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static void stats_of(const cp_mgpu *g, gstats *s) {
    memset(s, 0, sizeof *s);
    for (uint32_t i = 0; i < g->nops; i++) {
        const cp_mgpu_op *o = &g->ops[i];
        s->calls = usat_add(s->calls, o->calls);
        s->timed = usat_add(s->timed, o->timed);
        s->device_ns = usat_add(s->device_ns, o->device_ns);
        s->host_ns = usat_add(s->host_ns, o->host_ns);
        if (o->timed && o->device_max_ns > s->max_ns)
            s->max_ns = o->device_max_ns;
        if (o->host_max_ns > s->host_max_ns)
            s->host_max_ns = o->host_max_ns;
        s->mem_delta = sat_add(s->mem_delta, o->mem_delta_sum);
        s->reserved_delta = sat_add(s->reserved_delta, o->reserved_delta_sum);
        s->mem_count = usat_add(s->mem_count, o->mem_count);
        if (o->mem_peak > s->peak)
            s->peak = o->mem_peak;
    }
    for (uint32_t i = 0; i < g->nsyncs; i++) {
        s->sync_count = usat_add(s->sync_count, g->syncs[i].count);
        s->sync_ns = usat_add(s->sync_ns, g->syncs[i].blocked_ns);
    }
}

/* Device time when any operation was timed, else host time. */
static uint64_t stats_total(const gstats *s) { return s->timed ? s->device_ns : s->host_ns; }

/* The operations stats_total covers: the timed ones, else all. */
static double stats_avg_ms(const gstats *s) {
    uint64_t n = s->timed ? s->timed : s->calls;
    return n ? ms(stats_total(s)) / (double)n : 0.0;
}

/* ---- JSON ---------------------------------------------------------------- */

static void kv_reason(cp_docw *w, const char *k, const char *s, size_t cap) {
    cp_docw_key(w, k);
    size_t n = strnlen(s, cap);
    if (n)
        cp_docw_string_n(w, s, n);
    else
        cp_docw_null(w);
}

static void write_lib(cp_docw *w, const char *key, const cp_mgpu_lib *l) {
    cp_docw_key(w, key);
    cp_docw_begin_object(w);
    cp_docw_kv_s(w, "status", cp_report_gpu_lib_status_name(l->status));
    cp_docw_key(w, "path");
    cp_docw_string_n(w, l->path, strnlen(l->path, sizeof l->path));
    cp_docw_kv_i(w, "version", l->version);
    kv_reason(w, "reason", l->reason, sizeof l->reason);
    cp_docw_end_object(w);
}

static void write_statistics(cp_docw *w, const gstats *s) {
    uint64_t total = stats_total(s);
    cp_docw_key(w, "gpu_statistics");
    cp_docw_begin_object(w);
    cp_docw_kv_d(w, "total_time_ms", ms(total));
    cp_docw_kv_d(w, "avg_time_ms", stats_avg_ms(s));
    cp_docw_kv_u(w, "operations", s->calls);
    cp_docw_kv_u(w, "timed_operations", s->timed);
    cp_docw_kv_d(w, "host_time_ms", ms(s->host_ns));
    cp_docw_kv_d(w, "max_time_ms", ms(s->timed ? s->max_ns : s->host_max_ns));
    cp_docw_kv_s(w, "timing", s->timed ? "device" : "host");
    cp_docw_end_object(w);
}

static void write_slow(cp_docw *w, const cp_model *m) {
    const cp_mgpu *g = &m->gpu;
    uint32_t n = g->nslow < CP_GPU_MAX_SLOW ? g->nslow : CP_GPU_MAX_SLOW;
    cp_docw_key(w, "slow_gpu_operations");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < n; i++) {
        const cp_mgpu_span *s = &g->slow[i];
        uint64_t host = s->host_end_ns > s->host_start_ns ? s->host_end_ns - s->host_start_ns : 0;
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "context", site_of(m, s->site)->name);
        cp_docw_kv_d(w, "elapsed_time_ms", ms(cp_report_gpu_span_ns(s)));
        cp_docw_kv_d(w, "host_time_ms", ms(host));
        cp_docw_kv_u(w, "stream", s->stream);
        cp_docw_kv_i(w, "device", s->device);
        cp_docw_kv_ns(w, "t_s", s->host_start_ns);
        cp_docw_kv_bool(w, "timed", s->timed);
        cp_docw_kv_i(w, "memory_delta", s->mem_delta);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static void write_memory(cp_docw *w, const cp_model *m, const gstats *s) {
    cp_docw_key(w, "memory_statistics");
    cp_docw_begin_object(w);
    cp_docw_kv_i(w, "total_memory_delta", s->mem_delta);
    cp_docw_kv_d(w, "avg_memory_delta",
                 s->mem_count ? (double)s->mem_delta / (double)s->mem_count : 0.0);
    cp_docw_kv_u(w, "peak_memory", s->peak);
    cp_docw_kv_i(w, "reserved_delta", s->reserved_delta);
    cp_docw_kv_s(w, "source", cp_report_gpu_mem_source_name(cp_report_gpu_mem_source(&m->gpu)));
    cp_docw_kv_u(w, "device_total", m->gpu.device_mem_total);
    cp_docw_kv_u(w, "measured_operations", s->mem_count);
    cp_docw_end_object(w);
}

static void write_ops(cp_docw *w, const cp_model *m) {
    const cp_mgpu *g = &m->gpu;
    uint32_t *idx = order(m, g->nops, cmp_op);
    if (!idx) {
        cp_docw_fail(w);
        return;
    }
    cp_docw_key(w, "operations");
    cp_docw_begin_array(w);
    for (uint32_t k = 0; k < g->nops; k++) {
        const cp_mgpu_op *o = &g->ops[idx[k]];
        const cp_msite *si = site_of(m, o->site);
        uint64_t total = cp_report_gpu_op_total_ns(o);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "context", si->name);
        cp_docw_key(w, "file");
        if (si->file[0])
            cp_docw_string(w, si->file);
        else
            cp_docw_null(w);
        cp_docw_kv_u(w, "line", si->line);
        cp_docw_kv_s(w, "kind", cp_report_kind_name(si->kind));
        cp_docw_kv_u(w, "calls", o->calls);
        cp_docw_kv_u(w, "timed", o->timed);
        cp_docw_kv_d(w, "total_time_ms", ms(total));
        cp_docw_kv_d(w, "avg_time_ms",
                     o->timed ? ms(o->device_ns) / (double)o->timed
                              : (o->calls ? ms(o->host_ns) / (double)o->calls : 0.0));
        cp_docw_key(w, "min_time_ms");
        if (o->timed)
            cp_docw_double(w, ms(o->device_min_ns));
        else
            cp_docw_null(w); /* the host minimum is not kept */
        cp_docw_kv_d(w, "max_time_ms", ms(o->timed ? o->device_max_ns : o->host_max_ns));
        cp_docw_kv_d(w, "host_time_ms", ms(o->host_ns));
        cp_docw_kv_d(w, "host_max_ms", ms(o->host_max_ns));
        cp_docw_kv_i(w, "memory_delta", o->mem_delta_sum);
        cp_docw_kv_d(w, "avg_memory_delta",
                     o->mem_count ? (double)o->mem_delta_sum / (double)o->mem_count : 0.0);
        cp_docw_kv_i(w, "max_memory_delta", o->mem_delta_max);
        cp_docw_kv_u(w, "peak_memory", o->mem_peak);
        cp_docw_kv_i(w, "reserved_delta", o->reserved_delta_sum);
        cp_docw_kv_u(w, "reserved_peak", o->reserved_peak);
        cp_docw_kv_u(w, "memory_measured", o->mem_count);
        cp_docw_kv_s(w, "memory_source", cp_report_gpu_mem_source_name(o->mem_source));
        cp_docw_kv_u(w, "streams", o->streams);
        cp_docw_kv_u(w, "threads", o->threads);
        cp_docw_kv_u(w, "slow", o->slow);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    free(idx);
}

static void write_sync(cp_docw *w, const cp_model *m, const gstats *s) {
    const cp_mgpu *g = &m->gpu;
    uint32_t *idx = order(m, g->nsyncs, cmp_sync);
    if (!idx) {
        cp_docw_fail(w);
        return;
    }
    cp_docw_key(w, "synchronization");
    cp_docw_begin_object(w);
    cp_docw_kv_s(w, "source", cp_report_gpu_sync_source_name(g->sync_source));
    cp_docw_kv_u(w, "count", s->sync_count);
    cp_docw_kv_d(w, "total_blocked_ms", ms(s->sync_ns));
    cp_docw_key(w, "points");
    cp_docw_begin_array(w);
    for (uint32_t k = 0; k < g->nsyncs; k++) {
        const cp_mgpu_sync *y = &g->syncs[idx[k]];
        const cp_msite *si = y->site ? site_of(m, y->site) : NULL;
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "function", si ? si->name : NULL);
        cp_docw_key(w, "file");
        if (si && si->file[0])
            cp_docw_string(w, si->file);
        else
            cp_docw_null(w);
        cp_docw_kv_u(w, "line", y->line);
        cp_docw_kv_s(w, "kind", cp_report_gpu_sync_kind_name(y->kind));
        cp_docw_kv_u(w, "count", y->count);
        cp_docw_kv_d(w, "blocked_ms", ms(y->blocked_ns));
        cp_docw_kv_d(w, "max_ms", ms(y->max_ns));
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    cp_docw_end_object(w);
    free(idx);
}

static void write_util(cp_docw *w, const cp_model *m) {
    const cp_mgpu *g = &m->gpu;
    cp_docw_key(w, "utilization");
    cp_docw_begin_object(w);
    cp_docw_key(w, "devices");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < g->ndevices; i++) {
        const cp_mgpu_device *d = &g->devices[i];
        cp_docw_begin_object(w);
        cp_docw_kv_i(w, "index", d->index);
        cp_docw_key(w, "name");
        cp_docw_string_n(w, d->name, strnlen(d->name, sizeof d->name));
        cp_docw_kv_u(w, "memory_total", d->mem_total);
        cp_docw_kv_u(w, "samples", d->samples);
        cp_docw_kv_d(w, "util_mean", d->util_mean);
        cp_docw_kv_d(w, "util_max", d->util_max);
        cp_docw_kv_d(w, "mem_util_mean", d->mem_util_mean);
        cp_docw_kv_u(w, "memory_used_mean", d->mem_used_mean);
        cp_docw_kv_u(w, "memory_used_max", d->mem_used_max);
        cp_docw_kv_d(w, "power_mean_w", d->power_mean_w);
        cp_docw_kv_d(w, "power_max_w", d->power_max_w);
        cp_docw_kv_d(w, "temperature_max_c", d->temp_max_c);
        cp_docw_kv_d(w, "sm_clock_mean_mhz", d->sm_clock_mean_mhz);
        cp_docw_kv_u(w, "idle_samples", d->idle_samples);
        cp_docw_kv_ns(w, "longest_idle_s", d->longest_idle_ns);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    cp_docw_kv_d(w, "idle_gap_ms", ms(g->idle_gap_ns));
    cp_docw_kv_d(w, "idle_gap_max_ms", ms(g->idle_gap_max_ns));
    cp_docw_kv_u(w, "idle_gaps", g->idle_gaps);
    cp_docw_kv_d(w, "busy_ms", ms(g->busy_ns));
    cp_docw_kv_d(w, "span_ms", ms(g->span_ns));
    cp_docw_kv_ns(w, "sampler_cpu_s", g->sampler_cpu_ns);
    cp_docw_end_object(w);
}

void cp_report_gpu_doc(const cp_model *m, cp_docw *w) {
    const cp_mgpu *g = &m->gpu;
    gstats s;
    stats_of(g, &s);
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", g->enabled);
    cp_docw_kv_bool(w, "available", g->available);
    kv_reason(w, "reason", g->reason, sizeof g->reason);
    cp_docw_key(w, "libraries");
    cp_docw_begin_object(w);
    write_lib(w, "driver", &g->driver);
    write_lib(w, "nvml", &g->nvml);
    write_lib(w, "cupti", &g->cupti);
    cp_docw_end_object(w);
    write_statistics(w, &s);
    write_slow(w, m);
    write_memory(w, m, &s);
    write_ops(w, m);
    write_sync(w, m, &s);
    write_util(w, m);
    cp_docw_key(w, "dropped");
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "operations", g->ops_dropped);
    cp_docw_kv_u(w, "unresolved", g->ops_unresolved);
    cp_docw_kv_u(w, "host_only", g->ops_host_only);
    cp_docw_kv_u(w, "sync_sites", g->syncs_dropped);
    cp_docw_kv_u(w, "samples", g->samples_dropped);
    cp_docw_end_object(w);
    cp_docw_end_object(w);
}

/* ---- text ---------------------------------------------------------------- */

static void put_site(cp_strbuf *out, const cp_msite *si, uint32_t line) {
    cp_strbuf_put_clean(out, si->name);
    if (si->file[0]) {
        cp_strbuf_puts(out, " (");
        cp_strbuf_put_clean(out, si->file);
        cp_strbuf_printf(out, ":%u)", line);
    }
}

static void text_ops(const cp_model *m, cp_strbuf *out) {
    const cp_mgpu *g = &m->gpu;
    if (!g->nops)
        return;
    uint32_t *idx = order(m, g->nops, cmp_op);
    if (!idx) {
        out->oom = 1;
        return;
    }
    uint32_t n = g->nops < TEXT_TOP_OPS ? g->nops : TEXT_TOP_OPS;
    cp_strbuf_puts(out, "  top operations (total ms, calls, avg ms, max ms, memory delta MiB):\n");
    for (uint32_t k = 0; k < n; k++) {
        const cp_mgpu_op *o = &g->ops[idx[k]];
        uint64_t total = cp_report_gpu_op_total_ns(o);
        uint64_t cnt = o->timed ? o->timed : o->calls;
        cp_strbuf_printf(out, "    %10.3f %8llu %9.3f %9.3f %+10.1f  ", ms(total),
                         (unsigned long long)o->calls, cnt ? ms(total) / (double)cnt : 0.0,
                         ms(o->timed ? o->device_max_ns : o->host_max_ns),
                         (double)o->mem_delta_sum / MIB);
        const cp_msite *si = site_of(m, o->site);
        put_site(out, si, si->line);
        if (!o->timed)
            cp_strbuf_puts(out, " [host time]");
        cp_strbuf_putc(out, '\n');
    }
    if (g->nops > n)
        cp_strbuf_printf(out, "    ... %u more (see gpu.operations)\n", g->nops - n);
    free(idx);
}

static void text_syncs(const cp_model *m, cp_strbuf *out, const gstats *s) {
    const cp_mgpu *g = &m->gpu;
    if (!g->nsyncs)
        return;
    uint32_t *idx = order(m, g->nsyncs, cmp_sync);
    if (!idx) {
        out->oom = 1;
        return;
    }
    cp_strbuf_printf(out, "  host syncs (%s): %llu, blocked %.3f ms in total\n",
                     cp_report_gpu_sync_source_name(g->sync_source),
                     (unsigned long long)s->sync_count, ms(s->sync_ns));
    uint32_t n = g->nsyncs < TEXT_TOP_SYNCS ? g->nsyncs : TEXT_TOP_SYNCS;
    for (uint32_t k = 0; k < n; k++) {
        const cp_mgpu_sync *y = &g->syncs[idx[k]];
        cp_strbuf_printf(out, "    %10.3f ms %8llu x %-7s ", ms(y->blocked_ns),
                         (unsigned long long)y->count, cp_report_gpu_sync_kind_name(y->kind));
        if (y->site)
            put_site(out, site_of(m, y->site), y->line);
        else
            cp_strbuf_puts(out, "(unknown line)");
        cp_strbuf_putc(out, '\n');
    }
    free(idx);
}

static void text_devices(const cp_model *m, cp_strbuf *out) {
    const cp_mgpu *g = &m->gpu;
    for (uint32_t i = 0; i < g->ndevices; i++) {
        const cp_mgpu_device *d = &g->devices[i];
        cp_strbuf_printf(out, "  device %d ", (int)d->index);
        char name[sizeof d->name + 1];
        memcpy(name, d->name, sizeof d->name);
        name[sizeof d->name] = '\0';
        cp_strbuf_put_clean(out, name);
        cp_strbuf_printf(out,
                         ": utilization mean %.0f%% (max %.0f%%) over %llu samples, memory used "
                         "max %.1f of %.1f MiB, power max %.0f W, %llu idle samples\n",
                         d->util_mean, d->util_max, (unsigned long long)d->samples,
                         (double)d->mem_used_max / MIB, (double)d->mem_total / MIB,
                         d->power_max_w, (unsigned long long)d->idle_samples);
    }
}

void cp_report_gpu_text(const cp_model *m, cp_strbuf *out) {
    const cp_mgpu *g = &m->gpu;
    if (!g->enabled)
        return;
    gstats s;
    stats_of(g, &s);
    cp_strbuf_puts(out, "\nGPU");
    if (g->available) {
        cp_strbuf_printf(out, " (timing on the %s", s.timed || !s.calls ? "device" : "host");
        if (g->reason[0]) {
            cp_strbuf_puts(out, "; ");
            cp_strbuf_put_clean(out, g->reason);
        }
        cp_strbuf_puts(out, ")\n");
    } else {
        cp_strbuf_puts(out, " not available: ");
        cp_strbuf_put_clean(out, g->reason[0] ? g->reason : "no reason recorded");
        cp_strbuf_puts(out, " (operations timed on the host only)\n");
    }
    uint64_t total = stats_total(&s);
    cp_strbuf_printf(out,
                     "  %llu operations (%llu timed on the device): %.3f ms total, %.3f ms avg; "
                     "memory delta %+.1f MiB, peak %.1f MiB\n",
                     (unsigned long long)s.calls, (unsigned long long)s.timed, ms(total),
                     stats_avg_ms(&s), (double)s.mem_delta / MIB,
                     (double)s.peak / MIB);
    text_ops(m, out);
    text_syncs(m, out, &s);
    text_devices(m, out);
    if (g->idle_gaps)
        cp_strbuf_printf(out, "  GPU idle between operations: %.3f ms in %llu gaps (longest %.3f ms)\n",
                         ms(g->idle_gap_ns), (unsigned long long)g->idle_gaps,
                         ms(g->idle_gap_max_ns));
    uint64_t dropped = g->ops_dropped + g->ops_unresolved + g->syncs_dropped + g->samples_dropped;
    if (dropped)
        cp_strbuf_printf(out,
                         "  caps reached or unresolved: %llu records (see gpu.dropped)\n",
                         (unsigned long long)dropped);
}
