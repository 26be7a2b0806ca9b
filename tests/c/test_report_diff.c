/* test_report_diff.c -- two models compared: functions matched by name,
 * file and line with both values and B/A, largest change first and
 * bounded; stages, loaders, datasets; findings that appeared, disappeared
 * or persisted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_json.h"
#include "model_fixture.h"
#include "mem_fixture.h"
#include "report/jsonr.h"
#include "report/report_diff.h"
#include "report/strbuf.h"

/* A v2 report with `nf` functions f0..f{nf-1} (f_i: inclusive i*scale s,
 * calls i+1), one stage, one loader, one dataset and the given findings. */
static cp_model *make(unsigned nf, double scale, double wait_s, double stall,
                      const char *findings) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_strbuf_puts(&sb, "{\"schema\":\"codeprof-report\",\"schema_version\":2,"
                        "\"meta\":{\"duration_s\":10},\"performance\":{\"functions\":[");
    for (unsigned i = 0; i < nf; i++)
        cp_strbuf_printf(
            &sb,
            "%s{\"function\":\"f%u\",\"file\":\"m.py\",\"line\":%u,\"kind\":\"python\","
            "\"calls\":%u,\"inclusive_s\":%.3f,\"self_s\":%.3f}",
            i ? "," : "", i, i + 1, i + 1, i * scale, i * scale / 2);
    cp_strbuf_printf(&sb,
                     "]},\"data_loading\":{\"datasets\":[{\"name\":\"Clips\",\"count\":100,"
                     "\"total_time\":%.3f,\"p95\":0.02}],\"loaders\":[{\"name\":\"DL\","
                     "\"batches\":10,\"total_wait_time\":%.3f,\"data_stall_fraction\":%.3f,"
                     "\"samples_per_s\":50}],\"stages\":[{\"function\":\"decode\","
                     "\"kind\":\"preprocess\",\"file\":\"d.py\",\"line\":3,\"calls\":100,"
                     "\"total_time\":%.3f}]},\"findings\":[%s]}",
                     10 * wait_s, 10 * wait_s, stall, 5 * wait_s, findings);
    assert_true(cp_strbuf_ok(&sb));
    cp_model *m = NULL;
    codeprof_error err;
    if (cp_model_from_json(sb.data, sb.len, "t.json", &m, &err) != CODEPROF_OK)
        fail_msg("%s", err.message);
    cp_strbuf_free(&sb);
    return m;
}

#define FIND(rule, subj, val)                                                                      \
    "{\"rule\":\"" rule "\",\"category\":\"c\",\"subject\":\"" subj "\",\"value\":" val            \
    ",\"unit\":\"s\",\"recommendation\":\"fix " subj "\",\"saving_s\":1}"

static void test_text(void **state) {
    (void)state;
    cp_model *a =
        make(5, 1.0, 0.1, 0.5, FIND("CP-DATA-001", "DL", "0.5") "," FIND("CP-PERF-001", "f4", "4"));
    cp_model *b =
        make(5, 0.5, 0.02, 0.1, FIND("CP-PERF-001", "f4", "2") "," FIND("CP-MEM-001", "f3", "3"));
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_text(a, b, "a.json", "b.json", &sb), 0);
    const char *t = sb.data;
    assert_non_null(strstr(t, "A: a.json"));
    assert_non_null(strstr(t, "B: b.json"));
    /* f4 changed most (4 s -> 2 s): listed first, with both values and the ratio */
    const char *f4 = strstr(t, "f4  m.py:5");
    const char *f3 = strstr(t, "f3  m.py:4");
    assert_non_null(f4);
    assert_non_null(f3);
    assert_true(f4 < f3);
    assert_non_null(strstr(t, "    4.0000     2.0000    0.50x"));
    /* data loading figures */
    assert_non_null(strstr(t, "Loader DL"));
    assert_non_null(strstr(t, "data stall fraction"));
    assert_non_null(strstr(t, "Dataset Clips"));
    assert_non_null(strstr(t, "decode (preprocess)"));
    /* findings */
    const char *app = strstr(t, "Findings that appeared in B");
    const char *gone = strstr(t, "Findings that disappeared in B");
    const char *both = strstr(t, "Findings in both");
    assert_non_null(app);
    assert_non_null(gone);
    assert_non_null(both);
    assert_non_null(strstr(app, "CP-MEM-001  f3"));
    assert_true(strstr(app, "CP-MEM-001") < gone);
    assert_non_null(strstr(gone, "CP-DATA-001  DL"));
    assert_non_null(strstr(both, "CP-PERF-001  f4: value 4 -> 2 s (0.50x)"));
    cp_strbuf_free(&sb);
    cp_model_free(a);
    cp_model_free(b);
}

