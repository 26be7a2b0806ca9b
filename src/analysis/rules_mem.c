/* rules_mem.c -- the memory rules CP-MEM-001..004 (rules_mem.h). */
#include "analysis/rules_mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/rule_util.h"

#define MIB (1024.0 * 1024.0)

static const char *site_name(const cp_model *m, uint32_t site) {
    const cp_msite *si = cp_model_site(m, site);
    return si ? si->name : "?";
}

/* Allocation tracking ran (else a context's figures are RSS ones). */
static int tracks_heap(const cp_mmem *mm) { return mm->mode != 0 || mm->native; }

static double ctx_peak(const cp_mmem *mm, const cp_mmem_ctx *c) {
    return (double)(tracks_heap(mm) ? c->peak_max : c->rss_peak_max);
}

static double ctx_max_delta(const cp_mmem *mm, const cp_mmem_ctx *c) {
    return (double)(tracks_heap(mm) ? c->delta_max : c->rss_delta_max);
}

static double ctx_delta_sum(const cp_mmem *mm, const cp_mmem_ctx *c) {
    return (double)(tracks_heap(mm) ? c->delta_sum : c->rss_delta_sum);
}

/* What the figures are, for the recommendations. */
static const char *measure_note(const cp_mmem *mm, int estimated) {
    if (!tracks_heap(mm))
        return " (process RSS)";
    return estimated || mm->estimated ? " (tracked heap, sampled estimates)" : " (tracked heap)";
}

/* The same inside a parenthesis that already says something. */
static const char *measure_clause(const cp_mmem *mm, int estimated) {
    if (!tracks_heap(mm))
        return "; process RSS";
    return estimated || mm->estimated ? "; tracked heap, sampled estimates" : "; tracked heap";
}

static const char *plural(uint64_t n) { return n == 1 ? "" : "s"; }

/* ------------------------------------------------------------------------ */
/* CP-MEM-001 memory_intensive_functions                                     */
/* ------------------------------------------------------------------------ */

static int intensive_funcs(cp_model *m, const cp_rule_info *r, double thr) {
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (!f->calls || !f->rss_count)
            continue;
        double v = (double)f->rss_delta_max;
        if (!(v > thr))
            continue;
        const char *name = site_name(m, f->site);
        if (cp_rule_add(m, r, name, v, thr, "bytes", v / thr, 0.0,
                        "%s grew RSS by up to %.1f MiB in one call (%llu calls measured, "
                        "%+.1f MiB net in total), above the %.1f MiB threshold; free large "
                        "intermediates early (del, reuse preallocated buffers), process frames "
                        "in chunks instead of whole clips, and run inference under "
                        "torch.no_grad().",
                        name, cp_rule_mib(v), (unsigned long long)f->rss_count,
                        cp_rule_mib((double)f->rss_delta_sum), cp_rule_mib(thr)) != 0)
            return -1;
    }
    return 0;
}

