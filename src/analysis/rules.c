/* rules.c -- the analysis rules (see rules.h for the list and contract).
 *
 * To add a rule: write `int rule_x(cp_model *m, const cp_rule_info *info)`
 * (static here, or declared in a rules_<area>.h such as rules_data.h) that
 * appends one finding with info->id / info->category for every subject
 * over its threshold, then add one line to `rules[]` below and document it
 * in rules.h and docs/report-schema.md. */
#include "analysis/rules.h"
#include "analysis/rules_data.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/site.h"

typedef int (*cp_rule_fn)(cp_model *m, const cp_rule_info *info);

typedef struct cp_rule {
    cp_rule_info info;
    cp_rule_fn fn;
} cp_rule;

static int rule_slow_functions(cp_model *m, const cp_rule_info *r);
static int rule_memory_intensive(cp_model *m, const cp_rule_info *r);

static const cp_rule rules[] = {
    {{"CP-PERF-001", "slow_functions",
      "a function's longest single call exceeds slow_function_s (seconds)"},
     rule_slow_functions},
    {{"CP-MEM-001", "memory_intensive_functions",
      "a function's largest RSS growth in one call exceeds memory_intensive_bytes"},
     rule_memory_intensive},
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
};

#define NRULES (sizeof rules / sizeof rules[0])

size_t cp_rules_count(void) { return NRULES; }

const cp_rule_info *cp_rule_at(size_t i) { return i < NRULES ? &rules[i].info : NULL; }

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

