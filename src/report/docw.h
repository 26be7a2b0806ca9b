/* docw.h -- a document writer: the report's structure described once and
 * written through a backend.  Two backends exist: JSON text (docw.c, over
 * cp_jsonw) and Python objects (src/python/model_obj.c), so the saved
 * report and the facade's views cannot drift apart.
 *
 * Calls follow JSON's grammar: inside an object call cp_docw_key before
 * every value.  A backend checks nothing the JSON writer does not; errors
 * (OOM, misuse) are sticky and read with cp_docw_failed.
 *
 * Value conventions every backend keeps (docs/report-schema.md):
 *  - seconds_ns: exact decimal seconds in JSON, ns / 1e9 as a double in
 *    Python (the correctly rounded value of the same decimal, so both read
 *    back equal);
 *  - dbl: NaN and infinities become null;
 *  - strings: invalid UTF-8 replaced by U+FFFD per maximal invalid subpart.
 *
 * Not thread-safe: one writer per document.
 */
#ifndef CP_DOCW_H
#define CP_DOCW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cp_jsonw;

typedef struct cp_docw_ops {
    void (*begin_object)(void *ctx);
    void (*end_object)(void *ctx);
    void (*begin_array)(void *ctx);
    void (*end_array)(void *ctx);
    void (*key)(void *ctx, const char *k, size_t n);
    void (*string)(void *ctx, const char *s, size_t n); /* s never NULL */
    void (*null)(void *ctx);
    void (*boolean)(void *ctx, int v);
    void (*int64)(void *ctx, int64_t v);
    void (*uint64)(void *ctx, uint64_t v);
    void (*dbl)(void *ctx, double v);
    void (*seconds_ns)(void *ctx, uint64_t ns);
    void (*fail)(void *ctx);          /* record an error (OOM in a writer) */
    int (*failed)(const void *ctx);   /* 1 once an error occurred          */
} cp_docw_ops;

typedef struct cp_docw {
    const cp_docw_ops *ops;
    void *ctx;
} cp_docw;

/* The JSON backend: `d` writes through `w` (which must outlive `d`). */
void cp_docw_json(cp_docw *d, struct cp_jsonw *w);

static inline void cp_docw_begin_object(cp_docw *d) { d->ops->begin_object(d->ctx); }
static inline void cp_docw_end_object(cp_docw *d) { d->ops->end_object(d->ctx); }
static inline void cp_docw_begin_array(cp_docw *d) { d->ops->begin_array(d->ctx); }
static inline void cp_docw_end_array(cp_docw *d) { d->ops->end_array(d->ctx); }
static inline void cp_docw_key(cp_docw *d, const char *k) { d->ops->key(d->ctx, k, strlen(k)); }
static inline void cp_docw_string_n(cp_docw *d, const char *s, size_t n) {
    d->ops->string(d->ctx, s, n);
}
/* NULL writes null. */
static inline void cp_docw_string(cp_docw *d, const char *s) {
    if (s)
        d->ops->string(d->ctx, s, strlen(s));
    else
        d->ops->null(d->ctx);
}
static inline void cp_docw_null(cp_docw *d) { d->ops->null(d->ctx); }
static inline void cp_docw_bool(cp_docw *d, int v) { d->ops->boolean(d->ctx, v != 0); }
static inline void cp_docw_int(cp_docw *d, int64_t v) { d->ops->int64(d->ctx, v); }
static inline void cp_docw_uint(cp_docw *d, uint64_t v) { d->ops->uint64(d->ctx, v); }
static inline void cp_docw_double(cp_docw *d, double v) { d->ops->dbl(d->ctx, v); }
static inline void cp_docw_seconds_ns(cp_docw *d, uint64_t ns) { d->ops->seconds_ns(d->ctx, ns); }
static inline void cp_docw_fail(cp_docw *d) { d->ops->fail(d->ctx); }
static inline int cp_docw_failed(const cp_docw *d) { return d->ops->failed(d->ctx); }

/* "key": value shorthands. */
static inline void cp_docw_kv_u(cp_docw *d, const char *k, uint64_t v) {
    cp_docw_key(d, k);
    cp_docw_uint(d, v);
}
static inline void cp_docw_kv_i(cp_docw *d, const char *k, int64_t v) {
    cp_docw_key(d, k);
    cp_docw_int(d, v);
}
static inline void cp_docw_kv_d(cp_docw *d, const char *k, double v) {
    cp_docw_key(d, k);
    cp_docw_double(d, v);
}
static inline void cp_docw_kv_s(cp_docw *d, const char *k, const char *v) {
    cp_docw_key(d, k);
    cp_docw_string(d, v);
}
static inline void cp_docw_kv_ns(cp_docw *d, const char *k, uint64_t ns) {
    cp_docw_key(d, k);
    cp_docw_seconds_ns(d, ns);
}
static inline void cp_docw_kv_bool(cp_docw *d, const char *k, int v) {
    cp_docw_key(d, k);
    cp_docw_bool(d, v);
}

#endif /* CP_DOCW_H */
