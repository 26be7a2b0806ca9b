/* report_data.c -- the data-loading section of the JSON report and the
 * "Data loading" block of the text summary (report.h).  Reads m->data
 * and the site table only.  Every figure is documented in
 * docs/report-schema.md ("data_loading"). */
#include <stdlib.h>
#include <string.h>

#include "report/docw.h"
#include "report/report.h"

#define TEXT_TOP_STAGES 10
#define TEXT_TOP_OUTLIERS 5

static const cp_msite unknown_site = {"?", "", 0, CODEPROF_SITE_SCOPE};

static const cp_msite *site_of(const cp_model *m, uint32_t id) {
    const cp_msite *si = cp_model_site(m, id);
    return si ? si : &unknown_site;
}

/* ---- JSON helpers -------------------------------------------------------- */

/* sum / n in seconds (rounded to the ns), 0 when n is 0. */
static void kv_mean(cp_docw *w, const char *k, uint64_t sum_ns, uint64_t n) {
    cp_docw_kv_ns(w, k, n ? (sum_ns + n / 2) / n : 0);
}
static void kv_opt_i(cp_docw *w, const char *k, int64_t v, int present) {
    cp_docw_key(w, k);
    if (present)
        cp_docw_int(w, v);
    else
        cp_docw_null(w);
}
static void kv_opt_bool(cp_docw *w, const char *k, int v, int present) {
    cp_docw_key(w, k);
    if (present)
        cp_docw_bool(w, v);
    else
        cp_docw_null(w);
}

/* The dataset with the most item time (NULL if none). */
static const cp_mdataset *heaviest_dataset(const cp_mdata *d) {
    const cp_mdataset *best = NULL;
    for (uint32_t i = 0; i < d->ndatasets; i++)
        if (!best || d->datasets[i].sum_ns > best->sum_ns)
            best = &d->datasets[i];
    return best;
}

/* The loader the loop waited on longest (NULL if none delivered a batch). */
static const cp_mloader *most_waited_loader(const cp_mdata *d) {
    const cp_mloader *best = NULL;
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (L->batches && (!best || L->wait_ns > best->wait_ns))
            best = L;
    }
    return best;
}

static void write_indices(cp_docw *w, const char *key, const cp_mdataset *ds) {
    cp_docw_key(w, key);
    cp_docw_begin_array(w);
    for (uint32_t k = 0; ds && k < ds->nbottlenecks; k++)
        cp_docw_int(w, ds->bottleneck_indices[k]);
    cp_docw_end_array(w);
}

static void write_summary(cp_docw *w, const cp_mdata *d) {
    uint64_t items = 0, slow = 0, fails = 0;
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        items += d->datasets[i].items;
        slow += d->datasets[i].slow_loads;
        fails += d->datasets[i].failures;
    }
    cp_docw_key(w, "data_loading");
    cp_docw_begin_object(w);
    kv_mean(w, "avg_load_time", d->item_ns_total, items);
    cp_docw_kv_u(w, "slow_loads", slow);
    write_indices(w, "bottleneck_indices", heaviest_dataset(d));
    cp_docw_kv_u(w, "count", items);
    cp_docw_kv_u(w, "failures", fails);
    cp_docw_end_object(w);
}

static void write_stage_stats(cp_docw *w, const cp_mstage *st) {
    cp_docw_kv_u(w, "count", st->calls);
    kv_mean(w, "avg_time", st->sum_ns, st->calls);
    cp_docw_kv_ns(w, "total_time", st->sum_ns);
    cp_docw_kv_ns(w, "max_time", st->max_ns);
    cp_docw_kv_d(w, "share_of_item_time", st->share_of_item_time);
}

/* "preprocessing" / "augmentation": the stages of one site kind.  Two
 * sites with the same name get distinct keys ("name (file:line)"). */
