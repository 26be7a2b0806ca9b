/* test_model_json.c -- a saved v2 or v3 JSON report read back into a model:
 * every section lands in the model's fields, "other" nodes become the
 * "(other)" site, and bad input fails with the file, the JSON path and
 * what was expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_json.h"
#include "model_fixture.h"
#include "mem_fixture.h"
#include "report/jsonr.h"
#include "report/report.h"
#include "report/strbuf.h"

/* A small v2 report as the schema describes it (docs/report-schema.md). */
static const char *const report_v2 =
    "{\"schema\":\"codeprof-report\",\"schema_version\":2,\"generator\":\"libcodeprof 0.0.0\","
    "\"report_policy\":{\"top_functions\":50,\"tree_min_share\":0.001,\"tree_max_nodes\":2000,"
    "\"tree_max_depth\":256},"
    "\"meta\":{\"pid\":77,\"role\":\"main\",\"clock\":\"tsc\",\"start_unix_s\":1700000000.5,"
    "\"duration_s\":12.000000001,\"threads\":1,\"events\":1000,\"dropped_events\":2,"
    "\"dropped_nodes\":3,\"unmatched_exits\":0,\"truncated_scopes\":1,\"allocation_failures\":0,"
    "\"merged_models\":2,\"approximate_percentiles\":true,\"dropped_buffer_full\":4,"
    "\"dropped_reentrant\":0,\"dropped_no_thread_buffer\":0,\"dropped_samples\":0,"
    "\"dropped_sites\":0,\"exited_threads\":0,\"event_buffers\":3,\"timeline_events\":9,"
    "\"timeline_dropped\":0,\"timeline_traced_events\":6,\"timeline_traced_dropped\":11,"
    "\"warnings\":[{\"code\":\"tracer_thread_lost\",\"message\":\"m\","
    "\"unix_s\":1700000001}],\"warnings_dropped\":0,\"python_traced\":true,\"hidden_calls\":17,"
    "\"tree_nodes\":40,\"tree_nodes_written\":4,\"future_key\":{\"x\":[1,2]}},"
    "\"config\":{\"flags\":3,\"slow_function_s\":0.5,\"data_stall_fraction\":0.25,"
    "\"percentiles\":false,\"max_data_records\":1000,\"timeline_traced_events\":4096},"
    "\"performance\":{\"total_functions_profiled\":3,\"total_calls\":31,"
    "\"functions\":[{\"function\":\"main\",\"file\":\"app.py\",\"line\":1,\"kind\":\"python\","
    "\"calls\":1,\"inclusive_s\":10,\"self_s\":1,\"cpu_s\":null,\"min_s\":10,\"max_s\":10,"
    "\"mean_s\":10,\"p50_s\":null,\"p95_s\":null,\"p99_s\":null,\"memory_delta\":null,"
    "\"memory_delta_total\":null},"
    "{\"function\":\"work\",\"file\":\"app.py\",\"line\":5,\"kind\":\"python\",\"calls\":10,"
    "\"inclusive_s\":8.5,\"self_s\":8.5,\"cpu_s\":0.25,\"min_s\":0.5,\"max_s\":1.5,"
    "\"mean_s\":0.85,\"p50_s\":0.8,\"p95_s\":1.4,\"p99_s\":1.5,\"memory_delta\":-4096,"
    "\"memory_delta_total\":8192}],\"functions_omitted\":1,"
    "\"files\":[\"app.py\"],"
    "\"sites\":[{\"function\":\"main\",\"file\":0,\"line\":1,\"kind\":\"python\"},"
    "{\"function\":\"work\",\"file\":0,\"line\":5,\"kind\":\"python\"},"
    "{\"function\":\"len\",\"file\":null,\"line\":0,\"kind\":\"native\"}],"
    "\"call_tree\":[{\"thread\":0,\"os_tid\":1234,\"events\":1000,\"dropped\":2,\"pid\":77,"
    "\"worker\":-1,\"inclusive_s\":10,\"children\":[{\"site\":0,\"calls\":1,\"inclusive_s\":10,"
    "\"self_s\":1,\"cpu_s\":null,\"children\":[{\"site\":1,\"calls\":10,\"inclusive_s\":8.5,"
    "\"self_s\":8.5,\"cpu_s\":0.25},{\"other\":5,\"calls\":20,\"inclusive_s\":0.5,"
    "\"self_s\":0.5}]}]}]},"
    "\"data_loading\":{\"data_loading\":{\"avg_load_time\":0.01},\"datasets\":[{\"name\":\"Clips\","
    "\"count\":100,\"avg_load_time\":0.01,\"min\":0.001,\"p50\":0.009,\"p95\":0.02,\"p99\":0.3,"
    "\"max\":0.31,\"total_time\":1,\"slow_loads\":0,\"failures\":1,\"distinct_indices\":50,"
    "\"bottleneck_indices\":[7,9],\"bottlenecks\":[{\"index\":7,\"load_time\":0.31,"
    "\"epochs_slow\":2},{\"index\":9,\"load_time\":0.3,\"epochs_slow\":1}],"
    "\"repeat_slow_indices\":1}],"
    "\"loaders\":[{\"name\":\"DataLoader\",\"batches\":10,\"items\":100,\"epochs\":2,"
    "\"avg_wait_time\":0.1,\"total_wait_time\":1,\"total_step_time\":3,"
    "\"first_batch_latency\":0.25,\"wait_p50\":0.05,\"wait_p95\":0.2,\"wait_max\":0.3,"
    "\"data_stall_fraction\":0.142857,\"samples_per_s\":25,\"batches_per_s\":2.5,"
    "\"num_workers\":2,\"batch_size\":10,\"prefetch_factor\":2,\"pin_memory\":false,"
    "\"persistent_workers\":false,\"uses_gpu\":false,\"iterable\":false}],"
    "\"workers\":[{\"worker\":0,\"pid\":78,\"items\":50,\"failures\":0,\"busy_time\":0.5,"
    "\"span\":1,\"idle_time\":0.5,\"utilization\":0.5,\"incomplete\":true,"
    "\"incomplete_reason\":\"killed\",\"spool_errno\":0,\"spool_dropped_records\":0,"
    "\"spool_invalid_records\":0}],"
    "\"stages\":[{\"function\":\"decode\",\"kind\":\"preprocess\",\"file\":\"d.py\",\"line\":3,"
    "\"calls\":100,\"total_time\":0.6,\"avg_time\":0.006,\"max_time\":0.02,"
    "\"share_of_item_time\":0.6}],\"cpu_count\":8,\"spool_errors\":0,\"aggregated_records\":0,"
    "\"records_lost_oom\":0,\"stall\":{\"loader\":\"DataLoader\"}},"
    "\"findings\":[{\"rule\":\"CP-DATA-002\",\"category\":\"slow_data_loading\","
    "\"subject\":\"Clips\",\"value\":0.31,\"threshold\":0.05,\"unit\":\"s\",\"severity\":6.2,"
    "\"recommendation\":\"Index 7 loads 30x slower.\",\"saving_s\":0.3}],"
    "\"bottlenecks\":{}}";

