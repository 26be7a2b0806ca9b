/* report_json.c -- the versioned report document (docs/report-schema.md),
 * written once through the document-writer interface (docw.h): as JSON
 * text (cp_report_json) and, through the extension's backend, as Python
 * objects (src/python/model_obj.c).  Bounded by the report policy
 * (tree_prune.h): top functions, a pruned call tree, strings in tables. */
#include <stdlib.h>
#include <string.h>

#include "codeprof/version.h"
#include "report/docw.h"
#include "report/jsonw.h"
#include "report/report.h"
#include "report/report_gpu.h"
#include "report/report_lines.h"
#include "report/report_mem.h"
#include "report/report_sample.h"
#include "report/sample_est.h"
#include "report/tree_prune.h"

static const char *const kind_names[CODEPROF_SITE_KIND_COUNT_] = {
    [CODEPROF_SITE_SCOPE] = "scope",           [CODEPROF_SITE_PYTHON] = "python",
    [CODEPROF_SITE_NATIVE] = "native",         [CODEPROF_SITE_FUNCTION] = "function",
    [CODEPROF_SITE_DATASET] = "dataset",       [CODEPROF_SITE_LOADER] = "loader",
    [CODEPROF_SITE_PREPROCESS] = "preprocess", [CODEPROF_SITE_AUGMENT] = "augment",
    [CODEPROF_SITE_GPU] = "gpu",
};

const char *cp_report_kind_name(unsigned kind) {
    return kind < CODEPROF_SITE_KIND_COUNT_ ? kind_names[kind] : "unknown";
}

/* identify_bottlenecks() keys: always present, in this order.  `is_func`
 * categories name their subject "function", the others "context". */
static const struct {
    const char *name;
    int is_func;
    const char *value_alias; /* extra key repeating "value", or NULL */
} categories[] = {
    {"slow_functions", 1, "execution_time"},
    {"memory_intensive_functions", 1, "memory_delta"},
    {"slow_data_loading", 0, NULL},
    {"slow_preprocessing", 0, NULL},
    {"slow_gpu_operations", 0, NULL},
};

static const cp_msite unknown_site = {"?", "", 0, CODEPROF_SITE_SCOPE};

static const cp_msite *site_of(const cp_model *m, uint32_t id) {
    const cp_msite *si = cp_model_site(m, id);
    return si ? si : &unknown_site;
}

/* A fixed-size char field that may lack its NUL. */
static void field_string(cp_docw *w, const char *key, const char *s, size_t cap) {
    cp_docw_key(w, key);
    cp_docw_string_n(w, s, strnlen(s, cap));
}
#define FIELD_STR(w, key, arr) field_string((w), (key), (arr), sizeof(arr))

static void kv_ns_or_null(cp_docw *w, const char *k, uint64_t ns, int present) {
    cp_docw_key(w, k);
    if (present)
        cp_docw_seconds_ns(w, ns);
    else
        cp_docw_null(w);
}

