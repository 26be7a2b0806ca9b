/* test_model_io.c -- the worker model file (src/model/model_io.c): round
 * trip from a real session, merge into a parent model with worker tags,
 * the node cap, the total reader against truncated and crafted files,
 * directories with junk in them, failed writes, and the whole path from a
 * forked worker's codeprof_session_close_worker to the parent's snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "core/clock.h"
#include "core/session.h"
#include "model/model.h"
#include "model/model_io.h"
#include "model_fixture.h"
#include "session_fixture.h"

/* ---- helpers ---------------------------------------------------------------- */

/* step -> decode x3 (2 ms each) -> resize x3 (1 ms each), plus load x2. */
static void record_work(codeprof_session *s) {
    uint32_t step = gsite("io_step", "io.py", 1, CODEPROF_SITE_SCOPE);
    uint32_t decode = gsite("decode", "io.py", 2, CODEPROF_SITE_SCOPE);
    uint32_t resize = gsite("io_resize", "io.py", 3, CODEPROF_SITE_NATIVE);
    uint32_t load = gsite("io_load", "", 0, CODEPROF_SITE_PYTHON);
    codeprof_scope_begin(s, step, 0);
    for (int i = 0; i < 3; i++) {
        codeprof_scope_begin(s, decode, 0);
        advance(2000000);
        calls(s, resize, 1, 1000000);
        codeprof_scope_end(s, decode, 0);
    }
    codeprof_scope_end(s, step, 0);
    calls(s, load, 2, 500000);
}

static cp_model *recorded_model(void) {
    codeprof_session *s = new_session();
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    record_work(s);
    assert_int_equal(codeprof_session_stop(s), CODEPROF_OK);
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    codeprof_session_free(s);
    return m;
}

static const cp_mfunc *func_named(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (si && strcmp(si->name, name) == 0)
            return &m->funcs[i];
    }
    return NULL;
}

/* Calls of the node named `name` anywhere in `thread`'s tree. */
static uint64_t tree_calls(const cp_model *m, uint32_t thread, const char *name) {
    uint64_t n = 0;
    uint32_t root = m->threads[thread].root;
    /* nodes of one thread are contiguous: root and all after it up to the
     * next root (true of built, decoded and merged models alike) */
    for (uint32_t i = root; i < m->nnodes; i++) {
        if (i > root && m->nodes[i].parent == CP_NONE)
            break;
        const cp_msite *si = cp_model_site(m, m->nodes[i].site);
        if (si && strcmp(si->name, name) == 0)
            n += m->nodes[i].count;
    }
    return n;
}

static char *tmpdir(void) {
    char tmpl[] = "/tmp/cp-model-io-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rmtree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void write_bytes(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void encode(const cp_model *m, int32_t worker, uint8_t **buf, size_t *len) {
    uint64_t cut = 0;
    void *p = NULL;
    assert_int_equal(cp_model_encode(m, worker, 0, &p, len, &cut), CP_MIO_OK);
    assert_int_equal(cut, 0);
    *buf = p;
}

static cp_mio_status decode(const uint8_t *buf, size_t len) {
    cp_model *m = NULL;
    int32_t w = 0;
    cp_mio_status st = cp_model_decode(buf, len, &m, &w);
    assert_true((st == CP_MIO_OK) == (m != NULL));
    cp_model_free(m);
    return st;
}

/* ---- round trip ---------------------------------------------------------------- */

