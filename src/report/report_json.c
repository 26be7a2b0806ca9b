/* report_json.c -- the versioned JSON report (docs/report-schema.md). */
#include <stdlib.h>
#include <string.h>

#include "codeprof/version.h"
#include "report/jsonw.h"
#include "report/report.h"

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
static void field_string(cp_jsonw *w, const char *key, const char *s, size_t cap) {
    cp_jsonw_key(w, key);
    cp_jsonw_string_n(w, s, strnlen(s, cap));
}
#define FIELD_STR(w, key, arr) field_string((w), (key), (arr), sizeof(arr))

static void kv_ns_or_null(cp_jsonw *w, const char *k, uint64_t ns, int present) {
    cp_jsonw_key(w, k);
    if (present)
        cp_jsonw_seconds_ns(w, ns);
    else
        cp_jsonw_null(w);
}

static void write_meta(cp_jsonw *w, const cp_model *m) {
    cp_jsonw_key(w, "meta");
    cp_jsonw_begin_object(w);
    cp_jsonw_key(w, "pid");
    cp_jsonw_int(w, m->pid);
    FIELD_STR(w, "role", m->role);
    cp_jsonw_kv_s(w, "clock", m->clock_source);
    cp_jsonw_kv_ns(w, "start_unix_s", m->start_unix_ns);
    cp_jsonw_kv_ns(w, "duration_s", m->duration_ns);
    cp_jsonw_kv_u(w, "threads", m->nthreads);
    cp_jsonw_kv_u(w, "events", m->events_total);
    cp_jsonw_kv_u(w, "dropped_events", m->dropped_events);
    cp_jsonw_kv_u(w, "dropped_nodes", m->dropped_nodes);
    cp_jsonw_kv_u(w, "unmatched_exits", m->unmatched_exits);
    cp_jsonw_kv_u(w, "truncated_scopes", m->truncated);
    cp_jsonw_kv_u(w, "allocation_failures", m->alloc_failures);
    cp_jsonw_kv_u(w, "merged_models", m->merged);
    cp_jsonw_kv_bool(w, "approximate_percentiles", m->approx_percentiles != 0);
    cp_jsonw_kv_u(w, "dropped_buffer_full", m->dropped_full);
    cp_jsonw_kv_u(w, "dropped_reentrant", m->dropped_reentrant);
    cp_jsonw_kv_u(w, "dropped_no_thread_buffer", m->dropped_nothread);
    cp_jsonw_kv_u(w, "dropped_samples", m->dropped_samples);
    cp_jsonw_kv_u(w, "dropped_sites", m->dropped_sites);
    cp_jsonw_kv_u(w, "exited_threads", m->exited_threads);
    cp_jsonw_kv_u(w, "event_buffers", m->pool_buffers);
    cp_jsonw_kv_u(w, "timeline_events", m->ntimeline);
    cp_jsonw_kv_u(w, "timeline_dropped", m->timeline_dropped);
    cp_jsonw_key(w, "warnings");
    cp_jsonw_begin_array(w);
    for (uint32_t i = 0; i < m->nwarnings; i++) {
        cp_jsonw_begin_object(w);
        cp_jsonw_kv_s(w, "code", m->warnings[i].code);
        cp_jsonw_kv_s(w, "message", m->warnings[i].message);
        cp_jsonw_kv_ns(w, "unix_s", m->warnings[i].unix_ns);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_kv_u(w, "warnings_dropped", m->warnings_dropped);
    cp_jsonw_end_object(w);
}

static void write_config(cp_jsonw *w, const codeprof_config *c) {
    cp_jsonw_key(w, "config");
    cp_jsonw_begin_object(w);
    cp_jsonw_kv_u(w, "struct_size", c->struct_size);
    cp_jsonw_kv_u(w, "flags", c->flags);
    cp_jsonw_kv_u(w, "buffer_events", c->buffer_events);
    cp_jsonw_kv_u(w, "max_nodes", c->max_nodes);
    cp_jsonw_kv_u(w, "max_samples", c->max_samples);
    cp_jsonw_kv_d(w, "slow_function_s", c->slow_function_s);
    cp_jsonw_kv_d(w, "memory_intensive_bytes", c->memory_intensive_bytes);
    cp_jsonw_kv_d(w, "slow_data_loading_s", c->slow_data_loading_s);
    cp_jsonw_kv_d(w, "slow_preprocessing_s", c->slow_preprocessing_s);
    cp_jsonw_kv_d(w, "slow_gpu_op_s", c->slow_gpu_op_s);
    cp_jsonw_kv_d(w, "data_stall_fraction", c->data_stall_fraction);
    cp_jsonw_kv_bool(w, "scope_cpu", (c->flags & CODEPROF_CFG_SCOPE_CPU) != 0);
    cp_jsonw_kv_bool(w, "percentiles", (c->flags & CODEPROF_CFG_PERCENTILES) != 0);
    cp_jsonw_kv_bool(w, "timeline_traced", (c->flags & CODEPROF_CFG_TIMELINE_TRACED) != 0);
    cp_jsonw_kv_u(w, "pool_buffers", c->pool_buffers);
    cp_jsonw_kv_u(w, "max_sites", c->max_sites);
    cp_jsonw_kv_u(w, "sample_budget", c->sample_budget);
    cp_jsonw_kv_u(w, "timeline_events", c->timeline_events);
    cp_jsonw_kv_u(w, "max_data_records", c->max_data_records);
    cp_jsonw_end_object(w);
}

static void write_site(cp_jsonw *w, const cp_model *m, uint32_t site) {
    const cp_msite *si = site_of(m, site);
    cp_jsonw_kv_s(w, "function", si->name);
    cp_jsonw_kv_s(w, "file", si->file);
    cp_jsonw_kv_u(w, "line", si->line);
    cp_jsonw_kv_s(w, "kind", cp_report_kind_name(si->kind));
}

static void write_functions(cp_jsonw *w, const cp_model *m, int pct) {
    uint64_t nf = 0, calls = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        nf += m->funcs[i].calls > 0;
        calls += m->funcs[i].calls;
    }
    cp_jsonw_kv_u(w, "total_functions_profiled", nf);
    cp_jsonw_kv_u(w, "total_calls", calls);
    cp_jsonw_key(w, "functions");
    cp_jsonw_begin_array(w);
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (!f->calls)
            continue;
        cp_jsonw_begin_object(w);
        write_site(w, m, f->site);
        cp_jsonw_kv_u(w, "calls", f->calls);
        cp_jsonw_kv_ns(w, "inclusive_s", f->incl_ns);
        cp_jsonw_kv_ns(w, "self_s", f->self_ns);
        kv_ns_or_null(w, "cpu_s", f->cpu_ns, f->cpu_count > 0);
        cp_jsonw_kv_ns(w, "min_s", f->min_ns);
        cp_jsonw_kv_ns(w, "max_s", f->max_ns);
        cp_jsonw_kv_ns(w, "mean_s", (f->incl_ns + f->calls / 2) / f->calls);
        kv_ns_or_null(w, "p50_s", f->p50_ns, pct);
        kv_ns_or_null(w, "p95_s", f->p95_ns, pct);
        kv_ns_or_null(w, "p99_s", f->p99_ns, pct);
        cp_jsonw_key(w, "memory_delta");
        if (f->rss_count)
            cp_jsonw_int(w, f->rss_delta_max);
        else
            cp_jsonw_null(w);
        cp_jsonw_key(w, "memory_delta_total");
        if (f->rss_count)
            cp_jsonw_int(w, f->rss_delta_sum);
        else
            cp_jsonw_null(w);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
}

