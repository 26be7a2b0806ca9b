/* strbuf.c -- see strbuf.h. */
#include "report/strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cp_strbuf_init(cp_strbuf *sb) {
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->limit = 0;
    sb->oom = 0;
}

static void strbuf_empty(cp_strbuf *sb) {
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->oom = 0;
}

void cp_strbuf_free(cp_strbuf *sb) {
    if (!sb)
        return;
    free(sb->data);
    strbuf_empty(sb);
}

int cp_strbuf_reserve(cp_strbuf *sb, size_t extra) {
    if (sb->oom)
        return -1;
    if (extra > SIZE_MAX - sb->len - 1) {
        sb->oom = 1;
        return -1;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 0;
    if (sb->limit && need - 1 > sb->limit) {
        sb->oom = 1;
        return -1;
    }
    size_t ncap = sb->cap ? sb->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (sb->limit && ncap > sb->limit + 1)
        ncap = sb->limit + 1;
    char *nd = realloc(sb->data, ncap);
    if (!nd) {
        sb->oom = 1;
        return -1;
    }
    sb->data = nd;
    sb->cap = ncap;
    return 0;
}

void cp_strbuf_append(cp_strbuf *sb, const char *s, size_t n) {
    if (cp_strbuf_reserve(sb, n) != 0)
        return;
    if (n)
        memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void cp_strbuf_puts(cp_strbuf *sb, const char *s) {
    if (s)
        cp_strbuf_append(sb, s, strlen(s));
}

void cp_strbuf_putc(cp_strbuf *sb, char c) {
    if (sb->len + 1 < sb->cap && !sb->oom) {
        sb->data[sb->len++] = c;
        sb->data[sb->len] = '\0';
        return;
    }
    cp_strbuf_append(sb, &c, 1);
}

void cp_strbuf_fill(cp_strbuf *sb, char c, size_t n) {
    if (cp_strbuf_reserve(sb, n) != 0)
        return;
    memset(sb->data + sb->len, c, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void cp_strbuf_vprintf(cp_strbuf *sb, const char *fmt, va_list ap) {
    if (sb->oom)
        return;
    va_list ap2;
    va_copy(ap2, ap);
    size_t avail = sb->cap > sb->len ? sb->cap - sb->len : 0;
    int n = vsnprintf(avail ? sb->data + sb->len : NULL, avail, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return; /* encoding error: append nothing */
    }
    if ((size_t)n < avail) {
        sb->len += (size_t)n;
        va_end(ap2);
        return;
    }
    if (cp_strbuf_reserve(sb, (size_t)n) == 0) {
        vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
        sb->len += (size_t)n;
    }
    va_end(ap2);
}

void cp_strbuf_printf(cp_strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cp_strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

int cp_strbuf_ok(const cp_strbuf *sb) { return !sb->oom; }

char *cp_strbuf_detach(cp_strbuf *sb, size_t *len) {
    if (sb->oom) {
        cp_strbuf_free(sb);
        return NULL;
    }
    if (!sb->data && cp_strbuf_reserve(sb, 0) == 0)
        sb->data[0] = '\0';
    if (sb->oom) {
        cp_strbuf_free(sb);
        return NULL;
    }
    char *out = sb->data;
    if (len)
        *len = sb->len;
    strbuf_empty(sb);
    return out;
}

void cp_strbuf_put_clean(cp_strbuf *sb, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        cp_strbuf_putc(sb, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}
