/* test_trace_gpu.c -- GPU operations in the Chrome/Perfetto trace export
 * (src/export/trace.c): spans on a track per (device, stream) named
 * "GPU <d> stream 0x...", at the device start when known (else the host
 * start), labelled with the context; NVML counters (process counters
 * named gpu...) as "gpu" counters with a value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/timeline.h"
#include "export/trace.h"
#include "model_fixture.h"
#include "gpu_fixture.h"
#include "report/jsonr.h"
#include "report/strbuf.h"

static char *export(const cp_model *m, cp_jsonr_doc **doc) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    cp_jsonr_error e;
    if (cp_jsonr_parse(s, strlen(s), NULL, doc, &e) != 0)
        fail_msg("invalid JSON at byte %zu: %s\n%s", e.offset, e.message, s);
    return s;
}

static const char *sval(const cp_jval *o, const char *k) {
    const cp_jval *v = cp_jsonr_get(o, k);
    return v && v->type == CP_JSTRING ? v->u.str : "";
}

static double dval(const cp_jval *o, const char *k) {
    const cp_jval *v = cp_jsonr_get(o, k);
    double d = -1;
    if (v)
        cp_jsonr_double(v, &d);
    return d;
}

/* The tid of the thread_name metadata event named `name`; -1 if none. */
static double tid_named(const cp_jval *evs, const char *name) {
    for (uint32_t i = 0; i < evs->len; i++) {
        const cp_jval *e = &evs->u.kids[i];
        if (!strcmp(sval(e, "ph"), "M") && !strcmp(sval(e, "name"), "thread_name") &&
            !strcmp(sval(cp_jsonr_get(e, "args"), "name"), name))
            return dval(e, "tid");
    }
    return -1;
}

static void test_gpu_spans_on_stream_tracks(void **state) {
    (void)state;
    cp_model *m = fx_model();
    gx_fill(m); /* spans at 1.0, 1.5, 2.0 s on streams 0x7f00, 0x7f01, 0x7f00 */
    uint32_t h = fx_site(m, "host_only", "", 0, CODEPROF_SITE_GPU);
    cp_mgpu_span s = gx_span(h, 2500000000ull, 0, 0, -1);
    s.timed = 0;
    s.device_start_ns = 0;
    s.host_end_ns = s.host_start_ns + 4000000; /* 4 ms on the host */
    gx_add_span(m, s);
    cp_jsonr_doc *doc = NULL;
    char *j = export(m, &doc);
    const cp_jval *evs = cp_jsonr_get(cp_jsonr_root(doc), "traceEvents");
    assert_non_null(evs);
    double t0 = tid_named(evs, "GPU 0 stream 0x7f00");
    double t1 = tid_named(evs, "GPU 0 stream 0x7f01");
    double t2 = tid_named(evs, "GPU stream 0x0");
    assert_true(t0 >= 0 && t1 >= 0 && t2 >= 0);
    assert_true(t0 != t1 && t1 != t2);
    int on0 = 0, on1 = 0, on2 = 0;
    for (uint32_t i = 0; i < evs->len; i++) {
        const cp_jval *e = &evs->u.kids[i];
        if (strcmp(sval(e, "cat"), "gpu") != 0 || strcmp(sval(e, "ph"), "X") != 0)
            continue;
        double tid = dval(e, "tid"), ts = dval(e, "ts"), dur = dval(e, "dur");
        if (tid == t0) {
            assert_string_equal(sval(e, "name"), "model_forward");
            on0++;
            if (on0 == 1) { /* the first: device start (+500 ns) is the origin */
                assert_true(ts == 0);
                assert_true(dur == 400000);
            } else {
                assert_true(ts == 1000000); /* 2.0 s - 1.0 s, in us */
                assert_true(dur == 300000);
            }
        } else if (tid == t1) {
            on1++;
            assert_true(ts == 500000);
            assert_true(dur == 350000);
        } else if (tid == t2) {
            on2++;
            assert_string_equal(sval(e, "name"), "host_only");
            /* host start 2.5 s, the origin is the first device start (1.0 s + 500 ns) */
            assert_true(ts > 1499999.0 && ts < 1500000.0);
            assert_true(dur == 4000);
            assert_int_equal(cp_jsonr_get(cp_jsonr_get(e, "args"), "device_ms")->type, CP_JNULL);
        } else {
            fail_msg("a GPU span on another track");
        }
    }
    assert_int_equal(on0, 2);
    assert_int_equal(on1, 1);
    assert_int_equal(on2, 1);
    assert_non_null(strstr(j, "\"gpu_operations\":4"));
    cp_jsonr_free(doc);
    free(j);
    cp_model_free(m);
}

/* NVML readings arrive as process counters: named gpu..., they render as
 * "gpu" counters with a value (not memory bytes). */
static void test_nvml_counters_render(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t u = fx_site(m, "gpu0.utilization_pct", "", 0, CODEPROF_SITE_SCOPE);
    uint32_t r = fx_site(m, "memory.rss", "", 0, CODEPROF_SITE_SCOPE);
    m->timeline = calloc(2, sizeof *m->timeline);
    assert_non_null(m->timeline);
    m->timeline[0] = (cp_tl_event){1000, 87, u, 0, CP_EV_COUNTER, CP_TLF_PROCESS, 0};
    m->timeline[1] = (cp_tl_event){2000, 4096, r, 0, CP_EV_COUNTER, CP_TLF_PROCESS, 0};
    m->ntimeline = 2;
    cp_jsonr_doc *doc = NULL;
    char *j = export(m, &doc);
    assert_non_null(strstr(j, "{\"ph\":\"C\",\"cat\":\"gpu\",\"name\":\"gpu0.utilization_pct\","));
    assert_non_null(strstr(j, "\"args\":{\"value\":87}"));
    assert_non_null(strstr(j, "\"args\":{\"bytes\":4096}"));
    cp_jsonr_free(doc);
    free(j);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpu_spans_on_stream_tracks),
        cmocka_unit_test(test_nvml_counters_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