/* Children of every node, contiguous per parent and sorted by inclusive
 * time (descending, then site id for a stable order). */
typedef struct tree_index {
    uint32_t *off;  /* nnodes + 1 offsets into kids */
    uint32_t *kids; /* node indices                 */
} tree_index;

/* qsort has no context argument; thread-local keeps concurrent reports
 * from different threads apart. */
static _Thread_local const cp_mnode *sort_nodes;

static int cmp_child(const void *a, const void *b) {
    const cp_mnode *x = &sort_nodes[*(const uint32_t *)a];
    const cp_mnode *y = &sort_nodes[*(const uint32_t *)b];
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    return (*(const uint32_t *)a > *(const uint32_t *)b) - (*(const uint32_t *)a < *(const uint32_t *)b);
}

static int tree_index_build(tree_index *ti, const cp_model *m) {
    uint32_t n = m->nnodes;
    ti->off = calloc((size_t)n + 1, sizeof *ti->off);
    ti->kids = malloc(((size_t)n + 1) * sizeof *ti->kids);
    if (!ti->off || !ti->kids)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = m->nodes[i].parent;
        if (p < n)
            ti->off[p + 1]++;
    }
    for (uint32_t i = 0; i < n; i++)
        ti->off[i + 1] += ti->off[i];
    /* Fill using a cursor per parent (reuse kids' tail is not possible, so
     * a second pass with a temporary cursor array). */
    uint32_t *cur = malloc(((size_t)n + 1) * sizeof *cur);
    if (!cur)
        return -1;
    memcpy(cur, ti->off, ((size_t)n + 1) * sizeof *cur);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = m->nodes[i].parent;
        if (p < n)
            ti->kids[cur[p]++] = i;
    }
    free(cur);
    sort_nodes = m->nodes;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = ti->off[i + 1] - ti->off[i];
        if (k > 1)
            qsort(ti->kids + ti->off[i], k, sizeof *ti->kids, cmp_child);
    }
    sort_nodes = NULL;
    return 0;
}

