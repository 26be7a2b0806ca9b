/* test_stacktab.c -- the table of sampled stacks (src/sampling/stacktab.c):
 * hash-consing, dense ids, the cap, stable frames, reset, a writer and a
 * reader at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sampling/stacktab.h"

static void test_intern_dedups_and_ids_are_dense(void **state) {
    (void)state;
    cp_stacktab *t = cp_stacktab_new(100);
    cp_sframe a[3] = {{7, 10}, {5, 20}, {3, 30}};
    cp_sframe b[3] = {{7, 11}, {5, 20}, {3, 30}}; /* another line: another stack */
    cp_sframe c[2] = {{5, 20}, {3, 30}};
    assert_int_equal(cp_stacktab_intern(t, a, 3), 1);
    assert_int_equal(cp_stacktab_intern(t, b, 3), 2);
    assert_int_equal(cp_stacktab_intern(t, c, 2), 3);
    assert_int_equal(cp_stacktab_intern(t, a, 3), 1);
    assert_int_equal(cp_stacktab_intern(t, c, 2), 3);
    assert_int_equal(cp_stacktab_intern(t, NULL, 0), 4); /* the empty stack is a stack */
    assert_int_equal(cp_stacktab_count(t), 4);
    assert_int_equal(cp_stacktab_dropped(t), 0);
    const cp_sframe *f;
    uint32_t n;
    assert_int_equal(cp_stacktab_get(t, 2, &f, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(f[0].site, 7);
    assert_int_equal(f[0].line, 11);
    assert_int_equal(f[2].site, 3);
    assert_int_equal(cp_stacktab_get(t, CP_STACK_OTHER, &f, &n), -1);
    assert_int_equal(cp_stacktab_get(t, 5, &f, &n), -1);
    assert_true(cp_stacktab_bytes(t) > 3 * sizeof(cp_sframe));
    cp_stacktab_free(t);
}

static void test_cap_folds_into_other(void **state) {
    (void)state;
    cp_stacktab *t = cp_stacktab_new(2);
    cp_sframe x[1] = {{1, 1}}, y[1] = {{2, 1}}, z[1] = {{3, 1}};
    assert_int_equal(cp_stacktab_intern(t, x, 1), 1);
    assert_int_equal(cp_stacktab_intern(t, y, 1), 2);
    assert_int_equal(cp_stacktab_intern(t, z, 1), CP_STACK_OTHER);
    assert_int_equal(cp_stacktab_intern(t, z, 1), CP_STACK_OTHER);
    assert_int_equal(cp_stacktab_intern(t, y, 1), 2); /* known stacks still found */
    assert_int_equal(cp_stacktab_dropped(t), 2);
    assert_int_equal(cp_stacktab_count(t), 2);
    cp_stacktab_free(t);
}

static void test_depth_keeps_innermost(void **state) {
    (void)state;
    cp_stacktab *t = cp_stacktab_new(10);
    cp_sframe deep[CP_STACK_MAX_DEPTH + 40];
    for (uint32_t i = 0; i < CP_STACK_MAX_DEPTH + 40; i++)
        deep[i] = (cp_sframe){i + 1, i};
    uint32_t id = cp_stacktab_intern(t, deep, CP_STACK_MAX_DEPTH + 40);
    const cp_sframe *f;
    uint32_t n;
    assert_int_equal(cp_stacktab_get(t, id, &f, &n), 0);
    assert_int_equal(n, CP_STACK_MAX_DEPTH);
    assert_int_equal(f[0].site, 1);
    assert_int_equal(cp_stacktab_intern(t, deep, CP_STACK_MAX_DEPTH), id);
    cp_stacktab_free(t);
}

/* Frames handed out stay where they are while 100k more stacks (many
 * chunks, several slot-array growths) are interned; reset gives memory back
 * and ids start again at 1. */
static void test_frames_stable_and_reset(void **state) {
    (void)state;
    cp_stacktab *t = cp_stacktab_new(1u << 20);
    cp_sframe s0[4] = {{9, 1}, {8, 2}, {7, 3}, {6, 4}};
    assert_int_equal(cp_stacktab_intern(t, s0, 4), 1);
    const cp_sframe *f0;
    uint32_t n0;
    assert_int_equal(cp_stacktab_get(t, 1, &f0, &n0), 0);
    for (uint32_t i = 0; i < 100000; i++) {
        cp_sframe s[3] = {{i + 100, i}, {2, 5}, {1, 6}};
        assert_int_equal(cp_stacktab_intern(t, s, 3), i + 2);
    }
    const cp_sframe *f1;
    uint32_t n1;
    assert_int_equal(cp_stacktab_get(t, 1, &f1, &n1), 0);
    assert_ptr_equal(f0, f1);
    assert_memory_equal(f0, s0, sizeof s0);
    cp_sframe probe[3] = {{50100, 50000}, {2, 5}, {1, 6}};
    assert_int_equal(cp_stacktab_intern(t, probe, 3), 50002);
    uint64_t big = cp_stacktab_bytes(t);
    assert_true(big > 100000 * 3 * sizeof(cp_sframe));
    cp_stacktab_reset(t);
    assert_int_equal(cp_stacktab_count(t), 0);
    assert_true(cp_stacktab_bytes(t) < 1024 * 64);
    assert_int_equal(cp_stacktab_intern(t, probe, 3), 1);
    cp_stacktab_free(t);
}

typedef struct rw_arg {
    cp_stacktab *t;
    _Atomic int done;
} rw_arg;

static void *writer(void *p) {
    rw_arg *a = p;
    for (uint32_t i = 0; i < 20000; i++) {
        cp_sframe s[2] = {{i + 1, 3}, {77, 4}};
        cp_stacktab_intern(a->t, s, 2);
    }
    atomic_store(&a->done, 1);
    return NULL;
}

static void test_writer_and_reader(void **state) {
    (void)state;
    rw_arg a = {cp_stacktab_new(1u << 20), 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, &a), 0);
    uint64_t checked = 0;
    while (!atomic_load(&a.done) || checked == 0) {
        uint32_t c = cp_stacktab_count(a.t);
        const cp_sframe *f;
        uint32_t n;
        for (uint32_t id = c > 50 ? c - 50 : 1; id <= c; id++) {
            assert_int_equal(cp_stacktab_get(a.t, id, &f, &n), 0);
            assert_int_equal(n, 2);
            assert_int_equal(f[0].site, id); /* writer interns site i+1 as id i+1 */
            assert_int_equal(f[1].site, 77);
            checked++;
        }
    }
    pthread_join(th, NULL);
    assert_int_equal(cp_stacktab_count(a.t), 20000);
    cp_stacktab_free(a.t);
}

