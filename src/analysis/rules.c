/* rules.c -- the analysis rules (see rules.h for the list and contract).
 *
 * To add a rule: write `int rule_x(cp_model *m, const cp_rule_info *info)`
 * (static here, or declared in a rules_<area>.h such as rules_data.h) that
 * appends one finding with info->id / info->category for every subject
 * over its threshold, then add one line to `rules[]` below and document it
 * in rules.h and docs/report-schema.md. */
#include "analysis/rules.h"
#include "analysis/rules_data.h"
#include "analysis/rules_gpu.h"
#include "analysis/rules_mem.h"
#include "analysis/rules_sample.h"
#include "analysis/rule_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*cp_rule_fn)(cp_model *m, const cp_rule_info *info);

typedef struct cp_rule {
    cp_rule_info info;
    cp_rule_fn fn;
} cp_rule;

static int rule_slow_functions(cp_model *m, const cp_rule_info *r);

static const cp_rule rules[] = {
    {{"CP-PERF-001", "slow_functions",
      "a function's longest single call exceeds slow_function_s (seconds); only the deepest "
      "slow function of a call chain, no import frames, no background-thread waits"},
     rule_slow_functions},
    {{"CP-PERF-002", "slow_functions",
      "a function seen only by the sampler whose estimated time exceeds slow_function_s at the "
      "low end of its 95% interval (estimate - 1.96 x error)"},
     cp_rule_sampled_slow},
    {{"CP-PERF-003", "hot_lines",
      "one line holds >= 50% of a slow function's measured line time (>= 2 lines measured)"},
     cp_rule_hot_line},
    {{"CP-MEM-001", "memory_intensive_functions",
      "a memory context's (or function's) peak or net growth in one call exceeds "
      "memory_intensive_bytes; without contexts, a function's largest RSS growth in one call"},
     cp_rule_mem_intensive},
    {{"CP-MEM-002", "memory_leaks",
      "a context's floor rises after >= 80% of its calls by > max(1 MiB, 1%) per call, or "
      "blocks of several of its calls stay live (> memory_intensive_bytes / 10)"},
     cp_rule_mem_leak},
    {{"CP-MEM-003", "gc_overhead", "garbage collection takes > 5% of the run's wall time"},
     cp_rule_mem_gc},
    {{"CP-MEM-004", "memory_pressure",
      "peak memory (RSS, or main + workers' PSS) > 80% of the machine's physical memory"},
     cp_rule_mem_pressure},
    {{"CP-DATA-001", "slow_data_loading",
      "a loader (>= 3 batches) waits for data more than data_stall_fraction of its loop"},
     cp_rule_data_stall},
    {{"CP-DATA-002", "slow_data_loading",
      "a dataset's outlier items cost > 5% of its item time, or a load exceeds "
      "slow_data_loading_s"},
     cp_rule_data_outliers},
    {{"CP-DATA-003", "slow_preprocessing",
      "a decode/read/load stage takes > 50% of item time (data-bound run or no loader)"},
     cp_rule_data_decode},
    {{"CP-DATA-004", "slow_preprocessing",
      "a preprocess/augment stage averages > slow_preprocessing_s, or takes > 50% of item "
      "time in a data-bound run"},
     cp_rule_data_slow_stage},
    {{"CP-DATA-005", "slow_data_loading",
      "data-bound run, >= 2 epochs, non-persistent workers whose start-up is > 10% of loader "
      "time"},
     cp_rule_data_worker_startup},
    {{"CP-DATA-006", "slow_data_loading",
      "data-bound loader with workers whose p95 wait > 4x a small median wait"},
     cp_rule_data_bursty},
    {{"CP-DATA-007", "slow_data_loading", "a loader feeding a GPU without pin_memory"},
     cp_rule_data_pin_memory},
    {{"CP-DATA-008", "slow_data_loading", "a dataset's item loads raised"},
     cp_rule_data_failures},
    {{"CP-DATA-009", "slow_data_loading",
      "a DataLoader worker's private memory (USS) grows by >= 64 MiB and >= 10% while its "
      "dataset holds >= 10000 Python objects in containers (copy-on-write of refcounts)"},
     cp_rule_data_cow},
    CP_RULES_GPU_ENTRIES, /* after the data rules: CP-GPU-002/005 read their findings */
};

#define NRULES (sizeof rules / sizeof rules[0])

size_t cp_rules_count(void) { return NRULES; }

const cp_rule_info *cp_rule_at(size_t i) { return i < NRULES ? &rules[i].info : NULL; }

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Appends a finding whose severity is value / threshold. */
#define add_finding(m, r, subject, value, threshold, unit, saving, ...)                           \
    cp_rule_add((m), (r), (subject), (value), (threshold), (unit),                                \
                (threshold) > 0 ? (value) / (threshold) : (value), (saving), __VA_ARGS__)

static const char *fmt_secs(double s, char *buf, size_t n) { return cp_rule_secs(s, buf, n); }

static const char *site_name(const cp_model *m, uint32_t site) {
    const cp_msite *si = cp_model_site(m, site);
    return si ? si->name : "?";
}

