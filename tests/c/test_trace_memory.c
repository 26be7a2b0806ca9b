/* test_trace_memory.c -- the trace export's memory counter tracks
 * (src/export/trace.c): the memory sampler's process counters
 * (CP_TLF_PROCESS) become "C" events on their process -- this one and
 * each DataLoader worker, named as such -- and never a thread track. */
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

static void counter(cp_model *m, uint64_t t, uint32_t site, uint32_t pid, int64_t v) {
    m->timeline = realloc(m->timeline, (m->ntimeline + 1) * sizeof *m->timeline);
    assert_non_null(m->timeline);
    m->timeline[m->ntimeline++] = (cp_tl_event){t, v, site, pid, CP_EV_COUNTER, CP_TLF_PROCESS, 0};
}

static void scope(cp_model *m, uint64_t t, uint16_t kind, uint32_t site) {
    m->timeline = realloc(m->timeline, (m->ntimeline + 1) * sizeof *m->timeline);
    assert_non_null(m->timeline);
    m->timeline[m->ntimeline++] = (cp_tl_event){t, 0, site, 3, kind, CP_EVF_EXPLICIT, 0};
}

static void has(const char *s, const char *needle) {
    if (!strstr(s, needle))
        fail_msg("trace lacks %s", needle);
}

static size_t count(const char *s, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_counter_tracks(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t rss = fx_site(m, "memory.rss", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t uss = fx_site(m, "memory.uss", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t ep = fx_site(m, "epoch", NULL, 0, CODEPROF_SITE_SCOPE);
    m->mem.procs = calloc(2, sizeof *m->mem.procs);
    assert_non_null(m->mem.procs);
    m->mem.nprocs = 2;
    m->mem.procs[0] = (cp_mproc){.pid = 4242, .worker = -1};
    m->mem.procs[1] = (cp_mproc){.pid = 777, .worker = 1};
    scope(m, 1000, CP_EV_ENTER, ep);
    counter(m, 1500, rss, 0, 100 << 20);
    counter(m, 1600, rss, 777, 50 << 20);
    counter(m, 1600, uss, 777, 8 << 20);
    scope(m, 3000, CP_EV_EXIT, ep);
    counter(m, 2500, rss, 0, 120 << 20);

    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    const char *s = sb.data;
    has(s, "{\"ph\":\"C\",\"cat\":\"memory\",\"name\":\"memory.rss\",\"pid\":4242,\"tid\":0,"
           "\"ts\":0.500,\"args\":{\"bytes\":104857600}}");
    has(s, "{\"ph\":\"C\",\"cat\":\"memory\",\"name\":\"memory.rss\",\"pid\":4242,\"tid\":0,"
           "\"ts\":1.500,\"args\":{\"bytes\":125829120}}");
    has(s, "{\"ph\":\"C\",\"cat\":\"memory\",\"name\":\"memory.rss\",\"pid\":777,\"tid\":0,"
           "\"ts\":0.600,\"args\":{\"bytes\":52428800}}");
    has(s, "\"name\":\"memory.uss\",\"pid\":777");
    has(s, "\"process_name\",\"pid\":777,\"tid\":0,\"args\":{\"name\":\"DataLoader worker 1 "
           "(pid 777)\"}");
    /* the scope stays on its thread and is closed by its own exit */
    has(s, "\"name\":\"epoch\",\"pid\":4242,\"tid\":3,\"ts\":0.000,\"dur\":2.000}");
    /* counters make no thread: one thread track (tid 3) only */
    assert_int_equal(count(s, "\"thread_name\""), 1);
    assert_int_equal(count(s, "\"process_name\""), 2);
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

/* A model with only counters still names its process. */
static void test_counters_only(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t rss = fx_site(m, "memory.rss", NULL, 0, CODEPROF_SITE_SCOPE);
    counter(m, 10, rss, 0, 1);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_trace(m, &sb), 0);
    has(sb.data, "\"process_name\",\"pid\":4242");
    assert_int_equal(count(sb.data, "\"thread_name\""), 0);
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_tracks),
        cmocka_unit_test(test_counters_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
