/* report_mem.c -- the memory section of the report and the "Memory" block
 * of the text summary (report_mem.h).  Every key and its meaning is in
 * docs/report-schema.md ("memory"). */
#include "report/report_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules_mem.h"
#include "report/docw.h"
#include "report/report.h"

#define TEXT_TOP_CTXS 10
#define TEXT_TOP_LEAKS 5
#define TEXT_LEAK_SITES 3
#define MIB (1024.0 * 1024.0)

static const cp_msite unknown_site = {"?", "", 0, CODEPROF_SITE_SCOPE};

static const cp_msite *site_of(const cp_model *m, uint32_t id) {
    const cp_msite *si = cp_model_site(m, id);
    return si ? si : &unknown_site;
}

static const char *const domain_names[CP_MEM_NDOMAINS] = {"raw", "mem", "object", "numpy",
                                                          "native"};

const char *cp_report_mem_domain_name(unsigned dom) {
    return dom < CP_MEM_NDOMAINS ? domain_names[dom] : NULL;
}

int cp_report_mem_enabled(const cp_mmem *mm) {
    return mm->mode != 0 || mm->native || mm->gc.enabled || mm->nctxs || mm->nprocs;
}

const char *cp_report_mem_mode_name(const cp_mmem *mm) {
    if (!cp_report_mem_enabled(mm))
        return "off";
    return mm->mode == 1 ? "sampled" : mm->mode == 2 ? "all" : "rss";
}

static int tracks_heap(const cp_mmem *mm) { return mm->mode != 0 || mm->native; }

int64_t cp_report_mem_ctx_delta(const cp_mmem *mm, const cp_mmem_ctx *c) {
    return tracks_heap(mm) ? c->delta_sum : c->rss_delta_sum;
}

uint64_t cp_report_mem_ctx_peak(const cp_mmem *mm, const cp_mmem_ctx *c) {
    return tracks_heap(mm) ? c->peak_max : c->rss_peak_max;
}

static int64_t ctx_max_delta(const cp_mmem *mm, const cp_mmem_ctx *c) {
    return tracks_heap(mm) ? c->delta_max : c->rss_delta_max;
}

/* ---- ordering ------------------------------------------------------------ */

static _Thread_local const cp_mmem *sort_mm;