/* ------------------------------------------------------------------------ */
/* CP-PERF-001 slow_functions                                                */
/* ------------------------------------------------------------------------ */
/*
 * A function is a candidate when its longest call exceeds slow_function_s.
 * Candidates are then filtered so that each slow call chain is reported
 * once, at its deepest function (rules.h documents the filters and lists):
 *   noise     import machinery / module bodies: never reported themselves;
 *   overhead  the profiler's own API (code_profiler.*) and everything under
 *             it: not the user's cost;
 *   twin      a traced Python frame of a @profile_function'ed function:
 *             the decorated site is reported instead;
 *   wait      blocking waits are never reported themselves; on background
 *             threads neither are run loops nor thread/process machinery;
 *   suppressed  slow direct callees explain >= 50% of its time: the callee
 *             is reported, naming this chain's top function.
 * Pass 1 gives every candidate one of these outcomes; pass 2 writes the
 * findings of the reported ones (the chain walk reads callers' outcomes).
 * Cost: O(nodes + sites) to index the trees, then per candidate
 * O(its nodes and their children).
 */

/* Site classes (bit set). */
enum {
    CLS_KNOWN = 1u << 0,
    CLS_CODE = 1u << 1,     /* python/native/function/scope */
    CLS_NOISE = 1u << 2,    /* import machinery, module bodies */
    CLS_OVERHEAD = 1u << 3, /* the profiler's own code */
    CLS_WAIT = 1u << 4,     /* blocking wait */
    CLS_LOOP = 1u << 5,     /* a thread's run loop */
    CLS_INFRA = 1u << 6,    /* thread/process machinery of the stdlib */
};

/* Per-site outcome of pass 1. */
enum {
    ST_NONE = 0,   /* not a candidate (never over the threshold) */
    ST_REPORT,     /* reported */
    ST_SUPPRESSED, /* slow callees explain its time */
    ST_NOISE,
    ST_OVERHEAD,
    ST_DUP,
    ST_WAIT,
    ST_UNDER,      /* over the threshold only in excluded calls */
};

/* Node flags. */
enum { NF_NESTED = 1u << 0, NF_OVERHEAD = 1u << 1 };

static int is_code_kind(unsigned kind) {
    return kind == CODEPROF_SITE_SCOPE || kind == CODEPROF_SITE_PYTHON ||
           kind == CODEPROF_SITE_NATIVE || kind == CODEPROF_SITE_FUNCTION;
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && memcmp(s + n - k, suf, k) == 0;
}

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

