/* test_report.c -- the JSON and text report writers over hand-built
 * models (src/report/report_json.c, report_text.c).  A Python-side test
 * additionally parses real reports with json.loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules.h"
#include "codeprof/version.h"
#include "model_fixture.h"
#include "report/report.h"
#include "report/strbuf.h"

/* ---- a strict JSON syntax checker (iterative, any depth) --------------- */

typedef struct jcheck {
    const char *p, *end;
    size_t max_depth;
} jcheck;

static void ws(jcheck *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int lit(jcheck *c, const char *s) {
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n))
        return 0;
    c->p += n;
    return 1;
}

static int str(jcheck *c) {
    if (c->p >= c->end || *c->p != '"')
        return 0;
    c->p++;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
            c->p++;
            if (c->p >= c->end)
                return 0;
            if (*c->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (c->p + i >= c->end || !strchr("0123456789abcdefABCDEF", c->p[i]))
                        return 0;
                c->p += 4;
            } else if (!strchr("\"\\/bfnrt", *c->p)) {
                return 0;
            }
        }
        c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    return 1;
}

static int digits(jcheck *c) {
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static int num(jcheck *c) {
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!digits(c))
        return 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return 0;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return 0;
    }
    return 1;
}

/* Returns 1 if [s, s+n) is exactly one valid JSON value. */
static int json_valid(const char *s, size_t n, size_t *max_depth) {
    jcheck c = {s, s + n, 0};
    char *stack = malloc(n + 1);
    assert_non_null(stack);
    size_t sp = 0;
    int ok = 0;
    for (;;) {
        ws(&c);
        if (c.p >= c.end)
            goto out;
        /* a value */
        if (*c.p == '{' || *c.p == '[') {
            stack[sp++] = *c.p++;
            if (sp > c.max_depth)
                c.max_depth = sp;
            ws(&c);
            if (c.p < c.end && *c.p == (stack[sp - 1] == '{' ? '}' : ']')) {
                c.p++;
                sp--;
                goto after_value;
            }
            if (stack[sp - 1] == '{') {
                if (!str(&c))
                    goto out;
                ws(&c);
                if (!lit(&c, ":"))
                    goto out;
            }
            continue;
        }
        if (*c.p == '"') {
            if (!str(&c))
                goto out;
        } else if (!(lit(&c, "true") || lit(&c, "false") || lit(&c, "null") || num(&c))) {
            goto out;
        }
    after_value:
        for (;;) {
            ws(&c);
            if (sp == 0) {
                ok = c.p == c.end;
                goto out;
            }
            if (c.p >= c.end)
                goto out;
            char close = stack[sp - 1] == '{' ? '}' : ']';
            if (*c.p == close) {
                c.p++;
                sp--;
                continue;
            }
            if (*c.p != ',')
                goto out;
            c.p++;
            if (stack[sp - 1] == '{') {
                ws(&c);
                if (!str(&c))
                    goto out;
                ws(&c);
                if (!lit(&c, ":"))
                    goto out;
            }
            break;
        }
    }
out:
    free(stack);
    if (max_depth)
        *max_depth = c.max_depth;
    return ok;
}