/* Largest peak first, then largest delta, then site (a total order). */
static int cmp_ctx_peak(const void *a, const void *b) {
    const cp_mmem_ctx *x = &sort_mm->ctxs[*(const uint32_t *)a];
    const cp_mmem_ctx *y = &sort_mm->ctxs[*(const uint32_t *)b];
    uint64_t px = cp_report_mem_ctx_peak(sort_mm, x), py = cp_report_mem_ctx_peak(sort_mm, y);
    if (px != py)
        return px < py ? 1 : -1;
    int64_t dx = cp_report_mem_ctx_delta(sort_mm, x), dy = cp_report_mem_ctx_delta(sort_mm, y);
    if (dx != dy)
        return dx < dy ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

/* Indices of the contexts with calls, largest peak first; *n receives
 * their number.  NULL on OOM. */
static uint32_t *ctx_order(const cp_mmem *mm, uint32_t *n) {
    uint32_t *idx = malloc(((size_t)mm->nctxs + 1) * sizeof *idx);
    *n = 0;
    if (!idx)
        return NULL;
    for (uint32_t i = 0; i < mm->nctxs; i++)
        if (mm->ctxs[i].count)
            idx[(*n)++] = i;
    sort_mm = mm;
    qsort(idx, *n, sizeof *idx, cmp_ctx_peak);
    sort_mm = NULL;
    return idx;
}

/* ---- JSON ---------------------------------------------------------------- */

/* a + b, saturated at the int64 range (a read report may hold any values). */
static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (!__builtin_add_overflow(a, b, &r))
        return r;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

static uint32_t cap_of(uint32_t n, uint32_t cap) { return n < cap ? n : cap; }

static void kv_name(cp_docw *w, const char *k, const cp_model *m, uint32_t site) {
    cp_docw_key(w, k);
    if (site)
        cp_docw_string(w, site_of(m, site)->name);
    else
        cp_docw_null(w);
}

static void kv_file(cp_docw *w, const cp_msite *si) {
    cp_docw_key(w, "file");
    if (si->file[0])
        cp_docw_string(w, si->file);
    else
        cp_docw_null(w);
}

/* The name of context index `ctx`, or NULL (outside any context). */
static void kv_ctx(cp_docw *w, const char *k, const cp_model *m, uint32_t ctx) {
    kv_name(w, k, m, ctx < m->mem.nctxs ? m->mem.ctxs[ctx].site : 0);
}

static void write_statistics(cp_docw *w, const cp_model *m) {
    const cp_mmem *mm = &m->mem;
    int64_t total = 0;
    uint64_t calls = 0, peak = 0, distinct = 0;
    for (uint32_t i = 0; i < mm->nctxs; i++) {
        const cp_mmem_ctx *c = &mm->ctxs[i];
        if (!c->count)
            continue;
        distinct++;
        calls += c->count;
        total = sat_add(total, cp_report_mem_ctx_delta(mm, c));
        uint64_t p = cp_report_mem_ctx_peak(mm, c);
        if (p > peak)
            peak = p;
    }
    cp_docw_key(w, "memory_statistics");
    cp_docw_begin_object(w);
    cp_docw_kv_i(w, "total_memory_delta", total);
    cp_docw_kv_d(w, "avg_memory_delta", calls ? (double)total / (double)calls : 0.0);
    cp_docw_kv_u(w, "peak_memory", peak);
    cp_docw_kv_u(w, "calls", calls);
    cp_docw_kv_u(w, "contexts", distinct);
    cp_docw_kv_i(w, "live_bytes", mm->live_bytes);
    cp_docw_kv_u(w, "peak_bytes", mm->peak_bytes);
    cp_docw_kv_u(w, "rss_bytes", mm->rss_last);
    cp_docw_kv_u(w, "rss_peak_bytes", mm->rss_peak);
    cp_docw_kv_u(w, "machine_bytes", mm->machine_bytes);
    cp_docw_end_object(w);
}

static void write_contexts(cp_docw *w, const cp_model *m) {
    const cp_mmem *mm = &m->mem;
    uint32_t n = 0;
    uint32_t *idx = ctx_order(mm, &n);
    if (!idx) {
        cp_docw_fail(w);
        return;
    }
    uint32_t listed = cap_of(n, m->cfg.report_top_functions);
    cp_docw_key(w, "memory_intensive_contexts");
    cp_docw_begin_array(w);
    for (uint32_t k = 0; k < listed; k++) {
        const cp_mmem_ctx *c = &mm->ctxs[idx[k]];
        const cp_msite *si = site_of(m, c->site);
        int64_t delta = cp_report_mem_ctx_delta(mm, c);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "context", si->name);
        kv_file(w, si);
        cp_docw_kv_u(w, "line", si->line);
        cp_docw_kv_s(w, "kind", cp_report_kind_name(si->kind));
        cp_docw_kv_u(w, "calls", c->count);
        cp_docw_kv_i(w, "memory_delta", delta);
        cp_docw_kv_d(w, "avg_memory_delta", (double)delta / (double)c->count);
        cp_docw_kv_i(w, "max_memory_delta", ctx_max_delta(mm, c));
        cp_docw_kv_u(w, "peak", cp_report_mem_ctx_peak(mm, c));
        cp_docw_kv_i(w, "rss_delta", c->rss_delta_sum);
        cp_docw_kv_u(w, "rss_peak", c->rss_peak_max);
        cp_docw_kv_u(w, "leaked_bytes", c->leaked_bytes);
        cp_docw_kv_u(w, "leaked_blocks", c->leaked_blocks);
        cp_docw_kv_d(w, "floor_growth_per_call", c->floor_slope);
        cp_docw_kv_u(w, "gc_collections", c->gc_collections);
        cp_docw_kv_bool(w, "estimated", c->estimated);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    free(idx);
}

static void write_gc(cp_docw *w, const cp_model *m) {
    const cp_mgc *gc = &m->mem.gc;
    uint64_t total = 0, time_ns = 0, calls = 0;
    for (int g = 0; g < 3; g++) {
        total += gc->collections[g];
        time_ns += gc->time_ns[g];
    }
    for (uint32_t i = 0; i < m->mem.nctxs; i++)
        calls += m->mem.ctxs[i].count;
    cp_docw_key(w, "gc_statistics");
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", gc->enabled);
    cp_docw_kv_u(w, "total_collections", total);
    cp_docw_kv_d(w, "avg_collections", calls ? (double)total / (double)calls : (double)total);
    const struct {
        const char *key;
        const uint64_t *v;
    } arrays[] = {{"collections", gc->collections},
                  {"collected", gc->collected},
                  {"uncollectable", gc->uncollectable}};
    for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++) {
        cp_docw_key(w, arrays[a].key);
        cp_docw_begin_array(w);
        for (int g = 0; g < 3; g++)
            cp_docw_uint(w, arrays[a].v[g]);
        cp_docw_end_array(w);
    }
    cp_docw_kv_ns(w, "time_s", time_ns);
    cp_docw_key(w, "time_s_by_generation");
    cp_docw_begin_array(w);
    for (int g = 0; g < 3; g++)
        cp_docw_seconds_ns(w, gc->time_ns[g]);
    cp_docw_end_array(w);
    cp_docw_kv_ns(w, "max_pause_s", gc->max_pause_ns);
    cp_docw_kv_d(w, "share_of_wall",
                 m->duration_ns ? (double)time_ns / (double)m->duration_ns : 0.0);
    cp_docw_end_object(w);
}

