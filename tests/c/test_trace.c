/* test_trace.c -- the Chrome trace export (src/export/trace.c) over a
 * hand-built model: timeline ENTER/EXIT pairs as X events with their
 * attributes, an EXIT without its ENTER skipped and counted, a scope left
 * open closed at the end and flagged, marks, worker item loads on the
 * worker's own process track, batch waits and the steps between them,
 * metadata for every process and thread, traced calls from the model's
 * separate traced stream.  Times in microseconds from the
 * earliest event.  tests/python/integration/test_exports.py parses real
 * traces (2 DataLoader workers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/timeline.h"
#include "export/trace.h"
#include "model_fixture.h"
#include "report/strbuf.h"

static void tl(cp_model *m, uint64_t t, uint16_t kind, uint32_t site, uint16_t flags,
               int64_t value) {
    m->timeline = realloc(m->timeline, (m->ntimeline + 1) * sizeof *m->timeline);
    assert_non_null(m->timeline);
    cp_tl_event *e = &m->timeline[m->ntimeline++];
    memset(e, 0, sizeof *e);
    e->tick = t;
    e->kind = kind;
    e->site = site;
    e->flags = flags;
    e->value = value;
    e->thread = 0;
}

/* An event of the traced-call stream (ENTER/EXIT without EXPLICIT). */
static void tlt(cp_model *m, uint64_t t, uint16_t kind, uint32_t site) {
    m->timeline_traced =
        realloc(m->timeline_traced, (m->ntimeline_traced + 1) * sizeof *m->timeline_traced);
    assert_non_null(m->timeline_traced);
    cp_tl_event *e = &m->timeline_traced[m->ntimeline_traced++];
    memset(e, 0, sizeof *e);
    e->tick = t;
    e->kind = kind;
    e->site = site;
    e->thread = 0;
}

static void rec(cp_model *m, uint16_t type, uint64_t t, uint64_t dur, int64_t index,
                uint32_t site, int32_t pid, int32_t worker, uint32_t epoch) {
    cp_mdata *d = &m->data;
    d->records = realloc(d->records, (d->nrecords + 1) * sizeof *d->records);
    assert_non_null(d->records);
    cp_mrecord *r = &d->records[d->nrecords++];
    memset(r, 0, sizeof *r);
    r->type = type;
    r->t_ns = t;
    r->dur_ns = dur;
    r->index = index;
    r->site = site;
    r->pid = pid;
    r->worker = worker;
    r->epoch = epoch;
}

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing %s in\n%s", needle, doc);
}