static void write_meta(cp_docw *w, const cp_model *m, const cp_pruned_tree *pt) {
    cp_docw_begin_object(w);
    cp_docw_key(w, "pid");
    cp_docw_int(w, m->pid);
    FIELD_STR(w, "role", m->role);
    cp_docw_kv_s(w, "clock", m->clock_source);
    cp_docw_kv_ns(w, "start_unix_s", m->start_unix_ns);
    cp_docw_kv_ns(w, "duration_s", m->duration_ns);
    cp_docw_kv_u(w, "threads", m->nthreads);
    cp_docw_kv_u(w, "events", m->events_total);
    cp_docw_kv_u(w, "dropped_events", m->dropped_events);
    cp_docw_kv_u(w, "dropped_nodes", m->dropped_nodes);
    cp_docw_kv_u(w, "unmatched_exits", m->unmatched_exits);
    cp_docw_kv_u(w, "truncated_scopes", m->truncated);
    cp_docw_kv_u(w, "allocation_failures", m->alloc_failures);
    cp_docw_kv_u(w, "merged_models", m->merged);
    cp_docw_kv_bool(w, "approximate_percentiles", m->approx_percentiles != 0);
    cp_docw_kv_u(w, "dropped_buffer_full", m->dropped_full);
    cp_docw_kv_u(w, "dropped_reentrant", m->dropped_reentrant);
    cp_docw_kv_u(w, "dropped_no_thread_buffer", m->dropped_nothread);
    cp_docw_kv_u(w, "dropped_samples", m->dropped_samples);
    cp_docw_kv_u(w, "dropped_sites", m->dropped_sites);
    cp_docw_kv_u(w, "exited_threads", m->exited_threads);
    cp_docw_kv_u(w, "event_buffers", m->pool_buffers);
    cp_docw_kv_u(w, "timeline_events", m->ntimeline);
    cp_docw_kv_u(w, "timeline_dropped", m->timeline_dropped);
    cp_docw_kv_u(w, "timeline_traced_events", m->ntimeline_traced);
    cp_docw_kv_u(w, "timeline_traced_dropped", m->timeline_traced_dropped);
    cp_docw_key(w, "warnings");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < m->nwarnings; i++) {
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "code", m->warnings[i].code);
        cp_docw_kv_s(w, "message", m->warnings[i].message);
        cp_docw_kv_ns(w, "unix_s", m->warnings[i].unix_ns);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    cp_docw_kv_u(w, "warnings_dropped", m->warnings_dropped);
    cp_docw_kv_bool(w, "python_traced", m->python_traced != 0);
    cp_docw_kv_u(w, "hidden_calls", m->hidden_calls);
    uint64_t nodes = 0;
    for (uint32_t t = 0; t < m->nthreads; t++)
        if (m->threads[t].root < m->nnodes)
            nodes += pt->below[m->threads[t].root];
    cp_docw_kv_u(w, "tree_nodes", nodes);
    cp_docw_kv_u(w, "tree_nodes_written", pt->written);
    cp_docw_end_object(w);
}

static void write_config(cp_docw *w, const codeprof_config *c) {
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "struct_size", c->struct_size);
    cp_docw_kv_u(w, "flags", c->flags);
    cp_docw_kv_u(w, "buffer_events", c->buffer_events);
    cp_docw_kv_u(w, "max_nodes", c->max_nodes);
    cp_docw_kv_u(w, "max_samples", c->max_samples);
    cp_docw_kv_d(w, "slow_function_s", c->slow_function_s);
    cp_docw_kv_d(w, "memory_intensive_bytes", c->memory_intensive_bytes);
    cp_docw_kv_d(w, "slow_data_loading_s", c->slow_data_loading_s);
    cp_docw_kv_d(w, "slow_preprocessing_s", c->slow_preprocessing_s);
    cp_docw_kv_d(w, "slow_gpu_op_s", c->slow_gpu_op_s);
    cp_docw_kv_d(w, "data_stall_fraction", c->data_stall_fraction);
    cp_docw_kv_bool(w, "scope_cpu", (c->flags & CODEPROF_CFG_SCOPE_CPU) != 0);
    cp_docw_kv_bool(w, "percentiles", (c->flags & CODEPROF_CFG_PERCENTILES) != 0);
    cp_docw_kv_bool(w, "timeline_traced", (c->flags & CODEPROF_CFG_TIMELINE_TRACED) != 0);
    cp_docw_kv_u(w, "pool_buffers", c->pool_buffers);
    cp_docw_kv_u(w, "max_sites", c->max_sites);
    cp_docw_kv_u(w, "sample_budget", c->sample_budget);
    cp_docw_kv_u(w, "timeline_events", c->timeline_events);
    cp_docw_kv_u(w, "max_data_records", c->max_data_records);
    cp_docw_kv_u(w, "report_top_functions", c->report_top_functions);
    cp_docw_kv_u(w, "report_tree_max_nodes", c->report_tree_max_nodes);
    cp_docw_kv_d(w, "report_tree_min_share", c->report_tree_min_share);
    cp_docw_kv_u(w, "timeline_traced_events", c->timeline_traced_events);
    cp_docw_kv_u(w, "memory_mode", c->memory_mode);
    cp_docw_kv_u(w, "memory_stack_depth", c->memory_stack_depth);
    cp_docw_kv_u(w, "memory_sample_bytes", c->memory_sample_bytes);
    cp_docw_kv_u(w, "memory_max_blocks", c->memory_max_blocks);
    cp_docw_kv_u(w, "memory_max_stacks", c->memory_max_stacks);
    cp_docw_kv_u(w, "memory_max_snapshots", c->memory_max_snapshots);
    cp_docw_kv_u(w, "memory_timeline_samples", c->memory_timeline_samples);
    cp_docw_kv_d(w, "memory_sample_interval_s", c->memory_sample_interval_s);
    cp_docw_kv_bool(w, "memory_snapshots", (c->flags & CODEPROF_CFG_MEM_SNAPSHOTS) != 0);
    cp_docw_kv_bool(w, "gc", (c->flags & CODEPROF_CFG_GC) != 0);
    cp_docw_end_object(w);
}

