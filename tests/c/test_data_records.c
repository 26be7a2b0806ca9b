/* test_data_records.c -- the timed data records a model keeps for the trace
 * export (cp_mdata.records, built by src/data/data_model.c, merged by
 * src/model/model.c) and the model's timeline in monotonic ns with model
 * sites (src/model/build.c): exact times with the fake clock, the cap's
 * first and last halves, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/session.h"
#include "core/site.h"
#include "core/timeline.h"
#include "export/trace.h"
#include "model/model.h"
#include "report/strbuf.h"

static _Atomic uint64_t fake_now = 1000000;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }
static void advance(uint64_t ns) { atomic_fetch_add(&fake_now, ns); }

static codeprof_session *new_session(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

static void item(codeprof_session *s, uint32_t ds, int64_t index, uint64_t ns) {
    codeprof_scope_begin(s, ds, CODEPROF_SCOPE_ITEM);
    codeprof_scope_attr(s, CODEPROF_ATTR_INDEX, index);
    advance(ns);
    codeprof_scope_end(s, ds, CODEPROF_SCOPE_ITEM);
}

static void test_records_and_timeline_in_the_model(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    codeprof_session *s = new_session();
    uint32_t ds = codeprof_site("RecDataset", "r.py", 1, CODEPROF_SITE_DATASET);
    uint32_t ld = codeprof_site("rec_loader", "r.py", 2, CODEPROF_SITE_LOADER);
    codeprof_session_start(s);
    uint64_t t_first = atomic_load(&fake_now);
    for (uint32_t b = 0; b < 3; b++) {
        codeprof_scope_begin(s, ld, CODEPROF_SCOPE_BATCH);
        codeprof_scope_attr(s, CODEPROF_ATTR_EPOCH, 0);
        item(s, ds, 2 * b, 1000);
        item(s, ds, 2 * b + 1, 3000);
        codeprof_scope_attr(s, CODEPROF_ATTR_ITEMS, 2);
        codeprof_scope_end(s, ld, CODEPROF_SCOPE_BATCH);
        advance(5000); /* the step */
    }
    codeprof_session_stop(s);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    const cp_mdata *d = &m->data;
    assert_int_equal(d->nrecords, 9); /* 6 items, 3 batches */
    assert_int_equal(d->records_dropped, 0);
    uint32_t nitems = 0, nbatches = 0;
    for (uint32_t i = 0; i < d->nrecords; i++) {
        const cp_mrecord *r = &d->records[i];
        if (i)
            assert_true(r->t_ns >= d->records[i - 1].t_ns); /* time order */
        assert_int_equal(r->pid, m->pid);
        assert_int_equal(r->worker, -1);
        const cp_msite *site = cp_model_site(m, r->site);
        assert_non_null(site);
        if (r->type == CP_MREC_ITEM) {
            assert_string_equal(site->name, "RecDataset");
            assert_int_equal(r->dur_ns, r->index % 2 ? 3000 : 1000);
            nitems++;
        } else {
            assert_int_equal(r->type, CP_MREC_BATCH);
            assert_string_equal(site->name, "rec_loader");
            assert_int_equal(r->dur_ns, 4000);
            assert_int_equal(r->index, 2);
            assert_int_equal(r->t_ns, t_first + nbatches * 9000);
            nbatches++;
        }
    }
    assert_int_equal(nitems, 6);
    assert_int_equal(nbatches, 3);
    /* the timeline: model sites, and monotonic ns (ticks are ns under the
     * fake clock), on the records' axis */
    assert_true(m->ntimeline > 0);
    int seen_batch = 0;
    for (uint32_t i = 0; i < m->ntimeline; i++) {
        const cp_tl_event *e = &m->timeline[i];
        if (e->kind != CP_EV_ENTER || !(e->flags & CP_EVF_BATCH))
            continue;
        assert_string_equal(cp_model_site(m, e->site)->name, "rec_loader");
        if (!seen_batch)
            assert_int_equal(e->tick, t_first);
        seen_batch = 1;
    }
    assert_true(seen_batch);
    /* and the trace export of the snapshot holds both */
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    assert_non_null(strstr(sb.data, "\"cat\":\"item\",\"name\":\"RecDataset\""));
    assert_non_null(strstr(sb.data, "\"cat\":\"step\",\"name\":\"step\""));
    assert_non_null(strstr(sb.data, "\"cat\":\"batch\",\"name\":\"rec_loader\""));
    cp_strbuf_free(&sb);
    cp_model_free(m);
    codeprof_session_free(s);
    cp_clock_set_fake(NULL);
}

