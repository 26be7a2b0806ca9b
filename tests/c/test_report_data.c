/* test_report_data.c -- the data-loading section of the JSON report and
 * the text summary's "Data loading" block (src/report/report_data.c):
 * the contract keys the Python facade reads, exact figures, nulls for
 * undescribed loaders and zero spans, valid JSON when empty, and a real
 * session (fake clock) end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules.h"
#include "core/clock.h"
#include "core/session.h"
#include "core/site.h"
#include "model_fixture.h"
#include "report/report.h"
#include "report/strbuf.h"

/* ---- a small strict JSON syntax checker -------------------------------- */

typedef struct jc {
    const char *p, *end;
} jc;

static int jvalue(jc *c, int depth);

static void jws(jc *c) {
    while (c->p < c->end && strchr(" \t\r\n", *c->p))
        c->p++;
}

static int jstring(jc *c) {
    if (c->p >= c->end || *c->p != '"')
        return 0;
    for (c->p++; c->p < c->end; c->p++) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            return 1;
        }
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
            if (++c->p >= c->end)
                return 0;
            if (*c->p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++c->p >= c->end || !strchr("0123456789abcdefABCDEF", *c->p))
                        return 0;
            } else if (!strchr("\"\\/bfnrt", *c->p)) {
                return 0;
            }
        }
    }
    return 0;
}

static int jnumber(jc *c) {
    const char *s = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end || !(*c->p >= '0' && *c->p <= '9'))
        return 0;
    if (*c->p == '0')
        c->p++;
    else
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (c->p >= c->end || !(*c->p >= '0' && *c->p <= '9'))
            return 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || !(*c->p >= '0' && *c->p <= '9'))
            return 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    return c->p > s;
}

static int jlit(jc *c, const char *s) {
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n))
        return 0;
    c->p += n;
    return 1;
}

static int jvalue(jc *c, int depth) {
    if (depth > 64)
        return 0;
    jws(c);
    if (c->p >= c->end)
        return 0;
    char ch = *c->p;
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        jws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        for (;;) {
            if (ch == '{') {
                jws(c);
                if (!jstring(c))
                    return 0;
                jws(c);
                if (c->p >= c->end || *c->p != ':')
                    return 0;
                c->p++;
            }
            if (!jvalue(c, depth + 1))
                return 0;
            jws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == close) {
                c->p++;
                return 1;
            }
            return 0;
        }
    }
    if (ch == '"')
        return jstring(c);
    if (ch == 't')
        return jlit(c, "true");
    if (ch == 'f')
        return jlit(c, "false");
    if (ch == 'n')
        return jlit(c, "null");
    return jnumber(c);
}

static int json_valid(const char *s, size_t n) {
    jc c = {s, s + n};
    if (!jvalue(&c, 0))
        return 0;
    jws(&c);
    return c.p == c.end;
}

/* ---- helpers ------------------------------------------------------------ */

static uint32_t site_at(cp_model *m, const char *name, const char *file, uint32_t line,
                        codeprof_site_kind kind) {
    return fx_site(m, name, file, line, kind);
}

/* A process-wide site, for a real session's recording. */
static uint32_t gsite_at(const char *name, const char *file, uint32_t line,
                         codeprof_site_kind kind) {
    uint32_t id = codeprof_site(name, file, line, kind);
    assert_true(id > 0);
    return id;
}

static char *render_json(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    size_t n = 0;
    char *s = cp_strbuf_detach(&sb, &n);
    assert_non_null(s);
    if (!json_valid(s, n))
        fail_msg("report is not valid JSON: %.400s", s);
    return s;
}

static char *render_text(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_text(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing %s in: %.3000s", needle, strstr(doc, "\"data_loading\"")
                                                        ? strstr(doc, "\"data_loading\"")
                                                        : doc);
}

/* The data_loading section alone (up to "findings", which follows it). */
static const char *section(const char *doc) {
    const char *s = strstr(doc, "\"data_loading\":{\"data_loading\"");
    assert_non_null(s);
    return s;
}

/* ---- tests ------------------------------------------------------------- */

