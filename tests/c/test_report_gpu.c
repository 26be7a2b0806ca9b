/* test_report_gpu.c -- the report's gpu section (src/report/report_gpu.c)
 * and its reader (read_gpu in src/model/model_json.c): the guide's keys
 * and values from a hand-filled model, host-only timing, a disabled
 * profiler writing every key, the text block, a round trip report ->
 * model -> report, and reader errors naming the JSON path. */
/* docw.h before cmocka.h, whose fail() macro would rewrite cp_docw_fail */
#include "report/docw.h"
#include "report/jsonw.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "gpu_fixture.h"
#include "model/model_json.h"
#include "report/jsonr.h"
#include "report/report.h"
#include "report/report_gpu.h"
#include "report/strbuf.h"

static char *render_section(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw jw;
    cp_jsonw_init(&jw, &sb);
    cp_docw w;
    cp_docw_json(&w, &jw);
    assert_int_equal(cp_report_doc(m, &w, "gpu"), 0);
    assert_int_equal(cp_jsonw_finish(&jw), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

static char *render_text(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_report_gpu_text(m, &sb);
    assert_true(cp_strbuf_ok(&sb));
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing: %s\nin: %s", needle, doc);
}

static cp_jsonr_doc *parse(const char *s) {
    cp_jsonr_doc *doc = NULL;
    cp_jsonr_error e;
    if (cp_jsonr_parse(s, strlen(s), NULL, &doc, &e) != 0)
        fail_msg("invalid JSON at byte %zu: %s\n%s", e.offset, e.message, s);
    return doc;
}

/* The value at "a.b[2].c" (NULL when absent). */
static const cp_jval *at(const cp_jval *v, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, ".")) {
        char *br = strchr(tok, '[');
        int idx = -1;
        if (br) {
            idx = atoi(br + 1);
            *br = '\0';
        }
        v = cp_jsonr_get(v, tok);
        if (v && idx >= 0)
            v = v->type == CP_JARRAY && (uint32_t)idx < v->len ? &v->u.kids[idx] : NULL;
    }
    return v;
}

static double num(const cp_jval *root, const char *path) {
    const cp_jval *v = at(root, path);
    if (!v)
        fail_msg("no %s", path);
    double d = NAN;
    if (cp_jsonr_double(v, &d) != 0)
        fail_msg("%s is not a number", path);
    return d;
}

static const char *str(const cp_jval *root, const char *path) {
    const cp_jval *v = at(root, path);
    if (!v || v->type != CP_JSTRING)
        fail_msg("%s is not a string", path);
    return v->u.str;
}

static void test_section_figures(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    char *s = render_section(m);
    cp_jsonr_doc *doc = parse(s);
    const cp_jval *g = cp_jsonr_root(doc);
    assert_true(at(g, "enabled")->boolean);
    assert_true(at(g, "available")->boolean);
    assert_int_equal(at(g, "reason")->type, CP_JNULL);
    assert_string_equal(str(g, "libraries.driver.status"), "ok");
    assert_int_equal((int)num(g, "libraries.driver.version"), 12040);
    assert_string_equal(str(g, "libraries.cupti.status"), "not_found");
    has(str(g, "libraries.cupti.reason"), "cannot open shared object");
    /* the guide's keys: device time of timed ops */
    assert_true(fabs(num(g, "gpu_statistics.total_time_ms") - 2650.0) < 1e-9);
    assert_true(fabs(num(g, "gpu_statistics.avg_time_ms") - 2650.0 / 120.0) < 1e-9);
    assert_int_equal((int)num(g, "gpu_statistics.operations"), 120);
    assert_int_equal((int)num(g, "gpu_statistics.timed_operations"), 120);
    assert_true(fabs(num(g, "gpu_statistics.max_time_ms") - 400.0) < 1e-9);
    assert_string_equal(str(g, "gpu_statistics.timing"), "device");
    assert_string_equal(str(g, "slow_gpu_operations[0].context"), "model_forward");
    assert_true(fabs(num(g, "slow_gpu_operations[0].elapsed_time_ms") - 400.0) < 1e-9);
    assert_true(fabs(num(g, "slow_gpu_operations[1].elapsed_time_ms") - 350.0) < 1e-9);
    assert_int_equal((int)num(g, "slow_gpu_operations[1].stream"), 0x7f01);
    assert_int_equal((long long)num(g, "memory_statistics.total_memory_delta"),
                     38 * (long long)GX_MIB);
    assert_true(fabs(num(g, "memory_statistics.avg_memory_delta") - 38.0 * GX_MIB / 120.0) < 1e-6);
    assert_int_equal((long long)num(g, "memory_statistics.peak_memory"), 3000 * (long long)GX_MIB);
    assert_string_equal(str(g, "memory_statistics.source"), "torch");
    /* operations: largest time first */
    assert_string_equal(str(g, "operations[0].context"), "model_forward");
    assert_string_equal(str(g, "operations[0].file"), "train.py");
    assert_true(fabs(num(g, "operations[0].avg_time_ms") - 125.0) < 1e-9);
    assert_true(fabs(num(g, "operations[0].min_time_ms") - 50.0) < 1e-9);
    assert_int_equal((int)num(g, "operations[0].slow"), 5);
    assert_string_equal(str(g, "operations[1].context"), "preprocess_gpu");
    /* syncs: largest blocked time first, the line of the sync */
    assert_string_equal(str(g, "synchronization.source"), "fallback");
    assert_int_equal((int)num(g, "synchronization.count"), 520);
    assert_true(fabs(num(g, "synchronization.total_blocked_ms") - 940.0) < 1e-9);
    assert_string_equal(str(g, "synchronization.points[0].function"), "train_step");
    assert_int_equal((int)num(g, "synchronization.points[0].line"), 66);
    assert_string_equal(str(g, "synchronization.points[0].kind"), "memcpy");
    assert_string_equal(str(g, "synchronization.points[1].kind"), "device");
    assert_string_equal(str(g, "utilization.devices[0].name"), "Fake H100");
    assert_true(fabs(num(g, "utilization.devices[0].util_mean") - 35.5) < 1e-9);
    assert_true(fabs(num(g, "utilization.idle_gap_ms") - 120.0) < 1e-9);
    assert_int_equal((int)num(g, "dropped.operations"), 3);
    assert_int_equal((int)num(g, "dropped.unresolved"), 1);
    cp_jsonr_free(doc);
    free(s);
    cp_model_free(m);
}