static void write_policy(cp_docw *w, const cp_report_policy *p) {
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "top_functions", p->top_functions);
    cp_docw_kv_d(w, "tree_min_share", p->tree_min_share);
    cp_docw_kv_u(w, "tree_max_nodes", p->tree_max_nodes);
    cp_docw_kv_u(w, "tree_max_depth", p->tree_max_depth);
    cp_docw_end_object(w);
}

static void kv_rss(cp_docw *w, const char *k, int64_t v, uint64_t count) {
    cp_docw_key(w, k);
    if (count)
        cp_docw_int(w, v);
    else
        cp_docw_null(w);
}

/* The sampled figures of a function or call-tree node: "samples",
 * "estimated" (no traced call, only samples) and, with samples, the
 * estimated time and its standard error (sample_est.h). */
static void write_sampled(cp_docw *w, uint64_t calls, uint64_t samples, uint64_t sampled_ns,
                          const cp_samp_totals *tot) {
    cp_docw_kv_u(w, "samples", samples);
    cp_docw_kv_bool(w, "estimated", calls == 0 && samples > 0);
    if (!samples)
        return;
    cp_docw_kv_ns(w, "sampled_s", sampled_ns);
    cp_docw_kv_d(w, "error_s", cp_samp_error_ns(samples, tot) / 1e9);
}

/* A node's own samples (innermost there), so a reader rebuilds the
 * thread totals the error bars use: "other" and elided nodes stand for
 * whole subtrees, so all their samples are their own. */
static void write_self_samples(cp_docw *w, uint64_t samples, uint64_t self_ns) {
    if (!samples)
        return;
    cp_docw_kv_u(w, "samples_self", samples);
    cp_docw_kv_ns(w, "sampled_self_s", self_ns);
}

/* qsort has no context argument; thread-local keeps concurrent reports
 * from different threads apart. */
static _Thread_local const cp_mfunc *sort_funcs;

static int cmp_self(const void *a, const void *b) {
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    const cp_mfunc *x = &sort_funcs[i], *y = &sort_funcs[j];
    if (x->self_ns != y->self_ns)
        return x->self_ns < y->self_ns ? 1 : -1;
    return (i > j) - (i < j);
}

/* performance.functions: the top N sites by inclusive time (m->funcs is
 * sorted that way) and the top N by self time, in inclusive order.
 * Returns -1 on OOM. */
