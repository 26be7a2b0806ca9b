/* docw.c -- the JSON backend of the document writer (docw.h). */
#include "report/docw.h"

#include "report/jsonw.h"

static void j_begin_object(void *c) { cp_jsonw_begin_object(c); }
static void j_end_object(void *c) { cp_jsonw_end_object(c); }
static void j_begin_array(void *c) { cp_jsonw_begin_array(c); }
static void j_end_array(void *c) { cp_jsonw_end_array(c); }
static void j_key(void *c, const char *k, size_t n) {
    cp_jsonw *w = c;
    /* cp_jsonw_key takes a C string; keys are C strings everywhere. */
    (void)n;
    cp_jsonw_key(w, k);
}
static void j_string(void *c, const char *s, size_t n) { cp_jsonw_string_n(c, s, n); }
static void j_null(void *c) { cp_jsonw_null(c); }
static void j_bool(void *c, int v) { cp_jsonw_bool(c, v); }
static void j_int(void *c, int64_t v) { cp_jsonw_int(c, v); }
static void j_uint(void *c, uint64_t v) { cp_jsonw_uint(c, v); }
static void j_dbl(void *c, double v) { cp_jsonw_double(c, v); }
static void j_ns(void *c, uint64_t ns) { cp_jsonw_seconds_ns(c, ns); }
static void j_fail(void *c) { ((cp_jsonw *)c)->sb->oom = 1; }
static int j_failed(const void *c) { return cp_jsonw_failed(c); }

static const cp_docw_ops json_ops = {
    j_begin_object, j_end_object, j_begin_array, j_end_array, j_key, j_string, j_null,
    j_bool,         j_int,        j_uint,        j_dbl,       j_ns,  j_fail,   j_failed,
};

void cp_docw_json(cp_docw *d, cp_jsonw *w) {
    d->ops = &json_ops;
    d->ctx = w;
}