/* No device timing: host times, said so; the host minimum is unknown. */
static void test_host_only_timing(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->gpu.enabled = 1;
    m->gpu.driver.status = CP_GPU_LIB_NOT_FOUND;
    strcpy(m->gpu.reason, "libcuda.so.1: cannot open shared object file: No such file");
    uint32_t s = fx_site(m, "step", "", 0, CODEPROF_SITE_GPU);
    gx_op(m, s, 4, 0, 0, 0, 0, GX_MS(20));
    char *j = render_section(m);
    cp_jsonr_doc *doc = parse(j);
    const cp_jval *g = cp_jsonr_root(doc);
    assert_false(at(g, "available")->boolean);
    has(str(g, "reason"), "libcuda.so.1");
    assert_string_equal(str(g, "gpu_statistics.timing"), "host");
    assert_true(fabs(num(g, "gpu_statistics.total_time_ms") - 20.0) < 1e-9);
    assert_true(fabs(num(g, "gpu_statistics.avg_time_ms") - 5.0) < 1e-9);
    assert_int_equal(at(g, "operations[0].min_time_ms")->type, CP_JNULL);
    assert_string_equal(str(g, "libraries.driver.status"), "not_found");
    char *t = render_text(m);
    has(t, "GPU not available: libcuda.so.1: cannot open shared object file");
    has(t, "[host time]");
    cp_jsonr_free(doc);
    free(j);
    free(t);
    cp_model_free(m);
}

static void key_paths(const cp_jval *v, const char *path, cp_strbuf *sb) {
    if (v->type != CP_JOBJECT)
        return;
    for (uint32_t i = 0; i < v->len; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, v->u.kids[i].key);
        cp_strbuf_printf(sb, "%s\n", sub);
        key_paths(&v->u.kids[i], sub, sb);
    }
}