static int write_functions(cp_docw *w, const cp_model *m, const cp_report_policy *p, int pct) {
    uint64_t nf = 0, calls = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        nf += m->funcs[i].calls > 0 || m->funcs[i].samples > 0;
        calls += m->funcs[i].calls;
    }
    cp_samp_totals run = cp_samp_totals_run(m);
    uint8_t *pick = calloc((size_t)m->nfuncs + 1, 1);
    uint32_t *by_self = malloc(((size_t)m->nfuncs + 1) * sizeof *by_self);
    if (!pick || !by_self) {
        free(pick);
        free(by_self);
        return -1;
    }
    uint32_t nwith = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (m->funcs[i].calls || m->funcs[i].samples) /* traced or sampled */
            by_self[nwith++] = i;
    for (uint32_t k = 0; k < nwith && k < p->top_functions; k++)
        pick[by_self[k]] = 1; /* by_self is in inclusive order until sorted */
    sort_funcs = m->funcs;
    qsort(by_self, nwith, sizeof *by_self, cmp_self);
    sort_funcs = NULL;
    for (uint32_t k = 0; k < nwith && k < p->top_functions; k++)
        pick[by_self[k]] = 1;
    free(by_self);

    cp_docw_kv_u(w, "total_functions_profiled", nf);
    cp_docw_kv_u(w, "total_calls", calls);
    cp_docw_key(w, "functions");
    cp_docw_begin_array(w);
    uint64_t listed = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (!pick[i])
            continue;
        listed++;
        const cp_msite *si = site_of(m, f->site);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "function", si->name);
        cp_docw_kv_s(w, "file", si->file);
        cp_docw_kv_u(w, "line", si->line);
        cp_docw_kv_s(w, "kind", cp_report_kind_name(si->kind));
        cp_docw_kv_u(w, "calls", f->calls);
        cp_docw_kv_ns(w, "inclusive_s", f->incl_ns);
        cp_docw_kv_ns(w, "self_s", f->self_ns);
        kv_ns_or_null(w, "cpu_s", f->cpu_ns, f->cpu_count > 0);
        /* a sampled-only function has no call durations: null */
        kv_ns_or_null(w, "min_s", f->min_ns, f->calls > 0);
        kv_ns_or_null(w, "max_s", f->max_ns, f->calls > 0);
        kv_ns_or_null(w, "mean_s", f->calls ? (f->incl_ns + f->calls / 2) / f->calls : 0,
                      f->calls > 0);
        kv_ns_or_null(w, "p50_s", f->p50_ns, pct);
        kv_ns_or_null(w, "p95_s", f->p95_ns, pct);
        kv_ns_or_null(w, "p99_s", f->p99_ns, pct);
        kv_rss(w, "memory_delta", f->rss_delta_max, f->rss_count);
        kv_rss(w, "memory_delta_total", f->rss_delta_sum, f->rss_count);
        write_sampled(w, f->calls, f->samples, f->sampled_ns, &run);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    cp_docw_kv_u(w, "functions_omitted", nf - listed);
    free(pick);
    return 0;
}

/* The string and site tables of the written call tree: every model site
 * a kept node refers to gets a slot (in node order), every distinct file
 * path one entry. */
typedef struct site_tables {
    uint32_t *slot;      /* model site index -> written index, CP_NONE */
    uint32_t *sites;     /* written index -> model site index          */
    uint32_t nsites;
    int32_t *file_of;    /* written site -> file index, -1: no file    */
    const char **files;  /* distinct file paths                        */
    uint32_t nfiles;
    uint32_t *fhash;     /* file index + 1; 0: empty                   */
    uint32_t fcap;
} site_tables;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int32_t file_index(site_tables *st, const char *file) {
    if (!file[0])
        return -1;
    uint32_t mask = st->fcap - 1, i = (uint32_t)str_hash(file) & mask;
    while (st->fhash[i]) {
        uint32_t f = st->fhash[i] - 1;
        if (strcmp(st->files[f], file) == 0)
            return (int32_t)f;
        i = (i + 1) & mask;
    }
    st->files[st->nfiles] = file;
    st->fhash[i] = ++st->nfiles;
    return (int32_t)(st->nfiles - 1);
}