static void test_checker_rejects_bad_json(void **state) {
    (void)state;
    const char *good[] = {"{}", "[]", "{\"a\":[1,2.5e-3,-0,true,null,\"x\\u00e9\"]}", "0"};
    const char *bad[] = {"{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "[01]", "\"a\nb\"", "[1]]",
                         "{1:2}", "[\"\\x\"]", "nul"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(json_valid(good[i], strlen(good[i]), NULL));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(json_valid(bad[i], strlen(bad[i]), NULL));
}

/* ---- fixtures ------------------------------------------------------------ */

static uint32_t site(cp_model *m, const char *name, const char *file, uint32_t line,
                     codeprof_site_kind k) {
    return fx_site(m, name, file, line, k);
}

/* A small pipeline: train_epoch -> {decode (heavy), augment}; two threads. */
static cp_model *pipeline_model(void) {
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->cfg.flags = CODEPROF_CFG_SCOPE_CPU; /* percentiles off */
    m->events_total = 200;
    uint32_t train = site(m, "train_epoch", "train.py", 10, CODEPROF_SITE_PYTHON);
    uint32_t decode = site(m, "decode", "dec.c", 20, CODEPROF_SITE_NATIVE);
    uint32_t aug = site(m, "augment_frames", "aug.py", 30, CODEPROF_SITE_AUGMENT);
    uint32_t worker = site(m, "prefetch", "", 0, CODEPROF_SITE_SCOPE);
    uint32_t root = fx_thread(m, 111);
    uint32_t t = fx_node(m, root, train, 2, FX_S(5), FX_S(0.5));
    fx_node(m, t, aug, 20, FX_S(1), FX_S(1));    /* first child, lighter */
    fx_node(m, t, decode, 20, FX_S(3.5), FX_S(3.5));
    m->nodes[t].cpu_ns = FX_S(4);
    m->nodes[t].cpu_count = 2;
    m->nodes[t].max_ns = FX_S(3);
    uint32_t root2 = fx_thread(m, 222);
    fx_node(m, root2, worker, 1, FX_S(0.25), FX_S(0.25));
    m->nodes[root].incl_ns = FX_S(5);
    m->nodes[root2].incl_ns = FX_S(0.25);

    cp_mfunc *f = fx_func(m, train, 2, FX_S(5), FX_S(0.5), FX_S(3));
    f->cpu_ns = FX_S(4);
    f->cpu_count = 2;
    f->rss_count = 2;
    f->rss_delta_max = 300ll * 1024 * 1024;
    f->rss_delta_sum = 400ll * 1024 * 1024;
    fx_func(m, decode, 20, FX_S(3.5), FX_S(3.5), FX_S(0.5));
    fx_func(m, aug, 20, FX_S(1), FX_S(1), FX_S(0.1));
    fx_func(m, worker, 1, FX_S(0.25), FX_S(0.25), FX_S(0.25));
    assert_int_equal(cp_rules_run(m), 0);
    return m;
}

static char *render_json(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    size_t n = 0;
    char *s = cp_strbuf_detach(&sb, &n);
    assert_non_null(s);
    assert_true(json_valid(s, n, NULL));
    return s;
}

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing in report: %s", needle);
}

static const char *after(const char *doc, const char *needle) {
    const char *p = strstr(doc, needle);
    if (!p)
        fail_msg("missing in report: %s", needle);
    return p;
}

/* ---- JSON ------------------------------------------------------------------ */

static void test_json_top_level_and_meta(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    char *j = render_json(m);
    char head[128];
    snprintf(head, sizeof head,
             "{\"schema\":\"codeprof-report\",\"schema_version\":%d,\"generator\":\"libcodeprof %s\"",
             CODEPROF_REPORT_SCHEMA_VERSION, CODEPROF_VERSION_STRING);
    assert_memory_equal(j, head, strlen(head));
    has(j, "\"meta\":{\"pid\":4242,\"role\":\"main\",\"clock\":\"fake\","
           "\"start_unix_s\":1700000000.123456789,\"duration_s\":10,\"threads\":2,"
           "\"events\":200,\"dropped_events\":0,\"dropped_nodes\":0,\"unmatched_exits\":0,"
           "\"truncated_scopes\":0,\"allocation_failures\":0,\"merged_models\":0,"
           "\"approximate_percentiles\":false,\"dropped_buffer_full\":0,\"dropped_reentrant\":0,"
           "\"dropped_no_thread_buffer\":0,\"dropped_samples\":0,\"dropped_sites\":0,"
           "\"exited_threads\":0,\"event_buffers\":0,"
           "\"timeline_events\":0,\"timeline_dropped\":0,\"timeline_traced_events\":0,"
           "\"timeline_traced_dropped\":0,\"warnings\":[],"
           "\"warnings_dropped\":0,\"python_traced\":false,\"hidden_calls\":0,"
           "\"tree_nodes\":4,\"tree_nodes_written\":4}");
    has(j, "\"report_policy\":{\"top_functions\":50,\"tree_min_share\":0.001,"
           "\"tree_max_nodes\":2000,\"tree_max_depth\":256}");
    has(j, "\"config\":{\"struct_size\":");
    has(j, "\"slow_function_s\":1,");
    has(j, "\"memory_intensive_bytes\":104857600,");
    has(j, "\"data_stall_fraction\":0.2,");
    has(j, "\"scope_cpu\":true,\"percentiles\":false,\"timeline_traced\":false,");
    has(j, "\"timeline_traced_events\":262144,\"memory_mode\":0,\"memory_stack_depth\":8,"
           "\"memory_sample_bytes\":262144,\"memory_max_blocks\":4194304,"
           "\"memory_max_stacks\":65536,\"memory_max_snapshots\":64,"
           "\"memory_timeline_samples\":10000,\"memory_sample_interval_s\":0,"
           "\"memory_snapshots\":false,\"gc\":false}");
    free(j);
    cp_model_free(m);
}