static void tree_index_free(tree_index *ti) {
    free(ti->off);
    free(ti->kids);
}

/* Number of nodes below `root` (iterative). */
static uint64_t count_descendants(const tree_index *ti, uint32_t root, uint32_t *stack) {
    uint64_t count = 0;
    uint32_t sp = 0;
    stack[sp++] = root;
    while (sp) {
        uint32_t n = stack[--sp];
        for (uint32_t k = ti->off[n]; k < ti->off[n + 1]; k++) {
            count++;
            stack[sp++] = ti->kids[k];
        }
    }
    return count;
}

typedef struct frame {
    uint32_t node;
    uint32_t pos; /* next child slot in kids */
} frame;

/* Writes a node's fields and opens its "children" array.  Returns 1 if
 * its children are to be written (the caller pushes a frame), 0 if the
 * node was completed here (leaf or depth cap). */
static int open_node(cp_jsonw *w, const cp_model *m, const tree_index *ti, uint32_t idx,
                     int pct, uint32_t *scratch) {
    const cp_mnode *n = &m->nodes[idx];
    const cp_msite *si = site_of(m, n->site);
    cp_jsonw_begin_object(w);
    cp_jsonw_kv_s(w, "function", si->name);
    cp_jsonw_kv_s(w, "kind", cp_report_kind_name(si->kind));
    cp_jsonw_kv_s(w, "file", si->file);
    cp_jsonw_kv_u(w, "line", si->line);
    cp_jsonw_kv_u(w, "calls", n->count);
    cp_jsonw_kv_ns(w, "inclusive_s", n->incl_ns);
    cp_jsonw_kv_ns(w, "self_s", n->self_ns);
    kv_ns_or_null(w, "cpu_s", n->cpu_ns, n->cpu_count > 0);
    cp_jsonw_kv_ns(w, "min_s", n->min_ns);
    cp_jsonw_kv_ns(w, "max_s", n->max_ns);
    kv_ns_or_null(w, "p50_s", n->p50_ns, pct);
    kv_ns_or_null(w, "p95_s", n->p95_ns, pct);
    kv_ns_or_null(w, "p99_s", n->p99_ns, pct);
    cp_jsonw_kv_u(w, "truncated", n->truncated);
    int has_kids = ti->off[idx + 1] > ti->off[idx];
    if (has_kids && n->depth >= CP_REPORT_MAX_TREE_DEPTH) {
        cp_jsonw_kv_u(w, "elided_nodes", count_descendants(ti, idx, scratch));
        has_kids = 0;
    }
    cp_jsonw_key(w, "children");
    cp_jsonw_begin_array(w);
    if (!has_kids) {
        cp_jsonw_end_array(w);
        cp_jsonw_end_object(w);
    }
    return has_kids;
}

