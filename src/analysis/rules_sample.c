/* rules_sample.c -- rules over sampled estimates and line figures
 * (rules_sample.h). */
#include "analysis/rules_sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rule_util.h"
#include "report/sample_est.h"

static int has_prefix(const char *s, const char *p) {
    return strncmp(s, p, strlen(p)) == 0;
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* Code the user can change: not import machinery, not the profiler. */
static int candidate_site(const cp_msite *si) {
    if (!si)
        return 0;
    if (si->kind != CODEPROF_SITE_PYTHON && si->kind != CODEPROF_SITE_NATIVE &&
        si->kind != CODEPROF_SITE_FUNCTION && si->kind != CODEPROF_SITE_SCOPE)
        return 0;
    const char *n = si->name;
    return !(strcmp(n, "<module>") == 0 || has_suffix(n, ".<module>") ||
             has_prefix(n, "importlib.") || has_prefix(n, "<frozen importlib") ||
             has_prefix(n, "runpy.") || has_prefix(n, "code_profiler."));
}

static int over(const cp_mfunc *f, const cp_samp_totals *run, double thr, double *err_s) {
    double x = (double)f->incl_ns / 1e9;
    *err_s = cp_samp_error_ns(f->samples, run) / 1e9;
    return x - CP_SAMP_Z95 * *err_s > thr;
}

int cp_rule_sampled_slow(cp_model *m, const cp_rule_info *r) {
    double thr = m->cfg.slow_function_s;
    uint32_t ns = m->sites.n + 1;
    cp_samp_totals run = cp_samp_totals_run(m);
    if (!run.n)
        return 0;
    uint8_t *qual = calloc(ns, 1);
    if (!qual)
        return -1;
    uint32_t nq = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        double e;
        if (f->calls || !f->samples || f->site >= ns ||
            !candidate_site(cp_model_site(m, f->site)) || !over(f, &run, thr, &e))
            continue;
        qual[f->site] = 1;
        nq++;
    }
    int rc = 0;
    for (uint32_t i = 0; i < m->nfuncs && nq && rc == 0; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (f->site >= ns || !qual[f->site] || f->calls)
            continue;
        /* its nodes: samples under firing callees, and its largest callee */
        uint64_t base = 0, slow = 0, self = 0;
        uint32_t callee = 0;
        uint64_t callee_ns = 0;
        for (uint32_t x = 0; x < m->nnodes; x++) {
            const cp_mnode *n = &m->nodes[x];
            if (n->site != f->site)
                continue;
            base += n->sampled_ns;
            self += n->sampled_self_ns;
            for (uint32_t c = n->first_child; c < m->nnodes; c = m->nodes[c].next_sibling) {
                const cp_mnode *k = &m->nodes[c];
                if (k->site == f->site || k->site >= ns)
                    continue;
                if (qual[k->site])
                    slow += k->sampled_ns;
                if (k->sampled_ns > callee_ns) {
                    callee_ns = k->sampled_ns;
                    callee = k->site;
                }
            }
        }
        if (base && slow * 2 >= base)
            continue; /* a firing callee holds most of it: that one is reported */
        const cp_msite *si = cp_model_site(m, f->site);
        double e, x = (double)f->incl_ns / 1e9;
        over(f, &run, thr, &e);
        char vx[32], ve[32], vthr[32], vpart[32], runpct[48] = "";
        cp_rule_secs(x, vx, sizeof vx);
        cp_rule_secs(e, ve, sizeof ve);
        cp_rule_secs(thr, vthr, sizeof vthr);
        if (m->duration_ns)
            snprintf(runpct, sizeof runpct, ", %.0f%% of the run",
                     100.0 * (double)f->incl_ns / (double)m->duration_ns);
        double idle = 1.0 - (double)f->samples_running / (double)f->samples;
        double selfsh = base ? (double)self / (double)base : 0.0;
        if (idle > 0.5) {
            rc = cp_rule_add(m, r, si->name, x, thr, "s", x / thr, x,
                             "%s took about %s (+- %s, from %llu samples%s), above the %s "
                             "threshold even at the low end of its 95%% interval; it was idle "
                             "in %.0f%% of its samples (blocked in I/O, a sleep or a lock, or "
                             "waiting for the GIL): it waits rather than computes, so remove "
                             "the wait or overlap it with work.",
                             si->name, vx, ve, (unsigned long long)f->samples, runpct, vthr,
                             100.0 * idle);
        } else if (selfsh >= 0.5 || !callee) {
            rc = cp_rule_add(m, r, si->name, x, thr, "s", x / thr, x,
                             "%s took about %s (+- %s, from %llu samples%s), above the %s "
                             "threshold even at the low end of its 95%% interval; it was "
                             "running in %.0f%% of its samples and %.0f%% of its time is its "
                             "own code: cache repeated results or vectorize its loops.",
                             si->name, vx, ve, (unsigned long long)f->samples, runpct, vthr,
                             100.0 * (1.0 - idle), 100.0 * selfsh);
        } else {
            cp_rule_secs((double)callee_ns / 1e9, vpart, sizeof vpart);
            const cp_msite *ci = cp_model_site(m, callee);
            rc = cp_rule_add(m, r, si->name, x, thr, "s", x / thr, x,
                             "%s took about %s (+- %s, from %llu samples%s), above the %s "
                             "threshold even at the low end of its 95%% interval; most of it "
                             "is in its callees, the largest %s (about %s, %.0f%%): follow its "
                             "subtree in the call tree or a flame graph export.",
                             si->name, vx, ve, (unsigned long long)f->samples, runpct, vthr,
                             ci ? ci->name : "?", vpart,
                             base ? 100.0 * (double)callee_ns / (double)base : 0.0);
        }
    }
    free(qual);
    return rc;
}

