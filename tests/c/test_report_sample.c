/* test_report_sample.c -- sampled figures in the views: the "sampling"
 * section and text block (src/report/report_sample.c), the sampled fields
 * of functions and call-tree nodes (report_json.c, report_text.c, the
 * pruned tree's "other" nodes), their read-back (model_json.c), the error
 * bar (report/sample_est.c), the trace export's samples (export/trace.c),
 * the rules over estimates and lines (analysis/rules_sample.c) and the
 * diff's marks (report_diff.c).  Models are built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules.h"
#include "core/event.h"
#include "export/trace.h"
#include "model/model_json.h"
#include "model_fixture.h"
#include "report/jsonr.h"
#include "report/report.h"
#include "report/report_diff.h"
#include "report/sample_est.h"
#include "report/strbuf.h"

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing: %s\nin: %.4000s", needle, doc);
}

static void lacks(const char *doc, const char *needle) {
    if (strstr(doc, needle))
        fail_msg("unexpected: %s", needle);
}

/* Marks node n as reached by `samples` samples (inclusive), `self` of them
 * innermost, `running` of them running; 10 ms each.  A node without
 * traced calls gets the estimates as its times, as the build does. */
static void smp(cp_model *m, uint32_t n, uint64_t samples, uint64_t self, uint64_t running) {
    cp_mnode *x = &m->nodes[n];
    x->samples = samples;
    x->samples_self = self;
    x->samples_running = running;
    x->sampled_ns = samples * FX_S(0.01);
    x->sampled_self_ns = self * FX_S(0.01);
    if (!x->count) {
        x->incl_ns = x->sampled_ns;
        x->self_ns = x->sampled_self_ns;
    }
}

static cp_mfunc *sfunc(cp_model *m, uint32_t site, uint64_t calls, uint64_t samples, uint64_t self,
                       uint64_t running) {
    uint64_t incl = samples * FX_S(0.01), s = self * FX_S(0.01);
    cp_mfunc *f =
        fx_func(m, site, calls, calls ? FX_S(10) : incl, calls ? FX_S(1) : s, calls ? FX_S(10) : 0);
    f->samples = samples;
    f->samples_self = self;
    f->samples_running = running;
    f->sampled_ns = incl;
    f->sampled_self_ns = s;
    return f;
}

static void sampling_totals(cp_model *m) {
    cp_msampling *s = &m->samp;
    s->enabled = 1;
    s->mode = 0;
    s->interval_ns = FX_S(0.01);
    s->samples = 1000;
    s->samples_running = 800;
    s->samples_idle = 150;
    s->samples_gil = 50;
    s->threads = 1;
    s->ticks = 1000;
    s->missed_ticks = 3;
    s->read_errors = 2;
    s->dropped_stacks = 4;
    s->dropped_samples = 5;
    s->timeline_dropped = 6;
    s->sampler_cpu_ns = FX_S(0.02);
}

/* main (traced, 1 call) -> hot (sampled only, 600 samples = 6 s, all its
 * own) and cold (sampled only, 300 samples = 3 s); main's own 100 samples.
 * N = 1000 samples, T = 10 s. */
static cp_model *sampled_model(void) {
    cp_model *m = fx_model();
    uint32_t s_main = fx_site(m, "main", "app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t s_hot = fx_site(m, "hot", "hot.py", 10, CODEPROF_SITE_PYTHON);
    uint32_t s_cold = fx_site(m, "cold", "cold.py", 20, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 111);
    uint32_t a = fx_node(m, root, s_main, 1, FX_S(10), FX_S(1));
    uint32_t h = fx_node(m, a, s_hot, 0, 0, 0);
    uint32_t c = fx_node(m, a, s_cold, 0, 0, 0);
    smp(m, a, 1000, 100, 800);
    smp(m, h, 600, 600, 500);
    smp(m, c, 300, 300, 200);
    sfunc(m, s_main, 1, 1000, 100, 800);
    sfunc(m, s_hot, 0, 600, 600, 500);
    sfunc(m, s_cold, 0, 300, 300, 200);
    sampling_totals(m);
    return m;
}

static char *render(const cp_model *m, int text) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(text ? cp_report_text(m, &sb) : cp_report_json(m, &sb), 0);
    size_t n = 0;
    char *s = cp_strbuf_detach(&sb, &n);
    assert_non_null(s);
    if (!text) { /* well-formed JSON */
        cp_jsonr_doc *doc = NULL;
        assert_int_equal(cp_jsonr_parse(s, n, NULL, &doc, NULL), 0);
        cp_jsonr_free(doc);
    }
    return s;
}

