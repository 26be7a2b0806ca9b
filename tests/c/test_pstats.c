/* test_pstats.c -- the pstats export (src/export/pstats.c) over hand-built
 * models, read back by a small marshal decoder written for the test (the
 * subset the writer uses).  tests/python/integration/test_exports.py
 * additionally loads real files with pstats.Stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "export/pstats.h"
#include "model_fixture.h"
#include "report/strbuf.h"

/* ---- a marshal reader: values as a small tree ------------------------- */

typedef enum { V_INT, V_FLOAT, V_STR, V_TUPLE, V_DICT } vkind;

typedef struct val {
    vkind k;
    uint64_t i;
    double d;
    char s[256];
    struct val *items; /* tuple items, or dict keys and values interleaved */
    uint32_t n;        /* tuple: items; dict: pairs */
} val;

typedef struct rd {
    const unsigned char *p, *end;
    val *refs[4096];
    uint32_t nrefs;
} rd;

static uint32_t u32(rd *r) {
    assert_true(r->end - r->p >= 4);
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

static void read_val(rd *r, val *v);

static void read_val(rd *r, val *v) {
    memset(v, 0, sizeof *v);
    assert_true(r->p < r->end);
    unsigned char c = *r->p++;
    int flag = (c & 0x80) != 0;
    c &= 0x7f;
    if (flag) {
        assert_true(r->nrefs < 4096);
        r->refs[r->nrefs++] = v; /* reserved before the items, as CPython does */
    }
    switch (c) {
    case 'i':
        v->k = V_INT;
        v->i = u32(r);
        break;
    case 'l': {
        v->k = V_INT;
        uint32_t n = u32(r);
        assert_true(n <= 5);
        for (uint32_t k = 0; k < n; k++) {
            uint64_t dgt = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8;
            assert_true(dgt < 0x8000);
            v->i |= dgt << (15 * k);
            r->p += 2;
        }
        break;
    }
    case 'g':
        v->k = V_FLOAT;
        memcpy(&v->d, r->p, 8);
        r->p += 8;
        break;
    case 'u': {
        v->k = V_STR;
        uint32_t n = u32(r);
        assert_true(n < sizeof v->s && (size_t)(r->end - r->p) >= n);
        memcpy(v->s, r->p, n);
        r->p += n;
        break;
    }
    case ')':
        v->k = V_TUPLE;
        v->n = *r->p++;
        v->items = calloc(v->n ? v->n : 1, sizeof *v->items);
        for (uint32_t k = 0; k < v->n; k++)
            read_val(r, &v->items[k]);
        break;
    case '{': {
        v->k = V_DICT;
        uint32_t cap = 16;
        v->items = calloc(2 * cap, sizeof *v->items);
        while (*r->p != '0') {
            if (v->n == cap) {
                /* the values already read may be referenced: never move them */
                fail_msg("test dict larger than its fixed capacity");
            }
            read_val(r, &v->items[2 * v->n]);
            read_val(r, &v->items[2 * v->n + 1]);
            v->n++;
        }
        r->p++;
        break;
    }
    case 'r': {
        uint32_t idx = u32(r);
        assert_true(idx < r->nrefs);
        const val *src = r->refs[idx];
        *v = *src; /* shallow: shares items */
        v->items = NULL;
        if (src->k == V_TUPLE) { /* deep-copy the key tuple's scalars */
            v->items = calloc(src->n, sizeof *v->items);
            memcpy(v->items, src->items, src->n * sizeof *v->items);
        }
        break;
    }
    default:
        fail_msg("unexpected marshal type %c", c);
    }
}

static void free_val(val *v) {
    if (v->k == V_TUPLE || v->k == V_DICT) {
        uint32_t n = v->k == V_DICT ? 2 * v->n : v->n;
        for (uint32_t k = 0; k < n && v->items; k++)
            free_val(&v->items[k]);
        free(v->items);
    }
}

/* The stats entry whose key's name is `name`, or NULL. */
static const val *entry(const val *d, const char *name, const val **key) {
    for (uint32_t k = 0; k < d->n; k++) {
        const val *kv = &d->items[2 * k];
        if (strcmp(kv->items[2].s, name) == 0) {
            if (key)
                *key = kv;
            return &d->items[2 * k + 1];
        }
    }
    return NULL;
}

static void decode(const cp_model *m, val *out) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_pstats(m, &sb), 0);
    rd r = {(const unsigned char *)sb.data, (const unsigned char *)sb.data + sb.len, {0}, 0};
    read_val(&r, out);
    assert_ptr_equal(r.p, r.end); /* nothing after the dict */
    assert_int_equal(out->k, V_DICT);
    cp_strbuf_free(&sb);
}