/* A fork while no intern is under way keeps the table: the child finds
 * the parent's stacks under their ids and interns new ones. */
static void test_fork_child_keeps_a_quiet_table(void **state) {
    (void)state;
    cp_stacktab *t = cp_stacktab_new(100);
    cp_sframe a[2] = {{3, 4}, {5, 6}}, b[1] = {{9, 9}};
    assert_int_equal(cp_stacktab_intern(t, a, 2), 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = cp_stacktab_atfork_child(t) != 0 || cp_stacktab_intern(t, a, 2) != 1 ||
                  cp_stacktab_intern(t, b, 1) != 2;
        _exit(bad);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    cp_stacktab_free(t);
}

/* Forks while a writer thread interns without pause: whether the child
 * caught the mutex held (table emptied) or not (kept), it never deadlocks
 * and its table works: a stack interned twice gets one id, ids stay
 * dense. */
static void test_fork_during_interning(void **state) {
    (void)state;
#if defined(__SANITIZE_THREAD__)
    /* TSan reports the parent's running writer as a leaked thread when the
     * forked child exits (exit status 66): a fork with threads is outside
     * what TSan supports.  The plain and ASan builds run it. */
    skip();
#endif
    rw_arg a = {cp_stacktab_new(1u << 20), 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, &a), 0);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int emptied = cp_stacktab_atfork_child(a.t);
            uint32_t before = cp_stacktab_count(a.t);
            cp_sframe x[1] = {{0xabcdef, 1}};
            uint32_t id = cp_stacktab_intern(a.t, x, 1);
            int bad = (emptied && before != 0) || id != before + 1 ||
                      cp_stacktab_intern(a.t, x, 1) != id;
            _exit(bad);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    pthread_join(th, NULL);
    cp_stacktab_free(a.t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_dedups_and_ids_are_dense),
        cmocka_unit_test(test_cap_folds_into_other),
        cmocka_unit_test(test_depth_keeps_innermost),
        cmocka_unit_test(test_frames_stable_and_reset),
        cmocka_unit_test(test_writer_and_reader),
        cmocka_unit_test(test_fork_child_keeps_a_quiet_table),
        cmocka_unit_test(test_fork_during_interning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
