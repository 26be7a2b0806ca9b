/* jsonr.h -- a small JSON reader: text in, a read-only tree of values out.
 *
 * Written for reading saved reports back (src/model/model_json.c), and
 * total on any input: every byte string either parses or fails with the
 * byte offset of the fault and a sentence saying what was expected there
 * (never a crash, never an unbounded allocation).  Limits:
 *   - input size: `max_bytes` (cp_jsonr_limits; 0: CP_JSONR_MAX_BYTES);
 *   - nesting: `max_depth` arrays/objects (0: CP_JSONR_MAX_DEPTH).
 * Memory is bounded by a small multiple of the input size (one value
 * record per JSON value, strings decoded once).
 *
 * Grammar: RFC 8259, strict (no comments, no trailing commas, no NaN,
 * no leading zeros), one value surrounded by optional whitespace.
 * Strings: escapes decoded to UTF-8 (a lone surrogate becomes U+FFFD);
 * raw bytes >= 0x80 are kept as they are; raw control characters are an
 * error.  Object keys may repeat; lookups return the first.
 *
 * Numbers keep their source text, so integers read back exactly
 * (cp_jsonr_u64 / _i64) and decimal seconds convert to nanoseconds
 * exactly (cp_jsonr_ns), independent of the C locale.
 *
 * Ownership: cp_jsonr_parse returns a document that owns every value and
 * string; free it with cp_jsonr_free.  The input text is not referenced
 * after parsing.  A document is read-only and may be read from several
 * threads.
 */
#ifndef CP_JSONR_H
#define CP_JSONR_H

#include <stddef.h>
#include <stdint.h>

#define CP_JSONR_MAX_BYTES ((size_t)256 << 20) /* 256 MiB */
#define CP_JSONR_MAX_DEPTH 1024

typedef enum cp_jtype {
    CP_JNULL,
    CP_JBOOL,
    CP_JNUMBER,
    CP_JSTRING,
    CP_JARRAY,
    CP_JOBJECT,
} cp_jtype;

/* One value.  For an object member, `key`/`key_len` name it (else NULL). */
typedef struct cp_jval {
    uint8_t type;    /* cp_jtype                                     */
    uint8_t boolean; /* CP_JBOOL: 0 or 1                             */
    uint32_t len;    /* string/number text bytes; array/object count  */
    uint32_t key_len;
    const char *key; /* NUL-terminated, owned by the document        */
    union {
        const char *str;            /* CP_JSTRING: decoded, NUL-terminated;
                                      CP_JNUMBER: the number's source text  */
        const struct cp_jval *kids; /* CP_JARRAY / CP_JOBJECT: `len` values   */
    } u;
} cp_jval;

typedef struct cp_jsonr_limits {
    size_t max_bytes;   /* 0: CP_JSONR_MAX_BYTES */
    uint32_t max_depth; /* 0: CP_JSONR_MAX_DEPTH */
} cp_jsonr_limits;

typedef struct cp_jsonr_error {
    size_t offset;     /* byte offset of the fault in the input */
    char message[192]; /* "expected ':' after an object key", ... */
} cp_jsonr_error;

typedef struct cp_jsonr_doc cp_jsonr_doc;

/* Parses `len` bytes of `text` (need not be NUL-terminated; NULL only with
 * len 0).  `lim` may be NULL (defaults).  Returns 0 and stores a new
 * document in *out (free with cp_jsonr_free); or -1 for malformed input
 * or a limit exceeded (err, if non-NULL, says where and what was
 * expected), or -2 when out of memory; *out is then NULL. */
int cp_jsonr_parse(const char *text, size_t len, const cp_jsonr_limits *lim, cp_jsonr_doc **out,
                   cp_jsonr_error *err);

/* The document's top-level value (never NULL for a parsed document). */
const cp_jval *cp_jsonr_root(const cp_jsonr_doc *doc);

/* Frees the document and every value in it.  NULL is a no-op. */
void cp_jsonr_free(cp_jsonr_doc *doc);

/* The first member of object `obj` named `key`, or NULL when `obj` is
 * NULL, not an object, or has no such member.  Linear in its members. */
const cp_jval *cp_jsonr_get(const cp_jval *obj, const char *key);

/* Conversions: return 0 and store the value, or -1 (nothing stored) when
 * `v` is NULL, of another type, or out of range for the target.
 *   _u64: a non-negative integer (no fraction, no exponent) < 2^64;
 *   _i64: an integer in int64 range;
 *   _double: any number (nearest double);
 *   _ns: a non-negative number of seconds as nanoseconds, exact for up to
 *        nine decimals (more are rounded half up); exponents accepted;
 *        < 2^64 ns. */
int cp_jsonr_u64(const cp_jval *v, uint64_t *out);
int cp_jsonr_i64(const cp_jval *v, int64_t *out);
int cp_jsonr_double(const cp_jval *v, double *out);
int cp_jsonr_ns(const cp_jval *v, uint64_t *out);

/* "null", "boolean", "number", "string", "array", "object" (static). */
const char *cp_jsonr_type_name(unsigned type);

#endif /* CP_JSONR_H */