/* main -> f -> f -> f (recursion), main -> g, g -> f; a native leaf. */
static void test_recursion_primitive_calls_and_callers(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t smain = fx_site(m, "main", "app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t sf = fx_site(m, "f", "app.py", 10, CODEPROF_SITE_PYTHON);
    uint32_t sg = fx_site(m, "g", "app.py", 20, CODEPROF_SITE_PYTHON);
    uint32_t sn = fx_site(m, "time.sleep", NULL, 0, CODEPROF_SITE_NATIVE);
    uint32_t ss = fx_site(m, "epoch", NULL, 0, CODEPROF_SITE_SCOPE);
    uint32_t root = fx_thread(m, 7);
    uint32_t nm = fx_node(m, root, smain, 1, FX_S(10), FX_S(1));
    uint32_t f1 = fx_node(m, nm, sf, 2, FX_S(4), FX_S(1));
    uint32_t f2 = fx_node(m, f1, sf, 5, FX_S(3), FX_S(2));
    fx_node(m, f2, sf, 3, FX_S(1), FX_S(1));
    uint32_t g = fx_node(m, nm, sg, 1, FX_S(4), FX_S(1));
    fx_node(m, g, sf, 4, FX_S(1), FX_S(1));
    fx_node(m, g, sn, 6, FX_S(2), FX_S(2));
    /* a second thread: a named scope */
    uint32_t root2 = fx_thread(m, 8);
    fx_node(m, root2, ss, 1, FX_S(1), FX_S(1));

    val d;
    decode(m, &d);
    assert_int_equal(d.n, 5);
    const val *key = NULL;
    const val *f = entry(&d, "f", &key);
    assert_non_null(f);
    assert_string_equal(key->items[0].s, "app.py");
    assert_int_equal(key->items[1].i, 10);
    assert_int_equal(f->items[0].i, 2 + 4);         /* cc: f1 and the one under g */
    assert_int_equal(f->items[1].i, 2 + 5 + 3 + 4); /* nc: every call */
    assert_true(f->items[2].d == 5.0);              /* tt: all self */
    assert_true(f->items[3].d == 5.0);              /* ct: primitive inclusive 4 + 1 */
    const val *callers = &f->items[4];
    assert_int_equal(callers->k, V_DICT);
    assert_int_equal(callers->n, 3); /* main, f, g */
    for (uint32_t k = 0; k < callers->n; k++) {
        const char *who = callers->items[2 * k].items[2].s;
        const val *t = &callers->items[2 * k + 1]; /* (nc, cc, tt, ct) as cProfile */
        if (strcmp(who, "main") == 0) {
            assert_int_equal(t->items[0].i, 2);
            assert_int_equal(t->items[1].i, 2);
            assert_true(t->items[3].d == 4.0);
        } else if (strcmp(who, "f") == 0) {
            assert_int_equal(t->items[0].i, 8); /* 5 + 3, all recursive */
            assert_int_equal(t->items[1].i, 0);
            assert_true(t->items[3].d == 0.0);
        } else {
            assert_string_equal(who, "g");
            assert_int_equal(t->items[0].i, 4);
            assert_int_equal(t->items[1].i, 4);
        }
    }
    /* built-ins: cProfile's ('~', 0, "<built-in method ...>") */
    assert_non_null(entry(&d, "<built-in method time.sleep>", &key));
    assert_string_equal(key->items[0].s, "~");
    assert_int_equal(key->items[1].i, 0);
    /* a named scope without a file: ('~', 0, name) */
    const val *ep = entry(&d, "epoch", &key);
    assert_non_null(ep);
    assert_string_equal(key->items[0].s, "~");
    assert_int_equal(ep->items[4].n, 0); /* top level: no callers */
    /* main: top level, called once */
    const val *mn = entry(&d, "main", NULL);
    assert_int_equal(mn->items[1].i, 1);
    assert_int_equal(mn->items[4].n, 0);
    free_val(&d);
    cp_model_free(m);
}

static void test_large_counts_and_bad_utf8(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t s = fx_site(m, "bad\xff\xfename", "x.py", 3, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint64_t big = (1ull << 40) + 12345;
    fx_node(m, root, s, big, FX_S(1), FX_S(1));
    val d;
    decode(m, &d);
    assert_int_equal(d.n, 1);
    const val *k = &d.items[0];
    assert_string_equal(k->items[2].s, "bad??name");
    assert_int_equal(d.items[1].items[1].i, big);
    free_val(&d);
    cp_model_free(m);
}

/* A sampled-only context (no traced call, estimated times): listed with 0
 * calls and its estimated times, as a callee of its traced caller; an
 * unsampled, uncalled node is still left out. */
static void test_sampled_only_functions_kept(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t smain = fx_site(m, "main", "app.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t shot = fx_site(m, "hot", "hot.py", 10, CODEPROF_SITE_PYTHON);
    uint32_t snone = fx_site(m, "never", "n.py", 3, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 7);
    uint32_t nm = fx_node(m, root, smain, 1, FX_S(10), FX_S(4));
    uint32_t h = fx_node(m, nm, shot, 0, FX_S(6), FX_S(6));
    m->nodes[h].samples = m->nodes[h].samples_self = 600;
    m->nodes[h].sampled_ns = m->nodes[h].sampled_self_ns = FX_S(6);
    fx_node(m, nm, snone, 0, 0, 0);
    val d;
    decode(m, &d);
    assert_int_equal(d.n, 2);
    assert_null(entry(&d, "never", NULL));
    const val *e = entry(&d, "hot", NULL);
    assert_non_null(e);
    assert_int_equal(e->items[0].i, 0); /* cc */
    assert_int_equal(e->items[1].i, 0); /* nc */
    assert_true(e->items[2].d == 6.0);  /* tt: the estimate */
    assert_true(e->items[3].d == 6.0);  /* ct: the estimate (a primitive activation) */
    assert_int_equal(e->items[4].n, 1); /* called from main */
    free_val(&d);
    cp_model_free(m);
}

static void test_empty_model(void **state) {
    (void)state;
    cp_model *m = fx_model();
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_export_pstats(m, &sb), 0);
    assert_int_equal(sb.len, 2);
    assert_memory_equal(sb.data, "{0", 2);
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recursion_primitive_calls_and_callers),
        cmocka_unit_test(test_large_counts_and_bad_utf8),
        cmocka_unit_test(test_sampled_only_functions_kept),
        cmocka_unit_test(test_empty_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
