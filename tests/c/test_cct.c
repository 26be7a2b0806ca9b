/* test_cct.c -- the fold from events into a thread's calling-context tree,
 * with hand-made events so every time is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/clock.h"
#include "cpu/cct.h"

static const cp_tfunc *tfn(const cp_thread_tree *t, uint32_t site) {
    static const cp_tfunc none;
    for (uint32_t i = 0; i < t->nfuncs; i++)
        if (t->funcs[i].site == site)
            return &t->funcs[i];
    return &none;
}

static uint64_t fake_zero(void) { return 0; }

static int setup(void **state) {
    (void)state;
    cp_clock_set_fake(fake_zero); /* ticks are ns */
    return 0;
}

static cp_event ev(uint16_t kind, uint32_t site, uint64_t tick) {
    cp_event e = {0};
    e.kind = kind;
    e.site = site;
    e.tick = tick;
    return e;
}
#define ENTER(s, t) ev(CP_EV_ENTER, (s), (t))
#define EXIT(s, t) ev(CP_EV_EXIT, (s), (t))

static uint32_t find_child(cp_thread_tree *t, uint32_t parent, uint32_t site) {
    for (uint32_t c = t->nodes[parent].first_child; c != CP_TREE_NO_NODE;
         c = t->nodes[c].next_sibling)
        if (t->nodes[c].site == site)
            return c;
    return CP_TREE_NO_NODE;
}

static void test_nested_times_exact(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1024, 100, 1);
    assert_non_null(t);
    /* a[0,100) calls b twice: [10,30) and [50,90) */
    cp_event e[] = {ENTER(1, 0), ENTER(2, 10), EXIT(2, 30), ENTER(2, 50), EXIT(2, 90), EXIT(1, 100)};
    cp_tree_fold(t, e, 6);
    uint32_t a = find_child(t, 0, 1);
    assert_int_not_equal(a, CP_TREE_NO_NODE);
    uint32_t b = find_child(t, a, 2);
    assert_int_not_equal(b, CP_TREE_NO_NODE);
    assert_int_equal(t->nodes[a].count, 1);
    assert_int_equal(t->nodes[a].incl_t, 100);
    assert_int_equal(t->nodes[a].self_t, 40);
    assert_int_equal(t->nodes[b].count, 2);
    assert_int_equal(t->nodes[b].incl_t, 60);
    assert_int_equal(t->nodes[b].self_t, 60);
    assert_int_equal(t->nodes[b].min_t, 20);
    assert_int_equal(t->nodes[b].max_t, 40);
    assert_int_equal(tfn(t, 2)->calls, 2);
    assert_int_equal(tfn(t, 2)->incl_t, 60);
    assert_int_equal(t->nodes[b].res.n, 2);
    cp_tree_free(t);
}

static void test_recursion_not_double_counted(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1024, 100, 1);
    /* f[0,100) -> f[10,80) -> f[20,50) */
    cp_event e[] = {ENTER(7, 0), ENTER(7, 10), ENTER(7, 20), EXIT(7, 50), EXIT(7, 80), EXIT(7, 100)};
    cp_tree_fold(t, e, 6);
    assert_int_equal(tfn(t, 7)->calls, 3);
    assert_int_equal(tfn(t, 7)->incl_t, 100);      /* outermost only */
    assert_int_equal(tfn(t, 7)->self_t, 100);      /* 30 + 40 + 30 */
    /* the tree keeps one node per depth */
    uint32_t n1 = find_child(t, 0, 7), n2 = find_child(t, n1, 7), n3 = find_child(t, n2, 7);
    assert_int_equal(t->nodes[n1].incl_t, 100);
    assert_int_equal(t->nodes[n2].incl_t, 70);
    assert_int_equal(t->nodes[n3].incl_t, 30);
    assert_int_equal(t->nodes[n3].depth, 3);
    cp_tree_free(t);
}

static void test_fold_across_buffers(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1024, 100, 1);
    cp_event e1[] = {ENTER(1, 0), ENTER(2, 5)};
    cp_event e2[] = {EXIT(2, 15), EXIT(1, 20)};
    cp_tree_fold(t, e1, 2);
    assert_int_equal(t->depth, 2);
    cp_tree_fold(t, e2, 2);
    assert_int_equal(t->depth, 0);
    assert_int_equal(tfn(t, 1)->incl_t, 20);
    assert_int_equal(tfn(t, 2)->incl_t, 10);
    cp_tree_free(t);
}