static void test_json_functions(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    char *j = render_json(m);
    has(j, "\"total_functions_profiled\":4,\"total_calls\":43,");
    has(j, "{\"function\":\"train_epoch\",\"file\":\"train.py\",\"line\":10,\"kind\":\"python\","
           "\"calls\":2,\"inclusive_s\":5,\"self_s\":0.5,\"cpu_s\":4,\"min_s\":2.5,\"max_s\":3,"
           "\"mean_s\":2.5,\"p50_s\":null,\"p95_s\":null,\"p99_s\":null,"
           "\"memory_delta\":314572800,\"memory_delta_total\":419430400,\"samples\":0,"
           "\"estimated\":false}");
    /* not measured -> null */
    has(j, "\"function\":\"decode\",\"file\":\"dec.c\",\"line\":20,\"kind\":\"native\","
           "\"calls\":20,\"inclusive_s\":3.5,\"self_s\":3.5,\"cpu_s\":null,");
    has(j, "\"kind\":\"augment\"");
    /* model order (inclusive, descending) is kept */
    assert_true(after(j, "{\"function\":\"train_epoch\",\"file\"") <
                after(j, "{\"function\":\"decode\",\"file\""));
    free(j);
    cp_model_free(m);
}

static void test_json_percentiles_when_enabled(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    m->cfg.flags |= CODEPROF_CFG_PERCENTILES;
    m->funcs[0].p50_ns = FX_S(2);
    m->funcs[0].p95_ns = FX_S(2.9);
    m->funcs[0].p99_ns = FX_S(3);
    char *j = render_json(m);
    has(j, "\"p50_s\":2,\"p95_s\":2.9,\"p99_s\":3,");
    has(j, "\"percentiles\":true,");
    free(j);
    cp_model_free(m);
}

static void test_json_call_tree(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    char *j = render_json(m);
    /* strings once, in tables; nodes refer to sites by index */
    has(j, "\"files\":[\"train.py\",\"dec.c\",\"aug.py\"],"
           "\"sites\":[{\"function\":\"train_epoch\",\"file\":0,\"line\":10,\"kind\":\"python\"},"
           "{\"function\":\"decode\",\"file\":1,\"line\":20,\"kind\":\"native\"},"
           "{\"function\":\"augment_frames\",\"file\":2,\"line\":30,\"kind\":\"augment\"},"
           "{\"function\":\"prefetch\",\"file\":null,\"line\":0,\"kind\":\"scope\"}],");
    has(j, "\"call_tree\":[{\"thread\":0,\"os_tid\":111,\"events\":100,\"dropped\":0,"
           "\"pid\":4242,\"worker\":-1,\"inclusive_s\":5,"
           "\"children\":[{\"site\":0,\"calls\":2,\"inclusive_s\":5,\"self_s\":0.5,\"cpu_s\":4,"
           "\"samples\":0,\"estimated\":false,"
           "\"children\":[{\"site\":1,\"calls\":20,\"inclusive_s\":3.5,\"self_s\":3.5,"
           "\"cpu_s\":null,\"samples\":0,\"estimated\":false},{\"site\":2,");
    /* children sorted by inclusive time: decode (3.5 s) before augment (1 s)
     * although augment was added first (checked above); a leaf has no
     * "children" key */
    const char *tree = after(j, "\"call_tree\"");
    has(tree, "{\"thread\":1,\"os_tid\":222,");
    has(tree, "\"inclusive_s\":0.25,\"children\":[{\"site\":3,\"calls\":1,\"inclusive_s\":0.25,"
              "\"self_s\":0.25,\"cpu_s\":null,\"samples\":0,\"estimated\":false}]}");
    assert_null(strstr(j, "\"other\""));
    assert_null(strstr(j, "\"children\":[]"));
    assert_null(strstr(j, "elided_nodes"));
    free(j);
    cp_model_free(m);
}