static cp_model *read_ok(const char *text) {
    cp_model *m = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = cp_model_from_json(text, strlen(text), "report.json", &m, &err);
    if (st != CODEPROF_OK)
        fail_msg("read failed: %s", err.message);
    assert_non_null(m);
    assert_null(m->builder);
    return m;
}

static const cp_msite *site(const cp_model *m, uint32_t id) {
    const cp_msite *s = cp_model_site(m, id);
    assert_non_null(s);
    return s;
}

static void test_reads_every_section(void **state) {
    (void)state;
    cp_model *m = read_ok(report_v2);
    /* meta */
    assert_int_equal(m->pid, 77);
    assert_string_equal(m->role, "main");
    assert_string_equal(m->clock_source, "tsc");
    assert_true(m->start_unix_ns == 1700000000500000000ull);
    assert_true(m->duration_ns == 12000000001ull);
    assert_int_equal(m->events_total, 1000);
    assert_int_equal(m->dropped_events, 2);
    assert_int_equal(m->dropped_nodes, 3);
    assert_int_equal(m->truncated, 1);
    assert_int_equal(m->merged, 2);
    assert_int_equal(m->approx_percentiles, 1);
    assert_int_equal(m->dropped_full, 4);
    assert_int_equal(m->pool_buffers, 3);
    assert_int_equal(m->python_traced, 1);
    assert_int_equal(m->hidden_calls, 17);
    assert_int_equal(m->timeline_traced_dropped, 11); /* optional keys of v2 */
    assert_int_equal(m->nwarnings, 1);
    assert_string_equal(m->warnings[0].code, "tracer_thread_lost");
    assert_int_equal(m->ntimeline, 0); /* not in the report */
    /* config: "percentiles": false wins over flags bit 1 */
    assert_true(m->cfg.slow_function_s == 0.5);
    assert_true(m->cfg.data_stall_fraction == 0.25);
    assert_int_equal(m->cfg.flags, CODEPROF_CFG_SCOPE_CPU);
    assert_int_equal(m->cfg.max_data_records, 1000);
    assert_int_equal(m->cfg.timeline_traced_events, 4096);
    /* functions, sorted by inclusive time */
    assert_int_equal(m->nfuncs, 2);
    assert_string_equal(site(m, m->funcs[0].site)->name, "main");
    const cp_mfunc *w = &m->funcs[1];
    const cp_msite *ws = site(m, w->site);
    assert_string_equal(ws->name, "work");
    assert_string_equal(ws->file, "app.py");
    assert_int_equal(ws->line, 5);
    assert_int_equal(ws->kind, CODEPROF_SITE_PYTHON);
    assert_int_equal(w->calls, 10);
    assert_true(w->incl_ns == 8500000000ull);
    assert_true(w->cpu_ns == 250000000ull);
    assert_int_equal(w->cpu_count, 10);
    assert_int_equal(m->funcs[0].cpu_count, 0); /* cpu_s null: not measured */
    assert_true(w->p95_ns == 1400000000ull);
    assert_true(w->rss_delta_max == -4096);
    assert_true(w->rss_delta_sum == 8192);
    assert_true(w->rss_count > 0);
    assert_int_equal(m->funcs[0].rss_count, 0);
    /* the tree: root + main + work + (other) */
    assert_int_equal(m->nthreads, 1);
    assert_int_equal(m->threads[0].os_tid, 1234);
    assert_int_equal(m->threads[0].pid, 77);
    assert_int_equal(m->threads[0].worker, -1);
    assert_int_equal(m->nnodes, 4);
    const cp_mnode *root = &m->nodes[m->threads[0].root];
    assert_int_equal(root->site, 0);
    assert_true(root->incl_ns == 10000000000ull);
    const cp_mnode *mainn = &m->nodes[root->first_child];
    assert_string_equal(site(m, mainn->site)->name, "main");
    assert_int_equal(mainn->depth, 1);
    assert_int_equal(mainn->next_sibling, CP_NONE);
    const cp_mnode *work = &m->nodes[mainn->first_child];
    assert_int_equal(work->site, m->funcs[1].site); /* one site for the table and the tree */
    assert_int_equal(work->count, 10);
    assert_int_equal(work->cpu_count, 10);
    const cp_mnode *other = &m->nodes[work->next_sibling];
    assert_string_equal(site(m, other->site)->name, CP_MODEL_JSON_OTHER_NAME);
    assert_int_equal(other->count, 20);
    assert_true(other->incl_ns == 500000000ull && other->self_ns == other->incl_ns);
    assert_int_equal(other->parent, root->first_child);
    /* self + children == inclusive at main, as the writer keeps it */
    assert_true(mainn->self_ns + work->incl_ns + other->incl_ns == mainn->incl_ns);
    /* data loading */
    const cp_mdata *d = &m->data;
    assert_int_equal(d->ndatasets, 1);
    assert_string_equal(site(m, d->datasets[0].site)->name, "Clips");
    assert_int_equal(site(m, d->datasets[0].site)->kind, CODEPROF_SITE_DATASET);
    assert_int_equal(d->datasets[0].items, 100);
    assert_int_equal(d->datasets[0].failures, 1);
    assert_int_equal(d->datasets[0].nbottlenecks, 2);
    assert_int_equal(d->datasets[0].bottleneck_indices[1], 9);
    assert_int_equal(d->datasets[0].bottleneck_epochs[0], 2);
    assert_int_equal(d->datasets[0].repeat_slow, 1);
    assert_true(d->item_ns_total == 1000000000ull);
    assert_int_equal(d->nloaders, 1);
    const cp_mloader *L = &d->loaders[0];
    assert_int_equal(L->batches, 10);
    assert_int_equal(L->steps, 8);
    assert_true(L->first_wait_ns == 500000000ull);
    assert_true(L->stall_fraction == 0.142857);
    assert_int_equal(L->desc.described, 1);
    assert_int_equal(L->desc.num_workers, 2);
    assert_int_equal(d->nworkers, 1);
    assert_int_equal(d->workers[0].incomplete, 1);
    assert_string_equal(d->workers[0].reason, "killed");
    assert_int_equal(d->nstages, 1);
    assert_int_equal(site(m, d->stages[0].site)->kind, CODEPROF_SITE_PREPROCESS);
    assert_int_equal(d->cpu_count, 8);
    /* findings */
    assert_int_equal(m->nfindings, 1);
    assert_string_equal(m->findings[0].rule, "CP-DATA-002");
    assert_true(m->findings[0].saving_s == 0.3);
    cp_model_free(m);
}