static void test_json_pairs_and_bound(void **state) {
    (void)state;
    /* 40 functions in A, 45 in B: 45 rows, 30 listed, f40..f44 new in B */
    cp_model *a = make(40, 1.0, 0.1, 0.5, "");
    cp_model *b = make(45, 1.0, 0.1, 0.5, "");
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_json(a, b, "a", "b", &sb), 0);
    cp_jsonr_doc *doc = NULL;
    assert_int_equal(cp_jsonr_parse(sb.data, sb.len, NULL, &doc, NULL), 0);
    const cp_jval *root = cp_jsonr_root(doc);
    assert_string_equal(cp_jsonr_get(root, "schema")->u.str, "codeprof-diff");
    const cp_jval *fns = cp_jsonr_get(root, "functions");
    assert_int_equal(fns->len, CP_DIFF_MAX_FUNCTIONS);
    uint64_t omitted = 0;
    assert_int_equal(cp_jsonr_u64(cp_jsonr_get(root, "functions_omitted"), &omitted), 0);
    assert_int_equal(omitted, 45 - CP_DIFF_MAX_FUNCTIONS);
    /* the new functions changed most (from nothing to 40..44 s): first, A null, no ratio */
    const cp_jval *first = &fns->u.kids[0];
    assert_string_equal(cp_jsonr_get(first, "function")->u.str, "f44");
    const cp_jval *incl = cp_jsonr_get(first, "inclusive_s");
    assert_int_equal(cp_jsonr_get(incl, "a")->type, CP_JNULL);
    assert_int_equal(cp_jsonr_get(incl, "ratio")->type, CP_JNULL);
    double bv = 0;
    assert_int_equal(cp_jsonr_double(cp_jsonr_get(incl, "b"), &bv), 0);
    assert_true(bv == 44.0);
    /* an unchanged function has ratio 1 */
    const cp_jval *last = &fns->u.kids[fns->len - 1];
    double r = 0;
    assert_int_equal(cp_jsonr_double(cp_jsonr_get(cp_jsonr_get(last, "calls"), "ratio"), &r), 0);
    assert_true(r == 1.0);
    assert_int_equal(cp_jsonr_get(root, "loaders")->len, 1);
    assert_int_equal(cp_jsonr_get(root, "datasets")->len, 1);
    assert_int_equal(cp_jsonr_get(root, "stages")->len, 1);
    const cp_jval *fd = cp_jsonr_get(root, "findings");
    assert_int_equal(cp_jsonr_get(fd, "appeared")->len, 0);
    cp_jsonr_free(doc);
    cp_strbuf_free(&sb);
    cp_model_free(a);
    cp_model_free(b);
}

static void test_empty_models(void **state) {
    (void)state;
    cp_model *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_text(a, b, NULL, NULL, &sb), 0);
    assert_non_null(strstr(sb.data, "(0 of 0)"));
    cp_strbuf_free(&sb);
    assert_int_equal(cp_report_diff_json(a, b, NULL, NULL, &sb), 0);
    /* duration 0 in A: no ratio */
    assert_non_null(strstr(sb.data, "\"duration_s\":{\"a\":0,\"b\":0,\"ratio\":null}"));
    cp_strbuf_free(&sb);
    cp_model_free(a);
    cp_model_free(b);
}

/* Memory: contexts matched by name (delta, peak, calls; largest change of
 * peak first), domains' peaks, GC, worker USS growth, and the last
 * snapshot of each context by allocation stack (stacks matched by their
 * frames across the two models), in text and JSON. */