static void test_json_findings_and_bottlenecks(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    m->cfg.memory_intensive_bytes = 100.0 * 1024 * 1024;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 2); /* train_epoch slow (3 s) and memory (300 MB) */
    char *j = render_json(m);
    has(j, "\"findings\":[{\"rule\":\"CP-PERF-001\",\"category\":\"slow_functions\","
           "\"subject\":\"train_epoch\",\"value\":3,\"threshold\":1,\"unit\":\"s\","
           "\"severity\":3,\"recommendation\":\"train_epoch took up to 3.00 s per call");
    has(j, "\"saving_s\":");
    has(j, "{\"rule\":\"CP-MEM-001\",\"category\":\"memory_intensive_functions\","
           "\"subject\":\"train_epoch\",\"value\":314572800,\"threshold\":104857600,"
           "\"unit\":\"bytes\",\"severity\":3,");
    const char *b = after(j, "\"bottlenecks\":{");
    has(b, "\"slow_functions\":[{\"subject\":\"train_epoch\",\"function\":\"train_epoch\","
           "\"value\":3,\"threshold\":1,\"unit\":\"s\",\"rule\":\"CP-PERF-001\",\"severity\":3,");
    has(b, "\"execution_time\":3,\"saving_s\":");
    has(b, "\"memory_intensive_functions\":[{\"subject\":\"train_epoch\","
           "\"function\":\"train_epoch\",\"value\":314572800,");
    has(b, "\"memory_delta\":314572800,\"saving_s\":");
    /* every category key is present, empty or not */
    has(b, "\"slow_data_loading\":[]");
    has(b, "\"slow_preprocessing\":[]");
    has(b, "\"slow_gpu_operations\":[]");
    has(b, "\"recommendations\":[\"train_epoch took up to 3.00 s");
    free(j);
    cp_model_free(m);
}

static void test_json_recommendations_unique(void **state) {
    (void)state;
    cp_model *m = fx_model();
    cp_finding f;
    memset(&f, 0, sizeof f);
    strcpy(f.rule, "CP-TEST");
    strcpy(f.category, "slow_data_loading");
    strcpy(f.subject, "index 7");
    strcpy(f.unit, "s");
    f.value = 2;
    f.threshold = 1;
    f.severity = 2;
    strcpy(f.recommendation, "use more workers");
    assert_int_equal(cp_model_add_finding(m, &f), 0);
    strcpy(f.subject, "index 9");
    assert_int_equal(cp_model_add_finding(m, &f), 0);
    strcpy(f.recommendation, "pin memory");
    assert_int_equal(cp_model_add_finding(m, &f), 0);
    char *j = render_json(m);
    has(j, "\"recommendations\":[\"use more workers\",\"pin memory\"]");
    /* non-function categories name the subject "context" */
    has(j, "\"slow_data_loading\":[{\"subject\":\"index 7\",\"context\":\"index 7\",");
    assert_null(strstr(after(j, "\"slow_data_loading\""), "\"function\":\"index"));
    free(j);
    cp_model_free(m);
}

static void test_json_empty_model(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->clock_source = NULL;
    m->duration_ns = 0;
    char *j = render_json(m);
    has(j, "\"clock\":null");
    has(j, "\"total_functions_profiled\":0,\"total_calls\":0,\"functions\":[],"
           "\"functions_omitted\":0,\"files\":[],\"sites\":[],\"call_tree\":[]");
    has(j, "\"findings\":[]");
    has(j, "\"recommendations\":[]");
    free(j);
    cp_model_free(m);
}

