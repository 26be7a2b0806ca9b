/* jsonw.c -- see jsonw.h. */
#include "report/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 for bytes that can be copied as they are: printable ASCII except the
 * quote and the backslash.  Bytes >= 0x80 go through UTF-8 validation. */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),                                  /* 0x00-0x1f */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 0x20-0x2f: '"' */
    R16(1), R16(1),                                  /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* 0x50-0x5f: '\\' */
    R16(1),                                          /* 0x60-0x6f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,  /* 0x70-0x7f: DEL */
    R16(0), R16(0), R16(0), R16(0),                  /* 0x80-0xbf */
    R16(0), R16(0), R16(0), R16(0),                  /* 0xc0-0xff */
#undef R16
};

static const char hexd[16] = "0123456789abcdef";
static const char replacement[3] = {(char)0xef, (char)0xbf, (char)0xbd}; /* U+FFFD */

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80), or
 * 0 if invalid; in that case *bad is the length of the maximal invalid
 * subpart to replace with one U+FFFD. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad) {
    unsigned char b = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
    if (b >= 0xc2 && b <= 0xdf) {
        need = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 3;
        if (b == 0xe0)
            lo = 0xa0; /* no overlongs */
        else if (b == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 4;
        if (b == 0xf0)
            lo = 0x90; /* no overlongs */
        else if (b == 0xf4)
            hi = 0x8f; /* <= U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need; i++) {
        if (i >= n)
            break;
        unsigned char c = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xbf;
        if (c < l || c > h)
            break;
    }
    if (i == need)
        return need;
    *bad = i;
    return 0;
}

size_t cp_json_utf8_len(const char *s, size_t n) {
    size_t bad = 0;
    return n ? utf8_seq((const unsigned char *)s, n, &bad) : 0;
}

void cp_json_escape_into(cp_strbuf *sb, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && plain[s[i]])
            i++;
        if (i > start)
            cp_strbuf_append(sb, str + start, i - start);
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t bad = 0, len = utf8_seq(s + i, n - i, &bad);
            if (len) {
                cp_strbuf_append(sb, str + i, len);
                i += len;
            } else {
                cp_strbuf_append(sb, replacement, sizeof replacement);
                i += bad;
            }
            continue;
        }
        char esc[6];
        size_t elen = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            elen = 6;
        }
        cp_strbuf_append(sb, esc, elen);
        i++;
    }
}

void cp_jsonw_init(cp_jsonw *w, cp_strbuf *sb) {
    w->sb = sb;
    w->depth = 0;
    w->need_comma = 0;
    w->after_key = 0;
    w->err = 0;
}

/* Separator before a value. */
static void pre_value(cp_jsonw *w) {
    if (w->after_key)
        w->after_key = 0;
    else if (w->need_comma)
        cp_strbuf_putc(w->sb, ',');
}

void cp_jsonw_begin_object(cp_jsonw *w) {
    pre_value(w);
    cp_strbuf_putc(w->sb, '{');
    w->depth++;
    w->need_comma = 0;
}

void cp_jsonw_begin_array(cp_jsonw *w) {
    pre_value(w);
    cp_strbuf_putc(w->sb, '[');
    w->depth++;
    w->need_comma = 0;
}

static void end_container(cp_jsonw *w, char c) {
    if (w->depth == 0 || w->after_key) {
        w->err = 1;
        return;
    }
    cp_strbuf_putc(w->sb, c);
    w->depth--;
    w->need_comma = 1;
}

void cp_jsonw_end_object(cp_jsonw *w) { end_container(w, '}'); }
void cp_jsonw_end_array(cp_jsonw *w) { end_container(w, ']'); }

void cp_jsonw_key(cp_jsonw *w, const char *key) {
    if (w->after_key || w->depth == 0 || !key) {
        w->err = 1;
        return;
    }
    if (w->need_comma)
        cp_strbuf_putc(w->sb, ',');
    cp_strbuf_putc(w->sb, '"');
    cp_json_escape_into(w->sb, key, strlen(key));
    cp_strbuf_append(w->sb, "\":", 2);
    w->after_key = 1;
    w->need_comma = 0;
}

static void raw_value(cp_jsonw *w, const char *s, size_t n) {
    pre_value(w);
    cp_strbuf_append(w->sb, s, n);
    w->need_comma = 1;
}

void cp_jsonw_string_n(cp_jsonw *w, const char *s, size_t n) {
    if (!s) {
        cp_jsonw_null(w);
        return;
    }
    pre_value(w);
    cp_strbuf_putc(w->sb, '"');
    cp_json_escape_into(w->sb, s, n);
    cp_strbuf_putc(w->sb, '"');
    w->need_comma = 1;
}

void cp_jsonw_string(cp_jsonw *w, const char *s) {
    cp_jsonw_string_n(w, s, s ? strlen(s) : 0);
}

/* Decimal digits of v, right-aligned in buf[0..24); returns the start. */
static char *fmt_u64(uint64_t v, char buf[24]) {
    char *p = buf + 24;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void cp_jsonw_uint(cp_jsonw *w, uint64_t v) {
    char buf[24];
    char *p = fmt_u64(v, buf);
    raw_value(w, p, (size_t)(buf + 24 - p));
}

void cp_jsonw_int(cp_jsonw *w, int64_t v) {
    char buf[24];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = fmt_u64(mag, buf);
    if (v < 0)
        *--p = '-';
    raw_value(w, p, (size_t)(buf + 24 - p));
}

void cp_jsonw_seconds_ns(cp_jsonw *w, uint64_t ns) {
    char buf[48];
    char ibuf[24];
    uint64_t sec = ns / 1000000000u, frac = ns % 1000000000u;
    char *p = fmt_u64(sec, ibuf);
    size_t n = (size_t)(ibuf + 24 - p);
    memcpy(buf, p, n);
    if (frac) {
        char fd[9];
        for (int i = 8; i >= 0; i--) {
            fd[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        int last = 8;
        while (fd[last] == '0')
            last--;
        buf[n++] = '.';
        memcpy(buf + n, fd, (size_t)last + 1);
        n += (size_t)last + 1;
    }
    raw_value(w, buf, n);
}

void cp_jsonw_double(cp_jsonw *w, double v) {
    if (!isfinite(v)) {
        cp_jsonw_null(w);
        return;
    }
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.15g", v);
    /* strtod reads the same locale snprintf wrote, so compare first. */
    if (n <= 0 || (size_t)n >= sizeof buf || strtod(buf, NULL) != v)
        n = snprintf(buf, sizeof buf, "%.17g", v);
    if (n <= 0 || (size_t)n >= sizeof buf) {
        w->err = 1;
        cp_jsonw_null(w);
        return;
    }
    /* Normalise a locale's decimal separator (possibly multi-byte) to '.'. */
    char out[40];
    size_t j = 0;
    for (int i = 0; i < n;) {
        char c = buf[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e' || c == 'E') {
            out[j++] = c;
            i++;
            continue;
        }
        out[j++] = '.';
        while (i < n && !((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '-' ||
                          buf[i] == '+' || buf[i] == 'e' || buf[i] == 'E'))
            i++;
    }
    raw_value(w, out, j);
}

void cp_jsonw_bool(cp_jsonw *w, int v) {
    if (v)
        raw_value(w, "true", 4);
    else
        raw_value(w, "false", 5);
}

void cp_jsonw_null(cp_jsonw *w) { raw_value(w, "null", 4); }

int cp_jsonw_failed(const cp_jsonw *w) { return w->err || !cp_strbuf_ok(w->sb); }

int cp_jsonw_finish(const cp_jsonw *w) {
    if (cp_jsonw_failed(w) || w->depth != 0 || w->after_key)
        return -1;
    return 0;
}
