/* report_lines.c -- the report's "lines" section and the "Line timing"
 * block of the text summary (report_lines.h; keys in
 * docs/report-schema.md, "lines").
 *
 * Rows of m->lines (finished: sorted by site, then line) are grouped by
 * function.  A function's total is the sum of its exact line times when
 * the line profiler timed it (line_profiler's convention: a line's time
 * includes what it calls, so a recursive function's lines overlap), else
 * the sum of its sampled line weights; a line's share is its own figure of
 * the same kind over that total.  Functions are ordered by total, at most
 * report_top_functions of them; a function's lines in line order. */
#include "report/report_lines.h"

#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "report/docw.h"

#define TEXT_FUNCS 5
#define TEXT_LINES 5
#define TEXT_WIDTH 72

typedef struct lfunc {
    uint32_t site, first, n; /* rows [first, first + n) */
    uint64_t exact_ns, sampled_ns, hits;
} lfunc;

static uint64_t func_total(const lfunc *f) {
    return f->hits ? f->exact_ns : f->sampled_ns;
}
static uint64_t line_weight(const lfunc *f, const cp_mline *r) {
    return f->hits ? r->time_ns : r->sampled_ns;
}

static int cmp_total_desc(const void *a, const void *b) {
    const lfunc *x = a, *y = b;
    uint64_t tx = func_total(x), ty = func_total(y);
    if (tx != ty)
        return tx < ty ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

/* The functions of m->lines, heaviest first (*n of them); NULL with *n 0
 * when there are none, NULL with *n 1 on OOM. */
static lfunc *group(const cp_model *m, uint32_t *n) {
    const cp_mlines *ml = &m->lines;
    *n = 0;
    if (!ml->n)
        return NULL;
    lfunc *v = calloc(ml->n, sizeof *v);
    if (!v) {
        *n = 1;
        return NULL;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < ml->n; i++) {
        const cp_mline *r = &ml->v[i];
        if (!k || v[k - 1].site != r->site) {
            v[k].site = r->site;
            v[k].first = i;
            k++;
        }
        lfunc *f = &v[k - 1];
        f->n++;
        f->exact_ns += r->time_ns;
        f->sampled_ns += r->sampled_ns;
        f->hits += r->hits;
    }
    qsort(v, k, sizeof *v, cmp_total_desc);
    *n = k;
    return v;
}

static double ns_s(uint64_t ns) {
    return (double)ns / 1e9;
}

void cp_report_lines_doc(const cp_model *m, cp_docw *w) {
    const cp_mlines *ml = &m->lines;
    uint32_t nf = 0;
    lfunc *fs = group(m, &nf);
    if (!fs && nf) {
        cp_docw_fail(w);
        return;
    }
    uint32_t top = m->cfg.report_top_functions;
    uint32_t listed = top && top < nf ? top : nf;
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", ml->exact || ml->n > 0);
    cp_docw_kv_bool(w, "exact", ml->exact);
    cp_docw_key(w, "functions");
    cp_docw_begin_array(w);
    for (uint32_t k = 0; k < listed; k++) {
        const lfunc *f = &fs[k];
        const cp_msite *si = cp_model_site(m, f->site);
        uint64_t total = func_total(f);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "function", si ? si->name : "?");
        cp_docw_key(w, "file");
        if (si && si->file[0])
            cp_docw_string(w, si->file);
        else
            cp_docw_null(w);
        cp_docw_kv_u(w, "line", si ? si->line : 0);
        cp_docw_kv_d(w, "total_s", ns_s(total));
        cp_docw_key(w, "lines");
        cp_docw_begin_array(w);
        for (uint32_t i = f->first; i < f->first + f->n; i++) {
            const cp_mline *r = &ml->v[i];
            cp_docw_begin_object(w);
            cp_docw_kv_u(w, "line", r->line);
            cp_docw_kv_u(w, "hits", r->hits);
            cp_docw_kv_d(w, "time_s", ns_s(r->time_ns));
            cp_docw_kv_u(w, "samples", r->samples);
            cp_docw_kv_d(w, "sampled_s", ns_s(r->sampled_ns));
            cp_docw_kv_d(w, "share", total ? (double)line_weight(f, r) / (double)total : 0.0);
            const char *t = cp_mlines_text(ml, i);
            cp_docw_key(w, "text");
            if (t)
                cp_docw_string(w, t);
            else
                cp_docw_null(w);
            cp_docw_end_object(w);
        }
        cp_docw_end_array(w);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    cp_docw_kv_u(w, "dropped", ml->dropped);
    cp_docw_end_object(w);
    free(fs);
}

static _Thread_local const cp_mline *sort_rows;
static _Thread_local const lfunc *sort_func;

static int cmp_line_weight_desc(const void *a, const void *b) {
    const cp_mline *x = &sort_rows[*(const uint32_t *)a], *y = &sort_rows[*(const uint32_t *)b];
    uint64_t wx = line_weight(sort_func, x), wy = line_weight(sort_func, y);
    if (wx != wy)
        return wx < wy ? 1 : -1;
    return (x->line > y->line) - (x->line < y->line);
}

void cp_report_lines_text(const cp_model *m, cp_strbuf *out) {
    const cp_mlines *ml = &m->lines;
    uint32_t nf = 0;
    lfunc *fs = group(m, &nf);
    if (!fs)
        return;
    cp_strbuf_printf(out, "\nLine timing (%s; a line's time includes the calls it makes)\n",
                     ml->exact ? "line profiler: exact hits and time, sampled shares elsewhere"
                               : "sampled shares");
    uint32_t listed = nf < TEXT_FUNCS ? nf : TEXT_FUNCS;
    for (uint32_t k = 0; k < listed; k++) {
        const lfunc *f = &fs[k];
        const cp_msite *si = cp_model_site(m, f->site);
        uint64_t total = func_total(f);
        if (!total)
            continue;
        const char *file = si && si->file[0] ? si->file : "?";
        cp_strbuf_puts(out, "  ");
        cp_strbuf_put_clean(out, si ? si->name : "?");
        cp_strbuf_puts(out, " (");
        cp_strbuf_put_clean(out, file);
        cp_strbuf_printf(out, ":%u): %.6f s %s\n", si ? si->line : 0, ns_s(total),
                         f->hits ? "timed" : "sampled");
        uint32_t *idx = malloc((size_t)f->n * sizeof *idx);
        if (!idx)
            break;
        for (uint32_t i = 0; i < f->n; i++)
            idx[i] = f->first + i;
        sort_rows = ml->v;
        sort_func = f;
        qsort(idx, f->n, sizeof *idx, cmp_line_weight_desc);
        uint32_t nl = f->n < TEXT_LINES ? f->n : TEXT_LINES;
        for (uint32_t j = 0; j < nl; j++) {
            const cp_mline *r = &ml->v[idx[j]];
            uint64_t wgt = line_weight(f, r);
            if (!wgt)
                break;
            cp_strbuf_printf(out, "    line %5u %5.1f%% %10.6f s", r->line,
                             100.0 * (double)wgt / (double)total, ns_s(wgt));
            if (f->hits)
                cp_strbuf_printf(out, " %9llu hits", (unsigned long long)r->hits);
            else
                cp_strbuf_printf(out, " %9llu samples", (unsigned long long)r->samples);
            const char *t = cp_mlines_text(ml, idx[j]);
            if (t) {
                while (*t == ' ' || *t == '\t')
                    t++;
                char cut[TEXT_WIDTH + 1];
                size_t len = 0;
                while (t[len] && len < TEXT_WIDTH)
                    len++;
                while (len > 0 && len < strlen(t) && ((unsigned char)t[len] & 0xC0) == 0x80)
                    len--; /* whole UTF-8 characters */
                memcpy(cut, t, len);
                cut[len] = '\0';
                cp_strbuf_puts(out, "  ");
                cp_strbuf_put_clean(out, cut); /* user source: no control characters */
            }
            cp_strbuf_putc(out, '\n');
        }
        free(idx);
    }
    if (ml->dropped)
        cp_strbuf_printf(out, "  caps reached: %llu line records dropped (see lines.dropped)\n",
                         (unsigned long long)ml->dropped);
    free(fs);
}