static void write_domains(cp_docw *w, const cp_mmem *mm) {
    cp_docw_key(w, "domains");
    cp_docw_begin_object(w);
    for (unsigned d = 0; d < CP_MEM_NDOMAINS; d++) {
        const cp_mmem_domain *x = &mm->domains[d];
        cp_docw_key(w, domain_names[d]);
        cp_docw_begin_object(w);
        cp_docw_kv_u(w, "alloc_count", x->alloc_count);
        cp_docw_kv_u(w, "alloc_bytes", x->alloc_bytes);
        cp_docw_kv_u(w, "free_count", x->free_count);
        cp_docw_kv_u(w, "free_bytes", x->free_bytes);
        cp_docw_kv_i(w, "live_bytes", x->live_bytes);
        cp_docw_kv_u(w, "live_blocks", x->live_blocks);
        cp_docw_kv_u(w, "peak_bytes", x->peak_bytes);
        cp_docw_end_object(w);
    }
    cp_docw_end_object(w);
}

/* The written groups: top allocations, leaks, and each written snapshot's
 * groups.  Stacks are written only when one of them refers to it. */
typedef struct written {
    uint32_t nsites, nleaks, nsnaps;
    uint32_t *stack_slot; /* model stack index -> written index, CP_NONE */
    uint32_t nstacks;     /* stacks written                              */
} written;

static void mark_stack(written *wr, const cp_mmem *mm, uint32_t s) {
    if (s < mm->nstacks && wr->stack_slot[s] == CP_NONE)
        wr->stack_slot[s] = 0; /* numbered below, in model order */
}

/* A snapshot's groups, clipped to the model's group array. */
static uint32_t snap_groups(const cp_mmem *mm, const cp_msnap *s, uint32_t *first) {
    *first = s->first;
    if (s->first >= mm->nsnap_groups)
        return 0;
    uint32_t n = cap_of(s->n, CP_MEM_SNAP_SITES);
    return cap_of(n, mm->nsnap_groups - s->first);
}

static int written_build(written *wr, const cp_mmem *mm) {
    memset(wr, 0, sizeof *wr);
    wr->nsites = cap_of(mm->nsites, CP_MEM_MAX_SITES);
    wr->nleaks = cap_of(mm->nleaks, CP_MEM_MAX_LEAKS);
    wr->nsnaps = mm->nsnaps;
    wr->stack_slot = malloc(((size_t)mm->nstacks + 1) * sizeof *wr->stack_slot);
    if (!wr->stack_slot)
        return -1;
    memset(wr->stack_slot, 0xff, ((size_t)mm->nstacks + 1) * sizeof *wr->stack_slot);
    for (uint32_t i = 0; i < wr->nsites; i++)
        mark_stack(wr, mm, mm->sites[i].stack);
    for (uint32_t i = 0; i < wr->nleaks; i++)
        mark_stack(wr, mm, mm->leaks[i].stack);
    for (uint32_t i = 0; i < wr->nsnaps; i++) {
        uint32_t first, n = snap_groups(mm, &mm->snaps[i], &first);
        for (uint32_t k = 0; k < n; k++)
            mark_stack(wr, mm, mm->snap_groups[first + k].stack);
    }
    for (uint32_t s = 0; s < mm->nstacks; s++)
        if (wr->stack_slot[s] != CP_NONE)
            wr->stack_slot[s] = wr->nstacks++;
    return 0;
}