/* Last dotted component of a qualified name ("a.b.c" -> "c"). */
static const char *last_component(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* Blocking waits, by last name component (documented in rules.h). */
static const char *const wait_names[] = {
    "acquire", "wait", "wait_for", "waitpid", "get", "join", "_feed", "select", "poll", "_poll",
    "sleep", "recv", "recv_bytes", "_recv", "_recv_bytes", "recv_into", "accept",
    "_wait_for_tstate_lock", NULL,
};

/* A thread's run loop, by last name component. */
static const char *const loop_names[] = {
    "run", "_bootstrap", "_bootstrap_inner", "run_forever", "serve_forever", "_worker_loop",
    "_pin_memory_loop", NULL,
};

/* The standard library's thread and process machinery, by name prefix. */
static const char *const infra_prefixes[] = {
    "threading.", "multiprocessing.", "queue.", "concurrent.futures.", "selectors.",
    "asyncio.", "socket.", "select.", "_thread.", "_queue.", "_multiprocessing.", NULL,
};

static unsigned classify_site(const cp_model *m, uint32_t site) {
    const cp_msite *si = cp_model_site(m, site);
    unsigned c = CLS_KNOWN;
    if (!si)
        return c;
    const char *n = si->name;
    if (is_code_kind(si->kind))
        c |= CLS_CODE;
    if (has_prefix(n, "code_profiler."))
        c |= CLS_OVERHEAD;
    /* the rest describes frames the tracer names: a decorated function or
     * an explicit scope is the user's own choice, whatever its name */
    if (si->kind != CODEPROF_SITE_PYTHON && si->kind != CODEPROF_SITE_NATIVE)
        return c;
    if (!strcmp(n, "<module>") || has_suffix(n, ".<module>") || has_prefix(n, "importlib.") ||
        has_prefix(n, "<frozen importlib") || has_prefix(n, "runpy.") ||
        (si->kind == CODEPROF_SITE_NATIVE &&
         (!strcmp(n, "builtins.exec") || !strcmp(n, "builtins.__import__") ||
          has_prefix(n, "_imp."))))
        c |= CLS_NOISE;
    const char *last = last_component(n);
    if (in_list(last, wait_names))
        c |= CLS_WAIT;
    if (in_list(last, loop_names))
        c |= CLS_LOOP;
    for (const char *const *p = infra_prefixes; *p; p++)
        if (has_prefix(n, *p)) {
            c |= CLS_INFRA;
            break;
        }
    return c;
}

/* A SITE_PYTHON name that is the traced frame of SITE_FUNCTION `fn`: same
 * file, and the Python name ends with the function's name on a name
 * boundary ("__main__.train_step" vs "train_step" or "__main__.train_step"). */
static int is_twin_name(const cp_msite *py, const cp_msite *fn) {
    if (!py->file[0] || strcmp(py->file, fn->file) != 0)
        return 0;
    size_t n = strlen(py->name), k = strlen(fn->name);
    if (k == 0 || n < k || memcmp(py->name + n - k, fn->name, k) != 0)
        return 0;
    return n == k || py->name[n - k - 1] == '.';
}

typedef struct slow_ctx {
    const cp_model *m;
    double thr;           /* seconds */
    uint32_t nsites;      /* largest site id in nodes or funcs + 1 */
    uint32_t *off;        /* nsites + 1: nodes grouped by site */
    uint32_t *byn;        /* nnodes */
    uint32_t *node_thread;/* nnodes: index into m->threads, CP_NONE if unreached */
    uint8_t *nflags;      /* nnodes: NF_* */
    uint8_t *cls;         /* nsites: CLS_* (0 = not classified yet) */
    uint8_t *status;      /* nsites: ST_* */
    uint32_t *twin;       /* nsites: Python site -> its decorated FUNCTION site */
    uint64_t *acc;        /* nsites: callee time (all calls)                */
    uint64_t *acc_slow;   /* nsites: callee time that may count as slow     */
    uint64_t *acc_max;    /* nsites: longest such call                      */
    uint32_t *touched;    /* nsites */
    uint64_t *thread_incl;/* nthreads */
    uint32_t main_thread; /* index into m->threads, CP_NONE without threads */
    int traced;           /* Python calls were traced (model flag, or traced sites in the tree) */
} slow_ctx;

static void slow_ctx_free(slow_ctx *c) {
    free(c->off);
    free(c->byn);
    free(c->node_thread);
    free(c->nflags);
    free(c->cls);
    free(c->status);
    free(c->twin);
    free(c->acc);
    free(c->acc_slow);
    free(c->acc_max);
    free(c->touched);
    free(c->thread_incl);
    memset(c, 0, sizeof *c);
}

static unsigned site_cls(slow_ctx *c, uint32_t site) {
    if (site >= c->nsites)
        return classify_site(c->m, site);
    if (!c->cls[site])
        c->cls[site] = (uint8_t)classify_site(c->m, site);
    return c->cls[site];
}

static int is_slow_ns(const slow_ctx *c, uint64_t ns) { return (double)ns / 1e9 > c->thr; }

/* Walks every thread's tree once: which thread each node is on, whether an
 * ancestor has the same site (recursion), whether it runs under the
 * profiler's own code. */
static int mark_nodes(slow_ctx *c) {
    const cp_model *m = c->m;
    uint32_t *active = calloc(c->nsites, sizeof *active);
    if (!active)
        return -1;
    for (uint32_t i = 0; i < m->nnodes; i++)
        c->node_thread[i] = CP_NONE;
    uint32_t best_index = UINT32_MAX;
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t root = m->threads[t].root;
        if (root >= m->nnodes || c->node_thread[root] != CP_NONE)
            continue;
        if (m->threads[t].index < best_index) {
            best_index = m->threads[t].index;
            c->main_thread = t;
        }
        uint32_t overhead = 0, n = root, steps = 0;
        for (;;) {
            /* enter n */
            const cp_mnode *nd = &m->nodes[n];
            c->node_thread[n] = t;
            uint8_t fl = 0;
            if (nd->site && active[nd->site])
                fl |= NF_NESTED;
            int ovh = nd->site && (site_cls(c, nd->site) & CLS_OVERHEAD);
            if (overhead || ovh)
                fl |= NF_OVERHEAD;
            c->nflags[n] = fl;
            active[nd->site]++;
            overhead += (uint32_t)ovh;
            if (++steps > m->nnodes)
                break; /* malformed links: stop rather than loop */
            uint32_t child = nd->first_child;
            if (child != CP_NONE && child < m->nnodes && c->node_thread[child] == CP_NONE) {
                n = child;
                continue;
            }
            /* leave n and its finished ancestors, move to a sibling */
            for (;;) {
                const cp_mnode *x = &m->nodes[n];
                active[x->site]--;
                if (x->site && (site_cls(c, x->site) & CLS_OVERHEAD))
                    overhead--;
                if (n == root) {
                    n = CP_NONE;
                    break;
                }
                uint32_t sib = x->next_sibling;
                if (sib != CP_NONE && sib < m->nnodes && c->node_thread[sib] == CP_NONE) {
                    n = sib;
                    break;
                }
                n = x->parent;
                if (n == CP_NONE || n >= m->nnodes) {
                    n = CP_NONE;
                    break;
                }
            }
            if (n == CP_NONE)
                break;
        }
    }
    free(active);
    return 0;
}

