/* test_atomic_file.c -- temporary report files: a failed save leaves none,
 * and temp files of a process killed in the middle of a save
 * ("<report>.tmp.<deadpid>[.<n>]") are removed by the next save next to the
 * same report, while those of live processes are kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/atomic_file.h"

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

static void touch(const char *p) {
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "partial", 7), 7);
    close(fd);
}

/* A pid that certainly belongs to no process: a child that has been reaped. */
static pid_t dead_pid(void) {
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    assert_true(p > 0);
    waitpid(p, NULL, 0);
    return p;
}

static void test_stale_temps_of_dead_processes_removed(void **state) {
    (void)state;
    char dir[] = "/tmp/codeprof-atomic-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], stale1[300], stale2[300], live[300], other[300], lookalike[300];
    snprintf(path, sizeof path, "%s/report.json", dir);
    pid_t dead = dead_pid();
    snprintf(stale1, sizeof stale1, "%s.tmp.%d", path, (int)dead);      /* old naming */
    snprintf(stale2, sizeof stale2, "%s.tmp.%d.3", path, (int)dead);    /* new naming */
    snprintf(live, sizeof live, "%s.tmp.%d.0", path, (int)getppid());   /* a live process */
    snprintf(other, sizeof other, "%s/other.json.tmp.%d", dir, (int)dead); /* another report */
    snprintf(lookalike, sizeof lookalike, "%s.tmp.%dx", path, (int)dead);  /* not ours */
    touch(stale1);
    touch(stale2);
    touch(live);
    touch(other);
    touch(lookalike);
    codeprof_error err = {0};
    assert_int_equal(cp_write_file_atomic(path, "{}", 2, &err), CODEPROF_OK);
    assert_true(exists(path));
    assert_false(exists(stale1));
    assert_false(exists(stale2));
    assert_true(exists(live));
    assert_true(exists(other));     /* only temps of this report are touched */
    assert_true(exists(lookalike)); /* only "<pid>" or "<pid>.<n>" suffixes */
    assert_int_equal(count_entries(dir), 4);
    unlink(path);
    unlink(live);
    unlink(other);
    unlink(lookalike);
    rmdir(dir);
}

static void test_failed_save_leaves_no_temp(void **state) {
    (void)state;
    char dir[] = "/tmp/codeprof-atomic-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    /* the target is a directory: rename fails after the temp was written */
    snprintf(path, sizeof path, "%s/target", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/x", path);
    touch(sub); /* non-empty: rename over it fails */
    codeprof_error err = {0};
    assert_int_equal(cp_write_file_atomic(path, "{}", 2, &err), CODEPROF_EIO);
    assert_string_equal(err.field, "path");
    assert_int_equal(count_entries(dir), 1); /* just the directory */
    unlink(sub);
    rmdir(path);
    rmdir(dir);
}

/* A symlink planted at a temp name is never followed. */
static void test_planted_symlink_not_followed(void **state) {
    (void)state;
    char dir[] = "/tmp/codeprof-atomic-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], victim[300], link[300];
    snprintf(path, sizeof path, "%s/r.json", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    touch(victim);
    for (unsigned n = 0; n < 8; n++) { /* whatever this process's next numbers are */
        snprintf(link, sizeof link, "%s.tmp.%d.%u", path, (int)getpid(), n);
        if (symlink(victim, link) != 0)
            fail();
    }
    codeprof_error err = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(cp_write_file_atomic(path, "{\"a\":1}", 7, &err), CODEPROF_OK);
    char buf[16] = {0};
    FILE *f = fopen(victim, "r");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof buf - 1, f), 7);
    fclose(f);
    assert_string_equal(buf, "partial"); /* untouched */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_temps_of_dead_processes_removed),
        cmocka_unit_test(test_failed_save_leaves_no_temp),
        cmocka_unit_test(test_planted_symlink_not_followed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