/* ---- CP-PERF-003 hot lines ---------------------------------------------- */

static int slow_subject(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfindings; i++) {
        const cp_finding *g = &m->findings[i];
        if ((strcmp(g->rule, "CP-PERF-001") == 0 || strcmp(g->rule, "CP-PERF-002") == 0) &&
            strncmp(g->subject, name, sizeof g->subject) == 0)
            return 1;
    }
    return 0;
}

static int hot_line_of(cp_model *m, const cp_rule_info *r, uint32_t site) {
    const cp_mlines *ml = &m->lines;
    int exact = 0;
    for (uint32_t i = 0; i < ml->n; i++)
        if (ml->v[i].site == site && ml->v[i].hits)
            exact = 1;
    uint64_t total = 0, best = 0, samples = 0;
    uint32_t nlines = 0, hot = CP_NONE;
    for (uint32_t i = 0; i < ml->n; i++) {
        const cp_mline *l = &ml->v[i];
        if (l->site != site)
            continue;
        uint64_t t = exact ? (l->hits ? l->time_ns : 0) : l->sampled_ns;
        if (!t)
            continue;
        nlines++;
        total += t;
        samples += l->samples;
        if (t > best) {
            best = t;
            hot = i;
        }
    }
    if (nlines < 2 || !total || best * 2 < total)
        return 0;
    const cp_msite *si = cp_model_site(m, site);
    const cp_mline *l = &ml->v[hot];
    double share = (double)best / (double)total;
    const char *text = cp_mlines_text(ml, hot);
    char subject[256], vb[32], vt[32], how[64], code[200];
    if (text)
        snprintf(code, sizeof code, "`%.160s`", text);
    else
        snprintf(code, sizeof code, "(its source text was not available)");
    snprintf(subject, sizeof subject, "%s line %u", si->name, l->line);
    cp_rule_secs((double)best / 1e9, vb, sizeof vb);
    cp_rule_secs((double)total / 1e9, vt, sizeof vt);
    if (exact)
        snprintf(how, sizeof how, "line profiler, %llu hits", (unsigned long long)l->hits);
    else
        snprintf(how, sizeof how, "estimated from %llu of %llu samples",
                 (unsigned long long)l->samples, (unsigned long long)samples);
    return cp_rule_add(m, r, subject, share, 0.5, "fraction", share / 0.5, 0,
                       "line %u of %s (%s:%u) takes %.0f%% of %s's time (%s of %s over %u "
                       "measured lines; %s): %s; this line is where the slow function's "
                       "time goes, so change it first.",
                       l->line, si->name, si->file, l->line, 100.0 * share, si->name, vb, vt,
                       nlines, how, code);
}

int cp_rule_hot_line(cp_model *m, const cp_rule_info *r) {
    if (!m->lines.n || !m->nfindings)
        return 0;
    int rc = 0;
    for (uint32_t i = 0; i < m->nfuncs && rc == 0; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (si && slow_subject(m, si->name))
            rc = hot_line_of(m, r, m->funcs[i].site);
    }
    return rc;
}