int cp_rule_mem_intensive(cp_model *m, const cp_rule_info *r) {
    const cp_mmem *mm = &m->mem;
    double thr = m->cfg.memory_intensive_bytes;
    int any = 0;
    for (uint32_t i = 0; i < mm->nctxs; i++)
        any |= mm->ctxs[i].count > 0;
    if (!any)
        return intensive_funcs(m, r, thr);
    for (uint32_t i = 0; i < mm->nctxs; i++) {
        const cp_mmem_ctx *c = &mm->ctxs[i];
        if (!c->count)
            continue;
        double peak = ctx_peak(mm, c), kept = ctx_max_delta(mm, c);
        double v = peak > kept ? peak : kept;
        if (!(v > thr))
            continue;
        const char *name = site_name(m, c->site);
        double net = ctx_delta_sum(mm, c);
        int rc;
        if (kept > 0 && kept * 2 >= peak) {
            rc = cp_rule_add(m, r, name, v, thr, "bytes", v / thr, 0.0,
                             "%s kept up to %.1f MiB in one call (peak %.1f MiB within, %llu "
                             "call%s, %+.1f MiB net in total%s), above the %.1f MiB threshold: "
                             "release references to what it returns or caches once used (del, "
                             "no lists of whole clips), process in chunks, and store frames as "
                             "compact arrays (uint8 numpy arrays or tensors, not lists of "
                             "Python objects).",
                             name, cp_rule_mib(kept), cp_rule_mib(peak),
                             (unsigned long long)c->count, plural(c->count), cp_rule_mib(net),
                             measure_clause(mm, c->estimated), cp_rule_mib(thr));
        } else {
            rc = cp_rule_add(m, r, name, v, thr, "bytes", v / thr, 0.0,
                             "%s reached a peak of %.1f MiB within one call for a net %+.1f MiB "
                             "at most (%llu call%s%s), above the %.1f MiB threshold: the memory "
                             "is transient, so process in chunks, reuse preallocated buffers "
                             "and use in-place operations (out=..., tensor.add_()) to lower "
                             "the peak.",
                             name, cp_rule_mib(peak), cp_rule_mib(kept),
                             (unsigned long long)c->count, plural(c->count),
                             measure_clause(mm, c->estimated), cp_rule_mib(thr));
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-MEM-002 memory_leaks                                                   */
/* ------------------------------------------------------------------------ */

/* "file:line function" of stack `s`'s innermost frame with a file (else
 * its innermost frame), into buf. */
static void stack_site(const cp_model *m, uint32_t s, char *buf, size_t n) {
    uint32_t f = cp_mmem_stack_frame(m, s);
    if (f == UINT32_MAX) {
        snprintf(buf, n, "an unknown site");
        return;
    }
    const cp_mmem_stack *st = &m->mem.stacks[s];
    const cp_msite *si = cp_model_site(m, st->site[f]);
    const cp_msite *inner = f ? cp_model_site(m, st->site[0]) : NULL;
    int k;
    if (si && si->file[0])
        k = snprintf(buf, n, "%s:%u %s", si->file, st->line[f], si->name);
    else
        k = snprintf(buf, n, "%s", si ? si->name : "?");
    if (inner && k >= 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, " via %s", inner->name);
}

/* Up to 3 leak groups of context `ctx`, largest first: "a (X MiB), b (Y MiB)". */
static void leak_sites(const cp_model *m, uint32_t ctx, char *buf, size_t n) {
    const cp_mmem *mm = &m->mem;
    size_t len = 0;
    uint32_t listed = 0;
    buf[0] = '\0';
    uint32_t nl = mm->nleaks < CP_MEM_MAX_LEAKS ? mm->nleaks : CP_MEM_MAX_LEAKS;
    for (uint32_t i = 0; i < nl && listed < 3 && len + 1 < n; i++) {
        const cp_mmem_group *g = &mm->leaks[i];
        if (g->ctx != ctx)
            continue;
        char where[160];
        stack_site(m, g->stack, where, sizeof where);
        int k = snprintf(buf + len, n - len, "%s%s (%.1f MiB in %llu block%s)", listed ? ", " : "",
                         where, cp_rule_mib((double)g->live_bytes),
                         (unsigned long long)g->live_blocks, plural(g->live_blocks));
        if (k < 0)
            break;
        len += (size_t)k < n - len ? (size_t)k : n - len - 1;
        listed++;
    }
}

int cp_mem_leak_suspect(const cp_mmem_ctx *c, double intensive_bytes, double *value,
                        double *threshold) {
    double v = 0, t = 0;
    int kind = 0;
    double floor_last = c->floor_last > 0 ? (double)c->floor_last : 0.0;
    double growth_thr = floor_last * 0.01 > CP_MEM_LEAK_MIN_GROWTH ? floor_last * 0.01
                                                                    : CP_MEM_LEAK_MIN_GROWTH;
    double thr_leak = intensive_bytes / 10.0;
    if (c->count >= CP_MEM_LEAK_MIN_CALLS &&
        (double)c->floor_rises >= CP_MEM_LEAK_RISE_SHARE * (double)(c->count - 1) &&
        c->floor_slope > growth_thr) {
        kind = 1;
        v = c->floor_slope;
        t = growth_thr;
    } else if (c->count >= 2 && (double)c->leaked_bytes > thr_leak &&
               c->leaked_bytes > c->peak_max) {
        /* one call cannot leave more than its peak live: blocks of several
         * calls are, so they accumulate */
        kind = 2;
        v = (double)c->leaked_bytes;
        t = thr_leak;
    }
    if (value)
        *value = v;
    if (threshold)
        *threshold = t;
    return kind;
}

int cp_rule_mem_leak(cp_model *m, const cp_rule_info *r) {
    const cp_mmem *mm = &m->mem;
    for (uint32_t i = 0; i < mm->nctxs; i++) {
        const cp_mmem_ctx *c = &mm->ctxs[i];
        double value, thr;
        int kind = cp_mem_leak_suspect(c, m->cfg.memory_intensive_bytes, &value, &thr);
        if (!kind)
            continue;
        int rising = kind == 1;
        const char *name = site_name(m, c->site);
        char sites[360];
        leak_sites(m, i, sites, sizeof sites);
        char growth[200] = "";
        if (rising)
            snprintf(growth, sizeof growth,
                     "its floor (live bytes after a call) rose after %llu of %llu calls, "
                     "+%.2f MiB per call (%.1f -> %.1f MiB); ",
                     (unsigned long long)c->floor_rises, (unsigned long long)(c->count - 1),
                     cp_rule_mib(c->floor_slope), cp_rule_mib((double)c->floor_first),
                     cp_rule_mib((double)c->floor_last));
        if (cp_rule_add(m, r, name, value, thr, rising ? "bytes/call" : "bytes", value / thr, 0.0,
                        "%s keeps memory across calls: %s%.1f MiB allocated inside its %llu "
                        "calls is still live%s. %s%s. Release what each call keeps: clear "
                        "caches and lists that grow every call, keep scalars not tensors "
                        "(loss.item(), .detach()), drop references to finished batches.",
                        name, growth, cp_rule_mib((double)c->leaked_bytes),
                        (unsigned long long)c->count, measure_note(mm, c->estimated),
                        sites[0] ? "Top allocation sites: " : "No allocation site recorded",
                        sites[0] ? sites : " (allocation tracking off or sampled out)") != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-MEM-003 gc_overhead                                                    */
/* ------------------------------------------------------------------------ */

int cp_rule_mem_gc(cp_model *m, const cp_rule_info *r) {
    const cp_mgc *gc = &m->mem.gc;
    if (!gc->enabled || !m->duration_ns)
        return 0;
    uint64_t t = gc->time_ns[0] + gc->time_ns[1] + gc->time_ns[2];
    double secs = (double)t / 1e9, wall = (double)m->duration_ns / 1e9;
    double share = secs / wall;
    if (!(share > CP_MEM_GC_SHARE))
        return 0;
    char ts[32], ps[32];
    cp_rule_secs(secs, ts, sizeof ts);
    cp_rule_secs((double)gc->max_pause_ns / 1e9, ps, sizeof ps);
    uint64_t n = gc->collections[0] + gc->collections[1] + gc->collections[2];
    return cp_rule_add(
        m, r, "garbage collector", share, CP_MEM_GC_SHARE, "fraction", share / CP_MEM_GC_SHARE,
        secs,
        "The garbage collector took %s, %.1f%% of the %.2f s run (%llu collections: %llu/%llu/%llu "
        "in generations 0/1/2, %.1f per second; longest pause %s). Call gc.freeze() once start-up "
        "is done (and before DataLoader workers fork) so long-lived objects are not scanned "
        "again; create fewer temporary containers in the loop; or raise the thresholds, e.g. "
        "gc.set_threshold(10 * gc.get_threshold()[0], 20, 20), to collect about 10x less often.",
        ts, 100.0 * share, wall, (unsigned long long)n, (unsigned long long)gc->collections[0],
        (unsigned long long)gc->collections[1], (unsigned long long)gc->collections[2],
        (double)n / wall, ps);
}

/* ------------------------------------------------------------------------ */
/* CP-MEM-004 memory_pressure                                                */
/* ------------------------------------------------------------------------ */

/* The described loader with the most workers (NULL when none). */
static const cp_mloader_desc *loader_desc(const cp_model *m) {
    const cp_mloader_desc *best = NULL;
    for (uint32_t i = 0; i < m->data.nloaders; i++) {
        const cp_mloader_desc *d = &m->data.loaders[i].desc;
        if (d->described && (!best || d->num_workers > best->num_workers))
            best = d;
    }
    return best;
}

int cp_rule_mem_pressure(cp_model *m, const cp_rule_info *r) {
    const cp_mmem *mm = &m->mem;
    if (!mm->machine_bytes)
        return 0;
    double machine = (double)mm->machine_bytes;
    double pss_sum = 0, worker_pss = 0;
    uint32_t nworkers = 0;
    uint32_t np = mm->nprocs < CP_MEM_MAX_PROCS ? mm->nprocs : CP_MEM_MAX_PROCS;
    for (uint32_t i = 0; i < np; i++) {
        pss_sum += (double)mm->procs[i].pss_max;
        if (mm->procs[i].worker >= 0) {
            worker_pss += (double)mm->procs[i].pss_max;
            nworkers++;
        }
    }
    double rss = (double)mm->rss_peak;
    double peak = rss > pss_sum ? rss : pss_sum;
    double share = peak / machine;
    if (!(share > CP_MEM_PRESSURE_SHARE))
        return 0;
    char advice[320];
    const cp_mloader_desc *d = loader_desc(m);
    if (nworkers && worker_pss > 0) {
        double per = worker_pss / nworkers;
        double excess = peak - 0.7 * machine;
        double need = ceil(excess / per); /* per is tiny in a corrupt report: clamp first */
        unsigned drop = need >= (double)nworkers ? nworkers : (unsigned)need;
        snprintf(advice, sizeof advice,
                 "each worker holds %.1f MiB (PSS): %u fewer workers (num_workers %u -> %u) "
                 "would bring it under 70%%; ",
                 cp_rule_mib(per), drop, nworkers, nworkers - drop);
    } else {
        snprintf(advice, sizeof advice, "%s", "");
    }
    char loader[160] = "";
    if (d)
        snprintf(loader, sizeof loader, " (now prefetch_factor %d, batch_size %d)",
                 (int)d->prefetch_factor, (int)d->batch_size);
    return cp_rule_add(m, r, "process memory", share, CP_MEM_PRESSURE_SHARE, "fraction",
                       share / CP_MEM_PRESSURE_SHARE, 0.0,
                       "Peak memory %.1f MiB is %.0f%% of this machine's %.1f MiB (RSS peak of "
                       "this process %.1f MiB; main + %u workers' peak PSS %.1f MiB): the run "
                       "risks swapping or the OOM killer. %sor lower prefetch_factor and the "
                       "batch size%s, which bound the batches held in memory.",
                       cp_rule_mib(peak), 100.0 * share, cp_rule_mib(machine), cp_rule_mib(rss),
                       nworkers, cp_rule_mib(pss_sum), advice[0] ? advice : "Use fewer workers, ",
                       loader);
}