static void test_writers_render_a_read_model(void **state) {
    (void)state;
    cp_model *m = read_ok(report_v2);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_text(m, &sb), 0);
    assert_non_null(strstr(sb.data, "work"));
    assert_non_null(strstr(sb.data, "Index 7 loads 30x slower."));
    cp_strbuf_free(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_non_null(strstr(sb.data, "\"schema\":\"codeprof-report\""));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

/* Replaces the first `from` in the report by `to` and expects a failure
 * whose message holds every needle. */
static void expect_error(const char *from, const char *to, codeprof_status want, const char *n1,
                         const char *n2) {
    const char *at = strstr(report_v2, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - report_v2);
    size_t len = strlen(report_v2) - strlen(from) + strlen(to);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, report_v2, pre);
    strcpy(text + pre, to);
    strcat(text, at + strlen(from));
    cp_model *m = (cp_model *)0x1;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = cp_model_from_json(text, len, "report.json", &m, &err);
    assert_null(m);
    if (st != want || !strstr(err.message, n1) || (n2 && !strstr(err.message, n2)))
        fail_msg("replacing %s by %s: status %d \"%s\"", from, to, st, err.message);
    assert_int_equal(err.code, want);
    free(text);
}

static void test_errors_name_file_path_and_expectation(void **state) {
    (void)state;
    expect_error("\"schema_version\":2", "\"schema_version\":1", CODEPROF_EFORMAT,
                 "report.json: schema_version", "older than the 2..4");
    expect_error("\"schema_version\":2", "\"schema_version\":5", CODEPROF_EFORMAT,
                 "newer than the 4", NULL);
    expect_error("\"schema_version\":2", "\"schema_version\":\"2\"", CODEPROF_EFORMAT,
                 "schema_version: expected the integer 4", NULL);
    expect_error("\"schema\":\"codeprof-report\"", "\"schema\":\"other\"", CODEPROF_EFORMAT,
                 "not a codeprof JSON report", NULL);
    expect_error("{\"other\":5", "{\"site\":40", CODEPROF_EFORMAT,
                 "report.json: performance.call_tree[0].children[0].children[1].site: "
                 "expected an index into performance.sites (0..2), got 40",
                 NULL);
    expect_error("\"site\":1,", "\"site\":-1,", CODEPROF_EFORMAT,
                 "performance.call_tree[0].children[0].children[0].site", "got -1");
    expect_error("\"file\":null", "\"file\":3", CODEPROF_EFORMAT, "performance.sites[2].file",
                 "expected an index into performance.files (0..0)");
    expect_error("\"calls\":10,", "\"calls\":\"ten\",", CODEPROF_EFORMAT,
                 "performance.functions[1].calls: expected a non-negative integer, got string",
                 NULL);
    expect_error("\"kind\":\"native\"", "\"kind\":\"martian\"", CODEPROF_EFORMAT,
                 "performance.sites[2].kind: expected one of scope", NULL);
    expect_error("\"inclusive_s\":8.5,\"self_s\":8.5,\"cpu_s\":0.25}",
                 "\"inclusive_s\":-8.5,\"self_s\":8.5,\"cpu_s\":0.25}", CODEPROF_EFORMAT,
                 "children[0].inclusive_s: expected a non-negative number of seconds", NULL);
    expect_error("\"epochs_slow\":2", "\"epochs_slow\":true", CODEPROF_EFORMAT,
                 "data_loading.datasets[0].bottlenecks[0].epochs_slow", NULL);
    expect_error("\"saving_s\":0.3", "\"saving_s\":[]", CODEPROF_EFORMAT,
                 "findings[0].saving_s: expected a number, got array", NULL);
    expect_error("\"meta\":{", "\"meta\":[{", CODEPROF_EFORMAT, "byte ", "expected");
    expect_error("\"functions\":[{\"function\":\"main\",\"file\":\"app.py\",\"line\":1,"
                 "\"kind\":\"python\"",
                 "\"functions\":[{\"function\":\"work\",\"file\":\"app.py\",\"line\":5,"
                 "\"kind\":\"python\"",
                 CODEPROF_EFORMAT, "performance.functions[1]", "one entry per site");
    expect_error("\"children\":[{\"site\":1", "\"children\":{\"site\":1", CODEPROF_EFORMAT, "byte",
                 NULL); /* then braces no longer balance */
    /* Regression (fuzz_report_reader, CI of 96411d3): two functions whose
     * files differ only in bytes that are not UTF-8 were read as two
     * sites, written with U+FFFD as the same one, and the written report
     * no longer read back.  Such bytes are refused; so are NULs, which a
     * C string would cut ("a\u0000b" read as "a"). */
    expect_error("\"function\":\"main\",\"file\":\"app.py\"",
                 "\"function\":\"main\",\"file\":\"app\xff.py\"", CODEPROF_EFORMAT, "byte",
                 "invalid UTF-8 byte 0xff in a string");
    expect_error("\"function\":\"main\",\"file\":\"app.py\"",
                 "\"function\":\"main\\u0000x\",\"file\":\"app.py\"", CODEPROF_EFORMAT,
                 "performance.functions[0].function", "without NUL characters");
    /* not an object at all */
    cp_model *m = NULL;
    codeprof_error err;
    assert_int_equal(cp_model_from_json("[1]", 3, NULL, &m, &err), CODEPROF_EFORMAT);
    assert_non_null(strstr(err.message, "report: (top level): expected a JSON object"));
    assert_int_equal(cp_model_from_json(NULL, 1, NULL, &m, &err), CODEPROF_EINVAL);
}