static void write_kind_section(cp_docw *w, const cp_model *m, const char *section,
                               const char *avg_key, unsigned kind) {
    const cp_mdata *d = &m->data;
    uint64_t sum = 0, calls = 0;
    for (uint32_t i = 0; i < d->nstages; i++) {
        if (site_of(m, d->stages[i].site)->kind != kind)
            continue;
        sum += d->stages[i].sum_ns;
        calls += d->stages[i].calls;
    }
    cp_docw_key(w, section);
    cp_docw_begin_object(w);
    kv_mean(w, avg_key, sum, calls);
    cp_docw_kv_u(w, "calls", calls);
    cp_docw_kv_ns(w, "total_time", sum);
    cp_docw_key(w, "function_breakdown");
    cp_docw_begin_object(w);
    for (uint32_t i = 0; i < d->nstages; i++) {
        const cp_mstage *st = &d->stages[i];
        const cp_msite *si = site_of(m, st->site);
        if (si->kind != kind)
            continue;
        int dup = 0;
        for (uint32_t j = 0; j < i && !dup; j++)
            dup = site_of(m, d->stages[j].site)->kind == kind &&
                  strcmp(site_of(m, d->stages[j].site)->name, si->name) == 0;
        if (dup) {
            cp_strbuf key;
            cp_strbuf_init(&key);
            cp_strbuf_printf(&key, "%s (%s:%u)", si->name, si->file, si->line);
            if (!cp_strbuf_ok(&key)) {
                cp_docw_fail(w); /* the report's contract: OOM shows in the writer */
                cp_strbuf_free(&key);
                continue;
            }
            cp_docw_key(w, key.data);
            cp_strbuf_free(&key);
        } else {
            cp_docw_key(w, si->name);
        }
        cp_docw_begin_object(w);
        write_stage_stats(w, st);
        cp_docw_end_object(w);
    }
    cp_docw_end_object(w);
    cp_docw_end_object(w);
}