static char *paths_of(const char *json) {
    cp_jsonr_doc *doc = parse(json);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    key_paths(cp_jsonr_root(doc), "gpu", &sb);
    cp_jsonr_free(doc);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

/* GPU profiling off: the same keys (objects) as a full section, zeros, and
 * no text block. */
static void test_disabled_has_every_key(void **state) {
    (void)state;
    cp_model *off = fx_model(), *on = fx_model();
    gx_fill(on);
    char *a = render_section(off), *b = render_section(on);
    char *pa = paths_of(a), *pb = paths_of(b);
    assert_string_equal(pa, pb);
    has(a, "\"enabled\":false");
    has(a, "\"total_time_ms\":0");
    has(a, "\"slow_gpu_operations\":[]");
    has(a, "\"total_memory_delta\":0");
    has(a, "\"avg_memory_delta\":0");
    char *t = render_text(off);
    assert_string_equal(t, "");
    free(t);
    free(a);
    free(b);
    free(pa);
    free(pb);
    cp_model_free(off);
    cp_model_free(on);
}

static void test_text_block(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    char *t = render_text(m);
    has(t, "\nGPU (timing on the device)");
    has(t, "120 operations (120 timed on the device): 2650.000 ms total");
    has(t, "model_forward (train.py:40)");
    has(t, "+40.0");                          /* memory delta MiB of model_forward */
    has(t, "train_step (train.py:66)");       /* sync point, file:line */
    has(t, "x memcpy");
    has(t, "device 0 Fake H100: utilization mean 36% (max 53%)");
    /* the largest sync first */
    assert_true(strstr(t, "train.py:66") < strstr(t, "train.py:70"));
    free(t);
    cp_model_free(m);
}

static cp_model *from_json(const char *json, codeprof_status want_st, const char *want_msg) {
    cp_model *r = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = cp_model_from_json(json, strlen(json), "t.json", &r, &err);
    if (st != want_st)
        fail_msg("status %d, want %d: %s", (int)st, (int)want_st, err.message);
    if (want_msg)
        has(err.message, want_msg);
    return r;
}

static char *whole(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

/* report -> model -> report: the gpu section reads back equal, twice. */
static void test_round_trip(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    /* an op timed on the host only and a sync at an unknown site */
    uint32_t h = fx_site(m, "host_only", "", 0, CODEPROF_SITE_GPU);
    gx_op(m, h, 3, 0, 0, 0, 0, GX_MS(7));
    gx_sync(m, 0, 0, CP_GPU_SYNC_OTHER, 2, 1000);
    char *j1 = whole(m);
    cp_model *r = from_json(j1, CODEPROF_OK, NULL);
    char *a = render_section(m), *b = render_section(r);
    assert_string_equal(a, b);
    char *j2 = whole(r);
    cp_model *r2 = from_json(j2, CODEPROF_OK, NULL);
    char *c = render_section(r2);
    assert_string_equal(a, c);
    /* the model figures, not only the text */
    assert_int_equal(r->gpu.nops, 3);
    assert_int_equal(r->gpu.nslow, 2);
    assert_int_equal(r->gpu.slow[0].device_ns, GX_MS(400));
    assert_int_equal(r->gpu.nsyncs, 3);
    assert_int_equal(r->gpu.ndevices, 1);
    assert_int_equal(r->gpu.device_mem_total, 16000 * GX_MIB);
    char *t1 = render_text(m), *t2 = render_text(r);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    free(a);
    free(b);
    free(c);
    free(j1);
    free(j2);
    cp_model_free(r);
    cp_model_free(r2);
    cp_model_free(m);
}

/* Replaces the first `from` in `s` by `to` (new string). */
static char *subst(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    if (!p)
        fail_msg("no %s in the report", from);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    assert_non_null(o);
    snprintf(o, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return o;
}

static void bad_case(const char *json, const char *from, const char *to, const char *msg) {
    char *x = subst(json, from, to);
    print_message("case %s -> %s\n", from, to);
    cp_model *r = from_json(x, CODEPROF_EFORMAT, msg);
    assert_null(r);
    free(x);
}

static void test_reader_errors_name_the_path(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    char *j = whole(m);
    bad_case(j, "\"kind\":\"memcpy\"", "\"kind\":\"bogus\"",
             "gpu.synchronization.points[0].kind: expected one of device, stream");
    bad_case(j, "\"status\":\"ok\"", "\"status\":7", "gpu.libraries.driver.status: expected a string");
    bad_case(j, "\"total_time_ms\":2500", "\"total_time_ms\":-1",
             "gpu.operations[0].total_time_ms: expected a non-negative number of milliseconds");
    bad_case(j, "\"name\":\"Fake H100\"", "\"name\":[]", "gpu.utilization.devices[0].name");
    bad_case(j, "\"operations\":[{", "\"operations\":[7,{", "gpu.operations[0]: expected an operation object");
    bad_case(j, "\"context\":\"preprocess_gpu\",\"file\":\"train.py\",\"line\":12",
             "\"context\":\"model_forward\",\"file\":\"train.py\",\"line\":40",
             "expected one entry per operation");
    bad_case(j, "\"timed\":100", "\"timed\":101", "expected timed <= calls");
    free(j);
    cp_model_free(m);
}

/* A v3-style report without the section reads as GPU profiling off. */
static void test_absent_section(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m);
    char *j = whole(m);
    char *x = subst(j, "\"gpu\":{", "\"gpu_ignored\":{");
    cp_model *r = from_json(x, CODEPROF_OK, NULL);
    assert_int_equal(r->gpu.enabled, 0);
    assert_int_equal(r->gpu.nops, 0);
    cp_model_free(r);
    free(x);
    free(j);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section_figures),
        cmocka_unit_test(test_host_only_timing),
        cmocka_unit_test(test_disabled_has_every_key),
        cmocka_unit_test(test_text_block),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_reader_errors_name_the_path),
        cmocka_unit_test(test_absent_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