static void test_every_truncation_fails_cleanly(void **state) {
    (void)state;
    /* each proper prefix of a valid report is malformed JSON: an error with a
     * byte offset, never a model, never a read past the prefix (ASan) */
    size_t n = strlen(report_v2);
    for (size_t len = 0; len < n; len++) {
        char *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
        assert_non_null(copy);
        memcpy(copy, report_v2, len);
        cp_model *m = NULL;
        codeprof_error err;
        memset(&err, 0, sizeof err);
        assert_int_equal(cp_model_from_json(copy, len, "cut.json", &m, &err), CODEPROF_EFORMAT);
        assert_null(m);
        assert_non_null(strstr(err.message, "cut.json: byte "));
        free(copy);
    }
}

static void test_minimal_report(void **state) {
    (void)state;
    /* only the schema keys: an empty but valid model */
    cp_model *m = read_ok("{\"schema\":\"codeprof-report\",\"schema_version\":2}");
    assert_int_equal(m->nnodes, 0);
    assert_int_equal(m->nfuncs, 0);
    assert_int_equal(m->nfindings, 0);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_text(m, &sb), 0);
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_file_reader(void **state) {
    (void)state;
    char dir[] = "/tmp/cp_model_json_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/r.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(report_v2, f);
    fclose(f);
    cp_model *m = NULL;
    codeprof_error err;
    int e = -1;
    assert_int_equal(cp_model_read_json_file(path, &m, &err, &e), CODEPROF_OK);
    assert_int_equal(e, 0);
    assert_int_equal(m->nfuncs, 2);
    cp_model_free(m);
    /* a missing file: EIO naming it */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.json", dir);
    assert_int_equal(cp_model_read_json_file(missing, &m, &err, &e), CODEPROF_EIO);
    assert_null(m);
    assert_int_equal(e, ENOENT);
    assert_non_null(strstr(err.message, missing));
    /* a directory */
    assert_int_equal(cp_model_read_json_file(dir, &m, &err, &e), CODEPROF_EIO);
    assert_non_null(strstr(err.message, "expected a regular file"));
    /* a malformed file names itself and the byte */
    f = fopen(path, "w");
    fputs("{\"schema\":", f);
    fclose(f);
    assert_int_equal(cp_model_read_json_file(path, &m, &err, &e), CODEPROF_EFORMAT);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "byte 10"));
    unlink(path);
    rmdir(dir);
}