static void write_datasets(cp_docw *w, const cp_model *m) {
    const cp_mdata *d = &m->data;
    cp_docw_key(w, "datasets");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        const cp_mdataset *ds = &d->datasets[i];
        const cp_msite *si = site_of(m, ds->site);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "name", si->name);
        cp_docw_kv_u(w, "count", ds->items);
        kv_mean(w, "avg_load_time", ds->sum_ns, ds->items);
        cp_docw_kv_ns(w, "min", ds->min_ns);
        cp_docw_kv_ns(w, "p50", ds->p50_ns);
        cp_docw_kv_ns(w, "p95", ds->p95_ns);
        cp_docw_kv_ns(w, "p99", ds->p99_ns);
        cp_docw_kv_ns(w, "max", ds->max_ns);
        cp_docw_kv_ns(w, "total_time", ds->sum_ns);
        cp_docw_kv_u(w, "slow_loads", ds->slow_loads);
        cp_docw_kv_u(w, "failures", ds->failures);
        cp_docw_kv_u(w, "distinct_indices", ds->distinct_indices);
        write_indices(w, "bottleneck_indices", ds);
        cp_docw_key(w, "bottlenecks");
        cp_docw_begin_array(w);
        for (uint32_t k = 0; k < ds->nbottlenecks; k++) {
            cp_docw_begin_object(w);
            cp_docw_kv_i(w, "index", ds->bottleneck_indices[k]);
            cp_docw_kv_ns(w, "load_time", ds->bottleneck_ns[k]);
            cp_docw_kv_u(w, "epochs_slow", ds->bottleneck_epochs[k]);
            cp_docw_end_object(w);
        }
        cp_docw_end_array(w);
        cp_docw_kv_u(w, "repeat_slow_indices", ds->repeat_slow);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static void write_loaders(cp_docw *w, const cp_model *m) {
    const cp_mdata *d = &m->data;
    cp_docw_key(w, "loaders");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        const cp_mloader_desc *c = &L->desc;
        int dsc = c->described != 0;
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "name", site_of(m, L->site)->name);
        cp_docw_kv_u(w, "batches", L->batches);
        cp_docw_kv_u(w, "items", L->items);
        cp_docw_kv_u(w, "epochs", L->epochs);
        kv_mean(w, "avg_batch_time", L->wait_ns, L->batches);
        kv_mean(w, "avg_wait_time", L->wait_ns, L->batches);
        kv_mean(w, "avg_step_time", L->step_ns, L->steps);
        cp_docw_kv_ns(w, "total_wait_time", L->wait_ns);
        cp_docw_kv_ns(w, "total_step_time", L->step_ns);
        kv_mean(w, "first_batch_latency", L->first_wait_ns, L->epochs);
        cp_docw_kv_ns(w, "wait_p50", L->wait_p50_ns);
        cp_docw_kv_ns(w, "wait_p95", L->wait_p95_ns);
        cp_docw_kv_ns(w, "wait_max", L->wait_max_ns);
        cp_docw_kv_d(w, "data_stall_fraction", L->stall_fraction);
        cp_docw_kv_d(w, "samples_per_s", L->samples_per_s);
        cp_docw_kv_d(w, "batches_per_s", L->batches_per_s);
        kv_opt_i(w, "num_workers", c->num_workers, dsc);
        kv_opt_i(w, "batch_size", c->batch_size, dsc);
        kv_opt_i(w, "prefetch_factor", c->prefetch_factor, dsc);
        kv_opt_bool(w, "pin_memory", c->pin_memory, dsc);
        kv_opt_bool(w, "persistent_workers", c->persistent_workers, dsc);
        kv_opt_bool(w, "uses_gpu", c->uses_gpu, dsc);
        kv_opt_bool(w, "iterable", c->iterable, dsc);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static void write_workers(cp_docw *w, const cp_model *m) {
    const cp_mdata *d = &m->data;
    cp_docw_key(w, "workers");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < d->nworkers; i++) {
        const cp_mworker *wk = &d->workers[i];
        cp_docw_begin_object(w);
        cp_docw_kv_i(w, "worker", wk->worker);
        cp_docw_kv_i(w, "pid", wk->pid);
        cp_docw_kv_u(w, "items", wk->items);
        cp_docw_kv_u(w, "failures", wk->failures);
        cp_docw_kv_ns(w, "busy_time", wk->busy_ns);
        cp_docw_kv_ns(w, "span", wk->span_ns);
        cp_docw_kv_ns(w, "idle_time", wk->span_ns > wk->busy_ns ? wk->span_ns - wk->busy_ns : 0);
        cp_docw_key(w, "utilization");
        if (wk->span_ns) {
            /* busy can exceed the span when items overlapped (threads) */
            double u = (double)wk->busy_ns / (double)wk->span_ns;
            cp_docw_double(w, u < 1.0 ? u : 1.0);
        } else {
            cp_docw_null(w);
        }
        cp_docw_kv_bool(w, "incomplete", wk->incomplete);
        /* why (e.g. "posix_fallocate: No space left on device (errno 28)"); null if complete */
        cp_docw_kv_s(w, "incomplete_reason", wk->incomplete && wk->reason[0] ? wk->reason : NULL);
        cp_docw_kv_i(w, "spool_errno", wk->spool_errno);
        cp_docw_kv_u(w, "spool_dropped_records", wk->spool_dropped);
        cp_docw_kv_u(w, "spool_invalid_records", wk->spool_bad);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static void write_stages(cp_docw *w, const cp_model *m) {
    const cp_mdata *d = &m->data;
    cp_docw_key(w, "stages");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < d->nstages; i++) {
        const cp_mstage *st = &d->stages[i];
        const cp_msite *si = site_of(m, st->site);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "function", si->name);
        cp_docw_kv_s(w, "kind", cp_report_kind_name(si->kind));
        cp_docw_kv_s(w, "file", si->file);
        cp_docw_kv_u(w, "line", si->line);
        cp_docw_kv_u(w, "calls", st->calls);
        cp_docw_kv_ns(w, "total_time", st->sum_ns);
        kv_mean(w, "avg_time", st->sum_ns, st->calls);
        cp_docw_kv_ns(w, "max_time", st->max_ns);
        cp_docw_kv_d(w, "share_of_item_time", st->share_of_item_time);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static const char *verdict(const cp_model *m, const cp_mloader *L) {
    if (!L)
        return "unknown";
    return L->stall_fraction > m->cfg.data_stall_fraction ? "data-bound" : "compute-bound";
}

void cp_report_data_doc(const cp_model *m, cp_docw *w) {
    const cp_mdata *d = &m->data;
    cp_docw_begin_object(w);
    write_summary(w, d);
    write_kind_section(w, m, "preprocessing", "avg_preprocess_time", CODEPROF_SITE_PREPROCESS);
    write_kind_section(w, m, "augmentation", "avg_augment_time", CODEPROF_SITE_AUGMENT);
    write_datasets(w, m);
    write_loaders(w, m);
    write_workers(w, m);
    write_stages(w, m);
    cp_docw_kv_u(w, "cpu_count", d->cpu_count);
    cp_docw_kv_u(w, "spool_errors", d->spool_errors);
    cp_docw_kv_u(w, "aggregated_records", d->aggregated_records);
    cp_docw_kv_u(w, "records_lost_oom", d->records_lost_oom);
    const cp_mloader *L = most_waited_loader(d);
    cp_docw_key(w, "stall");
    cp_docw_begin_object(w);
    cp_docw_key(w, "loader");
    cp_docw_string(w, L ? site_of(m, L->site)->name : NULL);
    cp_docw_kv_d(w, "data_stall_fraction", L ? L->stall_fraction : 0.0);
    cp_docw_kv_d(w, "threshold", m->cfg.data_stall_fraction);
    cp_docw_kv_s(w, "verdict", verdict(m, L));
    cp_docw_end_object(w);
    cp_docw_end_object(w);
}

/* ---- text ------------------------------------------------------------------ */

/* A name with control characters replaced by '?' (terminal safety). */
static void put_name(cp_strbuf *sb, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        cp_strbuf_putc(sb, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }
static double mean_ms(uint64_t sum, uint64_t n) { return n ? (double)sum / (double)n / 1e6 : 0; }

void cp_report_data_text(const cp_model *m, cp_strbuf *out) {
    const cp_mdata *d = &m->data;
    if (!d->ndatasets && !d->nloaders && !d->nstages && !d->nworkers)
        return;
    cp_strbuf_puts(out, "\nData loading\n");
    if (d->aggregated_records)
        cp_strbuf_printf(out, "  %llu records past max_data_records aggregated (percentiles and "
                              "outliers from the first ones)\n",
                         (unsigned long long)d->aggregated_records);
    if (d->records_lost_oom)
        cp_strbuf_printf(out, "  %llu records lost: out of memory\n",
                         (unsigned long long)d->records_lost_oom);
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        cp_strbuf_puts(out, "  loader ");
        put_name(out, site_of(m, L->site)->name);
        cp_strbuf_printf(out,
                         ": %llu batches, avg wait %.3f ms, avg step %.3f ms, stall %.1f%% (%s)"
                         ", %.1f samples/s",
                         (unsigned long long)L->batches, mean_ms(L->wait_ns, L->batches),
                         mean_ms(L->step_ns, L->steps), 100.0 * L->stall_fraction,
                         L->stall_fraction > m->cfg.data_stall_fraction ? "data-bound"
                                                                        : "compute-bound",
                         L->samples_per_s);
        if (L->desc.described)
            cp_strbuf_printf(out, ", workers %d", (int)L->desc.num_workers);
        cp_strbuf_putc(out, '\n');
    }
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        const cp_mdataset *ds = &d->datasets[i];
        cp_strbuf_puts(out, "  dataset ");
        put_name(out, site_of(m, ds->site)->name);
        cp_strbuf_printf(out,
                         ": %llu items, avg %.3f ms, p95 %.3f ms, max %.3f ms, slow loads %llu, "
                         "failures %llu\n",
                         (unsigned long long)ds->items, mean_ms(ds->sum_ns, ds->items),
                         ms(ds->p95_ns), ms(ds->max_ns), (unsigned long long)ds->slow_loads,
                         (unsigned long long)ds->failures);
        if (ds->nbottlenecks) {
            cp_strbuf_puts(out, "    outlier indices:");
            uint32_t n = ds->nbottlenecks < TEXT_TOP_OUTLIERS ? ds->nbottlenecks
                                                               : TEXT_TOP_OUTLIERS;
            for (uint32_t k = 0; k < n; k++)
                cp_strbuf_printf(out, "%s %lld (%.3f ms)", k ? "," : "",
                                 (long long)ds->bottleneck_indices[k], ms(ds->bottleneck_ns[k]));
            if (ds->nbottlenecks > n)
                cp_strbuf_printf(out, " and %u more", ds->nbottlenecks - n);
            cp_strbuf_putc(out, '\n');
        }
    }
    if (d->nworkers) {
        cp_strbuf_printf(out, "  %8s %8s %10s %10s %7s  %s\n", "worker", "pid", "items",
                         "busy s", "util %", "state");
        for (uint32_t i = 0; i < d->nworkers; i++) {
            const cp_mworker *wk = &d->workers[i];
            if (wk->worker < 0)
                cp_strbuf_printf(out, "  %8s", "main");
            else
                cp_strbuf_printf(out, "  %8d", (int)wk->worker);
            cp_strbuf_printf(out, " %8d %10llu %10.3f ", (int)wk->pid,
                             (unsigned long long)wk->items, (double)wk->busy_ns / 1e9);
            if (wk->span_ns) {
                double u = (double)wk->busy_ns / (double)wk->span_ns;
                cp_strbuf_printf(out, "%7.1f", 100.0 * (u < 1.0 ? u : 1.0));
            } else {
                cp_strbuf_printf(out, "%7s", "-");
            }
            if (wk->incomplete && wk->reason[0])
                cp_strbuf_printf(out, "  incomplete: %s\n", wk->reason);
            else
                cp_strbuf_puts(out, wk->incomplete ? "  incomplete\n" : "  ok\n");
        }
    }
    if (d->nstages) {
        cp_strbuf_printf(out, "  %10s %12s %8s  %s\n", "calls", "avg ms", "% item", "stage (kind)");
        uint32_t n = d->nstages < TEXT_TOP_STAGES ? d->nstages : TEXT_TOP_STAGES;
        for (uint32_t i = 0; i < n; i++) {
            const cp_mstage *st = &d->stages[i];
            const cp_msite *si = site_of(m, st->site);
            cp_strbuf_printf(out, "  %10llu %12.3f %8.1f  ", (unsigned long long)st->calls,
                             mean_ms(st->sum_ns, st->calls), 100.0 * st->share_of_item_time);
            put_name(out, si->name);
            cp_strbuf_printf(out, " (%s)\n", cp_report_kind_name(si->kind));
        }
    }
}