static void test_empty_section(void **state) {
    (void)state;
    cp_model *m = fx_model();
    assert_int_equal(cp_rules_run(m), 0);
    char *doc = render_json(m);
    const char *s = section(doc);
    has(s, "\"data_loading\":{\"data_loading\":{\"avg_load_time\":0,\"slow_loads\":0,"
           "\"bottleneck_indices\":[],\"count\":0,\"failures\":0}");
    has(s, "\"preprocessing\":{\"avg_preprocess_time\":0,");
    has(s, "\"function_breakdown\":{}");
    has(s, "\"augmentation\":{\"avg_augment_time\":0,");
    has(s, "\"datasets\":[],\"loaders\":[],\"workers\":[],\"stages\":[]");
    has(s, "\"cpu_count\":0,\"spool_errors\":0,\"aggregated_records\":0,"
           "\"records_lost_oom\":0");
    has(s, "\"stall\":{\"loader\":null,\"data_stall_fraction\":0,");
    has(s, "\"verdict\":\"unknown\"");
    free(doc);
    char *text = render_text(m);
    assert_null(strstr(text, "Data loading"));
    free(text);
    cp_model_free(m);
}

/* A model with two datasets, a described and an undescribed loader, a
 * main process and two workers, and stages of every kind. */
static cp_model *populated(void) {
    cp_model *m = fx_model();
    cp_mdata *d = &m->data;
    d->cpu_count = 8;
    d->spool_errors = 1;
    d->aggregated_records = 1234;
    d->records_lost_oom = 5;

    d->datasets = calloc(2, sizeof *d->datasets);
    assert_non_null(d->datasets);
    d->ndatasets = 2;
    cp_mdataset *a = &d->datasets[0];
    a->site = site_at(m, "SmallDS", "r.py", 1, CODEPROF_SITE_DATASET);
    a->items = 4;
    a->sum_ns = 40000000; /* 4 x 10 ms */
    a->min_ns = a->p50_ns = a->p95_ns = a->p99_ns = a->max_ns = 10000000;
    a->distinct_indices = 4;
    a->slow_loads = 1;
    cp_mdataset *b = &d->datasets[1];
    b->site = site_at(m, "ClipDS", "r.py", 2, CODEPROF_SITE_DATASET);
    b->items = 6;
    b->sum_ns = 1560000000; /* 1.56 s */
    b->min_ns = 10000000;
    b->p50_ns = 20000000;
    b->p95_ns = 800000000;
    b->p99_ns = 800000000;
    b->max_ns = 800000000;
    b->failures = 2;
    b->slow_loads = 2;
    b->distinct_indices = 3;
    b->bottleneck_indices = calloc(CP_MAX_BOTTLENECKS, sizeof *b->bottleneck_indices);
    b->bottleneck_ns = calloc(CP_MAX_BOTTLENECKS, sizeof *b->bottleneck_ns);
    b->bottleneck_epochs = calloc(CP_MAX_BOTTLENECKS, sizeof *b->bottleneck_epochs);
    assert_non_null(b->bottleneck_indices);
    assert_non_null(b->bottleneck_ns);
    assert_non_null(b->bottleneck_epochs);
    b->nbottlenecks = 2;
    b->bottleneck_indices[0] = 7;
    b->bottleneck_ns[0] = 800000000;
    b->bottleneck_epochs[0] = 2;
    b->bottleneck_indices[1] = -3;
    b->bottleneck_ns[1] = 650000000;
    b->bottleneck_epochs[1] = 1;
    b->repeat_slow = 1;
    d->item_ns_total = a->sum_ns + b->sum_ns; /* 1.6 s over 10 items */

    d->loaders = calloc(2, sizeof *d->loaders);
    assert_non_null(d->loaders);
    d->nloaders = 2;
    cp_mloader *L = &d->loaders[0];
    L->site = site_at(m, "train_loader", "r.py", 3, CODEPROF_SITE_LOADER);
    L->desc = (cp_mloader_desc){1, 2, 4, 2, 0, 0, 1, 0};
    L->batches = 4;
    L->items = 10;
    L->epochs = 2;
    L->wait_ns = 1000000000;     /* 1 s  */
    L->step_ns = 200000000;      /* 0.2 s over 2 steps */
    L->steps = 2;
    L->first_wait_ns = 600000000;
    L->wait_p50_ns = 200000000;
    L->wait_p95_ns = 400000000;
    L->wait_max_ns = 450000000;
    L->stall_fraction = 0.4 / 0.6;
    L->samples_per_s = 10 / 1.2;
    L->batches_per_s = 4 / 1.2;
    cp_mloader *V = &d->loaders[1];
    V->site = site_at(m, "val_loader", "r.py", 4, CODEPROF_SITE_LOADER);
    V->batches = 1;
    V->items = 4;
    V->epochs = 1;
    V->wait_ns = 5000000;
    V->first_wait_ns = 5000000;
    V->stall_fraction = 1.0;

    d->workers = calloc(3, sizeof *d->workers);
    assert_non_null(d->workers);
    d->nworkers = 3;
    d->workers[0] = (cp_mworker){.worker = -1, .pid = 100, .items = 4, .failures = 0,
                                 .busy_ns = 40000000, .span_ns = 80000000, .incomplete = 0};
    d->workers[1] = (cp_mworker){.worker = 0, .pid = 101, .items = 6, .failures = 2,
                                 .busy_ns = 1560000000, .span_ns = 2000000000, .incomplete = 0};
    d->workers[2] = (cp_mworker){.worker = 1, .pid = 102, .items = 0, .failures = 0,
                                 .busy_ns = 0, .span_ns = 0, .incomplete = 1,
                                 .spool_errno = 28, .spool_dropped = 5,
                                 .reason = "posix_fallocate: No space left on device (errno 28)"};

    d->stages = calloc(4, sizeof *d->stages);
    assert_non_null(d->stages);
    d->nstages = 4;
    d->stages[0] = (cp_mstage){site_at(m, "decode", "r.py", 10, CODEPROF_SITE_PREPROCESS), 10,
                               1000000000, 300000000, 0.625};
    d->stages[1] = (cp_mstage){site_at(m, "flip", "r.py", 11, CODEPROF_SITE_AUGMENT), 10,
                               100000000, 20000000, 0.0625};
    d->stages[2] = (cp_mstage){site_at(m, "decode", "other.py", 5, CODEPROF_SITE_PREPROCESS), 5,
                               50000000, 10000000, 0.03125};
    d->stages[3] = (cp_mstage){site_at(m, "crop\"\x01", "r.py", 12, CODEPROF_SITE_SCOPE), 2,
                               2000000, 1000000, 0.00125};
    return m;
}