/* ---- round trip: the v2 writer's JSON read back ---------------------------- */

static const cp_mfunc *func_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (strcmp(cp_model_site(m, m->funcs[i].site)->name, name) == 0)
            return &m->funcs[i];
    return NULL;
}

/* A model whose tree is pruned by the default policy (60 leaves of 1 ms
 * under a 10 s run fold into "other") and whose function table is cut (62
 * functions, 50 listed by inclusive time plus the top by self time). */
static cp_model *pruned_model(void) {
    cp_model *m = fx_model();
    m->python_traced = 1;
    m->hidden_calls = 5;
    m->timeline_traced_dropped = 12;
    m->cfg.timeline_traced_events = 2048;
    uint32_t s_main = fx_site(m, "main", "app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t s_big = fx_site(m, "big", "app.py", 2, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 99);
    uint32_t n_main = fx_node(m, root, s_main, 1, FX_S(10), FX_S(4.94));
    fx_node(m, n_main, s_big, 2, FX_S(5), FX_S(5));
    fx_func(m, s_main, 1, FX_S(10), FX_S(4.94), FX_S(10));
    fx_func(m, s_big, 2, FX_S(5), FX_S(5), FX_S(3));
    for (int i = 0; i < 60; i++) {
        char name[32];
        snprintf(name, sizeof name, "tiny%02d", i);
        uint32_t s = fx_site(m, name, "lib.py", (uint32_t)(10 + i), CODEPROF_SITE_PYTHON);
        fx_node(m, n_main, s, 3, FX_S(0.001), FX_S(0.001));
        fx_func(m, s, 3, FX_S(0.001), FX_S(0.001), FX_S(0.0005));
    }
    m->nodes[root].incl_ns = FX_S(10);
    /* data: one dataset with outliers, one loader */
    uint32_t s_ds = fx_site(m, "Clips", "", 0, CODEPROF_SITE_DATASET);
    uint32_t s_ld = fx_site(m, "DL", "", 0, CODEPROF_SITE_LOADER);
    m->data.datasets = calloc(1, sizeof *m->data.datasets);
    m->data.loaders = calloc(1, sizeof *m->data.loaders);
    assert_non_null(m->data.datasets);
    assert_non_null(m->data.loaders);
    cp_mdataset *ds = &m->data.datasets[0];
    ds->site = s_ds;
    ds->items = 20;
    ds->sum_ns = FX_S(0.4);
    ds->max_ns = FX_S(0.3);
    ds->p95_ns = FX_S(0.3);
    ds->bottleneck_indices = calloc(2, sizeof *ds->bottleneck_indices);
    ds->bottleneck_ns = calloc(2, sizeof *ds->bottleneck_ns);
    ds->bottleneck_epochs = calloc(2, sizeof *ds->bottleneck_epochs);
    ds->bottleneck_indices[0] = 7;
    ds->bottleneck_indices[1] = 13;
    ds->bottleneck_ns[0] = FX_S(0.3);
    ds->bottleneck_ns[1] = FX_S(0.29);
    ds->bottleneck_epochs[0] = ds->bottleneck_epochs[1] = 1;
    ds->nbottlenecks = 2;
    m->data.ndatasets = 1;
    cp_mloader *L = &m->data.loaders[0];
    L->site = s_ld;
    L->batches = 5;
    L->items = 20;
    L->epochs = 1;
    L->wait_ns = FX_S(0.5);
    L->first_wait_ns = FX_S(0.1);
    L->step_ns = FX_S(2);
    L->steps = 4;
    cp_mloader_derive(L);
    m->data.nloaders = 1;
    m->data.item_ns_total = ds->sum_ns;
    cp_finding f;
    memset(&f, 0, sizeof f);
    strcpy(f.rule, "CP-DATA-002");
    strcpy(f.category, "slow_data_loading");
    strcpy(f.subject, "Clips");
    f.value = 0.3;
    f.saving_s = 0.25;
    strcpy(f.unit, "s");
    strcpy(f.recommendation, "two slow indices");
    assert_int_equal(cp_model_add_finding(m, &f), 0);
    return m;
}

static cp_model *round_trip(const cp_model *m, cp_strbuf *json) {
    cp_strbuf_init(json);
    assert_int_equal(cp_report_json(m, json), 0);
    cp_model *r = NULL;
    codeprof_error err;
    if (cp_model_from_json(json->data, json->len, "rt.json", &r, &err) != CODEPROF_OK)
        fail_msg("round trip: %s", err.message);
    return r;
}

/* self + children == inclusive at every node that has children; returns nodes below. */
static uint32_t check_sums(const cp_model *m, uint32_t n) {
    uint32_t count = 0;
    uint64_t kids = 0;
    for (uint32_t c = m->nodes[n].first_child; c != CP_NONE; c = m->nodes[c].next_sibling) {
        kids += m->nodes[c].incl_ns;
        count += 1 + check_sums(m, c);
    }
    if (m->nodes[n].first_child != CP_NONE && m->nodes[n].site != 0)
        assert_true(m->nodes[n].self_ns + kids == m->nodes[n].incl_ns);
    return count;
}

static void test_round_trip_through_the_writer(void **state) {
    (void)state;
    cp_model *m = pruned_model();
    cp_strbuf json;
    cp_model *r = round_trip(m, &json);
    /* the document says what it wrote */
    cp_jsonr_doc *doc = NULL;
    assert_int_equal(cp_jsonr_parse(json.data, json.len, NULL, &doc, NULL), 0);
    const cp_jval *meta = cp_jsonr_get(cp_jsonr_root(doc), "meta");
    uint64_t written = 0, omitted = 0;
    assert_int_equal(cp_jsonr_u64(cp_jsonr_get(meta, "tree_nodes_written"), &written), 0);
    assert_int_equal(cp_jsonr_u64(cp_jsonr_get(cp_jsonr_get(cp_jsonr_root(doc), "performance"),
                                               "functions_omitted"),
                                  &omitted),
                     0);
    cp_jsonr_free(doc);
    /* tree: what was written, "other" included, with exact sums */
    assert_int_equal(r->nthreads, 1);
    assert_int_equal(r->threads[0].os_tid, 99);
    uint32_t below = check_sums(r, r->threads[0].root);
    assert_int_equal(below, written);
    assert_true(below < m->nnodes - 1); /* pruned: the tiny leaves were folded */
    assert_true(r->nodes[r->threads[0].root].incl_ns == FX_S(10));
    uint64_t other_calls = 0, other_ns = 0;
    for (uint32_t i = 0; i < r->nnodes; i++)
        if (r->nodes[i].site &&
            strcmp(cp_model_site(r, r->nodes[i].site)->name, CP_MODEL_JSON_OTHER_NAME) == 0) {
            other_calls += r->nodes[i].count;
            other_ns += r->nodes[i].incl_ns;
        }
    assert_int_equal(other_calls, 180);
    assert_true(other_ns == FX_S(0.06));
    /* functions: the listed ones carry the model's figures, exactly */
    assert_int_equal(r->nfuncs + omitted, m->nfuncs);
    for (uint32_t i = 0; i < r->nfuncs; i++) {
        const char *name = cp_model_site(r, r->funcs[i].site)->name;
        const cp_mfunc *o = func_named(m, name);
        assert_non_null(o);
        assert_int_equal(r->funcs[i].calls, o->calls);
        assert_true(r->funcs[i].incl_ns == o->incl_ns && r->funcs[i].self_ns == o->self_ns);
        assert_true(r->funcs[i].max_ns == o->max_ns);
    }
    assert_non_null(func_named(r, "main"));
    assert_non_null(func_named(r, "big"));
    /* meta, data, findings */
    assert_int_equal(r->python_traced, 1);
    assert_int_equal(r->hidden_calls, 5);
    assert_int_equal(r->timeline_traced_dropped, 12);
    assert_int_equal(r->cfg.timeline_traced_events, 2048);
    assert_int_equal(r->pid, m->pid);
    assert_true(r->duration_ns == m->duration_ns);
    assert_true(r->start_unix_ns == m->start_unix_ns);
    assert_int_equal(r->data.ndatasets, 1);
    assert_int_equal(r->data.datasets[0].items, 20);
    assert_true(r->data.datasets[0].sum_ns == FX_S(0.4));
    assert_int_equal(r->data.datasets[0].nbottlenecks, 2);
    assert_int_equal(r->data.datasets[0].bottleneck_indices[1], 13);
    const cp_mloader *L = &r->data.loaders[0], *M = &m->data.loaders[0];
    assert_true(L->wait_ns == M->wait_ns && L->step_ns == M->step_ns);
    assert_true(L->first_wait_ns == M->first_wait_ns && L->steps == M->steps);
    assert_true(L->stall_fraction == M->stall_fraction);
    assert_true(L->samples_per_s == M->samples_per_s);
    assert_int_equal(r->nfindings, 1);
    assert_true(r->findings[0].saving_s == 0.25);
    assert_string_equal(r->findings[0].recommendation, "two slow indices");
    assert_true(r->cfg.report_top_functions == m->cfg.report_top_functions);
    assert_true(r->cfg.report_tree_min_share == m->cfg.report_tree_min_share);

    /* written again and read again: the same model (a fixed point after one trip) */
    cp_strbuf json2;
    cp_model *r2 = round_trip(r, &json2);
    assert_int_equal(r2->nnodes, r->nnodes);
    assert_int_equal(r2->nfuncs, r->nfuncs);
    for (uint32_t i = 0; i < r->nnodes; i++) {
        assert_int_equal(r2->nodes[i].count, r->nodes[i].count);
        assert_true(r2->nodes[i].incl_ns == r->nodes[i].incl_ns);
        assert_true(r2->nodes[i].self_ns == r->nodes[i].self_ns);
        assert_string_equal(
            cp_model_site(r2, r2->nodes[i].site) ? cp_model_site(r2, r2->nodes[i].site)->name : "",
            cp_model_site(r, r->nodes[i].site) ? cp_model_site(r, r->nodes[i].site)->name : "");
    }
    cp_strbuf text;
    cp_strbuf_init(&text);
    assert_int_equal(cp_report_text(r, &text), 0);
    assert_non_null(strstr(text.data, "big"));
    cp_strbuf_free(&text);
    cp_strbuf_free(&json);
    cp_strbuf_free(&json2);
    cp_model_free(r2);
    cp_model_free(r);
    cp_model_free(m);
}

/* The "memory" value of a JSON report (from its key to the end of the
 * object), as a new string. */
static char *memory_section(const char *json) {
    const char *at = strstr(json, "\"memory\":{\"enabled\"");
    assert_non_null(at);
    const char *end = strstr(at, ",\"findings\":[");
    assert_non_null(end);
    size_t n = (size_t)(end - at);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, at, n);
    s[n] = '\0';
    return s;
}