static void copy_field(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Appends a finding; the recommendation is printf-formatted. */
static int add_finding(cp_model *m, const cp_rule_info *r, const char *subject, double value,
                       double threshold, const char *unit, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int add_finding(cp_model *m, const cp_rule_info *r, const char *subject, double value,
                       double threshold, const char *unit, const char *fmt, ...) {
    cp_finding f;
    memset(&f, 0, sizeof f);
    copy_field(f.rule, sizeof f.rule, r->id);
    copy_field(f.category, sizeof f.category, r->category);
    copy_field(f.subject, sizeof f.subject, subject);
    copy_field(f.unit, sizeof f.unit, unit);
    f.value = value;
    f.threshold = threshold;
    f.severity = threshold > 0 ? value / threshold : value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f.recommendation, sizeof f.recommendation, fmt, ap);
    va_end(ap);
    return cp_model_add_finding(m, &f);
}

/* Seconds with about three significant digits, in s, ms or us. */
static const char *fmt_secs(double s, char *buf, size_t n) {
    double a = s < 0 ? -s : s;
    const char *unit = "s";
    if (a < 1e-3) {
        s *= 1e6;
        a *= 1e6;
        unit = "us";
    } else if (a < 1.0) {
        s *= 1e3;
        a *= 1e3;
        unit = "ms";
    }
    int prec = a >= 100 ? 0 : a >= 10 ? 1 : 2;
    snprintf(buf, n, "%.*f %s", prec, s, unit);
    return buf;
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

static const char *site_name(uint32_t site) {
    const cp_site_info *si = cp_site_get(site);
    return si ? si->name : "?";
}

/* Nodes grouped by site, for "which callee of f is heaviest".  Built once
 * per run, O(nodes + sites). */
typedef struct callee_index {
    uint32_t nsites;   /* largest site id + 1 */
    uint32_t *off;     /* nsites + 1 */
    uint32_t *nodes;   /* node indices grouped by site */
    uint64_t *acc;     /* nsites, zeroed between queries */
    uint32_t *touched; /* nsites */
} callee_index;

static void callee_index_free(callee_index *ci) {
    free(ci->off);
    free(ci->nodes);
    free(ci->acc);
    free(ci->touched);
    memset(ci, 0, sizeof *ci);
}

static int callee_index_build(callee_index *ci, const cp_model *m) {
    uint32_t maxs = 0;
    for (uint32_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].site > maxs)
            maxs = m->nodes[i].site;
    ci->nsites = maxs + 1;
    ci->off = calloc((size_t)ci->nsites + 1, sizeof *ci->off);
    ci->nodes = malloc(((size_t)m->nnodes + 1) * sizeof *ci->nodes);
    ci->acc = calloc(ci->nsites, sizeof *ci->acc);
    ci->touched = malloc((size_t)ci->nsites * sizeof *ci->touched);
    if (!ci->off || !ci->nodes || !ci->acc || !ci->touched) {
        callee_index_free(ci);
        return -1;
    }
    for (uint32_t i = 0; i < m->nnodes; i++)
        ci->off[m->nodes[i].site + 1]++;
    for (uint32_t s = 0; s < ci->nsites; s++)
        ci->off[s + 1] += ci->off[s];
    /* place using acc as a temporary cursor, then clear it */
    for (uint32_t i = 0; i < m->nnodes; i++) {
        uint32_t s = m->nodes[i].site;
        ci->nodes[ci->off[s] + ci->acc[s]++] = i;
    }
    memset(ci->acc, 0, (size_t)ci->nsites * sizeof *ci->acc);
    return 0;
}

/* The direct callee (summed over every context of `site`, recursion
 * excluded) with the largest inclusive time.  Returns 0 if none. */
static uint32_t heaviest_callee(const callee_index *ci, const cp_model *m, uint32_t site,
                                uint64_t *ns_out) {
    if (site >= ci->nsites)
        return 0;
    uint32_t nt = 0;
    for (uint32_t k = ci->off[site]; k < ci->off[site + 1]; k++) {
        const cp_mnode *n = &m->nodes[ci->nodes[k]];
        for (uint32_t c = n->first_child; c != CP_NONE && c < m->nnodes;
             c = m->nodes[c].next_sibling) {
            const cp_mnode *cn = &m->nodes[c];
            if (cn->site == site || cn->site >= ci->nsites || !cn->incl_ns)
                continue;
            if (!ci->acc[cn->site])
                ci->touched[nt++] = cn->site;
            ci->acc[cn->site] += cn->incl_ns;
        }
    }
    uint32_t best = 0;
    uint64_t best_ns = 0;
    for (uint32_t i = 0; i < nt; i++) {
        uint32_t s = ci->touched[i];
        if (ci->acc[s] > best_ns || (ci->acc[s] == best_ns && s < best)) {
            best = s;
            best_ns = ci->acc[s];
        }
        ci->acc[s] = 0;
    }
    *ns_out = best_ns;
    return best;
}

/* ------------------------------------------------------------------------ */
/* CP-PERF-001 slow_functions                                                */
/* ------------------------------------------------------------------------ */

static int is_code_kind(unsigned kind) {
    return kind == CODEPROF_SITE_SCOPE || kind == CODEPROF_SITE_PYTHON ||
           kind == CODEPROF_SITE_NATIVE || kind == CODEPROF_SITE_FUNCTION;
}

static int rule_slow_functions(cp_model *m, const cp_rule_info *r) {
    double thr = m->cfg.slow_function_s;
    callee_index ci;
    memset(&ci, 0, sizeof ci);
    int have_index = 0, rc = 0;
    for (uint32_t i = 0; i < m->nfuncs && rc == 0; i++) {
        const cp_mfunc *f = &m->funcs[i];
        const cp_site_info *si = cp_site_get(f->site);
        if (!f->calls || !si || !is_code_kind(si->kind))
            continue;
        double v = (double)f->max_ns / 1e9;
        if (!(v > thr))
            continue;
        if (!have_index)
            have_index = callee_index_build(&ci, m) == 0 ? 1 : -1; /* hint is optional */

        char vmax[32], vtot[32], vthr[32], vpart[32], run[48] = "";
        fmt_secs(v, vmax, sizeof vmax);
        fmt_secs((double)f->incl_ns / 1e9, vtot, sizeof vtot);
        fmt_secs(thr, vthr, sizeof vthr);
        if (m->duration_ns)
            snprintf(run, sizeof run, ", %.0f%% of the run",
                     100.0 * (double)f->incl_ns / (double)m->duration_ns);

        uint64_t cns = 0;
        uint32_t callee = have_index == 1 ? heaviest_callee(&ci, m, f->site, &cns) : 0;
        double incl = f->incl_ns ? (double)f->incl_ns : 1.0;
        if (callee && (double)cns >= 0.2 * incl) {
            fmt_secs((double)cns / 1e9, vpart, sizeof vpart);
            rc = add_finding(m, r, si->name, v, thr, "s",
                             "%s took up to %s per call (%llu calls, %s total%s), above the %s "
                             "threshold; most of it is spent in its callee %s (%s, %.0f%% of "
                             "its time): optimize that first (cache its results, batch or "
                             "vectorize it).",
                             si->name, vmax, (unsigned long long)f->calls, vtot, run, vthr,
                             site_name(callee), vpart, 100.0 * (double)cns / incl);
        } else if ((double)f->self_ns >= 0.5 * incl) {
            fmt_secs((double)f->self_ns / 1e9, vpart, sizeof vpart);
            rc = add_finding(m, r, si->name, v, thr, "s",
                             "%s took up to %s per call (%llu calls, %s total%s), above the %s "
                             "threshold; most of it is its own code (self %s): cache repeated "
                             "results, replace Python loops with vectorized NumPy/torch "
                             "operations, or move the work off the critical path.",
                             si->name, vmax, (unsigned long long)f->calls, vtot, run, vthr,
                             vpart);
        } else {
            rc = add_finding(m, r, si->name, v, thr, "s",
                             "%s took up to %s per call (%llu calls, %s total%s), above the %s "
                             "threshold; profile its callees (codeprof run, "
                             "enable_cprofile=True) and cache or vectorize the hottest one.",
                             si->name, vmax, (unsigned long long)f->calls, vtot, run, vthr);
        }
    }
    callee_index_free(&ci);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* CP-MEM-001 memory_intensive_functions                                     */
/* ------------------------------------------------------------------------ */

static int rule_memory_intensive(cp_model *m, const cp_rule_info *r) {
    double thr = m->cfg.memory_intensive_bytes;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (!f->calls || !f->rss_count)
            continue;
        double v = (double)f->rss_delta_max;
        if (!(v > thr))
            continue;
        const char *name = site_name(f->site);
        if (add_finding(m, r, name, v, thr, "bytes",
                        "%s grew RSS by up to %.1f MB in one call (%llu calls measured, "
                        "%+.1f MB net in total), above the %.1f MB threshold; free large "
                        "intermediates early (del, reuse preallocated buffers), process frames "
                        "in chunks instead of whole clips, and run inference under "
                        "torch.no_grad().",
                        name, mib(v), (unsigned long long)f->rss_count,
                        mib((double)f->rss_delta_sum), mib(thr)) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */

int cp_rules_run(cp_model *m) {
    int rc = 0;
    m->nfindings = 0;
    for (size_t i = 0; i < NRULES && rc == 0; i++)
        rc = rules[i].fn(m, &rules[i].info);
    cp_model_sort_findings(m);
    return rc;
}
