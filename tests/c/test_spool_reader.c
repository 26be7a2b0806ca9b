/* test_spool_reader.c -- the spool reader is total: crafted spools (site
 * ids >= 2^31, site names without NUL, huge durations and counts, bad
 * headers, truncated files, a FIFO or a symlink named *.cpspool) are
 * rejected or skipped record by record, quickly and without reading out of
 * bounds (run under ASan in make test-asan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/datalog.h"
#include "data/spool_reader.h"

#define MAXREC 64

/* A spool under construction: header + records, in memory. */
typedef struct spool {
    cp_spool_header h;
    char pad[4096 - sizeof(cp_spool_header)];
    cp_drec r[MAXREC];
    size_t n;
} spool;

static void spool_init(spool *s) {
    memset(s, 0, sizeof *s);
    memcpy(s->h.magic, CP_SPOOL_MAGIC, 8);
    s->h.version = CP_SPOOL_VERSION;
    s->h.pid = 4242;
    s->h.worker = 3;
    s->h.closed = 1;
    s->h.rec_off = 4096;
}

static size_t spool_len(const spool *s) { return 4096 + s->n * sizeof(cp_drec); }

static cp_drec *add(spool *s, uint16_t type) {
    assert_true(s->n < MAXREC);
    cp_drec *r = &s->r[s->n++];
    r->commit = CP_DREC_COMMITTED;
    r->type = type;
    return r;
}

/* A SITE record and its STR records carrying `text` of `len` bytes. */
static void add_site_raw(spool *s, uint32_t site, const char *text, size_t len, uint64_t aux) {
    cp_drec *r = add(s, CP_DREC_SITE);
    r->flags = 4; /* dataset */
    r->u.r.site = site;
    r->u.r.index = 7;
    r->u.r.aux = aux;
    for (size_t off = 0; off < len; off += 56) {
        cp_drec *t = add(s, CP_DREC_STR);
        memcpy(t->u.text, text + off, len - off < 56 ? len - off : 56);
    }
}

static void add_site(spool *s, uint32_t site, const char *name, const char *file) {
    char buf[256];
    size_t ln = strlen(name) + 1, lf = strlen(file) + 1;
    memcpy(buf, name, ln);
    memcpy(buf + ln, file, lf);
    add_site_raw(s, site, buf, ln + lf, ln + lf);
}

static cp_drec *add_item(spool *s, uint32_t site, int64_t index, uint64_t t, uint64_t dur) {
    cp_drec *r = add(s, CP_DREC_ITEM);
    r->u.r.site = site;
    r->u.r.index = index;
    r->u.r.t_ns = t;
    r->u.r.dur_ns = dur;
    return r;
}

typedef struct seen {
    int nsites, nrecs;
    char name[128], file[128];
    uint32_t line;
    cp_drec last;
    uint64_t sum;
} seen;

static uint32_t on_site(void *ctx, const char *name, const char *file, uint32_t line,
                        codeprof_site_kind kind) {
    seen *z = ctx;
    (void)kind;
    z->nsites++;
    snprintf(z->name, sizeof z->name, "%s", name);
    snprintf(z->file, sizeof z->file, "%s", file);
    z->line = line;
    return 100 + (uint32_t)z->nsites;
}

static void on_rec(void *ctx, const cp_drec *r) {
    seen *z = ctx;
    z->nrecs++;
    z->last = *r;
    z->sum += r->u.r.dur_ns;
}

static cp_spool_status decode(const spool *s, seen *z, cp_spool_info *info) {
    memset(z, 0, sizeof *z);
    cp_spool_visitor v = {on_site, on_rec, z};
    return cp_spool_decode(s, spool_len(s), &v, info);
}

static void test_valid_spool_maps_sites(void **state) {
    (void)state;
    static spool s;
    spool_init(&s);
    add_site(&s, 5, "VideoDataset", "ds.py");
    add_item(&s, 5, 17, 1000, 250);
    cp_drec *b = add(&s, CP_DREC_BATCH);
    b->u.r.site = 5;
    b->u.r.index = 8;
    seen z;
    cp_spool_info info;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_OK);
    assert_int_equal(z.nsites, 1);
    assert_string_equal(z.name, "VideoDataset");
    assert_string_equal(z.file, "ds.py");
    assert_int_equal(z.line, 7);
    assert_int_equal(z.nrecs, 2);
    assert_int_equal(info.records, 2);
    assert_int_equal(info.bad, 0);
    assert_int_equal(info.worker, 3);
    assert_int_equal(info.pid, 4242);
    assert_true(info.closed);
    assert_int_equal(z.last.u.r.site, 101); /* mapped to the local id */
}