static int site_tables_build(site_tables *st, const cp_model *m, const cp_pruned_tree *pt) {
    memset(st, 0, sizeof *st);
    uint32_t ns = m->sites.n + 1;
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)ns)
        cap *= 2;
    st->fcap = (uint32_t)cap;
    st->slot = malloc((size_t)ns * sizeof *st->slot);
    st->sites = malloc((size_t)ns * sizeof *st->sites);
    st->file_of = malloc((size_t)ns * sizeof *st->file_of);
    st->files = malloc((size_t)ns * sizeof *st->files);
    st->fhash = calloc(st->fcap, sizeof *st->fhash);
    if (!st->slot || !st->sites || !st->file_of || !st->files || !st->fhash)
        return -1;
    memset(st->slot, 0xff, (size_t)ns * sizeof *st->slot);
    /* Preorder over the written nodes, the order the tree is written in,
     * so the first node written refers to site 0. */
    uint32_t *stack = malloc(((size_t)m->nnodes + 1) * sizeof *stack);
    if (!stack)
        return -1;
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t r = m->threads[t].root, sp = 0;
        if (r >= m->nnodes)
            continue;
        const uint32_t *kids;
        for (uint32_t k = cp_pruned_tree_kept_children(pt, r, &kids); k-- > 0;)
            if (sp < m->nnodes)
                stack[sp++] = kids[k];
        while (sp) {
            uint32_t x = stack[--sp];
            uint32_t site = m->nodes[x].site;
            uint32_t key = site < ns ? site : 0;
            if (st->slot[key] == CP_NONE) {
                st->slot[key] = st->nsites;
                st->file_of[st->nsites] = file_index(st, site_of(m, site)->file);
                st->sites[st->nsites++] = site;
            }
            for (uint32_t k = cp_pruned_tree_kept_children(pt, x, &kids); k-- > 0;)
                if (sp < m->nnodes)
                    stack[sp++] = kids[k];
        }
    }
    free(stack);
    return 0;
}

static void site_tables_free(site_tables *st) {
    free(st->slot);
    free(st->sites);
    free(st->file_of);
    free(st->files);
    free(st->fhash);
}

static void write_site_tables(cp_docw *w, const cp_model *m, const site_tables *st) {
    cp_docw_key(w, "files");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < st->nfiles; i++)
        cp_docw_string(w, st->files[i]);
    cp_docw_end_array(w);
    cp_docw_key(w, "sites");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < st->nsites; i++) {
        const cp_msite *si = site_of(m, st->sites[i]);
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "function", si->name);
        cp_docw_key(w, "file");
        if (st->file_of[i] >= 0)
            cp_docw_uint(w, (uint64_t)st->file_of[i]);
        else
            cp_docw_null(w);
        cp_docw_kv_u(w, "line", si->line);
        cp_docw_kv_s(w, "kind", cp_report_kind_name(si->kind));
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

/* The "other" child of kept node `x` (written last), if it has one. */
static void write_other(cp_docw *w, const cp_model *m, const cp_pruned_tree *pt, uint32_t x,
                        const cp_samp_totals *tot) {
    uint64_t nodes, calls, incl, samples, sampled_ns;
    if (!cp_pruned_tree_other(pt, m, x, &nodes, &calls, &incl))
        return;
    cp_pruned_tree_other_samples(pt, m, x, &samples, &sampled_ns);
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "other", nodes);
    cp_docw_kv_u(w, "calls", calls);
    cp_docw_kv_ns(w, "inclusive_s", incl);
    cp_docw_kv_ns(w, "self_s", incl);
    write_sampled(w, calls, samples, sampled_ns, tot);
    if (samples)
        write_self_samples(w, samples, sampled_ns);
    cp_docw_end_object(w);
}

typedef struct frame {
    uint32_t node;
    uint32_t pos, end; /* next written child in kids, and the end of them */
} frame;

static frame frame_of(const cp_pruned_tree *pt, uint32_t node) {
    const uint32_t *kids;
    uint32_t n = cp_pruned_tree_kept_children(pt, node, &kids);
    uint32_t pos = (uint32_t)(kids - pt->kids);
    return (frame){node, pos, pos + n};
}