static int slow_ctx_build(slow_ctx *c, const cp_model *m, double thr) {
    memset(c, 0, sizeof *c);
    c->m = m;
    c->thr = thr;
    c->main_thread = CP_NONE;
    uint32_t maxs = 0;
    for (uint32_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].site > maxs)
            maxs = m->nodes[i].site;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (m->funcs[i].site > maxs)
            maxs = m->funcs[i].site;
    c->nsites = maxs + 1;
    size_t ns = c->nsites, nn = (size_t)m->nnodes + 1;
    c->off = calloc(ns + 1, sizeof *c->off);
    c->byn = malloc(nn * sizeof *c->byn);
    c->node_thread = malloc(nn * sizeof *c->node_thread);
    c->nflags = calloc(nn, sizeof *c->nflags);
    c->cls = calloc(ns, sizeof *c->cls);
    c->status = calloc(ns, sizeof *c->status);
    c->twin = calloc(ns, sizeof *c->twin);
    c->acc = calloc(ns, sizeof *c->acc);
    c->acc_slow = calloc(ns, sizeof *c->acc_slow);
    c->acc_max = calloc(ns, sizeof *c->acc_max);
    c->touched = malloc(ns * sizeof *c->touched);
    c->thread_incl = calloc((size_t)m->nthreads + 1, sizeof *c->thread_incl);
    if (!c->off || !c->byn || !c->node_thread || !c->nflags || !c->cls || !c->status ||
        !c->twin || !c->acc || !c->acc_slow || !c->acc_max || !c->touched || !c->thread_incl)
        goto oom;
    c->traced = cp_rules_python_traced(m);
    /* nodes grouped by site (acc is the placement cursor, then cleared) */
    for (uint32_t i = 0; i < m->nnodes; i++)
        c->off[m->nodes[i].site + 1]++;
    for (uint32_t s = 0; s < c->nsites; s++)
        c->off[s + 1] += c->off[s];
    for (uint32_t i = 0; i < m->nnodes; i++) {
        uint32_t s = m->nodes[i].site;
        c->byn[c->off[s] + c->acc[s]++] = i;
    }
    memset(c->acc, 0, ns * sizeof *c->acc);
    if (mark_nodes(c) != 0)
        goto oom;
    /* twins: every Python site with calls against every decorated site */
    uint32_t nfn = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (m->funcs[i].calls && si && si->kind == CODEPROF_SITE_FUNCTION)
            c->touched[nfn++] = m->funcs[i].site;
    }
    for (uint32_t i = 0; i < m->nfuncs && nfn; i++) {
        const cp_msite *py = cp_model_site(m, m->funcs[i].site);
        if (!py || py->kind != CODEPROF_SITE_PYTHON)
            continue;
        for (uint32_t k = 0; k < nfn; k++)
            if (is_twin_name(py, cp_model_site(m, c->touched[k]))) {
                c->twin[m->funcs[i].site] = c->touched[k];
                break;
            }
    }
    return 0;
oom:
    slow_ctx_free(c);
    return -1;
}

/* What the rule reads of one function: its calls outside the profiler's
 * own code (and, for a blocking wait, on the main thread only). */
typedef struct fview {
    int has_nodes;        /* reached in some thread's tree          */
    int counted_any;      /* some node survived the exclusions      */
    int restricted;       /* some node was excluded                 */
    int on_main, on_other;/* where the counted calls ran            */
    uint64_t calls, incl, self, max;
    uint64_t thread_max;  /* largest per-thread inclusive time      */
    uint32_t heaviest;    /* counted outermost node with most time  */
} fview;

static int node_counted(const slow_ctx *c, uint32_t n) {
    return c->node_thread[n] != CP_NONE && !(c->nflags[n] & NF_OVERHEAD);
}

static void view_of(slow_ctx *c, const cp_mfunc *f, fview *v) {
    memset(v, 0, sizeof *v);
    v->heaviest = CP_NONE;
    uint32_t s = f->site;
    if (s < c->nsites) {
        for (uint32_t k = c->off[s]; k < c->off[s + 1]; k++) {
            uint32_t n = c->byn[k];
            if (c->node_thread[n] == CP_NONE)
                continue;
            v->has_nodes = 1;
            if (!node_counted(c, n)) {
                v->restricted = 1;
                continue;
            }
            const cp_mnode *nd = &c->m->nodes[n];
            v->counted_any = 1;
            if (c->node_thread[n] == c->main_thread)
                v->on_main = 1;
            else
                v->on_other = 1;
            if (nd->max_ns > v->max)
                v->max = nd->max_ns;
            v->self += nd->self_ns;
            if (c->nflags[n] & NF_NESTED)
                continue;
            v->calls += nd->count;
            v->incl += nd->incl_ns;
            c->thread_incl[c->node_thread[n]] += nd->incl_ns;
            if (v->heaviest == CP_NONE || nd->incl_ns > c->m->nodes[v->heaviest].incl_ns)
                v->heaviest = n;
        }
    }
    for (uint32_t t = 0; t < c->m->nthreads; t++) {
        if (c->thread_incl[t] > v->thread_max)
            v->thread_max = c->thread_incl[t];
        c->thread_incl[t] = 0;
    }
    if (!v->has_nodes || !v->restricted) {
        /* nothing excluded: the flat table is the authority */
        v->calls = f->calls;
        v->incl = f->incl_ns;
        v->self = f->self_ns;
        v->max = f->max_ns;
        if (!v->has_nodes)
            v->thread_max = f->incl_ns;
    }
}