static void test_round_trip_from_a_session(void **state) {
    (void)state;
    cp_model *m = recorded_model();
    m->dropped_events = 7;
    m->alloc_failures = 2;
    char *dir = tmpdir();
    codeprof_error err;
    uint64_t cut = 99;
    assert_int_equal(cp_model_write_file(m, dir, 3, &cut, &err), CP_MIO_OK);
    assert_int_equal(cut, 0);
    char path[512], tmp[512];
    snprintf(path, sizeof path, "%s/%d.cpmodel", dir, m->pid);
    snprintf(tmp, sizeof tmp, "%s/.%d.cpmodel.tmp", dir, m->pid);
    assert_int_equal(access(tmp, F_OK), -1); /* the temporary file is gone */

    cp_model *r = NULL;
    int32_t worker = -5;
    assert_int_equal(cp_model_read_file(path, &r, &worker), CP_MIO_OK);
    assert_int_equal(worker, 3);
    assert_null(r->builder);
    assert_int_equal(r->pid, m->pid);
    assert_string_equal(r->role, "worker-3");
    assert_int_equal(r->nnodes, m->nnodes);
    assert_int_equal(r->nthreads, m->nthreads);
    assert_int_equal(r->nfuncs, m->nfuncs);
    assert_int_equal(r->events_total, m->events_total);
    assert_int_equal(r->dropped_events, 7);
    assert_int_equal(r->alloc_failures, 2);
    assert_int_equal(r->duration_ns, m->duration_ns);
    assert_int_equal(r->start_unix_ns, m->start_unix_ns);
    assert_int_equal(r->nfindings, 0);
    assert_int_equal(r->data.ndatasets, 0); /* the spool carries it */
    const char *names[] = {"io_step", "decode", "io_resize", "io_load"};
    for (int i = 0; i < 4; i++) {
        const cp_mfunc *a = func_named(m, names[i]), *b = func_named(r, names[i]);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a->calls, b->calls);
        assert_int_equal(a->incl_ns, b->incl_ns);
        assert_int_equal(a->self_ns, b->self_ns);
        assert_int_equal(a->p50_ns, b->p50_ns);
        assert_int_equal(a->max_ns, b->max_ns);
        const cp_msite *sa = cp_model_site(m, a->site), *sb = cp_model_site(r, b->site);
        assert_string_equal(sa->file, sb->file);
        assert_int_equal(sa->line, sb->line);
        assert_int_equal(sa->kind, sb->kind);
    }
    assert_int_equal(func_named(r, "decode")->calls, 3);
    assert_int_equal(func_named(r, "decode")->incl_ns, 9000000);
    for (uint32_t t = 0; t < r->nthreads; t++) {
        assert_int_equal(tree_calls(r, t, "decode"), tree_calls(m, t, "decode"));
        assert_int_equal(r->threads[t].worker, -1); /* tagged when merged */
    }
    cp_model_free(r);
    cp_model_free(m);
    rmtree(dir);
    free(dir);
}

static void test_merge_tags_worker_threads(void **state) {
    (void)state;
    cp_model *parent = recorded_model();
    cp_model *worker = recorded_model();
    uint32_t pn = parent->nnodes, pt = parent->nthreads, wt = worker->nthreads;
    uint64_t pev = parent->events_total, wev = worker->events_total;
    worker->pid = 777001; /* as if another process */
    for (uint32_t t = 0; t < worker->nthreads; t++)
        worker->threads[t].pid = 777001;
    char *dir = tmpdir();
    assert_int_equal(cp_model_write_file(worker, dir, 1, NULL, NULL), CP_MIO_OK);
    worker->pid = 777002;
    assert_int_equal(cp_model_write_file(worker, dir, 0, NULL, NULL), CP_MIO_OK);

    assert_int_equal(cp_model_merge_dir(parent, dir, parent->pid), 2);
    assert_int_equal(parent->data.spool_errors, 0);
    assert_int_equal(parent->nthreads, pt + 2 * wt);
    assert_int_equal(parent->nnodes, pn + 2 * worker->nnodes);
    assert_int_equal(parent->events_total, pev + 2 * wev);
    assert_int_equal(parent->merged, 2);
    assert_int_equal(func_named(parent, "decode")->calls, 9);
    assert_int_equal(func_named(parent, "decode")->incl_ns, 27000000);
    int seen[2] = {0, 0};
    for (uint32_t t = 0; t < parent->nthreads; t++) {
        const cp_mthread *th = &parent->threads[t];
        if (t < pt) {
            assert_int_equal(th->worker, -1);
            continue;
        }
        assert_true(th->worker == 0 || th->worker == 1);
        assert_int_equal(th->pid, 777001);
        assert_int_equal(tree_calls(parent, t, "decode"), 3);
        seen[th->worker]++;
    }
    assert_int_equal(seen[0], (int)wt);
    assert_int_equal(seen[1], (int)wt);
    cp_model_free(parent);
    cp_model_free(worker);
    rmtree(dir);
    free(dir);
}