/* The number after `key` in the first object of `doc` that follows `from`. */
static double num_after(const char *doc, const char *from, const char *key) {
    const char *p = strstr(doc, from);
    assert_non_null(p);
    p = strstr(p, key);
    assert_non_null(p);
    return strtod(p + strlen(key), NULL);
}

/* ---- the error bar ---------------------------------------------------- */

static void test_error_is_binomial_standard_error(void **state) {
    (void)state;
    cp_samp_totals t = {1000, FX_S(10)};
    /* 10 s x sqrt(0.6 x 0.4 / 1000) */
    assert_true(fabs(cp_samp_error_ns(600, &t) / 1e9 - 10.0 * sqrt(0.24 / 1000.0)) < 1e-9);
    assert_true(cp_samp_error_ns(0, &t) == 0.0);
    assert_true(cp_samp_error_ns(1000, &t) == 0.0); /* p = 1: no spread */
    cp_samp_totals none = {0, 0};
    assert_true(cp_samp_error_ns(5, &none) == 0.0);
    /* totals: each sample once (self samples), per thread and whole run */
    cp_model *m = sampled_model();
    uint32_t root2 = fx_thread(m, 222);
    uint32_t x = fx_node(m, root2, m->funcs[1].site, 0, 0, 0);
    smp(m, x, 50, 50, 50);
    cp_samp_totals run = cp_samp_totals_run(m), th[2];
    assert_int_equal(run.n, 1050);
    assert_int_equal(run.weight_ns, FX_S(10.5));
    assert_int_equal(cp_samp_totals_threads(m, th), 0);
    assert_int_equal(th[0].n, 1000);
    assert_int_equal(th[1].n, 50);
    assert_int_equal(th[1].weight_ns, FX_S(0.5));
    cp_model_free(m);
}

/* ---- JSON ------------------------------------------------------------- */

static void test_json_sampling_section(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    char *j = render(m, 0);
    has(j, "\"sampling\":{\"enabled\":true,\"mode\":\"wall\",\"interval_s\":0.01,\"native\":false,"
           "\"samples\":1000,\"running\":800,\"idle\":150,\"gil_wait\":50,\"threads\":1,"
           "\"ticks\":1000,\"missed_ticks\":3,\"read_errors\":2,\"sampler_cpu_s\":0.02,"
           "\"dropped\":{\"stacks\":4,\"samples\":5,\"timeline\":6}}");
    free(j);
    m->samp.mode = 1;
    m->samp.native = 1;
    j = render(m, 0);
    has(j, "\"mode\":\"cpu\",\"interval_s\":0.01,\"native\":true,");
    free(j);
    cp_model_free(m);
}

static void test_json_estimated_functions_and_nodes(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    char *j = render(m, 0);
    /* a sampled-only function is listed, with no per-call figures */
    has(j, "{\"function\":\"hot\",\"file\":\"hot.py\",\"line\":10,\"kind\":\"python\",\"calls\":0,"
           "\"inclusive_s\":6,\"self_s\":6,\"cpu_s\":null,\"min_s\":null,\"max_s\":null,"
           "\"mean_s\":null,");
    has(j, "\"total_functions_profiled\":3,\"total_calls\":1,");
    const char *hot = strstr(j, "{\"function\":\"hot\"");
    has(hot, "\"samples\":600,\"estimated\":true,\"sampled_s\":6,\"error_s\":");
    double e = num_after(j, "{\"function\":\"hot\"", "\"error_s\":");
    assert_true(fabs(e - 10.0 * sqrt(0.6 * 0.4 / 1000.0)) < 1e-6);
    /* traced and sampled: not estimated, but the sampled figures are there */
    has(j, "\"function\":\"main\"");
    has(strstr(j, "{\"function\":\"main\""),
        "\"samples\":1000,\"estimated\":false,\"sampled_s\":10,"
        "\"error_s\":0}");
    /* call-tree nodes: the same keys, plus own samples for the read-back */
    const char *tree = strstr(j, "\"call_tree\"");
    assert_non_null(tree);
    has(tree, "\"calls\":0,\"inclusive_s\":6,\"self_s\":6,\"cpu_s\":null,\"samples\":600,"
              "\"estimated\":true,\"sampled_s\":6,\"error_s\":0.15491933384");
    has(tree, "\"samples_self\":600,\"sampled_self_s\":6}");
    free(j);
    cp_model_free(m);
}