static void test_cap_keeps_first_and_last_halves(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    codeprof_session *s = new_session();
    uint32_t ds = codeprof_site("CapDataset", "c.py", 1, CODEPROF_SITE_DATASET);
    const uint32_t n = CP_MAX_DATA_RECORDS + 1000;
    codeprof_session_start(s);
    for (uint32_t i = 0; i < n; i++) {
        item(s, ds, i, 10);
        if (i % 8192 == 8191) /* let the fold keep up on a loaded machine (no drops) */
            cp_model_free(cp_session_snapshot(s));
    }
    codeprof_session_stop(s);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    const cp_mdata *d = &m->data;
    assert_int_equal(m->dropped_full, 0);
    assert_int_equal(d->nrecords, CP_MAX_DATA_RECORDS);
    assert_int_equal(d->records_dropped, 1000);
    uint32_t half = CP_MAX_DATA_RECORDS / 2;
    assert_int_equal(d->records[0].index, 0);
    assert_int_equal(d->records[half - 1].index, half - 1);
    assert_int_equal(d->records[half].index, half + 1000);
    assert_int_equal(d->records[CP_MAX_DATA_RECORDS - 1].index, n - 1);
    assert_int_equal(d->datasets[0].items, n); /* statistics still see every item */
    cp_model_free(m);
    codeprof_session_free(s);
    cp_clock_set_fake(NULL);
}

static cp_model *bare_model(int pid) {
    cp_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    codeprof_config_init(&m->cfg);
    m->pid = pid;
    return m;
}

static void add_rec(cp_model *m, uint64_t t, uint32_t site, int32_t worker) {
    cp_mdata *d = &m->data;
    d->records = realloc(d->records, (d->nrecords + 1) * sizeof *d->records);
    assert_non_null(d->records);
    cp_mrecord *r = &d->records[d->nrecords++];
    memset(r, 0, sizeof *r);
    r->type = CP_MREC_ITEM;
    r->t_ns = t;
    r->site = site;
    r->pid = m->pid;
    r->worker = worker;
}

static void test_merge_interleaves_maps_and_tags(void **state) {
    (void)state;
    cp_model *a = bare_model(1);
    cp_model *b = bare_model(2);
    uint32_t sa = cp_model_intern_site(a, "A", "", 0, CODEPROF_SITE_DATASET);
    cp_model_intern_site(b, "pad", "", 0, CODEPROF_SITE_SCOPE);
    uint32_t sb_ = cp_model_intern_site(b, "B", "", 0, CODEPROF_SITE_DATASET);
    add_rec(a, 100, sa, -1);
    add_rec(a, 300, sa, -1);
    add_rec(b, 200, sb_, -1);
    b->data.records_dropped = 7;
    assert_int_equal(cp_model_merge(a, b, 3), 0);
    assert_int_equal(a->data.nrecords, 3);
    assert_int_equal(a->data.records_dropped, 7);
    assert_int_equal(a->data.records[1].t_ns, 200);
    assert_int_equal(a->data.records[1].pid, 2);
    assert_int_equal(a->data.records[1].worker, 3);
    assert_string_equal(cp_model_site(a, a->data.records[1].site)->name, "B");
    assert_int_equal(a->data.records[0].worker, -1);
    cp_model_free(a);
    cp_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_and_timeline_in_the_model),
        cmocka_unit_test(test_cap_keeps_first_and_last_halves),
        cmocka_unit_test(test_merge_interleaves_maps_and_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