/* Regression: a site id >= 2^31 made the reader grow its site map by
 * doubling a uint32 (never terminating) -- every report hung. */
static void test_huge_site_ids_rejected_fast(void **state) {
    (void)state;
    static spool s;
    spool_init(&s);
    add_site(&s, 0x80000000u, "evil", "e.py");
    add_site(&s, 0xffffffffu, "evil2", "e.py");
    add_site(&s, CP_SPOOL_MAX_SITE_ID, "evil3", "e.py");
    add_item(&s, 0x80000000u, 1, 1, 1);
    add_item(&s, 0xffffffffu, 1, 1, 1);
    add_site(&s, 0, "zero", "z.py"); /* 0 is never a site */
    alarm(20);
    seen z;
    cp_spool_info info;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_OK);
    alarm(0);
    assert_int_equal(z.nsites, 0);
    assert_int_equal(z.nrecs, 0);
    /* 4 SITE records with their STR records (orphans now), 2 items */
    assert_true(info.bad >= 6);
}

/* Regression: a name or file without NUL was read past its buffer. */
static void test_site_text_without_nul(void **state) {
    (void)state;
    static spool s;
    char text[112];
    spool_init(&s);
    memset(text, 'A', sizeof text);
    add_site_raw(&s, 9, text, 56, 56); /* no NUL at all */
    memcpy(text, "name", 5);           /* "name\0" then a file without NUL */
    add_site_raw(&s, 10, text, 112, 112);
    add_site_raw(&s, 11, "\0f.py", 6, 6); /* empty name */
    add_item(&s, 9, 0, 1, 1);
    add_item(&s, 10, 0, 1, 1);
    seen z;
    cp_spool_info info;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_OK);
    assert_int_equal(z.nsites, 0);
    assert_int_equal(z.nrecs, 0);
    assert_int_equal(info.bad, 5);
}

static void test_bad_counts_and_lengths(void **state) {
    (void)state;
    static spool s;
    spool_init(&s);
    add_site_raw(&s, 3, "n\0f\0", 4, (uint64_t)1 << 40); /* text length absurd */
    add_site_raw(&s, 4, "n\0f\0", 4, 1);                  /* too short */
    cp_drec *k = add(&s, CP_DREC_SITE);                   /* kind out of range */
    k->flags = 999;
    k->u.r.site = 6;
    k->u.r.aux = 4;
    k->u.r.index = 1;
    add_site_raw(&s, 7, "n\0f\0", 4, 4);
    s.r[s.n - 2].u.r.index = -1; /* negative line */
    add_site(&s, 8, "ok", "ok.py");
    cp_drec *b = add(&s, CP_DREC_BATCH);
    b->u.r.site = 8;
    b->u.r.index = -5; /* negative item count */
    b = add(&s, CP_DREC_BATCH);
    b->u.r.site = 8;
    b->u.r.index = INT64_MAX; /* absurd item count: would overflow sums */
    add(&s, 77);              /* unknown type */
    add(&s, CP_DREC_STR);     /* orphan text */
    seen z;
    cp_spool_info info;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_OK);
    assert_int_equal(z.nsites, 1); /* only "ok" */
    assert_int_equal(z.nrecs, 0);
    assert_true(info.bad >= 8);
}

/* Regression: durations near 2^64 wrapped sums and spans. */
static void test_huge_durations(void **state) {
    (void)state;
    static spool s;
    spool_init(&s);
    add_site(&s, 2, "ds", "d.py");
    add_item(&s, 2, 0, 10, UINT64_MAX);
    add_item(&s, 2, 1, UINT64_MAX - 5, 10);
    add_item(&s, 2, 2, 10, CP_SPOOL_MAX_DUR_NS + 1);
    for (int i = 0; i < 40; i++) /* 40 x 2^46 > 2^50: the sum is capped */
        add_item(&s, 2, 3, 10, CP_SPOOL_MAX_DUR_NS);
    seen z;
    cp_spool_info info;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_OK);
    assert_int_equal(z.nrecs, (int)(CP_SPOOL_MAX_SUM_NS / CP_SPOOL_MAX_DUR_NS));
    assert_true(z.sum <= CP_SPOOL_MAX_SUM_NS);
    assert_int_equal(info.bad, 3 + 40 - z.nrecs);
}