static void test_timeline_records_and_metadata(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t s1 = fx_site(m, "epoch_0", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t s2 = fx_site(m, "step", NULL, 0, CODEPROF_SITE_FUNCTION);
    uint32_t s3 = fx_site(m, "tick", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t ds = fx_site(m, "Frames", NULL, 0, CODEPROF_SITE_DATASET);
    uint32_t ld = fx_site(m, "DataLoader(Frames)#1", NULL, 0, CODEPROF_SITE_LOADER);
    fx_thread(m, 99);
    tl(m, 1000, CP_EV_ENTER, s1, CP_EVF_EXPLICIT, 0);
    tl(m, 1000, CP_EV_ATTR, 0, CODEPROF_ATTR_INDEX, 5);
    tl(m, 2000, CP_EV_ENTER, s2, CP_EVF_EXPLICIT, 0);
    tl(m, 2500, CP_EV_EXIT, s2, CP_EVF_EXPLICIT, 0);
    tl(m, 4000, CP_EV_EXIT, s1, CP_EVF_EXPLICIT, 0);
    tl(m, 4100, CP_EV_EXIT, s3, CP_EVF_EXPLICIT, 0); /* its ENTER was dropped */
    tl(m, 5000, CP_EV_ENTER, s2, CP_EVF_EXPLICIT, 0); /* never exits */
    tl(m, 6000, CP_EV_MARK, s3, 0, 0);
    rec(m, CP_MREC_BATCH, 1000, 500, 4, ld, 4242, -1, 0);
    rec(m, CP_MREC_ITEM, 1500, 700, 3, ds, 555, 0, 0);
    rec(m, CP_MREC_BATCH, 3000, 200, 4, ld, 4242, -1, 0);
    rec(m, CP_MREC_BATCH, 3500, 100, 4, ld, 4242, -1, 1); /* new epoch: no step */

    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    const char *s = sb.data;
    has(s, "{\"traceEvents\":[");
    has(s, "{\"ph\":\"X\",\"cat\":\"function\",\"name\":\"step\",\"pid\":4242,\"tid\":99,"
           "\"ts\":1.000,\"dur\":0.500}");
    has(s, "{\"ph\":\"X\",\"cat\":\"scope\",\"name\":\"epoch_0\",\"pid\":4242,\"tid\":99,"
           "\"ts\":0.000,\"dur\":3.000,\"args\":{\"index\":5}}");
    has(s, "{\"ph\":\"X\",\"cat\":\"function\",\"name\":\"step\",\"pid\":4242,\"tid\":99,"
           "\"ts\":4.000,\"dur\":1.000,\"args\":{\"unfinished\":true}}");
    has(s, "{\"ph\":\"i\",\"cat\":\"mark\",\"name\":\"tick\",\"pid\":4242,\"tid\":99,"
           "\"ts\":5.000,\"s\":\"t\"}");
    has(s, "{\"ph\":\"X\",\"cat\":\"item\",\"name\":\"Frames\",\"pid\":555,\"tid\":555,"
           "\"ts\":0.500,\"dur\":0.700,\"args\":{\"index\":3}}");
    has(s, "{\"ph\":\"X\",\"cat\":\"batch\",\"name\":\"wait\",\"pid\":4242,\"tid\":1073741825,"
           "\"ts\":0.000,\"dur\":0.500,\"args\":{\"items\":4,\"epoch\":0}}");
    has(s, "{\"ph\":\"X\",\"cat\":\"step\",\"name\":\"step\",\"pid\":4242,\"tid\":1073741825,"
           "\"ts\":0.500,\"dur\":1.500,\"args\":{\"epoch\":0}}");
    /* exactly one step: none across the epoch boundary */
    const char *first = strstr(s, "\"cat\":\"step\"");
    assert_null(strstr(first + 1, "\"cat\":\"step\""));
    has(s, "{\"ph\":\"C\",\"cat\":\"batch\",\"name\":\"DataLoader(Frames)#1 wait (ms)\","
           "\"pid\":4242,\"tid\":1073741825,\"ts\":0.000,\"args\":{\"wait_ms\":0.000500}}");
    has(s, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":4242,\"tid\":0,"
           "\"args\":{\"name\":\"main (pid 4242)\"}}");
    has(s, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":555,\"tid\":0,"
           "\"args\":{\"name\":\"DataLoader worker 0 (pid 555)\"}}");
    has(s, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":555,\"tid\":555,"
           "\"args\":{\"name\":\"item loads\"}}");
    has(s, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":4242,\"tid\":1073741825,"
           "\"args\":{\"name\":\"DataLoader DataLoader(Frames)#1\"}}");
    has(s, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":4242,\"tid\":99,");
    has(s, "\"displayTimeUnit\":\"ms\"");
    has(s, "\"unmatched_exits\":1,\"unfinished_scopes\":1");
    has(s, "\"t0_monotonic_ns\":1000,");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_empty_model_names_its_process(void **state) {
    (void)state;
    cp_model *m = fx_model();
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    has(sb.data, "{\"traceEvents\":[\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":4242,");
    has(sb.data, "\"events_written\":2,");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

/* Traced calls come from their own stream: "X" events of category "call"
 * on the thread's track, paired within that stream (a recursive function
 * nests), an EXIT whose ENTER was dropped skipped and a call left open
 * closed at the last event of either stream, each counted apart from the
 * explicit scopes'; the earliest traced event sets the time origin. */
static void test_traced_calls(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.flags |= CODEPROF_CFG_TIMELINE_TRACED;
    m->cfg.timeline_traced_events = 1000;
    m->timeline_traced_dropped = 5;
    uint32_t ep = fx_site(m, "epoch", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t fib = fx_site(m, "fib", "f.py", 1, CODEPROF_SITE_FUNCTION);
    uint32_t g = fx_site(m, "g", "f.py", 9, CODEPROF_SITE_FUNCTION);
    fx_thread(m, 99);
    tl(m, 1000, CP_EV_ENTER, ep, CP_EVF_EXPLICIT, 0);
    tl(m, 9000, CP_EV_EXIT, ep, CP_EVF_EXPLICIT, 0);
    tlt(m, 500, CP_EV_ENTER, g);
    tlt(m, 600, CP_EV_EXIT, g);
    tlt(m, 2000, CP_EV_ENTER, fib);
    tlt(m, 2100, CP_EV_ENTER, fib);
    tlt(m, 2200, CP_EV_EXIT, fib);
    tlt(m, 3000, CP_EV_EXIT, fib);
    tlt(m, 3500, CP_EV_EXIT, g);     /* its ENTER was dropped */
    tlt(m, 8000, CP_EV_ENTER, fib); /* never exits */

    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    const char *s = sb.data;
    has(s, "{\"ph\":\"X\",\"cat\":\"scope\",\"name\":\"epoch\",\"pid\":4242,\"tid\":99,"
           "\"ts\":0.500,\"dur\":8.000}");
    has(s, "{\"ph\":\"X\",\"cat\":\"call\",\"name\":\"g\",\"pid\":4242,\"tid\":99,"
           "\"ts\":0.000,\"dur\":0.100}");
    has(s, "{\"ph\":\"X\",\"cat\":\"call\",\"name\":\"fib\",\"pid\":4242,\"tid\":99,"
           "\"ts\":1.500,\"dur\":1.000}");
    has(s, "{\"ph\":\"X\",\"cat\":\"call\",\"name\":\"fib\",\"pid\":4242,\"tid\":99,"
           "\"ts\":1.600,\"dur\":0.100}");
    has(s, "{\"ph\":\"X\",\"cat\":\"call\",\"name\":\"fib\",\"pid\":4242,\"tid\":99,"
           "\"ts\":7.500,\"dur\":1.000,\"args\":{\"unfinished\":true}}");
    /* one track for the thread: both streams on tid 99 */
    const char *tn = strstr(s, "\"name\":\"thread_name\",\"pid\":4242,\"tid\":99,");
    assert_non_null(tn);
    assert_null(strstr(tn + 1, "\"name\":\"thread_name\",\"pid\":4242,\"tid\":99,"));
    has(s, "\"t0_monotonic_ns\":500,");
    has(s, "\"unmatched_exits\":0,\"unfinished_scopes\":0,\"timeline_traced_events\":8,"
           "\"timeline_traced_dropped\":5,\"timeline_traced_cap\":1000,\"traced_calls\":4,"
           "\"traced_unmatched_exits\":1,\"traced_unfinished_calls\":1,");
    cp_strbuf_free(&sb);

    /* without the flag the cap reads 0 (no traced stream was kept) */
    m->cfg.flags &= ~(uint32_t)CODEPROF_CFG_TIMELINE_TRACED;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    has(sb.data, "\"timeline_traced_cap\":0,");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

/* The traced stream jumped over a dropped middle (timeline_traced_seam):
 * nothing pairs across the seam.  Calls open there are closed at their
 * thread's last event before it (flagged unfinished), or at the end of an
 * explicit scope that began inside them and outlives that point, so calls
 * and scopes still nest; EXITs after the seam whose ENTER is before it are
 * skipped.  (Pairing across the seam made the "step" below a call from
 * 3000 to 7000 ns, which never existed.) */
static void test_traced_seam(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.flags |= CODEPROF_CFG_TIMELINE_TRACED;
    uint32_t ep = fx_site(m, "epoch", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t in = fx_site(m, "inner", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t mn = fx_site(m, "main", "f.py", 1, CODEPROF_SITE_FUNCTION);
    uint32_t tr = fx_site(m, "train", "f.py", 2, CODEPROF_SITE_FUNCTION);
    uint32_t st = fx_site(m, "step", "f.py", 3, CODEPROF_SITE_FUNCTION);
    uint32_t ld = fx_site(m, "load", "f.py", 4, CODEPROF_SITE_FUNCTION);
    fx_thread(m, 99);
    tl(m, 1000, CP_EV_ENTER, ep, CP_EVF_EXPLICIT, 0);
    tl(m, 1500, CP_EV_ENTER, in, CP_EVF_EXPLICIT, 0);
    tl(m, 2500, CP_EV_EXIT, in, CP_EVF_EXPLICIT, 0);
    tl(m, 9000, CP_EV_EXIT, ep, CP_EVF_EXPLICIT, 0);
    tlt(m, 500, CP_EV_ENTER, mn);
    tlt(m, 800, CP_EV_ENTER, tr);
    tlt(m, 1200, CP_EV_ENTER, st);
    tlt(m, 1300, CP_EV_EXIT, st);
    tlt(m, 3000, CP_EV_ENTER, st); /* last event before the seam */
    m->timeline_traced_seam = m->ntimeline_traced;
    m->timeline_traced_dropped = 1000;
    tlt(m, 7000, CP_EV_EXIT, st); /* its ENTER fell in the middle */
    tlt(m, 7100, CP_EV_ENTER, ld);
    tlt(m, 7200, CP_EV_EXIT, ld);
    tlt(m, 9500, CP_EV_EXIT, tr);
    tlt(m, 9600, CP_EV_EXIT, mn);

    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    const char *s = sb.data;
#define CALL(name, ts_dur) "{\"ph\":\"X\",\"cat\":\"call\",\"name\":\"" name "\",\"pid\":4242," \
                           "\"tid\":99," ts_dur
    has(s, CALL("step", "\"ts\":0.700,\"dur\":0.100}"));
    has(s, CALL("step", "\"ts\":2.500,\"dur\":0.000,\"args\":{\"unfinished\":true}}"));
    /* train and main hold the epoch scope that began inside them: closed
     * at its end, not at 3000 ns (which would cut through it) */
    has(s, CALL("train", "\"ts\":0.300,\"dur\":8.200,\"args\":{\"unfinished\":true}}"));
    has(s, CALL("main", "\"ts\":0.000,\"dur\":8.500,\"args\":{\"unfinished\":true}}"));
    has(s, CALL("load", "\"ts\":6.600,\"dur\":0.100}"));
#undef CALL
    has(s, "\"name\":\"epoch\",\"pid\":4242,\"tid\":99,\"ts\":0.500,\"dur\":8.000}");
    has(s, "\"name\":\"inner\",\"pid\":4242,\"tid\":99,\"ts\":1.000,\"dur\":1.000}");
    /* exactly two step calls: none paired across the seam */
    const char *p = s;
    int steps = 0;
    while ((p = strstr(p, "\"name\":\"step\"")) != NULL) {
        steps++;
        p++;
    }
    assert_int_equal(steps, 2);
    has(s, "\"traced_calls\":5,\"traced_unmatched_exits\":3,\"traced_unfinished_calls\":3,");
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traced_seam),
        cmocka_unit_test(test_traced_calls),
        cmocka_unit_test(test_timeline_records_and_metadata),
        cmocka_unit_test(test_empty_model_names_its_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