static int write_call_tree(cp_jsonw *w, const cp_model *m, int pct) {
    tree_index ti = {NULL, NULL};
    frame *stack = NULL;
    uint32_t *scratch = NULL;
    int rc = -1;
    if (tree_index_build(&ti, m) != 0)
        goto out;
    stack = malloc(((size_t)m->nnodes + 1) * sizeof *stack);
    scratch = malloc(((size_t)m->nnodes + 1) * sizeof *scratch);
    if (!stack || !scratch)
        goto out;

    cp_jsonw_key(w, "call_tree");
    cp_jsonw_begin_array(w);
    for (uint32_t t = 0; t < m->nthreads; t++) {
        const cp_mthread *th = &m->threads[t];
        cp_jsonw_begin_object(w);
        cp_jsonw_kv_u(w, "thread", th->index);
        cp_jsonw_kv_u(w, "os_tid", th->os_tid);
        cp_jsonw_kv_u(w, "events", th->events);
        cp_jsonw_kv_u(w, "dropped", th->dropped);
        cp_jsonw_key(w, "pid");
        cp_jsonw_int(w, th->pid);
        cp_jsonw_key(w, "worker");
        cp_jsonw_int(w, th->worker);
        cp_jsonw_key(w, "children");
        cp_jsonw_begin_array(w);
        if (th->root < m->nnodes) {
            uint32_t sp = 0;
            stack[sp++] = (frame){th->root, ti.off[th->root]};
            while (sp) {
                frame *f = &stack[sp - 1];
                if (f->pos < ti.off[f->node + 1]) {
                    uint32_t child = ti.kids[f->pos++];
                    /* sp <= nnodes always holds for a tree; the check
                     * only guards against a corrupt (cyclic) model. */
                    if (open_node(w, m, &ti, child, pct, scratch) && sp <= m->nnodes)
                        stack[sp++] = (frame){child, ti.off[child]};
                } else {
                    sp--;
                    if (sp) { /* a node: close its children and itself */
                        cp_jsonw_end_array(w);
                        cp_jsonw_end_object(w);
                    }
                }
            }
        }
        cp_jsonw_end_array(w);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    rc = 0;
out:
    tree_index_free(&ti);
    free(stack);
    free(scratch);
    return rc;
}

static void write_finding_core(cp_jsonw *w, const cp_finding *f) {
    FIELD_STR(w, "rule", f->rule);
    FIELD_STR(w, "category", f->category);
    FIELD_STR(w, "subject", f->subject);
    cp_jsonw_kv_d(w, "value", f->value);
    cp_jsonw_kv_d(w, "threshold", f->threshold);
    FIELD_STR(w, "unit", f->unit);
}

static void write_findings(cp_jsonw *w, const cp_model *m) {
    cp_jsonw_key(w, "findings");
    cp_jsonw_begin_array(w);
    for (uint32_t i = 0; i < m->nfindings; i++) {
        const cp_finding *f = &m->findings[i];
        cp_jsonw_begin_object(w);
        write_finding_core(w, f);
        cp_jsonw_kv_d(w, "severity", f->severity);
        FIELD_STR(w, "recommendation", f->recommendation);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
}

static int same_field(const char *a, size_t acap, const char *b) {
    size_t n = strnlen(a, acap);
    return strlen(b) == n && memcmp(a, b, n) == 0;
}

static void write_bottlenecks(cp_jsonw *w, const cp_model *m) {
    cp_jsonw_key(w, "bottlenecks");
    cp_jsonw_begin_object(w);
    for (size_t c = 0; c < sizeof categories / sizeof categories[0]; c++) {
        cp_jsonw_key(w, categories[c].name);
        cp_jsonw_begin_array(w);
        for (uint32_t i = 0; i < m->nfindings; i++) {
            const cp_finding *f = &m->findings[i];
            if (!same_field(f->category, sizeof f->category, categories[c].name))
                continue;
            cp_jsonw_begin_object(w);
            FIELD_STR(w, "subject", f->subject);
            FIELD_STR(w, categories[c].is_func ? "function" : "context", f->subject);
            cp_jsonw_kv_d(w, "value", f->value);
            cp_jsonw_kv_d(w, "threshold", f->threshold);
            FIELD_STR(w, "unit", f->unit);
            FIELD_STR(w, "rule", f->rule);
            cp_jsonw_kv_d(w, "severity", f->severity);
            FIELD_STR(w, "recommendation", f->recommendation);
            if (categories[c].value_alias)
                cp_jsonw_kv_d(w, categories[c].value_alias, f->value);
            cp_jsonw_end_object(w);
        }
        cp_jsonw_end_array(w);
    }
    /* Unique recommendations in finding (severity) order.  Findings are
     * few (one per function at most per rule), so the quadratic check is
     * cheap next to the rest of the report. */
    cp_jsonw_key(w, "recommendations");
    cp_jsonw_begin_array(w);
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
            cp_jsonw_string_n(w, f->recommendation, len);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_end_object(w);
}

int cp_report_json(const cp_model *m, cp_strbuf *out) {
    cp_jsonw w;
    cp_jsonw_init(&w, out);
    int pct = (m->cfg.flags & CODEPROF_CFG_PERCENTILES) != 0;
    /* Most of the report is the call tree and the function table; reserve
     * a rough estimate (~230 bytes per node, ~330 per function) up front to
     * avoid repeated regrowth.  A failure here is an OOM the writes below
     * would hit anyway; it is reported through the buffer's oom flag. */
    (void)cp_strbuf_reserve(out, 512 + (size_t)m->nnodes * 256 + (size_t)m->nfuncs * 360);

    cp_jsonw_begin_object(&w);
    cp_jsonw_kv_s(&w, "schema", "codeprof-report");
    cp_jsonw_kv_u(&w, "schema_version", CODEPROF_REPORT_SCHEMA_VERSION);
    cp_jsonw_kv_s(&w, "generator", "libcodeprof " CODEPROF_VERSION_STRING);
    write_meta(&w, m);
    write_config(&w, &m->cfg);
    cp_jsonw_key(&w, "performance");
    cp_jsonw_begin_object(&w);
    write_functions(&w, m, pct);
    if (write_call_tree(&w, m, pct) != 0) {
        out->oom = 1; /* scratch allocation failed: same contract as OOM */
        return -1;
    }
    cp_jsonw_end_object(&w);
    cp_report_data_json(m, &w);
    write_findings(&w, m);
    write_bottlenecks(&w, m);
    cp_jsonw_end_object(&w);
    return cp_jsonw_finish(&w);
}