/* Adds the children of node `parent` (a call of `site`) to the callee
 * accumulators; a child that is `site`'s traced twin, or a frame of the
 * profiler itself, is looked through. */
static void add_children(slow_ctx *c, uint32_t site, uint32_t parent, int on_main,
                         uint32_t *nt, int depth) {
    const cp_model *m = c->m;
    for (uint32_t ch = m->nodes[parent].first_child; ch != CP_NONE && ch < m->nnodes;
         ch = m->nodes[ch].next_sibling) {
        const cp_mnode *cn = &m->nodes[ch];
        if (cn->site == site || cn->site >= c->nsites || !cn->incl_ns)
            continue;
        if (depth == 0 && c->twin[cn->site] == site) {
            add_children(c, site, ch, on_main, nt, 1);
            continue;
        }
        /* the profiler's own frames (a wrapper's generator around a loader,
         * a decorator's wrapper) are looked through: their callees are the
         * function's callees */
        if ((site_cls(c, cn->site) & CLS_OVERHEAD) && depth < 8) {
            add_children(c, site, ch, on_main, nt, depth + 1);
            continue;
        }
        if (!c->acc[cn->site])
            c->touched[(*nt)++] = cn->site;
        c->acc[cn->site] += cn->incl_ns;
        /* a call back into an enclosing frame (indirect recursion) is part
         * of that frame's chain, not a slow callee of this one */
        if (c->nflags[ch] & NF_NESTED)
            continue;
        /* on the main thread the time a function waits is its own problem:
         * a wait callee does not make it a mere caller */
        if (on_main && (site_cls(c, cn->site) & CLS_WAIT))
            continue;
        c->acc_slow[cn->site] += cn->incl_ns;
        if (cn->max_ns > c->acc_max[cn->site])
            c->acc_max[cn->site] = cn->max_ns;
    }
}

/* Direct callees of the counted outermost calls of `site`, summed per
 * callee site.  Returns the number of callee sites in c->touched, with
 * c->acc / acc_slow / acc_max filled; clear them with callees_clear. */
static uint32_t callees_of(slow_ctx *c, uint32_t site) {
    uint32_t nt = 0;
    if (site >= c->nsites)
        return 0;
    for (uint32_t k = c->off[site]; k < c->off[site + 1]; k++) {
        uint32_t n = c->byn[k];
        if (!node_counted(c, n) || (c->nflags[n] & NF_NESTED))
            continue;
        add_children(c, site, n, c->node_thread[n] == c->main_thread, &nt, 0);
    }
    return nt;
}

static void callees_clear(slow_ctx *c, uint32_t nt) {
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t s = c->touched[i];
        c->acc[s] = c->acc_slow[s] = c->acc_max[s] = 0;
    }
}

/* A wait is its caller's cost, except where the main thread waits, over
 * the threshold, right in a module body (top-level script code): no caller
 * function is there to report. */
static int in_module_body(const slow_ctx *c, uint32_t n) {
    const cp_model *m = c->m;
    uint32_t p = m->nodes[n].parent;
    if (p == CP_NONE || p >= m->nnodes || !m->nodes[p].site)
        return 0;
    const cp_msite *ps = cp_model_site(m, m->nodes[p].site);
    return ps && ps->kind == CODEPROF_SITE_PYTHON && has_suffix(ps->name, "<module>");
}

/* Returns 1 if some main-thread call of `site` made right in a module body
 * is over the threshold; `v` (optional) gets those calls' numbers. */
static int waits_in_module_body(slow_ctx *c, uint32_t site, fview *v) {
    const cp_model *m = c->m;
    int found = 0;
    if (v) {
        memset(v, 0, sizeof *v);
        v->heaviest = CP_NONE;
    }
    if (site >= c->nsites)
        return 0;
    for (uint32_t k = c->off[site]; k < c->off[site + 1]; k++) {
        uint32_t n = c->byn[k];
        if (!node_counted(c, n) || c->node_thread[n] != c->main_thread || !in_module_body(c, n))
            continue;
        const cp_mnode *nd = &m->nodes[n];
        if (is_slow_ns(c, nd->max_ns))
            found = 1;
        if (!v)
            continue;
        v->has_nodes = v->counted_any = v->on_main = 1;
        v->calls += nd->count;
        v->incl += nd->incl_ns;
        v->self += nd->self_ns;
        if (nd->max_ns > v->max)
            v->max = nd->max_ns;
        v->thread_max = v->incl;
        if (v->heaviest == CP_NONE || nd->incl_ns > m->nodes[v->heaviest].incl_ns)
            v->heaviest = n;
    }
    return found;
}