static void test_json_hostile_names(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t s = site(m, "we\"ird\\name\n\x01\xff", "C:\\path\\x.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    fx_node(m, root, s, 1, 10, 10);
    fx_func(m, s, 1, 10, 10, 10);
    char *j = render_json(m);
    has(j, "\"function\":\"we\\\"ird\\\\name\\n\\u0001\xef\xbf\xbd\"");
    has(j, "\"file\":\"C:\\\\path\\\\x.py\"");
    has(j, "\"inclusive_s\":0.00000001,");
    free(j);
    cp_model_free(m);
}

static void test_json_deep_tree_capped(void **state) {
    (void)state;
    enum { DEPTH = 5000 };
    cp_model *m = fx_model();
    uint32_t s = site(m, "recurse", "deep.py", 5, CODEPROF_SITE_PYTHON);
    uint32_t n = fx_thread(m, 1);
    for (int i = 0; i < DEPTH; i++)
        n = fx_node(m, n, s, 1, (uint64_t)(DEPTH - i) * 1000, 1000);
    fx_func(m, s, DEPTH, (uint64_t)DEPTH * 1000, (uint64_t)DEPTH * 1000, (uint64_t)DEPTH * 1000);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    size_t depth = 0;
    assert_true(json_valid(sb.data, sb.len, &depth));
    /* two nesting levels per tree level, plus the envelope */
    assert_true(depth < 2 * CP_REPORT_MAX_TREE_DEPTH + 10);
    assert_true(depth > 2 * CP_REPORT_MAX_TREE_DEPTH);
    char want[64];
    snprintf(want, sizeof want, "\"elided_nodes\":%d}",
             DEPTH - CP_REPORT_MAX_TREE_DEPTH);
    has(sb.data, want);
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_json_wide_tree(void **state) {
    (void)state;
    enum { N = 20000 };
    cp_model *m = fx_model();
    uint32_t root = fx_thread(m, 1);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "f%d", i);
        uint32_t s = site(m, name, "wide.py", (uint32_t)i, CODEPROF_SITE_PYTHON);
        uint32_t a = fx_node(m, root, s, 50, (uint64_t)(i % 97) * 1000 + 1, 1);
        fx_node(m, a, s, 50, 1, 1);
    }
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_true(json_valid(sb.data, sb.len, NULL));
    /* the heaviest child (96 us + 1 ns) comes first */
    /* default policy: every child is below 0.1% of the total, all folded
     * into one "other" child whose counts are exact: 20000 children and
     * their 20000 leaves, 50 calls each */
    has(sb.data, "\"children\":[{\"other\":40000,\"calls\":1000000,");
    cp_strbuf_free(&sb);
    m->cfg.report_tree_min_share = 0;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_true(json_valid(sb.data, sb.len, NULL));
    has(sb.data, "\"sites\":[{\"function\":\"f96\",");
    has(sb.data, "\"children\":[{\"site\":0,\"calls\":50,\"inclusive_s\":0.000096001,");
    /* no share threshold: 2000 nodes fit (largest first), each with an
     * "other" for its leaf, plus one "other" where the other 18000
     * top-level nodes (with their leaves) fold into "other" */
    has(sb.data, "\"tree_nodes\":40000,\"tree_nodes_written\":4001}");
    has(sb.data, "{\"other\":36000,\"calls\":900000,");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_json_oom(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    sb.limit = 700;
    assert_int_equal(cp_report_json(m, &sb), -1);
    assert_true(sb.oom);
    assert_null(cp_strbuf_detach(&sb, NULL));
    cp_model_free(m);
}

/* ---- text ------------------------------------------------------------------ */

static char *render_text(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_text(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

static int count_lines_between(const char *from, const char *to) {
    int n = 0;
    for (const char *p = from; p < to; p++)
        n += *p == '\n';
    return n;
}

static void test_text_report(void **state) {
    (void)state;
    cp_model *m = pipeline_model();
    char *t = render_text(m);
    has(t, "codeprof report (pid 4242, role main)");
    has(t, "duration 10.000 s | threads 2 | events 200 | dropped events 0");
    const char *inc = after(t, "Top functions by inclusive time");
    const char *self = after(t, "Top functions by self time");
    const char *fin = after(t, "Findings (2)");
    assert_true(inc < self && self < fin);
    /* inclusive table: train_epoch first, with its share of the 10 s run */
    has(inc, "           2     5.000000     0.500000    50.0  train_epoch  train.py:10\n");
    assert_true(strstr(inc, "train_epoch") < strstr(inc, "decode"));
    /* self table: decode (3.5 s self) first */
    assert_true(strstr(self, "decode") < strstr(self, "train_epoch"));
    has(self, "          20     3.500000     3.500000    35.0  decode  dec.c:20\n");
    has(t, "prefetch\n"); /* no file: no location */
    has(fin, "  [slow_functions] train_epoch: train_epoch took up to 3.00 s per call");
    free(t);
    cp_model_free(m);
}

static void test_text_no_findings_and_top15(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->duration_ns = 0;
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "g%02d", i);
        uint32_t s = site(m, name, "t.py", 1, CODEPROF_SITE_PYTHON);
        fx_func(m, s, 1, (uint64_t)(20 - i) * 1000, (uint64_t)(i + 1) * 10, 1000);
    }
    char *t = render_text(m);
    has(t, "No findings above thresholds.");
    const char *inc = after(t, "Top functions by inclusive time");
    const char *self = after(t, "Top functions by self time");
    const char *nof = after(t, "No findings");
    /* title + column header + 15 rows + blank line before the next title */
    assert_int_equal(count_lines_between(inc, self), 1 + 1 + 15 + 1);
    assert_int_equal(count_lines_between(self, nof), 1 + 1 + 15 + 1);
    assert_true(strstr(inc, "g00") < self);
    const char *g14 = strstr(inc, "g14"), *g15 = strstr(inc, "g15");
    assert_true(g14 != NULL && g14 < self);  /* 15th by inclusive time: shown */
    assert_true(g15 == NULL || g15 > self);  /* 16th: only in the self table */
    /* the self table's first row is g19 (largest self time) */
    const char *row = after(self, "file:line\n") + strlen("file:line\n");
    const char *eol = strchr(row, '\n');
    const char *g19 = strstr(row, "g19  t.py:1");
    assert_true(g19 != NULL && g19 < eol);
    has(t, "      -  g00"); /* no duration: no percentage */
    free(t);
    cp_model_free(m);
}

static void test_text_control_chars_neutralised(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t s = site(m, "evil\x1b[31mred", "x.py", 1, CODEPROF_SITE_PYTHON);
    fx_func(m, s, 1, 10, 10, 10);
    char *t = render_text(m);
    assert_null(strchr(t, '\x1b'));
    has(t, "evil?[31mred");
    free(t);
    cp_model_free(m);
}

static void test_kind_names(void **state) {
    (void)state;
    assert_string_equal(cp_report_kind_name(CODEPROF_SITE_SCOPE), "scope");
    assert_string_equal(cp_report_kind_name(CODEPROF_SITE_PREPROCESS), "preprocess");
    assert_string_equal(cp_report_kind_name(CODEPROF_SITE_GPU), "gpu");
    assert_string_equal(cp_report_kind_name(CODEPROF_SITE_KIND_COUNT_), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects_bad_json),
        cmocka_unit_test(test_json_top_level_and_meta),
        cmocka_unit_test(test_json_functions),
        cmocka_unit_test(test_json_percentiles_when_enabled),
        cmocka_unit_test(test_json_call_tree),
        cmocka_unit_test(test_json_findings_and_bottlenecks),
        cmocka_unit_test(test_json_recommendations_unique),
        cmocka_unit_test(test_json_empty_model),
        cmocka_unit_test(test_json_hostile_names),
        cmocka_unit_test(test_json_deep_tree_capped),
        cmocka_unit_test(test_json_wide_tree),
        cmocka_unit_test(test_json_oom),
        cmocka_unit_test(test_text_report),
        cmocka_unit_test(test_text_no_findings_and_top15),
        cmocka_unit_test(test_text_control_chars_neutralised),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