static void test_bad_headers(void **state) {
    (void)state;
    static spool s;
    seen z;
    cp_spool_info info;
    spool_init(&s);
    s.h.version = 3;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_EHEADER);
    spool_init(&s);
    s.h.rec_off = 100; /* not a multiple of a record */
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_EHEADER);
    s.h.rec_off = 0xfffffff0u; /* far past the file */
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_EHEADER);
    s.h.rec_off = 32; /* inside the header */
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_EHEADER);
    spool_init(&s);
    s.h.magic[0] = 'X';
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_EHEADER);
    spool_init(&s);
    cp_spool_visitor v = {on_site, on_rec, &z};
    assert_int_equal(cp_spool_decode(&s, 63, &v, &info), CP_SPOOL_EHEADER);
    /* a valid header and records past its end: nothing, no error */
    assert_int_equal(cp_spool_decode(&s, 64, &v, &info), CP_SPOOL_OK);
    /* the error the worker recorded is reported */
    s.h.error = ENOSPC;
    s.h.error_op = CP_SPOOL_OP_FALLOCATE;
    s.h.dropped = 12;
    assert_int_equal(decode(&s, &z, &info), CP_SPOOL_OK);
    assert_int_equal(info.error, ENOSPC);
    assert_int_equal(info.dropped, 12);
    assert_string_equal(cp_spool_op_name(info.error_op), "posix_fallocate");
}

static char tmpdir[64];

static int setup_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cp-spool-reader-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *buf, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* Every cut of a valid file (mid-header, mid-record, mid-site) reads
 * cleanly, delivering only whole, valid records. */
static void test_truncated_files(void **state) {
    (void)state;
    static spool s;
    spool_init(&s);
    add_site(&s, 5, "a-rather-long-dataset-name-that-needs-two-text-records-to-hold", "x.py");
    for (int i = 0; i < 4; i++)
        add_item(&s, 5, i, 1000, 10);
    char path[128];
    snprintf(path, sizeof path, "%s/1.cpspool", tmpdir);
    size_t full = spool_len(&s);
    for (size_t cut = 0; cut <= full; cut += 13) {
        write_file(path, &s, cut);
        seen z;
        memset(&z, 0, sizeof z);
        cp_spool_visitor v = {on_site, on_rec, &z};
        cp_spool_info info;
        cp_spool_status st = cp_spool_read_file(path, &v, &info);
        if (cut < sizeof(cp_spool_header)) {
            assert_int_equal(st, CP_SPOOL_EHEADER);
            continue;
        }
        assert_int_equal(st, CP_SPOOL_OK);
        size_t whole = cut > 4096 ? (cut - 4096) / sizeof(cp_drec) : 0;
        int expect = whole > 3 ? (int)whole - 3 : 0; /* SITE + 2 STR first */
        assert_int_equal(z.nrecs, expect);
        assert_int_equal(z.nsites, whole >= 3);
    }
}

/* Regression: a FIFO named *.cpspool blocked the report in open(2). */
static void test_fifo_and_symlink_refused(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/77.cpspool", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    cp_spool_info info;
    alarm(20); /* a blocking open would hang here: die instead */
    assert_int_equal(cp_spool_read_file(path, NULL, &info), CP_SPOOL_ENOTREG);
    alarm(0);
    char target[128], link[128];
    static spool s;
    spool_init(&s);
    snprintf(target, sizeof target, "%s/target", tmpdir);
    snprintf(link, sizeof link, "%s/78.cpspool", tmpdir);
    write_file(target, &s, spool_len(&s));
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(cp_spool_read_file(link, NULL, &info), CP_SPOOL_EOPEN);
    assert_int_equal(cp_spool_read_file(target, NULL, &info), CP_SPOOL_OK);
    snprintf(path, sizeof path, "%s", tmpdir); /* a directory */
    assert_true(cp_spool_read_file(path, NULL, &info) != CP_SPOOL_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_spool_maps_sites),
        cmocka_unit_test(test_huge_site_ids_rejected_fast),
        cmocka_unit_test(test_site_text_without_nul),
        cmocka_unit_test(test_bad_counts_and_lengths),
        cmocka_unit_test(test_huge_durations),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test_setup_teardown(test_truncated_files, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_fifo_and_symlink_refused, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