/* Pass 1: the outcome for one candidate. */
static int slow_status(slow_ctx *c, const cp_mfunc *f) {
    unsigned cls = site_cls(c, f->site);
    if (cls & CLS_NOISE)
        return ST_NOISE;
    if (cls & CLS_OVERHEAD)
        return ST_OVERHEAD;
    if (f->site < c->nsites && c->twin[f->site])
        return ST_DUP;
    fview v;
    view_of(c, f, &v);
    if (v.has_nodes && !v.counted_any)
        return ST_OVERHEAD;
    if ((cls & CLS_WAIT) && !waits_in_module_body(c, f->site, NULL))
        return ST_WAIT;
    if (!is_slow_ns(c, v.max))
        return ST_UNDER;
    if (v.has_nodes && !v.on_main) {
        /* background threads only: their run loops (unless their own code
         * is the cost), the thread/process machinery, and the system calls
         * that machinery makes */
        if ((cls & CLS_LOOP) && v.self * 2 < v.incl)
            return ST_WAIT;
        if (cls & CLS_INFRA)
            return ST_WAIT;
        const cp_msite *si = cp_model_site(c->m, f->site);
        uint32_t p = v.heaviest != CP_NONE ? c->m->nodes[v.heaviest].parent : CP_NONE;
        if (si && si->kind == CODEPROF_SITE_NATIVE && p != CP_NONE && p < c->m->nnodes &&
            c->m->nodes[p].site &&
            (site_cls(c, c->m->nodes[p].site) & (CLS_INFRA | CLS_WAIT | CLS_LOOP)))
            return ST_WAIT;
    }
    uint32_t nt = callees_of(c, f->site);
    uint64_t slow_sum = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t s = c->touched[i];
        if (c->acc_slow[s] && is_slow_ns(c, c->acc_max[s]))
            slow_sum += c->acc_slow[s];
    }
    callees_clear(c, nt);
    uint64_t base = v.incl;
    if (v.has_nodes && v.restricted == 0) {
        /* the same outermost calls the callees were summed over */
        uint64_t sum = 0;
        for (uint32_t k = c->off[f->site]; k < c->off[f->site + 1]; k++) {
            uint32_t n = c->byn[k];
            if (node_counted(c, n) && !(c->nflags[n] & NF_NESTED))
                sum += c->m->nodes[n].incl_ns;
        }
        base = sum;
    }
    if (base && slow_sum * 2 >= base)
        return ST_SUPPRESSED;
    return ST_REPORT;
}

/* The top of the chain that leads to `node`: the highest suppressed caller
 * reached through suppressed (or noise, twin, wait) callers.  0 if none. */
static uint32_t chain_top(slow_ctx *c, uint32_t node) {
    const cp_model *m = c->m;
    uint32_t top = 0, steps = 0;
    for (uint32_t p = m->nodes[node].parent; p != CP_NONE && p < m->nnodes && steps < m->nnodes;
         p = m->nodes[p].parent, steps++) {
        uint32_t s = m->nodes[p].site;
        if (s == 0 || s >= c->nsites)
            break;
        uint8_t st = c->status[s];
        if (st == ST_SUPPRESSED)
            top = s;
        else if (st != ST_NOISE && st != ST_DUP && st != ST_WAIT)
            break;
    }
    return top;
}

static double pct_clamped(uint64_t part, uint64_t whole) {
    if (!whole)
        return 0;
    double p = 100.0 * (double)part / (double)whole;
    return p > 100.0 ? 100.0 : p;
}