/* Writes node `x` and opens its "children" array.  Returns 1 if its
 * children are to be written (the caller pushes a frame), 0 if the node
 * was completed here. */
static int open_node(cp_docw *w, const cp_model *m, const cp_pruned_tree *pt,
                     const cp_report_policy *p, const site_tables *st, uint32_t x,
                     const cp_samp_totals *tot) {
    const cp_mnode *n = &m->nodes[x];
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "site", st->slot[n->site <= m->sites.n ? n->site : 0]);
    cp_docw_kv_u(w, "calls", n->count);
    cp_docw_kv_ns(w, "inclusive_s", n->incl_ns);
    cp_docw_kv_ns(w, "self_s", n->self_ns);
    kv_ns_or_null(w, "cpu_s", n->cpu_ns, n->cpu_count > 0);
    write_sampled(w, n->count, n->samples, n->sampled_ns, tot);
    if (cp_pruned_tree_elided(pt, m, p, x)) {
        if (n->samples)
            write_self_samples(w, n->samples, n->sampled_ns);
        cp_docw_kv_u(w, "elided_nodes", pt->below[x]);
        cp_docw_end_object(w);
        return 0;
    }
    if (n->samples)
        write_self_samples(w, n->samples_self, n->sampled_self_ns);
    if (pt->off[x + 1] == pt->off[x]) { /* a leaf: nothing written below */
        cp_docw_end_object(w);
        return 0;
    }
    cp_docw_key(w, "children");
    cp_docw_begin_array(w);
    return 1;
}

static int write_call_tree(cp_docw *w, const cp_model *m, const cp_pruned_tree *pt,
                           const cp_report_policy *p, const site_tables *st) {
    frame *stack = malloc(((size_t)m->nnodes + 1) * sizeof *stack);
    cp_samp_totals *tot = malloc(((size_t)m->nthreads + 1) * sizeof *tot);
    if (!stack || !tot || cp_samp_totals_threads(m, tot) != 0) {
        free(stack);
        free(tot);
        return -1;
    }
    cp_docw_key(w, "call_tree");
    cp_docw_begin_array(w);
    for (uint32_t t = 0; t < m->nthreads; t++) {
        const cp_mthread *th = &m->threads[t];
        cp_docw_begin_object(w);
        cp_docw_kv_u(w, "thread", th->index);
        cp_docw_kv_u(w, "os_tid", th->os_tid);
        cp_docw_kv_u(w, "events", th->events);
        cp_docw_kv_u(w, "dropped", th->dropped);
        cp_docw_kv_i(w, "pid", th->pid);
        cp_docw_kv_i(w, "worker", th->worker);
        cp_docw_kv_ns(w, "inclusive_s", pt->thread_incl[t]);
        cp_docw_key(w, "children");
        cp_docw_begin_array(w);
        if (th->root < m->nnodes) {
            uint32_t sp = 0;
            stack[sp++] = frame_of(pt, th->root);
            while (sp) {
                frame *f = &stack[sp - 1];
                if (f->pos < f->end) {
                    uint32_t child = pt->kids[f->pos++];
                    /* sp <= nnodes always holds for a tree; the check
                     * only guards against a corrupt (cyclic) model. */
                    if (open_node(w, m, pt, p, st, child, &tot[t]) && sp <= m->nnodes)
                        stack[sp++] = frame_of(pt, child);
                } else {
                    write_other(w, m, pt, f->node, &tot[t]);
                    sp--;
                    if (sp) { /* a node: close its children and itself */
                        cp_docw_end_array(w);
                        cp_docw_end_object(w);
                    }
                }
            }
        }
        cp_docw_end_array(w);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
    free(stack);
    free(tot);
    return 0;
}

static int write_performance(cp_docw *w, const cp_model *m, const cp_pruned_tree *pt,
                             const cp_report_policy *p) {
    int pct = (m->cfg.flags & CODEPROF_CFG_PERCENTILES) != 0;
    site_tables st;
    int rc = -1;
    if (site_tables_build(&st, m, pt) != 0)
        goto out;
    cp_docw_begin_object(w);
    if (write_functions(w, m, p, pct) != 0)
        goto out;
    write_site_tables(w, m, &st);
    if (write_call_tree(w, m, pt, p, &st) != 0)
        goto out;
    cp_docw_end_object(w);
    rc = 0;
out:
    site_tables_free(&st);
    return rc;
}

static void write_finding_core(cp_docw *w, const cp_finding *f) {
    FIELD_STR(w, "rule", f->rule);
    FIELD_STR(w, "category", f->category);
    FIELD_STR(w, "subject", f->subject);
    cp_docw_kv_d(w, "value", f->value);
    cp_docw_kv_d(w, "threshold", f->threshold);
    FIELD_STR(w, "unit", f->unit);
}

static void write_findings(cp_docw *w, const cp_model *m) {
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < m->nfindings; i++) {
        const cp_finding *f = &m->findings[i];
        cp_docw_begin_object(w);
        write_finding_core(w, f);
        cp_docw_kv_d(w, "severity", f->severity);
        FIELD_STR(w, "recommendation", f->recommendation);
        cp_docw_kv_d(w, "saving_s", f->saving_s);
        cp_docw_end_object(w);
    }
    cp_docw_end_array(w);
}