static char *write_json(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

/* Schema 3: the memory section reads back into the model's fields and is
 * written again the same; a v2 report reads with an empty one ("off"). */
static void test_memory_round_trip(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    char *j = write_json(m);
    cp_model *r = NULL;
    codeprof_error err;
    if (cp_model_from_json(j, strlen(j), "mem.json", &r, &err) != CODEPROF_OK)
        fail_msg("%s", err.message);
    const cp_mmem *mm = &r->mem;
    assert_int_equal(mm->mode, 2);
    assert_int_equal(mm->sample_bytes, 262144);
    assert_int_equal(mm->stack_depth, 8);
    assert_int_equal(mm->live_bytes, (int64_t)FX_MIB(224) + 640);
    assert_int_equal(mm->rss_peak, FX_MIB(1536));
    assert_int_equal(mm->machine_bytes, FX_MIB(16384));
    assert_int_equal(mm->nctxs, 3);
    const cp_mmem_ctx *c = &mm->ctxs[0]; /* written largest peak first */
    assert_string_equal(cp_model_site(r, c->site)->name, "transient");
    assert_string_equal(cp_model_site(r, c->site)->file, "pipe.py");
    assert_int_equal(cp_model_site(r, c->site)->kind, CODEPROF_SITE_FUNCTION);
    assert_int_equal(c->count, 2);
    assert_int_equal(c->peak_max, FX_MIB(800));
    assert_int_equal(c->delta_sum, (int64_t)FX_MIB(2));
    assert_int_equal(c->rss_peak_max, FX_MIB(790));
    c = &mm->ctxs[2];
    assert_true(c->floor_slope == 6.0 * 1024 * 1024);
    assert_int_equal(c->leaked_bytes, FX_MIB(24));
    assert_int_equal(mm->gc.enabled, 1);
    assert_int_equal(mm->gc.collections[0], 100);
    assert_int_equal(mm->gc.time_ns[2], FX_S(0.3));
    assert_int_equal(mm->gc.max_pause_ns, FX_S(0.25));
    assert_int_equal(mm->domains[3].peak_bytes, FX_MIB(1010));
    assert_int_equal(mm->nstacks, 2); /* the unreferenced stack was not written */
    assert_int_equal(mm->stacks[1].nframes, 2);
    assert_int_equal(mm->stacks[1].line[1], 55);
    assert_string_equal(cp_model_site(r, mm->stacks[1].site[1])->file, "train.py");
    assert_int_equal(mm->nleaks, 1);
    assert_int_equal(mm->leaks[0].ctx, 2);
    assert_int_equal(mm->leaks[0].stack, 1);
    assert_int_equal(mm->nprocs, 2);
    assert_int_equal(mm->procs[1].worker, 0);
    assert_string_equal(cp_model_site(r, mm->procs[1].loader)->name, "train_loader");
    assert_int_equal(mm->procs[1].t_last_ns - mm->procs[1].t_first_ns, FX_S(5));
    assert_int_equal(mm->nsnaps, 2);
    assert_int_equal(mm->snaps[1].t_ns, FX_S(3)); /* relative to the run's start */
    assert_int_equal(mm->snaps[1].n, 1);
    assert_int_equal(mm->snap_groups[mm->snaps[1].first].live_bytes, FX_MIB(12));
    assert_int_equal(mm->dropped_blocks, 7);
    assert_int_equal(mm->own_bytes, 12345);
    assert_int_equal(r->cfg.memory_mode, 0); /* the config is the session's, not the model's */
    /* written again: the same section */
    char *k = write_json(r);
    char *a = memory_section(j), *b = memory_section(k);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(k);
    cp_model_free(r);
    free(j);
    cp_model_free(m);

    /* a version 2 report has no memory section: an empty one */
    r = NULL;
    if (cp_model_from_json(report_v2, strlen(report_v2), "v2.json", &r, &err) != CODEPROF_OK)
        fail_msg("%s", err.message);
    assert_int_equal(r->mem.nctxs, 0);
    assert_int_equal(r->mem.gc.enabled, 0);
    j = write_json(r);
    assert_non_null(strstr(j, "\"memory\":{\"enabled\":false,\"mode\":\"off\","));
    free(j);
    cp_model_free(r);
}

/* Config memory keys read back (flags spelled out win over "flags"). */
static void test_memory_config(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.memory_mode = 1;
    m->cfg.memory_sample_bytes = 4096;
    m->cfg.memory_stack_depth = 3;
    m->cfg.memory_sample_interval_s = 0.25;
    m->cfg.flags |= CODEPROF_CFG_GC | CODEPROF_CFG_MEM_SNAPSHOTS;
    char *j = write_json(m);
    cp_model *r = NULL;
    codeprof_error err;
    assert_int_equal(cp_model_from_json(j, strlen(j), "c.json", &r, &err), CODEPROF_OK);
    assert_int_equal(r->cfg.memory_mode, 1);
    assert_int_equal(r->cfg.memory_sample_bytes, 4096);
    assert_int_equal(r->cfg.memory_stack_depth, 3);
    assert_true(r->cfg.memory_sample_interval_s == 0.25);
    assert_true(r->cfg.flags & CODEPROF_CFG_GC);
    assert_true(r->cfg.flags & CODEPROF_CFG_MEM_SNAPSHOTS);
    cp_model_free(r);
    free(j);
    cp_model_free(m);
}

/* Replaces the first `from` in `doc` by `to` and expects a failure whose
 * message holds `needle`. */
static void expect_mem_error(const char *doc, const char *from, const char *to,
                             const char *needle) {
    const char *at = strstr(doc, from);
    if (!at)
        fail_msg("not in the report: %s", from);
    size_t pre = (size_t)(at - doc), len = strlen(doc) - strlen(from) + strlen(to);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memcpy(text, doc, pre);
    strcpy(text + pre, to);
    strcat(text, at + strlen(from));
    cp_model *m = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = cp_model_from_json(text, len, "mem.json", &m, &err);
    assert_null(m);
    if (st != CODEPROF_EFORMAT || !strstr(err.message, needle))
        fail_msg("replacing %s by %s: status %d \"%s\"", from, to, st, err.message);
    free(text);
}

static void test_memory_errors(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    char *j = write_json(m);
    expect_mem_error(j, "\"mode\":\"all\"", "\"mode\":\"sometimes\"",
                     "mem.json: memory.mode: expected one of off, rss, sampled, all; got "
                     "\"sometimes\"");
    expect_mem_error(j, "\"memory\":{\"enabled\"", "\"memory\":[{\"enabled\"", "byte");
    expect_mem_error(j, "\"top_allocations\":[{\"stack\":0", "\"top_allocations\":[{\"stack\":7",
                     "mem.json: memory.top_allocations[0].stack: expected an index into "
                     "memory.stacks (2 stacks) or null");
    expect_mem_error(j, "\"collections\":[100,10,1]", "\"collections\":[100,10]",
                     "memory.gc_statistics.collections: expected 3 values (generations 0, 1, "
                     "2), got 2");
    expect_mem_error(j, "\"time_s_by_generation\":[0.2,", "\"time_s_by_generation\":[-0.2,",
                     "memory.gc_statistics.time_s_by_generation[0]: expected a non-negative "
                     "number of seconds, got -0.2");
    expect_mem_error(j, "\"calls\":2,\"memory_delta\"", "\"calls\":\"two\",\"memory_delta\"",
                     "memory.memory_intensive_contexts[0].calls: expected a non-negative "
                     "integer, got string");
    expect_mem_error(j, "\"kind\":\"function\"", "\"kind\":\"heap\"",
                     "memory.memory_intensive_contexts[0].kind: expected one of scope");
    expect_mem_error(j, "\"worker\":0,", "\"worker\":true,",
                     "memory.processes[1].worker: expected an integer");
    expect_mem_error(j, "\"line\":55}", "\"line\":-55}",
                     "memory.stacks[1].frames[1].line: expected a non-negative integer");
    expect_mem_error(j, "\"groups\":[{\"stack\":1,\"live_bytes\":6291456",
                     "\"groups\":[{\"stack\":1,\"live_bytes\":\"6291456\"",
                     "memory.snapshots[0].groups[0].live_bytes");
    expect_mem_error(j, "\"leaks\":[{\"context\":\"epoch\"", "\"leaks\":[{\"context\":5",
                     "memory.leaks[0].context: expected a string, got number");
    free(j);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_every_section),
        cmocka_unit_test(test_writers_render_a_read_model),
        cmocka_unit_test(test_errors_name_file_path_and_expectation),
        cmocka_unit_test(test_every_truncation_fails_cleanly),
        cmocka_unit_test(test_minimal_report),
        cmocka_unit_test(test_file_reader),
        cmocka_unit_test(test_round_trip_through_the_writer),
        cmocka_unit_test(test_memory_round_trip),
        cmocka_unit_test(test_memory_config),
        cmocka_unit_test(test_memory_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