static int report_slow(slow_ctx *c, cp_model *m, const cp_rule_info *r, const cp_mfunc *f) {
    const cp_msite *si = cp_model_site(m, f->site);
    fview v;
    int body_wait = (site_cls(c, f->site) & CLS_WAIT) != 0;
    if (body_wait)
        waits_in_module_body(c, f->site, &v); /* its calls in module bodies */
    else
        view_of(c, f, &v);
    double thr = c->thr, val = (double)v.max / 1e9;
    char vmax[32], vtot[32], vthr[32], vpart[32], run[48] = "", from[300] = "";
    fmt_secs(val, vmax, sizeof vmax);
    fmt_secs((double)v.incl / 1e9, vtot, sizeof vtot);
    fmt_secs(thr, vthr, sizeof vthr);
    if (m->duration_ns)
        snprintf(run, sizeof run, ", %.0f%% of the run",
                 pct_clamped(v.thread_max, m->duration_ns));
    uint32_t top = v.heaviest != CP_NONE ? chain_top(c, v.heaviest) : 0;
    if (top)
        snprintf(from, sizeof from, ", called from %s", site_name(m, top));

    uint32_t nt = callees_of(c, f->site), callee = 0;
    uint64_t cns = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t s = c->touched[i];
        if (c->acc[s] > cns || (c->acc[s] == cns && s < callee)) {
            callee = s;
            cns = c->acc[s];
        }
    }
    callees_clear(c, nt);
    double incl = v.incl ? (double)v.incl : 1.0;
    /* saving: the time spent in the function (its counted calls); rank_findings
     * takes out what findings below it explain */
    double saving = (double)v.incl / 1e9;
    double cpu = cp_rule_cpu_share(m, f->site);
    char cpubuf[64] = "";
    if (cpu >= 0)
        snprintf(cpubuf, sizeof cpubuf, ", on a CPU %.0f%% of its time", 100.0 * cpu);
    int rc;
    if (body_wait) {
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s), above the %s "
                         "threshold; the main thread blocked in it at the top level of a "
                         "module (script code outside any function): remove the wait or "
                         "overlap it with work (a background thread, a prefetching "
                         "DataLoader).",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, vthr);
    } else if (callee && (double)cns >= 0.2 * incl && cp_model_site(m, callee) &&
               cp_model_site(m, callee)->kind == CODEPROF_SITE_LOADER) {
        /* a loop: its time waiting for batches is the data rules' subject */
        fmt_secs((double)cns / 1e9, vpart, sizeof vpart);
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; %s of it (%.0f%%) is the loop waiting for batches from %s: "
                         "the data-loading findings (CP-DATA-*) say why and what to change.",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr,
                         vpart, pct_clamped(cns, v.incl), site_name(m, callee));
    } else if (callee && (double)cns >= 0.2 * incl &&
               ((site_cls(c, callee) & CLS_WAIT) ||
                (cp_rule_cpu_share(m, callee) >= 0 &&
                 cp_rule_cpu_share(m, callee) < CP_RULE_WAIT_CPU_SHARE))) {
        fmt_secs((double)cns / 1e9, vpart, sizeof vpart);
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; most of it is spent waiting in its callee %s (%s, %.0f%% "
                         "of its time), which waits (I/O, sleep, a lock) rather than computes: "
                         "remove the wait, or overlap it with work instead of blocking on it.",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr,
                         site_name(m, callee), vpart, pct_clamped(cns, v.incl));
    } else if (callee && (double)cns >= 0.2 * incl) {
        fmt_secs((double)cns / 1e9, vpart, sizeof vpart);
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; most of it is spent in its callee %s (%s, %.0f%% of "
                         "its time): optimize that first (cache its results, batch or "
                         "vectorize it).",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr,
                         site_name(m, callee), vpart, pct_clamped(cns, v.incl));
    } else if ((double)v.self >= 0.5 * incl && cpu >= 0 && cpu < CP_RULE_WAIT_CPU_SHARE) {
        fmt_secs((double)v.self / 1e9, vpart, sizeof vpart);
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; most of it is its own time (self %s%s): it waits (I/O, "
                         "sleep, a lock), not computes, so vectorizing would not help: remove "
                         "the wait, or overlap it with work (a background thread, prefetching, "
                         "asynchronous I/O).",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr,
                         vpart, cpubuf);
    } else if ((double)v.self >= 0.5 * incl) {
        fmt_secs((double)v.self / 1e9, vpart, sizeof vpart);
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; most of it is its own code (self %s%s): cache repeated "
                         "results, replace Python loops with vectorized NumPy/torch "
                         "operations, or move the work off the critical path.",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr,
                         vpart, cpubuf);
    } else if (c->traced) {
        /* the tracer was on: its callees are in the call tree already */
        char vself[32];
        fmt_secs((double)v.self / 1e9, vself, sizeof vself);
        fmt_secs((double)cns / 1e9, vpart, sizeof vpart);
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; its time is spread over its callees (the largest, %s, "
                         "takes %s, %.0f%%) and its own code (self %s): follow its subtree in "
                         "the call tree (performance.call_tree, or a flame graph export) to the "
                         "hottest path.",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr,
                         callee ? site_name(m, callee) : "none", vpart,
                         pct_clamped(cns, v.incl), vself);
    } else {
        rc = add_finding(m, r, si->name, val, thr, "s", saving,
                         "%s took up to %s per call (%llu calls, %s total%s%s), above the %s "
                         "threshold; its callees were not traced: profile them (codeprof run, "
                         "enable_cprofile=True) and cache or vectorize the hottest one.",
                         si->name, vmax, (unsigned long long)v.calls, vtot, run, from, vthr);
    }
    return rc;
}

static int rule_slow_functions(cp_model *m, const cp_rule_info *r) {
    double thr = m->cfg.slow_function_s;
    int any = 0;
    for (uint32_t i = 0; i < m->nfuncs && !any; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        any = m->funcs[i].calls && si && is_code_kind(si->kind) &&
              (double)m->funcs[i].max_ns / 1e9 > thr;
    }
    if (!any)
        return 0;
    slow_ctx c;
    if (slow_ctx_build(&c, m, thr) != 0)
        return -1;
    /* pass 1: every candidate's outcome (pass 2 reads callers' outcomes) */
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        const cp_msite *si = cp_model_site(m, f->site);
        if (!f->calls || !si || !is_code_kind(si->kind) || !((double)f->max_ns / 1e9 > thr))
            continue;
        c.status[f->site] = (uint8_t)slow_status(&c, f);
    }
    int rc = 0;
    for (uint32_t i = 0; i < m->nfuncs && rc == 0; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (f->calls && c.status[f->site] == ST_REPORT)
            rc = report_slow(&c, m, r, f);
    }
    slow_ctx_free(&c);
    return rc;
}
/* ------------------------------------------------------------------------ */