/* Children folded into "other" by the pruning carry their samples, summed. */
static void test_json_other_node_sums_samples(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.report_tree_max_nodes = 2;
    uint32_t s_main = fx_site(m, "main", "app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 111);
    uint32_t a = fx_node(m, root, s_main, 1, FX_S(10), FX_S(1));
    smp(m, a, 1000, 100, 1000);
    uint64_t sum = 0;
    for (int i = 0; i < 9; i++) {
        char name[16];
        snprintf(name, sizeof name, "leaf%d", i);
        uint32_t s = fx_site(m, name, "leaf.py", (uint32_t)(10 + i), CODEPROF_SITE_PYTHON);
        uint32_t x = fx_node(m, a, s, 0, 0, 0);
        smp(m, x, (uint64_t)(300 - 30 * i), (uint64_t)(300 - 30 * i), 0);
        sum += (uint64_t)(300 - 30 * i);
    }
    assert_int_equal(sum, 1620);
    char *j = render(m, 0);
    /* leaf0 (300 samples) is written; leaf1..8 (1320 samples) are "other" */
    const char *o = strstr(j, "{\"other\":8,");
    assert_non_null(o);
    has(o, "\"inclusive_s\":13.2,\"self_s\":13.2,\"samples\":1320,\"estimated\":true,"
           "\"sampled_s\":13.2,\"error_s\":");
    has(o, "\"samples_self\":1320,\"sampled_self_s\":13.2}");
    free(j);
    cp_model_free(m);
}

/* A v4 report reads back into the same figures: re-rendering it gives the
 * same sampling section, functions and call tree. */
static void test_round_trip(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    char *j1 = render(m, 0);
    cp_model *r = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(cp_model_from_json(j1, strlen(j1), "r.json", &r, &err), CODEPROF_OK);
    assert_int_equal(r->samp.samples, 1000);
    assert_int_equal(r->samp.samples_gil, 50);
    assert_int_equal(r->samp.interval_ns, FX_S(0.01));
    assert_int_equal(r->samp.timeline_dropped, 6);
    assert_int_equal(r->samp.sampler_cpu_ns, FX_S(0.02));
    assert_true(r->samp.enabled);
    int found = 0;
    for (uint32_t i = 0; i < r->nfuncs; i++) {
        const cp_msite *si = cp_model_site(r, r->funcs[i].site);
        if (strcmp(si->name, "hot") == 0) {
            found = 1;
            assert_int_equal(r->funcs[i].calls, 0);
            assert_int_equal(r->funcs[i].samples, 600);
            assert_int_equal(r->funcs[i].sampled_ns, FX_S(6));
        }
    }
    assert_true(found);
    char *j2 = render(r, 0);
    const char *keys[] = {"\"sampling\":", "\"functions\":", "\"call_tree\":"};
    for (size_t k = 0; k < 3; k++) {
        const char *a = strstr(j1, keys[k]), *b = strstr(j2, keys[k]);
        assert_non_null(a);
        assert_non_null(b);
        /* the same up to the end of the section's first 600 bytes */
        size_t n = strlen(a) < 600 ? strlen(a) : 600;
        if (strncmp(a, b, n) != 0)
            fail_msg("section %s differs:\n%.600s\n%.600s", keys[k], a, b);
    }
    free(j2);
    cp_model_free(r);
    /* the text summary of the read-back shows the same estimates */
    free(j1);
    cp_model_free(m);
}

/* A v4 report with no sample keys (traced only) and a malformed section. */
static void test_read_without_samples_and_bad_mode(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t s = fx_site(m, "f", "f.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    fx_node(m, root, s, 2, FX_S(1), FX_S(1));
    fx_func(m, s, 2, FX_S(1), FX_S(1), FX_S(0.6));
    char *j = render(m, 0);
    has(j, "\"sampling\":{\"enabled\":false,");
    cp_model *r = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(cp_model_from_json(j, strlen(j), "r.json", &r, &err), CODEPROF_OK);
    assert_int_equal(r->funcs[0].samples, 0);
    assert_false(r->samp.enabled);
    cp_model_free(r);
    char *bad = malloc(strlen(j) + 16);
    assert_non_null(bad);
    const char *p = strstr(j, "\"mode\":\"wall\"");
    assert_non_null(p);
    size_t pre = (size_t)(p - j);
    memcpy(bad, j, pre);
    strcpy(bad + pre, "\"mode\":\"wallx\"");
    strcat(bad, p + strlen("\"mode\":\"wall\""));
    r = NULL;
    assert_int_equal(cp_model_from_json(bad, strlen(bad), "r.json", &r, &err), CODEPROF_EFORMAT);
    assert_null(r);
    has(err.message, "sampling.mode");
    has(err.message, "\"wall\" or \"cpu\"");
    free(bad);
    free(j);
    cp_model_free(m);
}

/* ---- text ------------------------------------------------------------- */

static void test_text_marks_estimates(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    char *t = render(m, 1);
    has(t, "~ times estimated from 1000 samples every 10.000 ms");
    has(t, "~   6.000000 ~   6.000000 ");
    has(t, "hot  hot.py:10  (+- 0.154919 s, 600 samples)");
    /* a traced function keeps its call count and no error bar */
    const char *mainline = strstr(t, "main  app.py:1");
    assert_non_null(mainline);
    assert_true(strncmp(mainline + strlen("main  app.py:1"), "\n", 1) == 0);
    /* the sampling block */
    has(t, "Sampling (wall clock, every 10.000 ms)");
    has(t, "1000 samples of 1 threads: running 80.0%, idle 15.0%, waiting for the GIL 5.0%");
    has(t, "sampler: 1000 ticks, 3 missed, 2 unreadable stacks, own CPU 0.020 s");
    has(t, "dropped: 4 stacks folded into \"(other stacks)\", 5 samples lost, 6 samples not on "
           "the timeline");
    free(t);
    /* nothing estimated, no sampler: no header, no block */
    cp_model *q = fx_model();
    uint32_t s = fx_site(q, "f", "f.py", 1, CODEPROF_SITE_PYTHON);
    fx_thread(q, 1);
    fx_func(q, s, 2, FX_S(1), FX_S(1), FX_S(0.6));
    t = render(q, 1);
    lacks(t, "estimated from");
    lacks(t, "Sampling (");
    free(t);
    cp_model_free(q);
    cp_model_free(m);
}

/* ---- trace ------------------------------------------------------------ */

static void test_trace_samples_on_thread_tracks(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    cp_msampling *ms = &m->samp;
    ms->frames = calloc(3, sizeof *ms->frames);
    ms->stacks = calloc(2, sizeof *ms->stacks);
    ms->timeline = calloc(2, sizeof *ms->timeline);
    assert_non_null(ms->frames);
    assert_non_null(ms->stacks);
    assert_non_null(ms->timeline);
    ms->frames[0] = (cp_msframe){m->funcs[1].site, 12}; /* hot:12, innermost */
    ms->frames[1] = (cp_msframe){m->funcs[0].site, 5};  /* main:5 */
    ms->frames[2] = (cp_msframe){m->funcs[2].site, 21};
    ms->nframes = 3;
    ms->stacks[0] = (cp_mstack){0, 2};
    ms->stacks[1] = (cp_mstack){2, 1};
    ms->nstacks = 2;
    ms->timeline[0] = (cp_msample){1000000, 111, 4242, -1, 0, FX_S(0.01), CP_SAMPF_RUNNING, 0, 0};
    ms->timeline[1] = (cp_msample){11000000, 999, 5000, 2, 1, FX_S(0.01), CP_SAMPF_IDLE, 0, 0};
    ms->ntimeline = 2;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    cp_jsonr_doc *doc = NULL;
    assert_int_equal(cp_jsonr_parse(sb.data, sb.len, NULL, &doc, NULL), 0);
    cp_jsonr_free(doc);
    has(sb.data, "{\"ph\":\"i\",\"cat\":\"sample\",\"name\":\"hot\",\"pid\":4242,\"tid\":111,"
                 "\"ts\":0.000,\"s\":\"t\",\"args\":{\"state\":\"running\",\"weight_ms\":10.000000,"
                 "\"stack\":[\"main (app.py:5)\",\"hot (hot.py:12)\"]}}");
    has(sb.data,
        "{\"ph\":\"i\",\"cat\":\"sample\",\"name\":\"cold\",\"pid\":5000,\"tid\":999,"
        "\"ts\":10000.000,\"s\":\"t\",\"args\":{\"state\":\"idle\",\"weight_ms\":10.000000,"
        "\"worker\":2,\"stack\":[\"cold (cold.py:21)\"]}}");
    /* the worker's process and thread are named */
    has(sb.data, "\"name\":\"DataLoader worker 2 (pid 5000)\"");
    has(sb.data, "\"name\":\"thread 999\"");
    has(sb.data, "\"samples\":2,\"samples_taken\":1000,\"samples_dropped\":6,\"samples_cap\":");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

/* ---- rules ------------------------------------------------------------ */

static const cp_finding *finding(const cp_model *m, const char *rule, const char *subject) {
    for (uint32_t i = 0; i < m->nfindings; i++)
        if (!strcmp(m->findings[i].rule, rule) &&
            (!subject || !strcmp(m->findings[i].subject, subject)))
            return &m->findings[i];
    return NULL;
}

static void test_rule_sampled_slow_function(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    m->cfg.slow_function_s = 1.0;
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = finding(m, "CP-PERF-002", "hot");
    assert_non_null(f);
    assert_true(fabs(f->value - 6.0) < 1e-9);
    assert_true(f->threshold == 1.0);
    has(f->recommendation, "hot took about 6.00 s (+- 155 ms, from 600 samples, 60% of the run)");
    /* running in 500 of 600 samples, all of its time its own code */
    has(f->recommendation, "running in 83% of its samples and 100% of its time is its own code");
    assert_non_null(finding(m, "CP-PERF-002", "cold"));
    /* a traced function is CP-PERF-001's, never CP-PERF-002's */
    assert_null(finding(m, "CP-PERF-002", "main"));
    cp_model_free(m);
}

/* X above the threshold but not X - 1.96 error: noise must not fire it. */
static void test_rule_sampled_slow_not_within_noise(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    /* hot: 6 s, error 0.155 s: low end 5.696 s */
    m->cfg.slow_function_s = 5.8;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(finding(m, "CP-PERF-002", "hot"));
    m->cfg.slow_function_s = 5.6;
    assert_int_equal(cp_rules_run(m), 0);
    assert_non_null(finding(m, "CP-PERF-002", "hot"));
    cp_model_free(m);
}

/* Idle samples: the advice is about waiting; chains report the callee. */
static void test_rule_sampled_idle_and_chain(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t s_outer = fx_site(m, "outer", "o.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t s_wait = fx_site(m, "reader", "r.py", 5, CODEPROF_SITE_PYTHON);
    uint32_t s_mod = fx_site(m, "<module>", "o.py", 0, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t mod = fx_node(m, root, s_mod, 0, 0, 0);
    uint32_t o = fx_node(m, mod, s_outer, 0, 0, 0);
    uint32_t w = fx_node(m, o, s_wait, 0, 0, 0);
    smp(m, mod, 1000, 0, 100);
    smp(m, o, 1000, 100, 100);
    smp(m, w, 900, 900, 10);
    sfunc(m, s_mod, 0, 1000, 0, 100);
    sfunc(m, s_outer, 0, 1000, 100, 100);
    sfunc(m, s_wait, 0, 900, 900, 10);
    assert_int_equal(cp_rules_run(m), 0);
    /* import machinery / module bodies and the suppressed caller: no */
    assert_null(finding(m, "CP-PERF-002", "<module>"));
    assert_null(finding(m, "CP-PERF-002", "outer"));
    const cp_finding *f = finding(m, "CP-PERF-002", "reader");
    assert_non_null(f);
    has(f->recommendation, "idle in 99% of its samples");
    has(f->recommendation, "remove the wait or overlap it with work");
    cp_model_free(m);
}

static void add_line(cp_model *m, uint32_t site, uint32_t line, uint64_t hits, double time_s,
                     uint64_t samples, const char *text) {
    assert_int_equal(
        cp_mlines_add(&m->lines, site, line, hits, FX_S(time_s), samples, samples * FX_S(0.01)), 0);
    cp_mlines_finish(&m->lines);
    if (text) {
        uint32_t i = cp_mlines_first(&m->lines, site);
        while (i < m->lines.n && m->lines.v[i].line != line)
            i++;
        assert_true(i < m->lines.n);
        assert_int_equal(cp_mlines_set_text(&m->lines, i, text, strlen(text)), 0);
    }
}

static void test_rule_hot_line(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    uint32_t hot = m->funcs[1].site;
    add_line(m, hot, 12, 0, 0, 500, "    total += expensive(x)");
    add_line(m, hot, 13, 0, 0, 100, NULL);
    m->cfg.slow_function_s = 1.0;
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = finding(m, "CP-PERF-003", "hot line 12");
    assert_non_null(f);
    assert_true(fabs(f->value - 5.0 / 6.0) < 1e-9);
    has(f->recommendation,
        "line 12 of hot (hot.py:12) takes 83% of hot's time (5.00 s of 6.00 s over "
        "2 measured lines; estimated from 500 of 600 samples)");
    has(f->recommendation, "`    total += expensive(x)`");
    assert_string_equal(f->category, "hot_lines");
    cp_model_free(m);
}

static void test_rule_hot_line_exact_and_must_not_fire(void **state) {
    (void)state;
    /* exact (line profiler) figures win over the samples of the same function */
    cp_model *m = sampled_model();
    uint32_t hot = m->funcs[1].site, cold = m->funcs[2].site;
    add_line(m, hot, 12, 10, 1.0, 500, NULL); /* samples say 12, the profiler says 14 */
    add_line(m, hot, 14, 10, 4.0, 0, NULL);
    m->cfg.slow_function_s = 1.0;
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = finding(m, "CP-PERF-003", "hot line 14");
    assert_non_null(f);
    has(f->recommendation, "takes 80% of hot's time (4.00 s of 5.00 s over 2 measured lines; line "
                           "profiler, 10 hits)");
    has(f->recommendation, "(its source text was not available)");
    assert_null(finding(m, "CP-PERF-003", "hot line 12"));
    /* one line measured only: no */
    add_line(m, cold, 21, 0, 0, 300, NULL);
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(finding(m, "CP-PERF-003", "cold line 21"));
    cp_model_free(m);

    /* no line holds half: no */
    m = sampled_model();
    hot = m->funcs[1].site;
    add_line(m, hot, 12, 0, 0, 200, NULL);
    add_line(m, hot, 13, 0, 0, 200, NULL);
    add_line(m, hot, 14, 0, 0, 200, NULL);
    m->cfg.slow_function_s = 1.0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(finding(m, "CP-PERF-003", NULL));
    /* a function that is not slow: no */
    cp_mlines_free(&m->lines);
    memset(&m->lines, 0, sizeof m->lines);
    add_line(m, hot, 12, 0, 0, 500, NULL);
    add_line(m, hot, 13, 0, 0, 100, NULL);
    m->cfg.slow_function_s = 30.0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(finding(m, "CP-PERF-002", NULL));
    assert_null(finding(m, "CP-PERF-003", NULL));
    cp_model_free(m);
}

/* ---- diff ------------------------------------------------------------- */

static void test_diff_marks_sampled_functions(void **state) {
    (void)state;
    cp_model *a = fx_model(), *b = sampled_model();
    uint32_t s = fx_site(a, "hot", "hot.py", 10, CODEPROF_SITE_PYTHON);
    fx_thread(a, 1);
    fx_func(a, s, 4, FX_S(3), FX_S(3), FX_S(1));
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_text(a, b, "a.json", "b.json", &sb), 0);
    /* hot: traced 3 s in A, estimated 6 s in B */
    has(sb.data, "    3.0000     6.0000");
    has(sb.data, " ~B hot  hot.py:10");
    has(sb.data, "~: times estimated from samples");
    cp_strbuf_free(&sb);
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_json(a, b, "a.json", "b.json", &sb), 0);
    const char *h = strstr(sb.data, "\"function\":\"hot\"");
    assert_non_null(h);
    has(h, "\"inclusive_s\":{\"a\":3,\"b\":6,\"ratio\":2}");
    has(h, "\"estimated_a\":false,\"estimated_b\":true}");
    /* cold exists in B only, estimated */
    has(strstr(sb.data, "\"function\":\"cold\""), "\"estimated_b\":true");
    cp_strbuf_free(&sb);
    cp_model_free(a);
    cp_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_is_binomial_standard_error),
        cmocka_unit_test(test_json_sampling_section),
        cmocka_unit_test(test_json_estimated_functions_and_nodes),
        cmocka_unit_test(test_json_other_node_sums_samples),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_read_without_samples_and_bad_mode),
        cmocka_unit_test(test_text_marks_estimates),
        cmocka_unit_test(test_trace_samples_on_thread_tracks),
        cmocka_unit_test(test_rule_sampled_slow_function),
        cmocka_unit_test(test_rule_sampled_slow_not_within_noise),
        cmocka_unit_test(test_rule_sampled_idle_and_chain),
        cmocka_unit_test(test_rule_hot_line),
        cmocka_unit_test(test_rule_hot_line_exact_and_must_not_fire),
        cmocka_unit_test(test_diff_marks_sampled_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