static int same_field(const char *a, size_t acap, const char *b) {
    size_t n = strnlen(a, acap);
    return strlen(b) == n && memcmp(a, b, n) == 0;
}

static void write_bottlenecks(cp_docw *w, const cp_model *m) {
    cp_docw_begin_object(w);
    for (size_t c = 0; c < sizeof categories / sizeof categories[0]; c++) {
        cp_docw_key(w, categories[c].name);
        cp_docw_begin_array(w);
        for (uint32_t i = 0; i < m->nfindings; i++) {
            const cp_finding *f = &m->findings[i];
            if (!same_field(f->category, sizeof f->category, categories[c].name))
                continue;
            cp_docw_begin_object(w);
            FIELD_STR(w, "subject", f->subject);
            FIELD_STR(w, categories[c].is_func ? "function" : "context", f->subject);
            cp_docw_kv_d(w, "value", f->value);
            cp_docw_kv_d(w, "threshold", f->threshold);
            FIELD_STR(w, "unit", f->unit);
            FIELD_STR(w, "rule", f->rule);
            cp_docw_kv_d(w, "severity", f->severity);
            FIELD_STR(w, "recommendation", f->recommendation);
            if (categories[c].value_alias)
                cp_docw_kv_d(w, categories[c].value_alias, f->value);
            cp_docw_kv_d(w, "saving_s", f->saving_s);
            cp_docw_end_object(w);
        }
        cp_docw_end_array(w);
    }
    /* Unique recommendations in finding order.  Findings are few (one per
     * subject at most per rule), so the quadratic check is cheap next to
     * the rest of the report. */
    cp_docw_key(w, "recommendations");
    cp_docw_begin_array(w);
    for (uint32_t i = 0; i < m->nfindings; i++) {
        const cp_finding *f = &m->findings[i];
        size_t cap = sizeof f->recommendation;
        size_t len = strnlen(f->recommendation, cap);
        if (!len)
            continue;
        int dup = 0;
        for (uint32_t j = 0; j < i && !dup; j++) {
            const cp_finding *g = &m->findings[j];
            dup = strnlen(g->recommendation, cap) == len &&
                  memcmp(g->recommendation, f->recommendation, len) == 0;
        }
        if (!dup)
            cp_docw_string_n(w, f->recommendation, len);
    }
    cp_docw_end_array(w);
    cp_docw_end_object(w);
}

enum {
    SEC_META,
    SEC_CONFIG,
    SEC_POLICY,
    SEC_PERF,
    SEC_DATA,
    SEC_MEMORY,
    SEC_SAMPLING,
    SEC_LINES,
    SEC_GPU,
    SEC_FINDINGS,
    SEC_BOTTLENECKS,
    SEC_N
};
static const char *const section_names[SEC_N] = {
    "meta",   "config", "report_policy", "performance", "data_loading", "memory",
    "sampling", "lines", "gpu", "findings", "bottlenecks",
};