int cp_rules_python_traced(const cp_model *m) {
    if (m->python_traced)
        return 1;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        const cp_msite *si = m->nodes[i].site ? cp_model_site(m, m->nodes[i].site) : NULL;
        if (si && si->kind == CODEPROF_SITE_PYTHON)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* ranking: a container's saving less what findings inside it explain         */
/* ------------------------------------------------------------------------ */

static int is_perf(const cp_finding *f) { return !strcmp(f->rule, "CP-PERF-001"); }

static int is_data(const cp_finding *f) { return !strncmp(f->rule, "CP-DATA-", 8); }

/* CP-PERF-001 findings are containers: a slow epoch scope contains the
 * data stall (the loader's waits) and the slow functions it calls.  Each
 * one's saving loses the time the findings inside it explain: the loader
 * waits under it (at most what the data findings save together) and the
 * time of other reported functions under it (at most their savings),
 * smallest containers first so that nesting is counted once.
 *
 * One walk: every node of a reported function's site (a "target"; loader
 * sites form one more target, the data pool) that is the outermost of its
 * target on its path adds its inclusive time to inside[target][c] for each
 * distinct container c among its ancestors.  Cost: those nodes x depth.
 * Returns -1 on OOM (savings are then left as the rules set them). */
static int discount_containers(cp_model *m) {
    uint32_t nsites = m->sites.n, nf = m->nfindings, np = 0;
    if (nsites < 2 || !nf)
        return 0;
    for (uint32_t i = 0; i < nf; i++)
        np += is_perf(&m->findings[i]);
    if (!np)
        return 0;
    const uint32_t pool = np; /* target index of the loader sites */
    uint32_t *order = malloc((size_t)np * sizeof *order);
    uint32_t *of_site = malloc((size_t)nsites * sizeof *of_site);
    uint32_t *stamp = calloc((size_t)np, sizeof *stamp);
    double *inside = calloc((size_t)(np + 1) * np, sizeof *inside);
    if (!order || !of_site || !stamp || !inside) {
        free(order);
        free(of_site);
        free(stamp);
        free(inside);
        return -1;
    }
    double data_saving = 0;
    np = 0;
    for (uint32_t i = 0; i < nf; i++) {
        if (is_data(&m->findings[i]))
            data_saving += m->findings[i].saving_s;
        if (is_perf(&m->findings[i]))
            order[np++] = i;
    }
    /* smallest saving first: inner functions before their containers */
    for (uint32_t a = 1; a < np; a++) {
        uint32_t x = order[a], b = a;
        while (b > 0 && m->findings[order[b - 1]].saving_s > m->findings[x].saving_s) {
            order[b] = order[b - 1];
            b--;
        }
        order[b] = x;
    }
    /* site -> position in order[] (by the finding's subject), pool, or none */
    for (uint32_t s = 0; s < nsites; s++) {
        const cp_msite *si = s ? cp_model_site(m, s) : NULL;
        of_site[s] = CP_NONE;
        if (!si)
            continue;
        if (si->kind == CODEPROF_SITE_LOADER) {
            of_site[s] = pool;
            continue;
        }
        if (!is_code_kind(si->kind))
            continue;
        for (uint32_t a = 0; a < np; a++)
            if (!strcmp(m->findings[order[a]].subject, si->name)) {
                of_site[s] = a;
                break;
            }
    }
    for (uint32_t x = 0; x < m->nnodes; x++) {
        uint32_t s = m->nodes[x].site;
        uint32_t t = s < nsites ? of_site[s] : CP_NONE;
        if (t == CP_NONE)
            continue;
        int outermost = 1;
        uint32_t steps = 0;
        for (uint32_t p = m->nodes[x].parent; p != CP_NONE && p < m->nnodes && steps < m->nnodes;
             p = m->nodes[p].parent, steps++) {
            uint32_t ps = m->nodes[p].site;
            if (ps < nsites && of_site[ps] == t) {
                outermost = 0;
                break;
            }
        }
        if (!outermost)
            continue;
        steps = 0;
        for (uint32_t p = m->nodes[x].parent; p != CP_NONE && p < m->nnodes && steps < m->nnodes;
             p = m->nodes[p].parent, steps++) {
            uint32_t ps = m->nodes[p].site;
            uint32_t c = ps < nsites ? of_site[ps] : CP_NONE;
            if (c == CP_NONE || c == pool || stamp[c] == x + 1)
                continue;
            stamp[c] = x + 1;
            inside[(size_t)t * np + c] += (double)m->nodes[x].incl_ns / 1e9;
        }
    }
    for (uint32_t a = 0; a < np; a++) {
        cp_finding *f = &m->findings[order[a]];
        double t = inside[(size_t)pool * np + a];
        double discount = t < data_saving ? t : data_saving;
        for (uint32_t b = 0; b < np; b++) {
            const cp_finding *g = &m->findings[order[b]];
            t = inside[(size_t)b * np + a];
            if (b != a && g->saving_s > 0 && t > 0)
                discount += t < g->saving_s ? t : g->saving_s;
        }
        f->saving_s = f->saving_s > discount ? f->saving_s - discount : 0;
    }
    free(order);
    free(of_site);
    free(stamp);
    free(inside);
    return 0;
}

int cp_rules_run(cp_model *m) {
    int rc = 0;
    m->nfindings = 0;
    for (size_t i = 0; i < NRULES && rc == 0; i++)
        rc = rules[i].fn(m, &rules[i].info);
    if (discount_containers(m) != 0)
        rc = -1;
    cp_model_sort_findings(m);
    return rc;
}
