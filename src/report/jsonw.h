/* jsonw.h -- a small streaming JSON writer into a cp_strbuf.
 *
 * Usage:
 *     cp_strbuf sb; cp_strbuf_init(&sb);
 *     cp_jsonw w; cp_jsonw_init(&w, &sb);
 *     cp_jsonw_begin_object(&w);
 *     cp_jsonw_key(&w, "calls"); cp_jsonw_uint(&w, 3);
 *     cp_jsonw_end_object(&w);
 *     if (cp_jsonw_finish(&w) != 0) ... OOM or misuse ...
 *
 * Commas and colons are inserted automatically: inside an object call
 * cp_jsonw_key before every value.  The writer keeps no nesting stack, so
 * any depth costs O(1) memory; misuse it can detect (ending more than was
 * begun, a key after a key, finishing with open containers) sets the
 * error flag.  Output is compact (no whitespace).
 *
 * Strings are written as UTF-8 with `"`, `\` and every control character
 * (< 0x20, and 0x7f) escaped; invalid UTF-8 (bad lead/continuation bytes,
 * overlong forms, surrogates, code points above U+10FFFF, truncated
 * sequences) is replaced by U+FFFD per maximal invalid subpart, so the
 * output is always valid JSON whatever bytes the input holds.
 * Doubles that are NaN or infinite are written as null.  Number output does
 * not depend on the C locale's decimal point.
 *
 * Not thread-safe: one writer per buffer.
 */
#ifndef CP_JSONW_H
#define CP_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "report/strbuf.h"

typedef struct cp_jsonw {
    cp_strbuf *sb;
    uint64_t depth;  /* open containers                          */
    int need_comma;  /* a value was just completed at this level  */
    int after_key;   /* a key was written, its value is pending    */
    int err;         /* misuse detected (sticky)                   */
} cp_jsonw;

/* Starts writing into `sb` (appends after its current contents). */
void cp_jsonw_init(cp_jsonw *w, cp_strbuf *sb);

void cp_jsonw_begin_object(cp_jsonw *w);
void cp_jsonw_end_object(cp_jsonw *w);
void cp_jsonw_begin_array(cp_jsonw *w);
void cp_jsonw_end_array(cp_jsonw *w);

/* Writes an object key (escaped like a string) and the colon. */
void cp_jsonw_key(cp_jsonw *w, const char *key);

/* Values.  cp_jsonw_string(NULL) writes null. */
void cp_jsonw_string(cp_jsonw *w, const char *s);
void cp_jsonw_string_n(cp_jsonw *w, const char *s, size_t n);
void cp_jsonw_int(cp_jsonw *w, int64_t v);
void cp_jsonw_uint(cp_jsonw *w, uint64_t v);
/* Shortest "%.15g"/"%.17g" form that reads back as the same double; NaN
 * and +-Inf as null. */
void cp_jsonw_double(cp_jsonw *w, double v);
/* `ns` nanoseconds written exactly as decimal seconds ("1.5", "0.000000123",
 * "0"): the fast, lossless path for times. */
void cp_jsonw_seconds_ns(cp_jsonw *w, uint64_t ns);
void cp_jsonw_bool(cp_jsonw *w, int v);
void cp_jsonw_null(cp_jsonw *w);

/* Returns 0 if the document is complete (every container closed) and no
 * error occurred (including OOM in the buffer), else -1. */
int cp_jsonw_finish(const cp_jsonw *w);

/* 1 if an error (misuse or OOM) has occurred so far. */
int cp_jsonw_failed(const cp_jsonw *w);

/* Appends `s[0..n)` to `sb` as a JSON string body (no quotes), escaped and
 * with invalid UTF-8 replaced as described above.  Exposed for writers of
 * other formats that embed JSON strings. */
void cp_json_escape_into(cp_strbuf *sb, const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s[0] (a byte >= 0x80; n bytes
 * available), or 0 when it is not valid UTF-8 (the writer replaces such
 * bytes with U+FFFD; the reader rejects them). */
size_t cp_json_utf8_len(const char *s, size_t n);


/* "key": value shorthands used by every writer. */
static inline void cp_jsonw_kv_u(cp_jsonw *w, const char *k, uint64_t v) {
    cp_jsonw_key(w, k);
    cp_jsonw_uint(w, v);
}
static inline void cp_jsonw_kv_i(cp_jsonw *w, const char *k, int64_t v) {
    cp_jsonw_key(w, k);
    cp_jsonw_int(w, v);
}
static inline void cp_jsonw_kv_d(cp_jsonw *w, const char *k, double v) {
    cp_jsonw_key(w, k);
    cp_jsonw_double(w, v);
}
static inline void cp_jsonw_kv_s(cp_jsonw *w, const char *k, const char *v) {
    cp_jsonw_key(w, k);
    cp_jsonw_string(w, v);
}
static inline void cp_jsonw_kv_ns(cp_jsonw *w, const char *k, uint64_t ns) {
    cp_jsonw_key(w, k);
    cp_jsonw_seconds_ns(w, ns);
}
static inline void cp_jsonw_kv_bool(cp_jsonw *w, const char *k, int v) {
    cp_jsonw_key(w, k);
    cp_jsonw_bool(w, v);
}

#endif /* CP_JSONW_H */