static void kv_stack(cp_docw *w, const written *wr, const cp_mmem *mm, uint32_t s) {
    cp_docw_key(w, "stack");
    if (s < mm->nstacks)
        cp_docw_uint(w, wr->stack_slot[s]);
    else
        cp_docw_null(w);
}

static void write_stacks(cp_docw *w, const cp_model *m, const written *wr) {
    const cp_mmem *mm = &m->mem;
    cp_docw_key(w, "stacks");
    cp_docw_begin_array(w);
    for (uint32_t s = 0; s < mm->nstacks; s++) {
        if (wr->stack_slot[s] == CP_NONE)
            continue;
        const cp_mmem_stack *st = &mm->stacks[s];
        cp_docw_begin_object(w);
        cp_docw_key(w, "frames");
        cp_docw_begin_array(w);
        for (uint32_t f = 0; f < cap_of(st->nframes, CP_MEM_STACK_DEPTH); f++) {
            const cp_msite *si = site_of(m, st->site[f]);
            cp_docw_begin_object(w);
            cp_docw_kv_s(w, "function", si->name);
            kv_file(w, si);
            cp_docw_kv_u(w, "line", st->line[f]);
            cp_docw_end_object(w);
        }
        cp_docw_end_array(w);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static void write_groups(cp_docw *w, const cp_model *m, const written *wr) {
    const cp_mmem *mm = &m->mem;
    cp_docw_key(w, "top_allocations");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < wr->nsites; i++) {
        const cp_mmem_group *g = &mm->sites[i];
        cp_docw_begin_object(w);
        kv_stack(w, wr, mm, g->stack);
        kv_ctx(w, "context", m, g->ctx);
        cp_docw_kv_u(w, "live_bytes", g->live_bytes);
        cp_docw_kv_u(w, "live_blocks", g->live_blocks);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    cp_docw_key(w, "leaks");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < wr->nleaks; i++) {
        const cp_mmem_group *g = &mm->leaks[i];
        cp_docw_begin_object(w);
        kv_ctx(w, "context", m, g->ctx);
        kv_stack(w, wr, mm, g->stack);
        cp_docw_kv_u(w, "live_bytes", g->live_bytes);
        cp_docw_kv_u(w, "live_blocks", g->live_blocks);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

/* Where a process's readings came from (procmem.h cp_procmem_source; the
 * model keeps the number, the report the name). */
static const char *const proc_sources[] = {"none", "rollup", "smaps", "statm"};

static const char *proc_source_name(int32_t source) {
    return source >= 0 && source < (int32_t)(sizeof proc_sources / sizeof *proc_sources)
               ? proc_sources[source]
               : "none";
}

int cp_report_mem_source_parse(const char *name) {
    for (int i = 0; name && i < (int)(sizeof proc_sources / sizeof *proc_sources); i++)
        if (strcmp(name, proc_sources[i]) == 0)
            return i;
    return -1;
}

static void write_processes(cp_docw *w, const cp_model *m) {
    const cp_mmem *mm = &m->mem;
    cp_docw_key(w, "processes");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < cap_of(mm->nprocs, CP_MEM_MAX_PROCS); i++) {
        const cp_mproc *p = &mm->procs[i];
        cp_docw_begin_object(w);
        cp_docw_kv_i(w, "pid", p->pid);
        cp_docw_kv_i(w, "worker", p->worker);
        kv_name(w, "loader", m, p->loader);
        cp_docw_kv_u(w, "samples", p->nsamples);
        cp_docw_kv_ns(w, "duration_s",
                      p->t_last_ns > p->t_first_ns ? p->t_last_ns - p->t_first_ns : 0);
        cp_docw_kv_u(w, "rss_first", p->rss_first);
        cp_docw_kv_u(w, "rss_last", p->rss_last);
        cp_docw_kv_u(w, "rss_max", p->rss_max);
        cp_docw_kv_u(w, "pss_first", p->pss_first);
        cp_docw_kv_u(w, "pss_last", p->pss_last);
        cp_docw_kv_u(w, "pss_max", p->pss_max);
        cp_docw_kv_u(w, "uss_first", p->uss_first);
        cp_docw_kv_u(w, "uss_last", p->uss_last);
        cp_docw_kv_u(w, "uss_max", p->uss_max);
        cp_docw_kv_u(w, "items", p->items);
        cp_docw_kv_s(w, "source", proc_source_name(p->source));
        cp_docw_kv_bool(w, "exited", p->exited != 0);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static void write_snapshots(cp_docw *w, const cp_model *m, const written *wr) {
    const cp_mmem *mm = &m->mem;
    cp_docw_key(w, "snapshots");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < wr->nsnaps; i++) {
        const cp_msnap *s = &mm->snaps[i];
        cp_docw_begin_object(w);
        kv_name(w, "context", m, s->ctx_site);
        cp_docw_kv_ns(w, "t_s", s->t_ns > mm->t0_ns ? s->t_ns - mm->t0_ns : 0);
        cp_docw_kv_i(w, "live_bytes", s->live_bytes);
        cp_docw_key(w, "groups");
        cp_docw_begin_array(w);
        uint32_t first, n = snap_groups(mm, s, &first);
        for (uint32_t k = 0; k < n; k++) {
            const cp_mmem_group *g = &mm->snap_groups[first + k];
            cp_docw_begin_object(w);
            kv_stack(w, wr, mm, g->stack);
            cp_docw_kv_u(w, "live_bytes", g->live_bytes);
            cp_docw_kv_u(w, "live_blocks", g->live_blocks);
            cp_docw_end_object(w);
        }
        cp_docw_end_array(w);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

void cp_report_mem_doc(const cp_model *m, cp_docw *w) {
    const cp_mmem *mm = &m->mem;
    written wr;
    if (written_build(&wr, mm) != 0) {
        cp_docw_fail(w);
        return;
    }
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", cp_report_mem_enabled(mm));
    cp_docw_kv_s(w, "mode", cp_report_mem_mode_name(mm));
    cp_docw_kv_bool(w, "estimated", mm->estimated);
    cp_docw_kv_bool(w, "native", mm->native);
    cp_docw_kv_u(w, "sample_bytes", mm->sample_bytes);
    cp_docw_kv_u(w, "stack_depth", mm->stack_depth);
    write_statistics(w, m);
    write_contexts(w, m);
    write_gc(w, m);
    write_domains(w, mm);
    write_stacks(w, m, &wr);
    write_groups(w, m, &wr);
    write_processes(w, m);
    write_snapshots(w, m, &wr);
    cp_docw_kv_u(w, "own_bytes", mm->own_bytes);
    cp_docw_key(w, "dropped");
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "blocks", mm->dropped_blocks);
    cp_docw_kv_u(w, "stacks", mm->dropped_stacks);
    cp_docw_kv_u(w, "snapshots", mm->dropped_snapshots);
    cp_docw_kv_u(w, "marks", mm->dropped_marks);
    cp_docw_kv_u(w, "contexts", mm->dropped_ctxs);
    cp_docw_kv_u(w, "samples", mm->dropped_samples);
    cp_docw_kv_u(w, "procs", mm->dropped_procs);
    cp_docw_end_object(w);
    cp_docw_end_object(w);
    free(wr.stack_slot);
}

/* ---- text ---------------------------------------------------------------- */

static double mib(double bytes) { return bytes / MIB; }

void cp_report_mem_put_stack(cp_strbuf *sb, const cp_model *m, uint32_t s) {
    uint32_t f = cp_mmem_stack_frame(m, s);
    if (f == UINT32_MAX) {
        cp_strbuf_puts(sb, "?");
        return;
    }
    const cp_mmem_stack *st = &m->mem.stacks[s];
    const cp_msite *si = site_of(m, st->site[f]);
    if (si->file[0]) {
        cp_strbuf_put_clean(sb, si->file);
        cp_strbuf_printf(sb, ":%u ", st->line[f]);
    }
    cp_strbuf_put_clean(sb, si->name);
    if (f) { /* the user's line, and the library function that allocated */
        cp_strbuf_puts(sb, " via ");
        cp_strbuf_put_clean(sb, site_of(m, st->site[0])->name);
    }
}

static void text_domains(const cp_model *m, cp_strbuf *out) {
    const cp_mmem *mm = &m->mem;
    if (!tracks_heap(mm))
        return;
    cp_strbuf_printf(out, "  tracked heap: live %.1f MiB, peak %.1f MiB%s\n",
                     mib((double)mm->live_bytes), mib((double)mm->peak_bytes),
                     mm->estimated ? " (estimates)" : "");
    cp_strbuf_printf(out, "  %-8s %12s %12s %14s\n", "domain", "live MiB", "peak MiB",
                     "allocations");
    for (unsigned d = 0; d < CP_MEM_NDOMAINS; d++) {
        const cp_mmem_domain *x = &mm->domains[d];
        if (!x->alloc_count && !x->peak_bytes)
            continue;
        cp_strbuf_printf(out, "  %-8s %12.1f %12.1f %14llu\n", domain_names[d],
                         mib((double)x->live_bytes), mib((double)x->peak_bytes),
                         (unsigned long long)x->alloc_count);
    }
}

static void text_contexts(const cp_model *m, cp_strbuf *out) {
    const cp_mmem *mm = &m->mem;
    uint32_t n = 0;
    uint32_t *idx = ctx_order(mm, &n);
    if (!idx) {
        out->oom = 1;
        return;
    }
    if (n) {
        uint32_t shown = cap_of(n, TEXT_TOP_CTXS);
        cp_strbuf_printf(out, "  memory contexts%s, largest peak first (%u of %u)\n",
                         tracks_heap(mm) ? "" : " (process RSS)", shown, n);
        cp_strbuf_printf(out, "  %10s %14s %12s %12s  %s\n", "calls", "delta MiB", "peak MiB",
                         "leaked MiB", "context  file:line");
        for (uint32_t k = 0; k < shown; k++) {
            const cp_mmem_ctx *c = &mm->ctxs[idx[k]];
            const cp_msite *si = site_of(m, c->site);
            cp_strbuf_printf(out, "  %10llu %+14.1f %12.1f %12.1f  ", (unsigned long long)c->count,
                             mib((double)cp_report_mem_ctx_delta(mm, c)),
                             mib((double)cp_report_mem_ctx_peak(mm, c)),
                             mib((double)c->leaked_bytes));
            cp_strbuf_put_clean(out, si->name);
            if (si->file[0]) {
                cp_strbuf_puts(out, "  ");
                cp_strbuf_put_clean(out, si->file);
                if (si->line)
                    cp_strbuf_printf(out, ":%u", si->line);
            }
            cp_strbuf_putc(out, '\n');
        }
    }
    free(idx);
}

/* The contexts CP-MEM-002 calls leak suspects (rules_mem.h), with their
 * top leak groups. */
static void text_leaks(const cp_model *m, cp_strbuf *out) {
    const cp_mmem *mm = &m->mem;
    uint32_t shown = 0;
    for (uint32_t i = 0; i < mm->nctxs && shown < TEXT_TOP_LEAKS; i++) {
        const cp_mmem_ctx *c = &mm->ctxs[i];
        int kind = cp_mem_leak_suspect(c, m->cfg.memory_intensive_bytes, NULL, NULL);
        if (!kind)
            continue;
        int rising = kind == 1 || (c->count >= 2 && c->floor_rises && c->floor_slope > 0);
        if (!shown++)
            cp_strbuf_puts(out, "  leak suspects\n");
        cp_strbuf_puts(out, "    ");
        cp_strbuf_put_clean(out, site_of(m, c->site)->name);
        cp_strbuf_printf(out, ": %.1f MiB in %llu blocks still live after it",
                         mib((double)c->leaked_bytes), (unsigned long long)c->leaked_blocks);
        if (rising)
            cp_strbuf_printf(out, "; floor +%.2f MiB per call (%llu of %llu calls rose)",
                             mib(c->floor_slope), (unsigned long long)c->floor_rises,
                             (unsigned long long)(c->count - 1));
        cp_strbuf_putc(out, '\n');
        uint32_t sites = 0;
        for (uint32_t g = 0; g < cap_of(mm->nleaks, CP_MEM_MAX_LEAKS) && sites < TEXT_LEAK_SITES;
             g++) {
            if (mm->leaks[g].ctx != i)
                continue;
            sites++;
            cp_strbuf_printf(out, "      %10.1f MiB  ", mib((double)mm->leaks[g].live_bytes));
            cp_report_mem_put_stack(out, m, mm->leaks[g].stack);
            cp_strbuf_putc(out, '\n');
        }
    }
}

static void text_gc(const cp_model *m, cp_strbuf *out) {
    const cp_mgc *gc = &m->mem.gc;
    if (!gc->enabled)
        return;
    uint64_t t = gc->time_ns[0] + gc->time_ns[1] + gc->time_ns[2];
    cp_strbuf_printf(out,
                     "  GC: %llu/%llu/%llu collections (gen 0/1/2), %.3f s (%.1f%% of wall), "
                     "longest pause %.1f ms, %llu uncollectable\n",
                     (unsigned long long)gc->collections[0], (unsigned long long)gc->collections[1],
                     (unsigned long long)gc->collections[2], (double)t / 1e9,
                     m->duration_ns ? 100.0 * (double)t / (double)m->duration_ns : 0.0,
                     (double)gc->max_pause_ns / 1e6,
                     (unsigned long long)(gc->uncollectable[0] + gc->uncollectable[1] +
                                          gc->uncollectable[2]));
}

static void text_procs(const cp_model *m, cp_strbuf *out) {
    const cp_mmem *mm = &m->mem;
    uint32_t n = cap_of(mm->nprocs, CP_MEM_MAX_PROCS);
    if (!n)
        return;
    cp_strbuf_printf(out, "  %8s %8s %8s %20s %12s %12s\n", "process", "pid", "samples",
                     "USS MiB first->last", "PSS max MiB", "RSS max MiB");
    for (uint32_t i = 0; i < n; i++) {
        const cp_mproc *p = &mm->procs[i];
        if (p->worker < 0)
            cp_strbuf_printf(out, "  %8s", "main");
        else
            cp_strbuf_printf(out, "  %8d", (int)p->worker);
        char uss[48];
        snprintf(uss, sizeof uss, "%.1f->%.1f", mib((double)p->uss_first), mib((double)p->uss_last));
        cp_strbuf_printf(out, " %8d %8u %20s %12.1f %12.1f\n", (int)p->pid, p->nsamples, uss,
                         mib((double)p->pss_max), mib((double)p->rss_max));
    }
}

void cp_report_mem_text(const cp_model *m, cp_strbuf *out) {
    const cp_mmem *mm = &m->mem;
    if (!cp_report_mem_enabled(mm))
        return;
    cp_strbuf_printf(out, "\nMemory (mode %s", cp_report_mem_mode_name(mm));
    if (mm->mode == 1)
        cp_strbuf_printf(out, ", one allocation recorded per ~%llu bytes: figures are estimates",
                         (unsigned long long)mm->sample_bytes);
    if (mm->native)
        cp_strbuf_puts(out, ", native heap tracked");
    cp_strbuf_puts(out, ")\n");
    cp_strbuf_printf(out, "  process RSS: last %.1f MiB, peak %.1f MiB", mib((double)mm->rss_last),
                     mib((double)mm->rss_peak));
    if (mm->machine_bytes)
        cp_strbuf_printf(out, " of %.1f MiB physical memory", mib((double)mm->machine_bytes));
    cp_strbuf_putc(out, '\n');
    text_domains(m, out);
    text_contexts(m, out);
    text_leaks(m, out);
    text_gc(m, out);
    text_procs(m, out);
    uint64_t dropped = mm->dropped_blocks + mm->dropped_stacks + mm->dropped_snapshots +
                       mm->dropped_marks + mm->dropped_ctxs + mm->dropped_samples;
    if (dropped)
        cp_strbuf_printf(out, "  caps reached: %llu records dropped (see memory.dropped)\n",
                         (unsigned long long)dropped);
}
