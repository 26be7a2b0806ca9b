/* test_report_diff_gpu.c -- the GPU part of `codeprof diff`
 * (src/report/report_diff_gpu.c, called from report_diff.c): operations by
 * context with avg ms A, B, B/A; sync blocked time; device utilization;
 * nothing (text) / "enabled": false (JSON) when neither side profiled the
 * GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "gpu_fixture.h"
#include "report/jsonr.h"
#include "report/report_diff.h"
#include "report/strbuf.h"

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing: %s\nin: %s", needle, doc);
}

static char *diff_of(const cp_model *a, const cp_model *b, int json) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    int rc = json ? cp_report_diff_json(a, b, "a.json", "b.json", &sb)
                  : cp_report_diff_text(a, b, "a.json", "b.json", &sb);
    assert_int_equal(rc, 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    if (json) {
        cp_jsonr_doc *doc = NULL;
        cp_jsonr_error e;
        if (cp_jsonr_parse(s, strlen(s), NULL, &doc, &e) != 0)
            fail_msg("invalid JSON at %zu: %s\n%s", e.offset, e.message, s);
        cp_jsonr_free(doc);
    }
    return s;
}

static void test_gpu_diff(void **state) {
    (void)state;
    cp_model *a = fx_model(), *b = fx_model();
    gx_fill(a);
    gx_fill(b);
    b->gpu.ops[0].device_ns /= 2; /* model_forward twice as fast in B */
    b->gpu.syncs[0].blocked_ns = GX_MS(90);
    b->gpu.devices[0].util_mean = 71;
    uint32_t s = fx_site(b, "only_in_b", "", 0, CODEPROF_SITE_GPU);
    gx_op(b, s, 1, 1, GX_MS(1), GX_MS(1), GX_MS(1), GX_MS(1));
    char *j = diff_of(a, b, 1);
    has(j, "\"gpu\":{\"enabled\":true,\"operations\":[{\"context\":\"model_forward\","
           "\"avg_time_ms\":{\"a\":125,\"b\":62.5,\"ratio\":0.5}");
    has(j, "{\"context\":\"only_in_b\",\"avg_time_ms\":{\"a\":null,\"b\":1,\"ratio\":null}");
    has(j, "\"sync_blocked_ms\":{\"a\":940,\"b\":130,");
    has(j, "\"devices\":[{\"index\":0,\"name\":\"Fake H100\",\"util_mean\":{\"a\":35.5,\"b\":71,"
           "\"ratio\":2}}]");
    char *t = diff_of(a, b, 0);
    has(t, "GPU operations, largest change of total time first (3 of 3)");
    has(t, "   125.000     62.500    0.500         20         20    1.000  model_forward");
    has(t, "sync blocked ms");
    has(t, "device 0 util mean %");
    free(j);
    free(t);
    cp_model_free(a);
    cp_model_free(b);
}

static void test_gpu_diff_off(void **state) {
    (void)state;
    cp_model *a = fx_model(), *b = fx_model();
    char *j = diff_of(a, b, 1);
    has(j, "\"gpu\":{\"enabled\":false,\"operations\":[],\"operations_omitted\":0,"
           "\"sync_blocked_ms\":{\"a\":null,\"b\":null,\"ratio\":null}");
    char *t = diff_of(a, b, 0);
    assert_null(strstr(t, "GPU operations"));
    free(j);
    free(t);
    cp_model_free(a);
    cp_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpu_diff),
        cmocka_unit_test(test_gpu_diff_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