static int write_section(cp_docw *w, const cp_model *m, int sec, const cp_pruned_tree *pt,
                         const cp_report_policy *p) {
    switch (sec) {
    case SEC_META:
        write_meta(w, m, pt);
        return 0;
    case SEC_CONFIG:
        write_config(w, &m->cfg);
        return 0;
    case SEC_POLICY:
        write_policy(w, p);
        return 0;
    case SEC_PERF:
        return write_performance(w, m, pt, p);
    case SEC_DATA:
        cp_report_data_doc(m, w);
        return 0;
    case SEC_MEMORY:
        cp_report_mem_doc(m, w);
        return 0;
    case SEC_SAMPLING:
        cp_report_sample_doc(m, w);
        return 0;
    case SEC_LINES:
        cp_report_lines_doc(m, w);
        return 0;
    case SEC_GPU:
        cp_report_gpu_doc(m, w);
        return 0;
    case SEC_FINDINGS:
        write_findings(w, m);
        return 0;
    default:
        write_bottlenecks(w, m);
        return 0;
    }
}

static int section_index(const char *section) {
    for (int i = 0; i < SEC_N; i++)
        if (strcmp(section, section_names[i]) == 0)
            return i;
    return -1;
}

int cp_report_section_needs_tree(const char *section) {
    if (!section)
        return 1;
    int i = section_index(section);
    return i == SEC_META || i == SEC_PERF;
}

int cp_report_doc_with(const cp_model *m, const cp_pruned_tree *given, cp_docw *w,
                       const char *section) {
    int only = -1;
    if (section && (only = section_index(section)) < 0)
        return -2;
    cp_report_policy p;
    cp_report_policy_of(&m->cfg, &p);
    cp_pruned_tree own;
    const cp_pruned_tree *pt = given;
    int need_tree = cp_report_section_needs_tree(section);
    int rc = -1;
    if (need_tree && !pt) {
        if (cp_pruned_tree_build(&own, m, &p) != 0) {
            cp_pruned_tree_free(&own);
            cp_docw_fail(w);
            return -1;
        }
        pt = &own;
    }
    if (only >= 0) {
        rc = write_section(w, m, only, pt, &p);
    } else {
        cp_docw_begin_object(w);
        cp_docw_kv_s(w, "schema", "codeprof-report");
        cp_docw_kv_u(w, "schema_version", CODEPROF_REPORT_SCHEMA_VERSION);
        cp_docw_kv_s(w, "generator", "libcodeprof " CODEPROF_VERSION_STRING);
        rc = 0;
        for (int i = 0; i < SEC_N && rc == 0; i++) {
            cp_docw_key(w, section_names[i]);
            rc = write_section(w, m, i, pt, &p);
        }
        if (rc == 0)
            cp_docw_end_object(w);
    }
    if (pt == &own)
        cp_pruned_tree_free(&own);
    if (rc != 0)
        cp_docw_fail(w);
    return rc == 0 && !cp_docw_failed(w) ? 0 : -1;
}

int cp_report_doc(const cp_model *m, cp_docw *w, const char *section) {
    return cp_report_doc_with(m, NULL, w, section);
}

int cp_report_json(const cp_model *m, cp_strbuf *out) { return cp_report_json_with(m, NULL, out); }

int cp_report_json_with(const cp_model *m, const struct cp_pruned_tree *pt, cp_strbuf *out) {
    cp_jsonw jw;
    cp_jsonw_init(&jw, out);
    cp_docw w;
    cp_docw_json(&w, &jw);
    if ((pt ? cp_report_doc_with(m, pt, &w, NULL) : cp_report_doc(m, &w, NULL)) != 0) {
        out->oom = 1; /* scratch allocation failed: same contract as OOM */
        return -1;
    }
    return cp_jsonw_finish(&jw);
}