static void test_memory(void **state) {
    (void)state;
    cp_model *a = fx_model(), *b = fx_model();
    fx_mem_fill(a);
    /* B: an extra site first, so B's site and stack indices differ from A's */
    fx_site(b, "shift", "s.py", 1, CODEPROF_SITE_PYTHON);
    fx_mem_fill(b);
    b->mem.ctxs[1].peak_max = FX_MIB(100); /* transient: 800 -> 100 MiB */
    b->mem.ctxs[2].delta_sum = (int64_t)FX_MIB(3);
    b->mem.gc.collections[0] = 10;
    b->mem.procs[1].uss_last = FX_MIB(110); /* worker 0 grows 10 MiB, not 60 */
    b->mem.procs[1].pid = 6001;             /* matched by worker id, not pid */
    b->mem.snap_groups[1].live_bytes = FX_MIB(3);
    b->mem.domains[3].peak_bytes = FX_MIB(505);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_text(a, b, "a.json", "b.json", &sb), 0);
    const char *t = sb.data;
    if (!strstr(t, "\nMemory\n") ||
        !strstr(t, "GC collections                      111         21    0.19x") ||
        !strstr(t, "Memory contexts, largest change of peak first (3 of 3)\n") ||
        !strstr(t, "      +2.0       +2.0    1.00x      800.0      100.0    0.12x          2"
                   "          2    1.00x  transient\n") ||
        !strstr(t, "    1010.0      505.0    0.50x      224.0      224.0    1.00x  numpy\n") ||
        !strstr(t, "     +60.0      +10.0    0.17x      170.0      170.0    1.00x  worker 0\n") ||
        !strstr(t, "     12.00       3.00    0.25x  epoch  train.py:55 train_step via list.append\n"))
        fail_msg("%s", t);
    /* the largest change of peak (transient) comes first */
    assert_true(strstr(t, "  transient\n") < strstr(t, "  data_processing\n"));
    cp_strbuf_free(&sb);

    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_json(a, b, "a.json", "b.json", &sb), 0);
    cp_jsonr_doc *doc = NULL;
    cp_jsonr_error e;
    assert_int_equal(cp_jsonr_parse(sb.data, sb.len, NULL, &doc, &e), 0);
    const cp_jval *mem = cp_jsonr_get(cp_jsonr_root(doc), "memory");
    assert_non_null(mem);
    assert_true(cp_jsonr_get(mem, "enabled")->boolean);
    const cp_jval *c0 = &cp_jsonr_get(mem, "contexts")->u.kids[0];
    assert_string_equal(cp_jsonr_get(c0, "context")->u.str, "transient");
    double v;
    assert_int_equal(cp_jsonr_double(cp_jsonr_get(cp_jsonr_get(c0, "peak"), "ratio"), &v), 0);
    assert_true(v == 0.125);
    const cp_jval *s0 = &cp_jsonr_get(mem, "snapshots")->u.kids[0];
    assert_string_equal(cp_jsonr_get(s0, "context")->u.str, "epoch");
    const cp_jval *fr = cp_jsonr_get(s0, "frames");
    assert_int_equal(fr->len, 2);
    assert_string_equal(cp_jsonr_get(&fr->u.kids[1], "file")->u.str, "train.py");
    assert_int_equal(cp_jsonr_get(cp_jsonr_get(mem, "processes"), "x") == NULL, 1);
    assert_int_equal(cp_jsonr_get(mem, "processes")->len, 2);
    cp_jsonr_free(doc);
    cp_strbuf_free(&sb);

    /* neither side profiled memory: no Memory block, "enabled": false */
    cp_model *x = fx_model(), *y = fx_model();
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_text(x, y, NULL, NULL, &sb), 0);
    assert_null(strstr(sb.data, "\nMemory\n"));
    cp_strbuf_free(&sb);
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_diff_json(x, y, NULL, NULL, &sb), 0);
    assert_non_null(strstr(sb.data, "\"memory\":{\"enabled\":false,"));
    cp_strbuf_free(&sb);
    cp_model_free(x);
    cp_model_free(y);
    cp_model_free(a);
    cp_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json_pairs_and_bound),
        cmocka_unit_test(test_empty_models),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