/* ---- the node cap ------------------------------------------------------------ */

static void test_node_cap_cuts_and_counts(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "a", "f.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t b = fx_site(m, "b", "f.py", 2, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 11);
    for (int i = 0; i < 30; i++) { /* root -> 30 x a -> b */
        uint32_t n = fx_node(m, root, a, 1, 100, 50);
        fx_node(m, n, b, 1, 50, 50);
    }
    uint32_t root2 = fx_thread(m, 12);
    fx_node(m, root2, a, 1, 10, 10);
    fx_func(m, a, 31, 3010, 1510, 100);
    fx_func(m, b, 30, 1500, 1500, 50);
    void *buf = NULL;
    size_t len = 0;
    uint64_t cut = 0;
    assert_int_equal(cp_model_encode(m, 2, 10, &buf, &len, &cut), CP_MIO_OK);
    assert_int_equal(cut, m->nnodes - 10); /* thread 2 did not fit at all */
    cp_model *r = NULL;
    int32_t w = -1;
    assert_int_equal(cp_model_decode(buf, len, &r, &w), CP_MIO_OK);
    assert_int_equal(r->nnodes, 10);
    assert_int_equal(r->nthreads, 1);
    assert_int_equal(r->dropped_nodes, m->nnodes - 10);
    assert_int_equal(r->nfuncs, 2); /* the flat table is kept whole */
    /* preorder: root, a, b, a, b, ... */
    assert_int_equal(r->nodes[0].parent, CP_NONE);
    for (uint32_t i = 1; i < 10; i++) {
        const char *want = (i % 2) ? "a" : "b";
        assert_string_equal(cp_model_site(r, r->nodes[i].site)->name, want);
        assert_int_equal(r->nodes[i].parent, (i % 2) ? 0 : i - 1);
    }
    free(buf);
    cp_model_free(r);
    cp_model_free(m);
}

/* ---- the reader is total ---------------------------------------------------------- */

static void test_truncated_and_bit_flipped_files(void **state) {
    (void)state;
    cp_model *m = recorded_model();
    uint8_t *buf;
    size_t len;
    encode(m, 1, &buf, &len);
    assert_int_equal(decode(buf, len), CP_MIO_OK);
    for (size_t n = 0; n < len; n++) /* every truncation */
        assert_int_not_equal(decode(buf, n), CP_MIO_OK);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(decode(longer, len + 1), CP_MIO_EFORMAT); /* stated length */
    free(longer);
    /* every single-bit flip: rejected or decoded into a valid model, never a
     * crash (ASan/UBSan build) */
    int rejected = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            rejected += decode(buf, len) != CP_MIO_OK;
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(rejected > 0);
    free(buf);
    cp_model_free(m);
}

/* Offsets in a file of the fixture below (model_io.h gives the layout). */
#define HDR 192u
static size_t site_bytes(const char *name, const char *file) {
    return 16 + strlen(name) + strlen(file) + 2;
}