static void test_populated_section(void **state) {
    (void)state;
    cp_model *m = populated();
    assert_int_equal(cp_rules_run(m), 0);
    char *doc = render_json(m);
    const char *s = section(doc);
    /* the seed's summary: mean over all items, indices of the heaviest dataset */
    has(s, "\"data_loading\":{\"data_loading\":{\"avg_load_time\":0.16,\"slow_loads\":3,"
           "\"bottleneck_indices\":[7,-3],\"count\":10,\"failures\":2}");
    /* preprocessing: 1.05 s over 15 calls; same-name sites get distinct keys */
    has(s, "\"preprocessing\":{\"avg_preprocess_time\":0.07,\"calls\":15,\"total_time\":1.05,");
    has(s, "\"function_breakdown\":{\"decode\":{\"count\":10,\"avg_time\":0.1,"
           "\"total_time\":1,\"max_time\":0.3,\"share_of_item_time\":0.625},"
           "\"decode (other.py:5)\":{\"count\":5,");
    has(s, "\"augmentation\":{\"avg_augment_time\":0.01,\"calls\":10,\"total_time\":0.1,"
           "\"function_breakdown\":{\"flip\":{\"count\":10,");
    /* datasets */
    has(s, "{\"name\":\"SmallDS\",\"count\":4,\"avg_load_time\":0.01,\"min\":0.01,\"p50\":0.01,");
    has(s, "{\"name\":\"ClipDS\",\"count\":6,\"avg_load_time\":0.26,\"min\":0.01,\"p50\":0.02,"
           "\"p95\":0.8,\"p99\":0.8,\"max\":0.8,\"total_time\":1.56,\"slow_loads\":2,"
           "\"failures\":2,\"distinct_indices\":3,\"bottleneck_indices\":[7,-3],"
           "\"bottlenecks\":[{\"index\":7,\"load_time\":0.8,\"epochs_slow\":2},"
           "{\"index\":-3,\"load_time\":0.65,\"epochs_slow\":1}],\"repeat_slow_indices\":1}");
    /* loaders */
    has(s, "{\"name\":\"train_loader\",\"batches\":4,\"items\":10,\"epochs\":2,"
           "\"avg_batch_time\":0.25,\"avg_wait_time\":0.25,\"avg_step_time\":0.1,"
           "\"total_wait_time\":1,\"total_step_time\":0.2,\"first_batch_latency\":0.3,"
           "\"wait_p50\":0.2,\"wait_p95\":0.4,\"wait_max\":0.45,\"data_stall_fraction\":0.66666");
    has(s, "\"num_workers\":2,\"batch_size\":4,\"prefetch_factor\":2,\"pin_memory\":false,"
           "\"persistent_workers\":false,\"uses_gpu\":true,\"iterable\":false}");
    has(s, "{\"name\":\"val_loader\",\"batches\":1,");
    has(s, "\"avg_step_time\":0,"); /* no steps */
    has(s, "\"num_workers\":null,\"batch_size\":null,\"prefetch_factor\":null,"
           "\"pin_memory\":null,\"persistent_workers\":null,\"uses_gpu\":null,"
           "\"iterable\":null}");
    /* workers */
    has(s, "{\"worker\":-1,\"pid\":100,\"items\":4,\"failures\":0,\"busy_time\":0.04,"
           "\"span\":0.08,\"idle_time\":0.04,\"utilization\":0.5,\"incomplete\":false,"
           "\"incomplete_reason\":null,\"spool_errno\":0,\"spool_dropped_records\":0,"
           "\"spool_invalid_records\":0}");
    has(s, "{\"worker\":0,\"pid\":101,\"items\":6,\"failures\":2,\"busy_time\":1.56,"
           "\"span\":2,\"idle_time\":0.44,\"utilization\":0.78,\"incomplete\":false,");
    has(s, "{\"worker\":1,\"pid\":102,\"items\":0,\"failures\":0,\"busy_time\":0,\"span\":0,"
           "\"idle_time\":0,\"utilization\":null,\"incomplete\":true,"
           "\"incomplete_reason\":\"posix_fallocate: No space left on device (errno 28)\","
           "\"spool_errno\":28,\"spool_dropped_records\":5,\"spool_invalid_records\":0}");
    /* stages, with the name escaped */
    has(s, "{\"function\":\"decode\",\"kind\":\"preprocess\",\"file\":\"r.py\",\"line\":10,"
           "\"calls\":10,\"total_time\":1,\"avg_time\":0.1,\"max_time\":0.3,"
           "\"share_of_item_time\":0.625}");
    has(s, "{\"function\":\"crop\\\"\\u0001\",\"kind\":\"scope\",");
    has(s, "\"cpu_count\":8,\"spool_errors\":1,\"aggregated_records\":1234,"
           "\"records_lost_oom\":5");
    /* stall: the loader waited on longest, not the one with the largest fraction */
    has(s, "\"stall\":{\"loader\":\"train_loader\",\"data_stall_fraction\":0.6666");
    has(s, "\"verdict\":\"data-bound\"}");
    /* data findings reach the bottleneck view under their categories */
    has(doc, "\"rule\":\"CP-DATA-001\"");
    has(doc, "\"rule\":\"CP-DATA-008\"");
    free(doc);

    /* compute-bound verdict reads the configured threshold */
    m->cfg.data_stall_fraction = 0.9;
    doc = render_json(m);
    has(section(doc), "\"verdict\":\"compute-bound\"");
    free(doc);
    cp_model_free(m);
}

