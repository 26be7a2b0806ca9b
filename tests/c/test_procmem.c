/* test_procmem.c -- /proc readers (src/memory/procmem.c): parsing fixture
 * text, the fallbacks smaps_rollup -> smaps -> statm on a fixture /proc,
 * the live process, an exited process, machine memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "memory/procmem.h"

#define KB 1024ull

static const char rollup_text[] =
    "55d0c0a00000-7ffd5b7fe000 ---p 00000000 00:00 0                          [rollup]\n"
    "Rss:              204800 kB\n"
    "Pss:              150000 kB\n"
    "Pss_Anon:         120000 kB\n"
    "Pss_File:          30000 kB\n"
    "Pss_Shmem:             0 kB\n"
    "Shared_Clean:      60000 kB\n"
    "Shared_Dirty:      40000 kB\n"
    "Private_Clean:      4800 kB\n"
    "Private_Dirty:    100000 kB\n"
    "Referenced:       204800 kB\n"
    "Anonymous:        140000 kB\n"
    "LazyFree:              0 kB\n"
    "AnonHugePages:         0 kB\n"
    "Swap:                 12 kB\n"
    "SwapPss:              12 kB\n"
    "Locked:                0 kB\n";

/* smaps: two mappings (sums), a Pss_Dirty line that is not Pss */
static const char smaps_text[] =
    "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/python3\n"
    "Size:                328 kB\n"
    "Rss:                 300 kB\n"
    "Pss:                 100 kB\n"
    "Pss_Dirty:            99 kB\n"
    "Shared_Clean:        290 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:        10 kB\n"
    "Private_Dirty:         0 kB\n"
    "VmFlags: rd ex mr mw me dw\n"
    "7f0000000000-7f0000100000 rw-p 00000000 00:00 0\n"
    "Size:               1024 kB\n"
    "Rss:                1000 kB\n"
    "Pss:                1000 kB\n"
    "Shared_Clean:          0 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:         0 kB\n"
    "Private_Dirty:      1000 kB"; /* no final newline */

static void test_parse_rollup(void **state) {
    (void)state;
    cp_procmem pm;
    assert_int_equal(cp_procmem_parse_smaps(rollup_text, strlen(rollup_text), &pm), 1);
    assert_int_equal(pm.rss, 204800 * KB);
    assert_int_equal(pm.pss, 150000 * KB); /* not Pss_Anon etc. */
    assert_int_equal(pm.shared_clean, 60000 * KB);
    assert_int_equal(pm.shared_dirty, 40000 * KB);
    assert_int_equal(pm.private_clean, 4800 * KB);
    assert_int_equal(pm.private_dirty, 100000 * KB);
    assert_int_equal(pm.uss, 104800 * KB);
    assert_int_equal(pm.swap, 12 * KB);
    assert_true(pm.has_pss);
}

static void test_parse_smaps_sums_mappings(void **state) {
    (void)state;
    cp_procmem pm;
    assert_int_equal(cp_procmem_parse_smaps(smaps_text, strlen(smaps_text), &pm), 2);
    assert_int_equal(pm.rss, 1300 * KB);
    assert_int_equal(pm.pss, 1100 * KB);
    assert_int_equal(pm.shared_clean, 290 * KB);
    assert_int_equal(pm.uss, 1010 * KB); /* last line had no newline */
}

static void test_parse_rejects_other_text(void **state) {
    (void)state;
    cp_procmem pm;
    const char junk[] = "hello\nRssx: 12 kB\nRss\n:Rss: 5 kB\n";
    assert_int_equal(cp_procmem_parse_smaps(junk, strlen(junk), &pm), 0);
    assert_int_equal(pm.rss, 0);
    assert_int_equal(cp_procmem_parse_smaps("", 0, &pm), 0);
    /* a number too large for bytes saturates instead of wrapping */
    const char big[] = "Rss: 99999999999999999999999 kB\n";
    assert_int_equal(cp_procmem_parse_smaps(big, strlen(big), &pm), 1);
    assert_true(pm.rss > (1ull << 60));
}

static void test_parse_statm_and_meminfo(void **state) {
    (void)state;
    cp_procmem pm;
    const char statm[] = "25000 5000 1000 300 0 9000 0\n";
    assert_int_equal(cp_procmem_parse_statm(statm, strlen(statm), 4096, &pm), 0);
    assert_int_equal(pm.rss, 5000ull * 4096);
    assert_int_equal(pm.shared_clean, 1000ull * 4096);
    assert_int_equal(pm.uss, 4000ull * 4096);
    assert_false(pm.has_pss);
    assert_int_equal(cp_procmem_parse_statm("12 ", 3, 4096, &pm), -1);
    const char mi[] = "MemTotal:       16314260 kB\nMemFree:  1 kB\n";
    uint64_t total = 0;
    assert_int_equal(cp_procmem_parse_meminfo(mi, strlen(mi), &total), 0);
    assert_int_equal(total, 16314260ull * KB);
    assert_int_equal(cp_procmem_parse_meminfo("MemFree: 3 kB\n", 14, &total), -1);
}

/* ---- a fixture /proc ----------------------------------------------------- */

static char root[64];

