/* strbuf.h -- a growable byte buffer that writers append to.
 *
 * Appends never fail loudly: on out-of-memory the buffer sets a sticky
 * `oom` flag and ignores every later append, so a writer checks once at
 * the end (cp_strbuf_ok).  The contents are always NUL-terminated once
 * anything was appended.  Not thread-safe: one buffer, one writer.
 */
#ifndef CP_STRBUF_H
#define CP_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct cp_strbuf {
    char *data;  /* NUL-terminated contents, or NULL while empty */
    size_t len;  /* bytes used, excluding the NUL                */
    size_t cap;  /* bytes allocated                              */
    size_t limit;/* 0: unbounded; else growing past `limit` bytes
                  * (excluding the NUL) fails like an OOM         */
    int oom;     /* 1 after an allocation failed (sticky)        */
} cp_strbuf;

/* Empties `sb` without allocating (same as zero-initialising it);
 * `limit` becomes 0 (unbounded). */
void cp_strbuf_init(cp_strbuf *sb);

/* Frees the contents and empties `sb` (keeps `limit`).  NULL is a no-op. */
void cp_strbuf_free(cp_strbuf *sb);

/* Makes room for `extra` more bytes (plus the NUL).  Returns 0, or -1 and
 * sets `oom`. */
int cp_strbuf_reserve(cp_strbuf *sb, size_t extra);

/* Appends `n` bytes of `s`. */
void cp_strbuf_append(cp_strbuf *sb, const char *s, size_t n);

/* Appends a NUL-terminated string (NULL appends nothing). */
void cp_strbuf_puts(cp_strbuf *sb, const char *s);
/* Appends `s` with control characters (and DEL) replaced by '?', for text
 * output of names that came from user data. */
void cp_strbuf_put_clean(cp_strbuf *sb, const char *s);

/* Appends one byte. */
void cp_strbuf_putc(cp_strbuf *sb, char c);

/* Appends `n` copies of `c`. */
void cp_strbuf_fill(cp_strbuf *sb, char c, size_t n);

/* printf-style append. */
void cp_strbuf_printf(cp_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cp_strbuf_vprintf(cp_strbuf *sb, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* 1 if no append has failed, else 0. */
int cp_strbuf_ok(const cp_strbuf *sb);

/* Hands the contents to the caller (free with free(); an empty buffer
 * gives a new "" string) and re-initialises `sb`.  Stores the length in
 * *len if len is non-NULL.  Returns NULL (and frees the contents) if the
 * buffer is in the oom state or the final allocation fails.  Keeps
 * `limit`. */
char *cp_strbuf_detach(cp_strbuf *sb, size_t *len);

#endif /* CP_STRBUF_H */