static void put8(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* root -> x -> y, root -> z: one thread, four nodes, sites "x", "y", "z". */
static cp_model *small_model(void) {
    cp_model *m = fx_model();
    uint32_t x = fx_site(m, "x", "f", 1, CODEPROF_SITE_PYTHON);
    uint32_t y = fx_site(m, "y", "f", 2, CODEPROF_SITE_PYTHON);
    uint32_t z = fx_site(m, "z", "f", 3, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t nx = fx_node(m, root, x, 1, 30, 10);
    fx_node(m, nx, y, 1, 20, 20);
    fx_node(m, root, z, 1, 5, 5);
    fx_func(m, x, 1, 30, 10, 30);
    fx_func(m, y, 1, 20, 20, 20);
    fx_func(m, z, 1, 5, 5, 5);
    return m;
}

static void test_crafted_files_rejected(void **state) {
    (void)state;
    cp_model *m = small_model();
    uint8_t *good;
    size_t len;
    encode(m, 0, &good, &len);
    assert_int_equal(decode(good, len), CP_MIO_OK);
    size_t sites = HDR, threads = sites + 3 * site_bytes("x", "f");
    size_t nodes = threads + 40, node_sz = 172;
    size_t funcs = nodes + 4 * node_sz;
    /* version 2: an empty sampling section (128 bytes), no lines (16) */
    assert_int_equal(funcs + 3 * 148 + 128 + 16 + 8, len);
    uint8_t *b = malloc(len);

#define CRAFT(what, off, put, val)                                                                 \
    do {                                                                                           \
        memcpy(b, good, len);                                                                      \
        put(b + (off), (val));                                                                     \
        assert_int_not_equal(decode(b, len), CP_MIO_OK);                                           \
        (void)(what);                                                                              \
    } while (0)

    CRAFT("magic", 0, put32, 0x4f4d5058u);
    CRAFT("version", 8, put32, 3);
    memcpy(b, good, len); /* a version-1 file: refused as such, not as corrupt */
    put32(b + 8, 1);
    assert_int_equal(decode(b, len), CP_MIO_EVERSION);
    CRAFT("flags", 12, put32, 1);
    CRAFT("stated length", 16, put64, (uint64_t)len - 1);
    CRAFT("worker id", 28, put32, (uint32_t)-2);
    CRAFT("nsites past the bytes", 32, put32, 3000);
    CRAFT("nsites past its bound", 32, put32, CP_MIO_MAX_SITES + 1);
    CRAFT("nthreads > nnodes", 36, put32, 5);
    CRAFT("nnodes past its bound", 40, put32, 0xffffffffu);
    CRAFT("nfuncs > nsites", 44, put32, 4);
    CRAFT("huge duration", 56, put64, CP_MIO_MAX_VALUE + 1);
    CRAFT("approx flag", HDR - 8, put64, 2);
    CRAFT("site kind", sites + 4, put32, CODEPROF_SITE_KIND_COUNT_);
    CRAFT("site name length 0", sites + 8, put32, 0);
    CRAFT("site name length", sites + 8, put32, 2); /* its NUL falls on 'f' */
    CRAFT("site name huge", sites + 8, put32, 0xfffffff0u);
    CRAFT("name without NUL", sites + 17, put32, 0x41414141u);
    /* site 2 renamed "x": still distinct by its line; with line 1, the
     * same site twice */
    memcpy(b, good, len);
    put8(b + sites + site_bytes("x", "f") + 16, 'x');
    assert_int_equal(decode(b, len), CP_MIO_OK);
    put32(b + sites + site_bytes("x", "f"), 1);
    assert_int_equal(decode(b, len), CP_MIO_EFORMAT);
    CRAFT("thread root out of range", threads + 20, put32, 4);
    CRAFT("thread root not a root", threads + 20, put32, 1);
    CRAFT("thread worker", threads + 12, put32, (uint32_t)-7);
    CRAFT("root with a site", nodes, put32, 1);
    CRAFT("site out of range", nodes + node_sz, put32, 4);
    CRAFT("site 0 below the root", nodes + node_sz, put32, 0);
    CRAFT("parent after the node", nodes + node_sz + 4, put32, 2);
    CRAFT("second root", nodes + 3 * node_sz + 4, put32, CP_NONE);
    CRAFT("child loop", nodes + 2 * node_sz + 8, put32, 1);
    CRAFT("first child out of range", nodes + 8, put32, 9);
    CRAFT("sibling loop", nodes + 3 * node_sz + 12, put32, 1);
    CRAFT("sibling shared", nodes + 2 * node_sz + 12, put32, 3);
    CRAFT("wrong depth", nodes + node_sz + 16, put32, 2);
    CRAFT("orphan (root skips its first child)", nodes + 8, put32, 3);
    CRAFT("huge count", nodes + node_sz + 20, put64, UINT64_MAX);
    CRAFT("negative rss", nodes + node_sz + 20 + 11 * 8, put64, (uint64_t)INT64_MIN);
    CRAFT("func site 0", funcs, put32, 0);
    CRAFT("func site out of range", funcs, put32, 4);
    CRAFT("trailer", len - 8, put32, 0);
#undef CRAFT
    free(b);
    free(good);
    cp_model_free(m);
}

/* ---- sampling and lines (format version 2) ---------------------------------- */

/* small_model with samples: x's node and function carry sample fields, two
 * stacks (y<x, z), three timeline samples, lines of x and y with text. */
static cp_model *sampled_model(void) {
    cp_model *m = small_model();
    m->nodes[1].samples = 7;
    m->nodes[1].samples_self = 2;
    m->nodes[1].samples_running = 6;
    m->nodes[1].sampled_ns = 70;
    m->nodes[1].sampled_self_ns = 20;
    m->funcs[0].samples = 7;
    m->funcs[0].sampled_ns = 70;
    m->funcs[0].sampled_self_ns = 20;
    cp_msampling *ms = &m->samp;
    ms->enabled = 1;
    ms->mode = 1;
    ms->interval_ns = 1000000;
    ms->samples = 9;
    ms->samples_running = 6;
    ms->samples_idle = 3;
    ms->threads = 1;
    ms->ticks = 9;
    ms->read_errors = 1;
    ms->sampler_cpu_ns = 12345;
    ms->nframes = 3;
    ms->frames = calloc(3, sizeof *ms->frames);
    ms->frames[0] = (cp_msframe){2, 21}; /* y */
    ms->frames[1] = (cp_msframe){1, 11}; /* x */
    ms->frames[2] = (cp_msframe){3, 31}; /* z */
    ms->nstacks = 3;
    ms->stacks = calloc(3, sizeof *ms->stacks);
    ms->stacks[1] = (cp_mstack){0, 2};
    ms->stacks[2] = (cp_mstack){2, 1};
    ms->ntimeline = 3;
    ms->timeline = calloc(3, sizeof *ms->timeline);
    for (uint32_t i = 0; i < 3; i++)
        ms->timeline[i] = (cp_msample){.t_ns = 1000 + i, .os_tid = 1, .pid = 42, .worker = -1,
                                       .stack = 1 + (i == 2), .weight_ns = 10,
                                       .state = CP_SAMPF_RUNNING};
    assert_int_equal(cp_mlines_add(&m->lines, 1, 11, 0, 0, 5, 50), 0);
    assert_int_equal(cp_mlines_add(&m->lines, 2, 21, 3, 300, 2, 20), 0);
    cp_mlines_finish(&m->lines);
    m->lines.exact = 1;
    assert_int_equal(cp_mlines_set_text(&m->lines, 0, "    y(frame)", 12), 0);
    return m;
}

static void test_sampling_and_lines_round_trip(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    uint8_t *buf;
    size_t len;
    encode(m, 3, &buf, &len);
    cp_model *r = NULL;
    int32_t w = -9;
    assert_int_equal(cp_model_decode(buf, len, &r, &w), CP_MIO_OK);
    assert_int_equal(w, 3);
    assert_int_equal(r->nodes[1].samples, 7);
    assert_int_equal(r->nodes[1].samples_self, 2);
    assert_int_equal(r->nodes[1].samples_running, 6);
    assert_int_equal(r->nodes[1].sampled_ns, 70);
    assert_int_equal(r->nodes[1].sampled_self_ns, 20);
    assert_int_equal(r->funcs[0].samples, 7);
    assert_int_equal(r->funcs[0].sampled_self_ns, 20);
    const cp_msampling *a = &m->samp, *b = &r->samp;
    assert_int_equal(b->enabled, 1);
    assert_int_equal(b->mode, 1);
    assert_int_equal(b->interval_ns, a->interval_ns);
    assert_int_equal(b->samples, 9);
    assert_int_equal(b->samples_idle, 3);
    assert_int_equal(b->read_errors, 1);
    assert_int_equal(b->sampler_cpu_ns, 12345);
    assert_int_equal(b->nframes, 3);
    assert_int_equal(b->nstacks, 3);
    assert_memory_equal(b->frames, a->frames, 3 * sizeof *a->frames);
    assert_memory_equal(b->stacks, a->stacks, 3 * sizeof *a->stacks);
    assert_int_equal(b->ntimeline, 3);
    assert_memory_equal(b->timeline, a->timeline, 3 * sizeof *a->timeline);
    assert_int_equal(r->lines.n, 2);
    assert_int_equal(r->lines.exact, 1);
    assert_int_equal(r->lines.v[0].samples, 5);
    assert_int_equal(r->lines.v[1].hits, 3);
    assert_int_equal(r->lines.v[1].time_ns, 300);
    assert_string_equal(cp_mlines_text(&r->lines, 0), "    y(frame)");
    assert_null(cp_mlines_text(&r->lines, 1));

    /* merged into a parent: samples tagged with the worker, stacks named */
    cp_model *p = small_model();
    assert_int_equal(cp_model_merge(p, r, w), 0);
    assert_int_equal(p->samp.ntimeline, 3);
    assert_int_equal(p->samp.timeline[0].worker, 3);
    const cp_mstack *st = &p->samp.stacks[p->samp.timeline[0].stack];
    assert_int_equal(st->n, 2);
    assert_string_equal(cp_model_site(p, p->samp.frames[st->first].site)->name, "y");
    assert_int_equal(p->lines.n, 2);
    cp_model_free(p);
    cp_model_free(r);

    /* every truncation and bit flip of the larger file: no crash, no leak */
    for (size_t n = 0; n < len; n++)
        assert_int_not_equal(decode(buf, n), CP_MIO_OK);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        (void)decode(buf, len);
        buf[i] ^= 0x10;
    }
    free(buf);
    cp_model_free(m);
}

static void test_crafted_sampling_rejected(void **state) {
    (void)state;
    cp_model *m = sampled_model();
    uint8_t *good;
    size_t len;
    encode(m, 0, &good, &len);
    assert_int_equal(decode(good, len), CP_MIO_OK);
    size_t samp = HDR + 3 * site_bytes("x", "f") + 40 + 4 * 172 + 3 * 148;
    size_t frames = samp + 128, stacks = frames + 3 * 8, tl = stacks + 3 * 8;
    size_t lines = tl + 3 * 36;
    uint8_t *b = malloc(len);
#define CRAFT(off, put, val)                                                                       \
    do {                                                                                           \
        memcpy(b, good, len);                                                                      \
        put(b + (off), (val));                                                                     \
        assert_int_not_equal(decode(b, len), CP_MIO_OK);                                           \
    } while (0)
    CRAFT(samp, put32, 2);                    /* enabled not a flag */
    CRAFT(samp + 12, put32, 4);               /* nframes past the bytes */
    CRAFT(samp + 16, put32, 0xffffffffu);     /* nstacks past its bound */
    CRAFT(samp + 20, put32, 1000);            /* ntimeline past the bytes */
    CRAFT(samp + 24, put64, CP_MIO_MAX_VALUE + 1); /* a counter */
    CRAFT(frames, put32, 4);                  /* frame site out of range */
    CRAFT(stacks + 8, put32, 2);              /* stack 1 runs past the frames */
    CRAFT(stacks + 12, put32, 300);           /* too deep */
    CRAFT(tl + 24, put32, 3);                 /* sample's stack out of range */
    CRAFT(tl + 20, put32, (uint32_t)-5);      /* worker */
    CRAFT(tl + 36, put64, 1);                 /* out of time order */
    CRAFT(tl + 34, put32, 1);                 /* padding */
    CRAFT(lines, put32, 2);                   /* exact not a flag */
    CRAFT(lines + 4, put32, 70000);           /* rows past the bound */
    CRAFT(lines + 16, put32, 0);              /* row site 0 */
    CRAFT(lines + 16, put32, 4);              /* row site out of range */
    CRAFT(lines + 16 + 40, put32, 200);       /* text length past the bytes */
    CRAFT(lines + 16 + 44, put8, '\n');       /* a newline in the text */
    CRAFT(lines + 16 + 44 + 12, put64, 1u | (uint64_t)11 << 32); /* a duplicate row */
#undef CRAFT
    free(b);
    free(good);
    cp_model_free(m);
}

/* The committed fuzz seeds (tests/fuzz/make_model_corpus.py writes them
 * from the documented layout): "valid_*" decode, the others do not. */
static void test_fuzz_seeds_match_the_layout(void **state) {
    (void)state;
    const char *src = getenv("CODEPROF_SOURCE_DIR");
    if (!src)
        skip();
    const char *names[] = {"valid_one_thread",   "valid_two_threads", "valid_empty",
                           "valid_cut_counters", "truncated",         "sibling_loop",
                           "child_loop",         "name_without_nul",  "huge_counts",
                           "length_mismatch",    "bad_trailer",       "valid_sampled",
                           "old_version"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/model/%s", src, names[i]);
        cp_model *m = NULL;
        int32_t w = -9;
        cp_mio_status st = cp_model_read_file(path, &m, &w);
        if (strncmp(names[i], "valid_", 6) == 0) {
            if (st != CP_MIO_OK)
                fail_msg("%s: status %d", names[i], (int)st);
            assert_true(w >= 0);
        } else if (st == CP_MIO_OK) {
            fail_msg("%s decoded", names[i]);
        }
        cp_model_free(m);
    }
    cp_model *m = NULL;
    int32_t w = 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/model/valid_cut_counters", src);
    assert_int_equal(cp_model_read_file(path, &m, &w), CP_MIO_OK);
    assert_int_equal(m->dropped_nodes, 2 + 1); /* dropped + cut */
    assert_int_equal(m->nnodes, 3);
    cp_model_free(m);
}

static void test_directory_with_junk(void **state) {
    (void)state;
    cp_model *parent = small_model();
    cp_model *w = small_model();
    w->pid = 4243;
    char *dir = tmpdir();
    char path[512];
    assert_int_equal(cp_model_write_file(w, dir, 0, NULL, NULL), CP_MIO_OK);
    snprintf(path, sizeof path, "%s/4242.cpmodel", dir); /* the parent's own pid */
    assert_int_equal(cp_model_write_file(parent, dir, 5, NULL, NULL), CP_MIO_OK);
    snprintf(path, sizeof path, "%s/1.cpmodel", dir); /* corrupt */
    write_bytes(path, "CPMODEL\0garbage", 15);
    snprintf(path, sizeof path, "%s/2.cpmodel", dir); /* a FIFO never blocks */
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/3.cpmodel", dir); /* a link is not followed */
    char target[512];
    snprintf(target, sizeof target, "%s/4243.cpmodel", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/4.cpmodel", dir); /* a directory */
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/.9.cpmodel.tmp", dir); /* a write in progress */
    write_bytes(path, "x", 1);

    assert_int_equal(cp_model_merge_dir(parent, dir, 4242), 1);
    assert_int_equal(parent->data.spool_errors, 4);
    assert_int_equal(parent->nthreads, 2);
    assert_int_equal(parent->threads[1].worker, 0);
    assert_int_equal(parent->threads[1].pid, 4242); /* fixture threads keep their pid */
    cp_model_free(parent);
    cp_model_free(w);
    rmtree(dir);
    free(dir);
}

static void test_failed_write_leaves_nothing(void **state) {
    (void)state;
    cp_model *m = small_model();
    codeprof_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(cp_model_write_file(m, "/nonexistent/cp-model-io", 0, NULL, &err),
                     CP_MIO_EWRITE);
    assert_int_equal(err.code, CODEPROF_EIO);
    assert_non_null(strstr(err.message, "/nonexistent/cp-model-io"));
    if (geteuid() != 0) { /* root writes anywhere */
        char *dir = tmpdir();
        assert_int_equal(chmod(dir, 0500), 0);
        assert_int_equal(cp_model_write_file(m, dir, 0, NULL, &err), CP_MIO_EWRITE);
        assert_int_equal(chmod(dir, 0700), 0);
        rmtree(dir);
        free(dir);
    }
    cp_model_free(m);
}

/* ---- a worker process, end to end ------------------------------------------------- */

/* Forks a worker that attaches to `dir` as `wid`, records, closes. */
static pid_t run_worker(codeprof_session *s, const char *dir, int wid) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        codeprof_error err;
        if (codeprof_session_attach_worker(s, dir, wid, &err) != CODEPROF_OK)
            _exit(2);
        record_work(s);
        if (codeprof_session_close_worker(s) != CODEPROF_OK)
            _exit(3);
        if (codeprof_session_close_worker(s) != CODEPROF_OK) /* twice: harmless */
            _exit(4);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return pid;
}

static void test_worker_close_reaches_parent_snapshot(void **state) {
    (void)state;
    char *dir = tmpdir();
    codeprof_session *s = new_session();
    assert_int_equal(codeprof_session_set_spool_dir(s, dir), CODEPROF_OK);
    assert_int_equal(codeprof_session_start(s), CODEPROF_OK);
    pid_t w0 = run_worker(s, dir, 0);
    pid_t w1 = run_worker(s, dir, 1);
    pid_t w2 = run_worker(s, dir, 2);
    char path[512];
    snprintf(path, sizeof path, "%s/%d.cpmodel", dir, (int)w2);
    assert_int_equal(unlink(path), 0); /* as if its write had failed */
    cp_model *m = cp_session_snapshot(s);
    assert_non_null(m);
    assert_int_equal(m->merged, 2);
    assert_int_equal(m->data.spool_errors, 1); /* w2: clean spool, no model */
    int found[2] = {0, 0};
    for (uint32_t t = 0; t < m->nthreads; t++) {
        const cp_mthread *th = &m->threads[t];
        if (th->worker < 0) {
            assert_int_equal(th->pid, m->pid);
            continue;
        }
        assert_true(th->worker <= 1);
        assert_int_equal(th->pid, th->worker == 0 ? (int)w0 : (int)w1);
        if (tree_calls(m, t, "decode") == 3)
            found[th->worker] = 1;
    }
    assert_true(found[0]);
    assert_true(found[1]);
    /* the worker's sibling models were not merged into its own */
    assert_int_equal(func_named(m, "decode")->calls, 6);
    cp_model_free(m);
    codeprof_session_stop(s);
    codeprof_session_free(s);
    rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_from_a_session),
        cmocka_unit_test(test_merge_tags_worker_threads),
        cmocka_unit_test(test_node_cap_cuts_and_counts),
        cmocka_unit_test(test_truncated_and_bit_flipped_files),
        cmocka_unit_test(test_crafted_files_rejected),
        cmocka_unit_test(test_sampling_and_lines_round_trip),
        cmocka_unit_test(test_crafted_sampling_rejected),
        cmocka_unit_test(test_fuzz_seeds_match_the_layout),
        cmocka_unit_test(test_directory_with_junk),
        cmocka_unit_test(test_failed_write_leaves_nothing),
        cmocka_unit_test(test_worker_close_reaches_parent_snapshot),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