static void test_unmatched_and_mismatched_exits(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1024, 100, 1);
    /* exit of 9 that never entered: ignored; exit of 1 while 2 and 3 open:
     * 3 and 2 closed as truncated at the same tick. */
    cp_event e[] = {EXIT(9, 0), ENTER(1, 0), ENTER(2, 10), ENTER(3, 20), EXIT(1, 50)};
    cp_tree_fold(t, e, 5);
    assert_int_equal(t->unmatched_exits, 1);
    assert_int_equal(t->truncated, 2);
    assert_int_equal(t->depth, 0);
    assert_int_equal(tfn(t, 1)->incl_t, 50);
    assert_int_equal(tfn(t, 2)->incl_t, 40);
    assert_int_equal(tfn(t, 3)->incl_t, 30);
    assert_int_equal(tfn(t, 9)->calls, 0);
    cp_tree_free(t);
}

static void test_close_all_at_stop(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1024, 100, 1);
    cp_event e[] = {ENTER(1, 0), ENTER(2, 10)};
    cp_tree_fold(t, e, 2);
    cp_tree_close_all(t, 100);
    assert_int_equal(t->truncated, 2);
    assert_int_equal(tfn(t, 1)->incl_t, 100);
    assert_int_equal(tfn(t, 2)->incl_t, 90);
    uint32_t a = find_child(t, 0, 1);
    assert_int_equal(t->nodes[a].truncated, 1);
    cp_tree_free(t);
}

static void test_node_cap_counts_drops(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(3, 100, 1); /* root + 2 nodes */
    cp_event e[] = {ENTER(1, 0), EXIT(1, 1), ENTER(2, 1), EXIT(2, 2),
                    ENTER(3, 2), ENTER(4, 3), EXIT(4, 4), EXIT(3, 5)};
    cp_tree_fold(t, e, 8);
    assert_int_equal(t->nnodes, 3);
    assert_int_equal(t->dropped_nodes, 2); /* 3 past the cap, 4 below it */
    /* flat statistics still count the dropped contexts */
    assert_int_equal(tfn(t, 3)->calls, 1);
    assert_int_equal(tfn(t, 4)->calls, 1);
    assert_int_equal(tfn(t, 3)->incl_t, 3);
    cp_tree_free(t);
}

static void test_cpu_and_rss(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1024, 100, 1);
    cp_event e[4] = {ENTER(1, 0), ev(CP_EV_RSS, 1, 0), ev(CP_EV_RSS, 1, 10), EXIT(1, 10)};
    e[0].flags = CP_EVF_CPU;
    e[0].aux = 1000;
    e[1].value = 4096;
    e[2].value = 4096 + 1048576;
    e[3].flags = CP_EVF_CPU;
    e[3].aux = 1007;
    cp_tree_fold(t, e, 4);
    assert_int_equal(tfn(t, 1)->cpu_ns, 7);
    assert_int_equal(tfn(t, 1)->cpu_count, 1);
    assert_int_equal(tfn(t, 1)->rss_delta_max, 1048576);
    assert_int_equal(tfn(t, 1)->rss_count, 1);
    cp_tree_free(t);
}

static void test_many_siblings_use_hash(void **state) {
    (void)state;
    cp_thread_tree *t = cp_tree_new(1 << 16, 10, 1);
    enum { N = 5000 };
    static cp_event e[2 * N + 2];
    uint32_t k = 0;
    e[k++] = ENTER(1, 0);
    for (uint32_t i = 0; i < N; i++) {
        e[k++] = ENTER(100 + i % 2500, i);
        e[k++] = EXIT(100 + i % 2500, i + 1);
    }
    e[k++] = EXIT(1, N + 1);
    cp_tree_fold(t, e, k);
    assert_int_equal(t->nnodes, 1 + 1 + 2500);
    uint32_t a = find_child(t, 0, 1);
    uint32_t c = find_child(t, a, 100);
    assert_int_equal(t->nodes[c].count, 2);
    cp_tree_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_times_exact),
        cmocka_unit_test(test_recursion_not_double_counted),
        cmocka_unit_test(test_fold_across_buffers),
        cmocka_unit_test(test_unmatched_and_mismatched_exits),
        cmocka_unit_test(test_close_all_at_stop),
        cmocka_unit_test(test_node_cap_counts_drops),
        cmocka_unit_test(test_cpu_and_rss),
        cmocka_unit_test(test_many_siblings_use_hash),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