static void put_file(const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    *slash = 0;
    mkdir(dir, 0700);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int make_root(void **state) {
    (void)state;
    snprintf(root, sizeof root, "/tmp/cp_procmem_XXXXXX");
    assert_non_null(mkdtemp(root));
    put_file("100/smaps_rollup", rollup_text);
    put_file("100/statm", "1 1 1 0 0 0 0\n");
    put_file("200/smaps", smaps_text); /* an older kernel: no rollup */
    put_file("200/statm", "1 1 1 0 0 0 0\n");
    put_file("300/statm", "25000 5000 1000 300 0 9000 0\n"); /* neither */
    put_file("400/smaps_rollup", "");                        /* exited, not reaped */
    put_file("400/statm", "0 0 0 0 0 0 0\n");
    return 0;
}

static int remove_root(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_fixture_fallbacks(void **state) {
    (void)state;
    cp_procmem pm;
    assert_int_equal(cp_procmem_read(root, 100, CP_PROCMEM_ROLLUP, &pm), 0);
    assert_int_equal(pm.source, CP_PROCMEM_ROLLUP);
    assert_int_equal(pm.uss, 104800 * KB);
    assert_int_equal(cp_procmem_read(root, 200, CP_PROCMEM_ROLLUP, &pm), 0);
    assert_int_equal(pm.source, CP_PROCMEM_SMAPS);
    assert_int_equal(pm.rss, 1300 * KB);
    assert_int_equal(cp_procmem_read(root, 300, CP_PROCMEM_ROLLUP, &pm), 0);
    assert_int_equal(pm.source, CP_PROCMEM_STATM);
    assert_int_equal(pm.rss, 5000ull * (uint64_t)sysconf(_SC_PAGESIZE));
    /* asked for statm only */
    assert_int_equal(cp_procmem_read(root, 100, CP_PROCMEM_STATM, &pm), 0);
    assert_int_equal(pm.source, CP_PROCMEM_STATM);
    /* a zombie reads empty: gone */
    errno = 0;
    assert_int_equal(cp_procmem_read(root, 400, CP_PROCMEM_ROLLUP, &pm), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(pm.source, CP_PROCMEM_NONE);
    /* no such process */
    assert_int_equal(cp_procmem_read(root, 999, CP_PROCMEM_ROLLUP, &pm), -1);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(cp_procmem_source_name(CP_PROCMEM_SMAPS), "smaps");
}

/* A line longer than the reader's buffer (a mapping with a very long path)
 * is skipped, the fields after it still count. */
static void test_fixture_long_line(void **state) {
    (void)state;
    size_t n = 40000;
    char *text = malloc(n + 200);
    assert_non_null(text);
    memset(text, 'x', n);
    memcpy(text, "7f00-7f01 r--p 0 00:00 0 /", 26);
    snprintf(text + n, 200, "\nRss: 8 kB\nPrivate_Dirty: 8 kB\n");
    put_file("500/smaps", text);
    put_file("500/statm", "1 1 1 0 0 0 0\n");
    free(text);
    cp_procmem pm;
    assert_int_equal(cp_procmem_read(root, 500, CP_PROCMEM_ROLLUP, &pm), 0);
    assert_int_equal(pm.rss, 8 * KB);
    assert_int_equal(pm.uss, 8 * KB);
}

/* ---- the live system ------------------------------------------------------ */

static void test_live_self(void **state) {
    (void)state;
    uint64_t rss = codeprof_rss_bytes();
    assert_true(rss > 100 * KB);
    cp_procmem pm;
    assert_int_equal(cp_procmem_read(NULL, 0, CP_PROCMEM_ROLLUP, &pm), 0);
    assert_true(pm.source == CP_PROCMEM_ROLLUP || pm.source == CP_PROCMEM_SMAPS);
    assert_true(pm.rss > 100 * KB);
    assert_true(pm.uss > 0 && pm.uss <= pm.rss);
    assert_true(pm.pss >= pm.uss - pm.uss / 4 && pm.pss <= pm.rss + KB);
    /* 64 MiB touched shows up in USS (generous bound: half of it) */
    size_t big = 64u << 20;
    char *p = malloc(big);
    assert_non_null(p);
    memset(p, 1, big);
    cp_procmem after;
    assert_int_equal(cp_procmem_read(NULL, 0, CP_PROCMEM_ROLLUP, &after), 0);
    assert_true(after.uss > pm.uss + big / 2);
    assert_true(codeprof_rss_bytes() > rss + big / 2);
    free(p);
    assert_true(cp_procmem_machine_bytes() > (64ull << 20));
}

static void test_live_exited_child(void **state) {
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    cp_procmem pm;
    assert_int_equal(cp_procmem_read(NULL, pid, CP_PROCMEM_ROLLUP, &pm), -1);
    assert_true(errno == ENOENT || errno == ESRCH);
    assert_int_equal(pm.source, CP_PROCMEM_NONE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rollup),
        cmocka_unit_test(test_parse_smaps_sums_mappings),
        cmocka_unit_test(test_parse_rejects_other_text),
        cmocka_unit_test(test_parse_statm_and_meminfo),
        cmocka_unit_test(test_fixture_fallbacks),
        cmocka_unit_test(test_fixture_long_line),
        cmocka_unit_test(test_live_self),
        cmocka_unit_test(test_live_exited_child),
    };
    return cmocka_run_group_tests(tests, make_root, remove_root);
}
