/* test_memsink.c -- the memory sink (src/memory/memsink.c): per-context
 * aggregation of CP_EV_HEAP events, the floor's growth per call, the
 * estimated flag, the cap on contexts and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "memory/memsink.h"

static cp_event ev(uint32_t site, uint16_t flags, int64_t value, uint64_t aux) {
    cp_event e;
    memset(&e, 0, sizeof e);
    e.kind = CP_EV_HEAP;
    e.site = site;
    e.flags = flags;
    e.value = value;
    e.aux = aux;
    return e;
}

/* One memory-scope exit: the four events scope.c emits. */
static void call(cp_memsink *ms, uint32_t site, int64_t delta, uint64_t peak, int64_t floor,
                 int64_t rss_delta, uint64_t rss_peak, uint64_t gc, uint16_t est) {
    cp_event e[5] = {
        ev(site, CP_HEAPF_SPAN | est, delta, peak),
        ev(site, CP_HEAPF_FLOOR | est, floor, 1000 + (uint64_t)floor),
        ev(site, CP_HEAPF_RSS, rss_delta, rss_peak),
        ev(site, CP_HEAPF_GC, (int64_t)gc, 0),
    };
    e[4] = e[0];
    e[4].kind = CP_EV_EXIT; /* other kinds are ignored */
    cp_memsink_consume(ms, e, 5);
}

typedef struct found {
    cp_mmem_ctx c[8];
    uint32_t n;
} found;

static void collect(void *arg, const cp_mmem_ctx *c) {
    found *f = arg;
    f->c[f->n++] = *c;
}

static void test_aggregates_per_site(void **state) {
    (void)state;
    cp_memsink *ms = cp_memsink_new();
    assert_non_null(ms);
    /* a leaking loop: +6 MB kept per call, 800 MB transient */
    const int64_t MB = 1000000;
    for (int k = 0; k < 10; k++)
        call(ms, 7, 6 * MB, 806 * (uint64_t)MB, 100 * MB + 6 * MB * (k + 1), 5 * MB,
             700 * (uint64_t)MB, (uint64_t)(k % 2), 0);
    call(ms, 9, -5, 0, 10, -4096, 0, 0, CP_HEAPF_ESTIMATED);
    found f = {0};
    cp_memsink_foreach(ms, collect, &f);
    assert_int_equal(f.n, 2);
    assert_int_equal(cp_memsink_count(ms), 2);
    const cp_mmem_ctx *c = &f.c[0];
    assert_int_equal(c->site, 7);
    assert_int_equal(c->count, 10);
    assert_int_equal(c->delta_sum, 60 * MB);
    assert_int_equal(c->delta_min, 6 * MB);
    assert_int_equal(c->delta_max, 6 * MB);
    assert_int_equal(c->peak_max, 806 * MB);
    assert_int_equal(c->rss_delta_sum, 50 * MB);
    assert_int_equal(c->rss_delta_max, 5 * MB);
    assert_int_equal(c->rss_peak_max, 700 * MB);
    assert_int_equal(c->floor_first, 106 * MB);
    assert_int_equal(c->floor_last, 160 * MB);
    assert_int_equal(c->floor_rises, 9);
    assert_true(c->floor_slope > 5.99 * MB && c->floor_slope < 6.01 * MB);
    assert_int_equal(c->gc_collections, 5);
    assert_int_equal(c->estimated, 0);
    c = &f.c[1];
    assert_int_equal(c->site, 9);
    assert_int_equal(c->delta_min, -5);
    assert_int_equal(c->delta_max, -5);
    assert_int_equal(c->rss_delta_max, -4096);
    assert_int_equal(c->estimated, 1);
    assert_true(c->floor_slope == 0.0); /* one call: no slope */
    cp_memsink_stats st;
    cp_memsink_stats_get(ms, &st);
    assert_int_equal(st.events, 44);
    assert_int_equal(st.rss_last, 1010);
    assert_int_equal(st.rss_peak, 1000 + 160 * MB);
    assert_true(st.own_bytes > 0);
    cp_memsink_reset(ms);
    assert_int_equal(cp_memsink_count(ms), 0);
    cp_memsink_free(ms);
}

static void test_flat_floor_has_no_slope(void **state) {
    (void)state;
    cp_memsink *ms = cp_memsink_new();
    for (int k = 0; k < 50; k++)
        call(ms, 3, (k % 2) ? 100 : -100, 1 << 20, 5000 + ((k % 2) ? 100 : 0), 0, 0, 0, 0);
    found f = {0};
    cp_memsink_foreach(ms, collect, &f);
    assert_true(f.c[0].floor_slope > -5 && f.c[0].floor_slope < 5);
    cp_memsink_free(ms);
}

static void test_context_cap(void **state) {
    (void)state;
    cp_memsink *ms = cp_memsink_new();
    for (uint32_t s = 1; s <= CP_MEM_MAX_CTXS + 10; s++)
        call(ms, s, 1, 1, 1, 0, 0, 0, 0);
    assert_int_equal(cp_memsink_count(ms), CP_MEM_MAX_CTXS);
    cp_memsink_stats st;
    cp_memsink_stats_get(ms, &st);
    assert_int_equal(st.dropped_ctxs, 10 * 4);
    /* the registered sink resets through its callback */
    cp_sink sk = cp_memsink_sink(ms);
    assert_string_equal(sk.name, "memory");
    sk.reset(sk.ctx);
    assert_int_equal(cp_memsink_count(ms), 0);
    cp_memsink_free(ms);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregates_per_site),
        cmocka_unit_test(test_flat_floor_has_no_slope),
        cmocka_unit_test(test_context_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
