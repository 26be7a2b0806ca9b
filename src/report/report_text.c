/* report_text.c -- the terminal summary (cp_report_text). */
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/report_gpu.h"
#include "report/report_lines.h"
#include "report/report_mem.h"
#include "report/report_sample.h"
#include "report/sample_est.h"

#define TOP_N 15

static const cp_msite unknown_site = {"?", "", 0, CODEPROF_SITE_SCOPE};

static const cp_msite *site_of(const cp_model *m, uint32_t id) {
    const cp_msite *si = cp_model_site(m, id);
    return si ? si : &unknown_site;
}

/* Appends `s[0..n)` with control characters replaced by '?', so a name
 * cannot move the terminal's cursor or change its colours. */
static void put_clean(cp_strbuf *sb, const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            cp_strbuf_append(sb, s + start, i - start);
            cp_strbuf_putc(sb, '?');
            start = i + 1;
        }
    }
    cp_strbuf_append(sb, s + start, n - start);
}

static void put_site(cp_strbuf *sb, const cp_model *m, uint32_t site) {
    const cp_msite *si = site_of(m, site);
    put_clean(sb, si->name, strlen(si->name));
    if (si->file[0]) {
        cp_strbuf_append(sb, "  ", 2);
        put_clean(sb, si->file, strlen(si->file));
        if (si->line)
            cp_strbuf_printf(sb, ":%u", si->line);
    }
}

static void put_percent(cp_strbuf *sb, uint64_t part, uint64_t whole) {
    if (whole)
        cp_strbuf_printf(sb, "%7.1f", 100.0 * (double)part / (double)whole);
    else
        cp_strbuf_printf(sb, "%7s", "-");
}

/* An estimated (sampled-only) function: "~" before its times and its
 * error bar after the name. */
static void table(cp_strbuf *sb, const cp_model *m, const char *title, const uint32_t *order,
                  uint32_t n, const cp_samp_totals *run) {
    cp_strbuf_printf(sb, "\n%s\n", title);
    if (!n) {
        cp_strbuf_puts(sb, "  (no calls recorded)\n");
        return;
    }
    cp_strbuf_printf(sb, "%12s %12s %12s %7s  %s\n", "calls", "inclusive s", "self s", "% run",
                     "function  file:line");
    for (uint32_t i = 0; i < n; i++) {
        const cp_mfunc *f = &m->funcs[order[i]];
        int est = f->calls == 0 && f->samples > 0;
        if (est)
            cp_strbuf_printf(sb, "%12s ~%11.6f ~%11.6f ", "~", (double)f->incl_ns / 1e9,
                             (double)f->self_ns / 1e9);
        else
            cp_strbuf_printf(sb, "%12llu %12.6f %12.6f ", (unsigned long long)f->calls,
                             (double)f->incl_ns / 1e9, (double)f->self_ns / 1e9);
        put_percent(sb, f->incl_ns, m->duration_ns);
        cp_strbuf_append(sb, "  ", 2);
        put_site(sb, m, f->site);
        if (est)
            cp_strbuf_printf(sb, "  (+- %.6f s, %llu samples)",
                             cp_samp_error_ns(f->samples, run) / 1e9,
                             (unsigned long long)f->samples);
        cp_strbuf_putc(sb, '\n');
    }
}

static _Thread_local const cp_mfunc *sort_funcs;

static int cmp_self(const void *a, const void *b) {
    const cp_mfunc *x = &sort_funcs[*(const uint32_t *)a];
    const cp_mfunc *y = &sort_funcs[*(const uint32_t *)b];
    if (x->self_ns != y->self_ns)
        return x->self_ns < y->self_ns ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

int cp_report_text(const cp_model *m, cp_strbuf *out) {
    uint32_t nf = 0;
    uint32_t *idx = malloc(((size_t)m->nfuncs + 1) * sizeof *idx);
    if (!idx) {
        out->oom = 1;
        return -1;
    }
    uint32_t nest = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (m->funcs[i].calls || m->funcs[i].samples) {
            idx[nf++] = i;
            nest += m->funcs[i].calls == 0;
        }
    cp_samp_totals run = cp_samp_totals_run(m);

    cp_strbuf_printf(out, "codeprof report (pid %d, role %.*s)\n", m->pid,
                     (int)strnlen(m->role, sizeof m->role), m->role);
    cp_strbuf_printf(out,
                     "duration %.3f s | threads %u | events %llu | dropped events %llu"
                     " | dropped nodes %llu | truncated scopes %llu\n",
                     (double)m->duration_ns / 1e9, m->nthreads,
                     (unsigned long long)m->events_total, (unsigned long long)m->dropped_events,
                     (unsigned long long)m->dropped_nodes, (unsigned long long)m->truncated);

    if (nest)
        cp_strbuf_printf(out,
                         "~ times estimated from %llu samples every %.3f ms"
                         " (+- one standard error)\n",
                         (unsigned long long)run.n, (double)m->samp.interval_ns / 1e6);

    /* m->funcs is already sorted by inclusive time. */
    table(out, m, "Top functions by inclusive time", idx, nf < TOP_N ? nf : TOP_N, &run);

    sort_funcs = m->funcs;
    qsort(idx, nf, sizeof *idx, cmp_self);
    sort_funcs = NULL;
    table(out, m, "Top functions by self time", idx, nf < TOP_N ? nf : TOP_N, &run);
    free(idx);

    cp_report_data_text(m, out);
    cp_report_mem_text(m, out);
    cp_report_sample_text(m, out);
    cp_report_lines_text(m, out);
    cp_report_gpu_text(m, out);

    if (m->nfindings) {
        cp_strbuf_printf(out, "\nFindings (%u)\n", m->nfindings);
        for (uint32_t i = 0; i < m->nfindings; i++) {
            const cp_finding *f = &m->findings[i];
            cp_strbuf_append(out, "  [", 3);
            put_clean(out, f->category, strnlen(f->category, sizeof f->category));
            cp_strbuf_append(out, "] ", 2);
            put_clean(out, f->subject, strnlen(f->subject, sizeof f->subject));
            cp_strbuf_append(out, ": ", 2);
            put_clean(out, f->recommendation,
                      strnlen(f->recommendation, sizeof f->recommendation));
            cp_strbuf_putc(out, '\n');
        }
    } else {
        cp_strbuf_puts(out, "\nNo findings above thresholds.\n");
    }
    return cp_strbuf_ok(out) ? 0 : -1;
}