static void test_text_block(void **state) {
    (void)state;
    cp_model *m = populated();
    char *t = render_text(m);
    const char *blk = strstr(t, "\nData loading\n");
    assert_non_null(blk);
    /* after the function tables, before the findings */
    assert_true(blk > strstr(t, "Top functions by self time"));
    has(blk, "loader train_loader: 4 batches, avg wait 250.000 ms, avg step 100.000 ms, "
             "stall 66.7% (data-bound), 8.3 samples/s, workers 2");
    has(blk, "loader val_loader: 1 batches");
    has(blk, "dataset ClipDS: 6 items, avg 260.000 ms, p95 800.000 ms, max 800.000 ms, "
             "slow loads 2, failures 2");
    has(blk, "outlier indices: 7 (800.000 ms), -3 (650.000 ms)");
    has(blk, "    main      100          4      0.040    50.0  ok");
    has(blk, "       1      102          0      0.000       -  incomplete");
    has(blk, "incomplete: posix_fallocate: No space left on device (errno 28)");
    has(blk, "1234 records past max_data_records aggregated");
    has(blk, "5 records lost: out of memory");
    has(blk, "62.5  decode (preprocess)");
    has(blk, "crop\"? (scope)"); /* control character replaced */
    assert_null(strchr(blk, '\x01'));
    free(t);
    cp_model_free(m);
}

