/* report_diff_gpu.c -- the GPU part of `codeprof diff` (report_diff_gpu.h). */
#include "report/report_diff_gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/jsonw.h"
#include "report/report_diff.h"
#include "report/report_gpu.h"

typedef cp_diff_pair gpair; /* report_diff.h */

static gpair gp(const void *pa, double a, const void *pb, double b) {
    gpair p = {pa ? a : 0, pb ? b : 0, pa != NULL, pb != NULL};
    return p;
}

typedef struct oprow {
    const cp_mgpu_op *oa, *ob;
    const char *name;
    double order;
    size_t seq;
} oprow;

static const char *op_name(const cp_model *m, const cp_mgpu_op *o) {
    const cp_msite *si = cp_model_site(m, o->site);
    return si ? si->name : "?";
}

static double op_total_ms(const cp_mgpu_op *o) {
    return (double)cp_report_gpu_op_total_ns(o) / 1e6;
}

static double op_avg_ms(const cp_mgpu_op *o) {
    uint64_t n = o->timed ? o->timed : o->calls;
    return n ? op_total_ms(o) / (double)n : 0;
}

static int cmp_oprow(const void *x, const void *y) {
    const oprow *a = x, *b = y;
    if (a->order != b->order)
        return a->order < b->order ? 1 : -1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Rows of ops matched by context name (the first unmatched one of B with
 * the same name); NULL on OOM.  *n receives their number. */
static oprow *op_rows(const cp_model *a, const cp_model *b, size_t *n) {
    const cp_mgpu *ga = &a->gpu, *gb = &b->gpu;
    oprow *v = malloc(((size_t)ga->nops + gb->nops + 1) * sizeof *v);
    unsigned char *used = calloc((size_t)gb->nops + 1, 1);
    if (!v || !used) {
        free(v);
        free(used);
        return NULL;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < ga->nops; i++) {
        const cp_mgpu_op *oa = &ga->ops[i], *ob = NULL;
        const char *name = op_name(a, oa);
        for (uint32_t j = 0; j < gb->nops && !ob; j++)
            if (!used[j] && !strcmp(op_name(b, &gb->ops[j]), name)) {
                used[j] = 1;
                ob = &gb->ops[j];
            }
        v[k] = (oprow){oa, ob, name, 0, k};
        k++;
    }
    for (uint32_t j = 0; j < gb->nops; j++)
        if (!used[j]) {
            v[k] = (oprow){NULL, &gb->ops[j], op_name(b, &gb->ops[j]), 0, k};
            k++;
        }
    for (size_t i = 0; i < k; i++)
        v[i].order = fabs((v[i].ob ? op_total_ms(v[i].ob) : 0) -
                          (v[i].oa ? op_total_ms(v[i].oa) : 0));
    qsort(v, k, sizeof *v, cmp_oprow);
    free(used);
    *n = k;
    return v;
}

static void sync_totals(const cp_mgpu *g, double *ms, double *count) {
    uint64_t ns = 0, c = 0;
    for (uint32_t i = 0; i < g->nsyncs; i++) {
        ns += g->syncs[i].blocked_ns;
        c += g->syncs[i].count;
    }
    *ms = (double)ns / 1e6;
    *count = (double)c;
}

static const cp_mgpu_device *dev_at(const cp_mgpu *g, int32_t index) {
    for (uint32_t i = 0; i < g->ndevices; i++)
        if (g->devices[i].index == index)
            return &g->devices[i];
    return NULL;
}

/* The device indices of both sides, ascending, distinct; NULL on OOM. */
static int32_t *dev_indices(const cp_mgpu *ga, const cp_mgpu *gb, size_t *n) {
    int32_t *v = malloc(((size_t)ga->ndevices + gb->ndevices + 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (int side = 0; side < 2; side++) {
        const cp_mgpu *g = side ? gb : ga;
        for (uint32_t i = 0; i < g->ndevices; i++) {
            int32_t x = g->devices[i].index;
            size_t j = 0;
            while (j < k && v[j] != x)
                j++;
            if (j == k)
                v[k++] = x;
        }
    }
    for (size_t i = 1; i < k; i++) /* insertion sort: a handful of devices */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int32_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *n = k;
    return v;
}

/* ---- text ---------------------------------------------------------------- */

static void put_pair(cp_strbuf *sb, gpair p, const char *fmt) {
    if (p.has_a)
        cp_strbuf_printf(sb, fmt, p.a);
    else
        cp_strbuf_printf(sb, "%10s", "-");
    cp_strbuf_putc(sb, ' ');
    if (p.has_b)
        cp_strbuf_printf(sb, fmt, p.b);
    else
        cp_strbuf_printf(sb, "%10s", "-");
    if (p.has_a && p.has_b && p.a != 0)
        cp_strbuf_printf(sb, " %8.3f", p.b / p.a);
    else
        cp_strbuf_printf(sb, " %8s", "-");
}

void cp_report_diff_gpu_text(const cp_model *a, const cp_model *b, cp_strbuf *out) {
    if (!a->gpu.enabled && !b->gpu.enabled)
        return;
    size_t n = 0, nd = 0;
    oprow *v = op_rows(a, b, &n);
    int32_t *idx = dev_indices(&a->gpu, &b->gpu, &nd);
    if (!v || !idx) {
        free(v);
        free(idx);
        out->oom = 1;
        return;
    }
    size_t listed = n < CP_DIFF_MAX_FUNCTIONS ? n : CP_DIFF_MAX_FUNCTIONS;
    cp_strbuf_printf(out,
                     "\nGPU operations, largest change of total time first (%zu of %zu)\n", listed,
                     n);
    if (listed)
        cp_strbuf_printf(out, "%10s %10s %8s %10s %10s %8s  %s\n", "avg A ms", "avg B ms", "B/A",
                         "calls A", "calls B", "B/A", "context");
    for (size_t i = 0; i < listed; i++) {
        const oprow *r = &v[i];
        put_pair(out, gp(r->oa, r->oa ? op_avg_ms(r->oa) : 0, r->ob, r->ob ? op_avg_ms(r->ob) : 0),
                 "%10.3f");
        cp_strbuf_putc(out, ' ');
        put_pair(out,
                 gp(r->oa, r->oa ? (double)r->oa->calls : 0, r->ob,
                    r->ob ? (double)r->ob->calls : 0),
                 "%10.0f");
        cp_strbuf_puts(out, "  ");
        cp_strbuf_put_clean(out, r->name);
        cp_strbuf_putc(out, '\n');
    }
    double ma, ca, mb, cb;
    sync_totals(&a->gpu, &ma, &ca);
    sync_totals(&b->gpu, &mb, &cb);
    cp_strbuf_printf(out, "%-28s %10s %10s %8s\n", "GPU", "A", "B", "B/A");
    cp_strbuf_printf(out, "%-28s ", "sync blocked ms");
    put_pair(out, gp(a, ma, b, mb), "%10.3f");
    cp_strbuf_printf(out, "\n%-28s ", "syncs");
    put_pair(out, gp(a, ca, b, cb), "%10.0f");
    cp_strbuf_putc(out, '\n');
    for (size_t i = 0; i < nd; i++) {
        const cp_mgpu_device *da = dev_at(&a->gpu, idx[i]), *db = dev_at(&b->gpu, idx[i]);
        char label[40];
        snprintf(label, sizeof label, "device %d util mean %%", (int)idx[i]);
        cp_strbuf_printf(out, "%-28s ", label);
        put_pair(out, gp(da, da ? da->util_mean : 0, db, db ? db->util_mean : 0), "%10.1f");
        cp_strbuf_putc(out, '\n');
    }
    free(v);
    free(idx);
}

/* ---- JSON ---------------------------------------------------------------- */

void cp_report_diff_gpu_json(const cp_model *a, const cp_model *b, cp_jsonw *w) {
    int on = a->gpu.enabled || b->gpu.enabled;
    size_t n = 0, nd = 0;
    oprow *v = on ? op_rows(a, b, &n) : NULL;
    int32_t *idx = on ? dev_indices(&a->gpu, &b->gpu, &nd) : NULL;
    if (on && (!v || !idx)) { /* out of memory for the comparison: say nothing wrong */
        free(v);
        free(idx);
        cp_jsonw_key(w, "gpu");
        cp_jsonw_null(w);
        return;
    }
    size_t listed = n < CP_DIFF_MAX_FUNCTIONS ? n : CP_DIFF_MAX_FUNCTIONS;
    cp_jsonw_key(w, "gpu");
    cp_jsonw_begin_object(w);
    cp_jsonw_key(w, "enabled");
    cp_jsonw_bool(w, on);
    cp_jsonw_key(w, "operations");
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < listed; i++) {
        const oprow *r = &v[i];
        cp_jsonw_begin_object(w);
        cp_jsonw_key(w, "context");
        cp_jsonw_string(w, r->name);
        cp_diff_json_pair(w, "avg_time_ms",
                  gp(r->oa, r->oa ? op_avg_ms(r->oa) : 0, r->ob, r->ob ? op_avg_ms(r->ob) : 0));
        cp_diff_json_pair(w, "calls",
                  gp(r->oa, r->oa ? (double)r->oa->calls : 0, r->ob,
                     r->ob ? (double)r->ob->calls : 0));
        cp_diff_json_pair(w, "total_time_ms",
                  gp(r->oa, r->oa ? op_total_ms(r->oa) : 0, r->ob,
                     r->ob ? op_total_ms(r->ob) : 0));
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_key(w, "operations_omitted");
    cp_jsonw_uint(w, n - listed);
    double ma = 0, ca = 0, mb = 0, cb = 0;
    sync_totals(&a->gpu, &ma, &ca);
    sync_totals(&b->gpu, &mb, &cb);
    cp_diff_json_pair(w, "sync_blocked_ms", on ? gp(a, ma, b, mb) : gp(NULL, 0, NULL, 0));
    cp_diff_json_pair(w, "sync_count", on ? gp(a, ca, b, cb) : gp(NULL, 0, NULL, 0));
    cp_jsonw_key(w, "devices");
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < nd; i++) {
        const cp_mgpu_device *da = dev_at(&a->gpu, idx[i]), *db = dev_at(&b->gpu, idx[i]);
        const cp_mgpu_device *any = da ? da : db;
        cp_jsonw_begin_object(w);
        cp_jsonw_key(w, "index");
        cp_jsonw_int(w, idx[i]);
        cp_jsonw_key(w, "name");
        cp_jsonw_string_n(w, any->name, strnlen(any->name, sizeof any->name));
        cp_diff_json_pair(w, "util_mean", gp(da, da ? da->util_mean : 0, db, db ? db->util_mean : 0));
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_end_object(w);
    free(v);
    free(idx);
}