/* ---- a real session with the fake clock ------------------------------- */

static _Atomic uint64_t fake_now = 5000000;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }
static void advance(uint64_t ns) { atomic_fetch_add(&fake_now, ns); }

static void test_real_session_section(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    uint32_t ds = gsite_at("RealClips", "real.py", 1, CODEPROF_SITE_DATASET);
    uint32_t pre = gsite_at("real_resize", "real.py", 2, CODEPROF_SITE_PREPROCESS);
    uint32_t aug = gsite_at("real_jitter", "real.py", 3, CODEPROF_SITE_AUGMENT);
    uint32_t ld = gsite_at("real_loader", "real.py", 4, CODEPROF_SITE_LOADER);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    for (int b = 0; b < 4; b++) {
        codeprof_scope_begin(s, ld, CODEPROF_SCOPE_BATCH);
        codeprof_scope_attr(s, CODEPROF_ATTR_ITEMS, 2);
        codeprof_scope_attr(s, CODEPROF_ATTR_EPOCH, 0);
        for (int i = 0; i < 2; i++) {
            codeprof_scope_begin(s, ds, CODEPROF_SCOPE_ITEM);
            codeprof_scope_attr(s, CODEPROF_ATTR_INDEX, b * 2 + i);
            codeprof_scope_begin(s, pre, 0);
            advance(6000000); /* 6 ms */
            codeprof_scope_end(s, pre, 0);
            codeprof_scope_begin(s, aug, 0);
            advance(2000000); /* 2 ms */
            codeprof_scope_end(s, aug, 0);
            advance(2000000);
            codeprof_scope_end(s, ds, CODEPROF_SCOPE_ITEM);
        }
        codeprof_scope_end(s, ld, CODEPROF_SCOPE_BATCH);
        advance(30000000); /* 30 ms step */
    }
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(cp_rules_run(m), 0);
    char *doc = render_json(m);
    const char *sec = section(doc);
    has(sec, "\"avg_load_time\":0.01,\"slow_loads\":0,\"bottleneck_indices\":[],\"count\":8,");
    has(sec, "\"avg_preprocess_time\":0.006,");
    has(sec, "\"function_breakdown\":{\"real_resize\":{\"count\":8,\"avg_time\":0.006,"
             "\"total_time\":0.048,\"max_time\":0.006,\"share_of_item_time\":0.6}}");
    has(sec, "\"avg_augment_time\":0.002,");
    has(sec, "{\"name\":\"real_loader\",\"batches\":4,\"items\":8,\"epochs\":1,"
             "\"avg_batch_time\":0.02,\"avg_wait_time\":0.02,\"avg_step_time\":0.03,");
    has(sec, "\"data_stall_fraction\":0.4,"); /* 20 / (20 + 30) */
    has(sec, "\"num_workers\":null,"); /* never described */
    has(sec, "{\"worker\":-1,");
    has(sec, "\"verdict\":\"data-bound\"");
    free(doc);
    cp_model_free(m);
    codeprof_session_free(s);
    cp_clock_set_fake(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_section),
        cmocka_unit_test(test_populated_section),
        cmocka_unit_test(test_text_block),
        cmocka_unit_test(test_real_session_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
