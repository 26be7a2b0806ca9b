/* jsonr.c -- the JSON reader (jsonr.h): a recursive-descent parser with a
 * depth cap, values gathered on one scratch stack and copied into an
 * arena when their container closes, so every container's values are
 * contiguous and nothing is reallocated under a pointer handed out. */
#include "report/jsonr.h"
#include "report/jsonw.h"

#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------ */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
} chunk;

struct cp_jsonr_doc {
    chunk *chunks;
    cp_jval root;
};

#define CHUNK_MIN ((size_t)64 << 10)

static void *arena_alloc(cp_jsonr_doc *d, size_t n) {
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (!n)
        n = sizeof(max_align_t);
    chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        /* a big block goes behind the current chunk so its free tail stays usable */
        if (d->chunks && cap == n) {
            c->next = d->chunks->next;
            d->chunks->next = c;
        } else {
            c->next = d->chunks;
            d->chunks = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

/* ---- parser ----------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t n, pos;
    uint32_t depth, max_depth;
    cp_jsonr_doc *doc;
    cp_jval *stack; /* values of the containers being read */
    size_t sn, scap;
    int oom;
    cp_jsonr_error *err;
} parser;

__attribute__((format(printf, 3, 4))) static int fail(parser *p, size_t at, const char *fmt, ...) {
    if (p->err) {
        p->err->offset = at;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int oom(parser *p) {
    p->oom = 1;
    return fail(p, p->pos, "out of memory");
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int push(parser *p, const cp_jval *v) {
    if (p->sn == p->scap) {
        size_t ncap = p->scap ? p->scap * 2 : 256;
        cp_jval *ns = realloc(p->stack, ncap * sizeof *ns);
        if (!ns)
            return oom(p);
        p->stack = ns;
        p->scap = ncap;
    }
    p->stack[p->sn++] = *v;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at p->pos; -1 on error. */
static long read_u4(parser *p) {
    if (p->n - p->pos < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos + i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    p->pos += 4;
    return v;
}

static size_t put_utf8(char *o, unsigned long cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at p->pos (which holds '"'): decoded into the arena. */
static int parse_string(parser *p, const char **out, uint32_t *out_len) {
    size_t start = p->pos++;
    /* find the closing quote; the decoded text is never longer than the raw one
     * (an escape of 6 bytes gives at most 3, a pair of 12 gives 4) */
    size_t end = p->pos;
    while (end < p->n && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->n)
        return fail(p, start, "unterminated string: expected a closing '\"'");
    if (end - p->pos > UINT32_MAX - 1)
        return fail(p, start, "string longer than 4 GiB");
    char *o = arena_alloc(p->doc, end - p->pos + 1);
    if (!o)
        return oom(p);
    size_t k = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20)
            return fail(p, p->pos, "control character 0x%02x in a string: expected it escaped", c);
        if (c >= 0x80) {
            /* JSON text is UTF-8 (RFC 8259).  Taking invalid bytes as they
             * are would let two names the writer prints the same (it
             * replaces them with U+FFFD) read back as different sites. */
            size_t len = cp_json_utf8_len(p->s + p->pos, end - p->pos);
            if (!len)
                return fail(p, p->pos, "invalid UTF-8 byte 0x%02x in a string: expected UTF-8 text",
                            c);
            memcpy(o + k, p->s + p->pos, len);
            k += len;
            p->pos += len;
            continue;
        }
        if (c != '\\') {
            o[k++] = (char)c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"':
            o[k++] = '"';
            break;
        case '\\':
            o[k++] = '\\';
            break;
        case '/':
            o[k++] = '/';
            break;
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'n':
            o[k++] = '\n';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'u': {
            long u = read_u4(p);
            if (u < 0 || p->pos > end)
                return fail(p, esc, "invalid \\u escape: expected four hex digits");
            unsigned long cp = (unsigned long)u;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* a high surrogate: a low one must follow to make a pair */
                size_t save = p->pos;
                long lo = -1;
                if (end - p->pos >= 6 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                    p->pos += 2;
                    lo = read_u4(p);
                }
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
                } else {
                    p->pos = save;
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            k += put_utf8(o + k, cp);
            break;
        }
        default:
            return fail(p, esc,
                        "invalid escape '\\%c': expected one of \\\" \\\\ \\/ \\b \\f \\n "
                        "\\r \\t \\uXXXX",
                        (e >= 0x20 && e < 0x7f) ? e : '?');
        }
    }
    o[k] = '\0';
    p->pos = end + 1;
    *out = o;
    *out_len = (uint32_t)k;
    return 0;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

static int parse_number(parser *p, cp_jval *v) {
    size_t start = p->pos, i = p->pos;
    if (i < p->n && p->s[i] == '-')
        i++;
    if (i >= p->n || !is_digit(p->s[i]))
        return fail(p, i, "expected a digit in a number");
    if (p->s[i] == '0') {
        i++;
        if (i < p->n && is_digit(p->s[i]))
            return fail(p, i, "leading zero in a number: expected '.', 'e' or the number's end");
    } else {
        while (i < p->n && is_digit(p->s[i]))
            i++;
    }
    if (i < p->n && p->s[i] == '.') {
        i++;
        if (i >= p->n || !is_digit(p->s[i]))
            return fail(p, i, "expected a digit after the decimal point");
        while (i < p->n && is_digit(p->s[i]))
            i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->n || !is_digit(p->s[i]))
            return fail(p, i, "expected a digit in the exponent");
        while (i < p->n && is_digit(p->s[i]))
            i++;
    }
    size_t len = i - start;
    if (len > UINT32_MAX - 1)
        return fail(p, start, "number longer than 4 GiB");
    char *t = arena_alloc(p->doc, len + 1);
    if (!t)
        return oom(p);
    memcpy(t, p->s + start, len);
    t[len] = '\0';
    v->type = CP_JNUMBER;
    v->u.str = t;
    v->len = (uint32_t)len;
    p->pos = i;
    return 0;
}

static int literal(parser *p, const char *word, size_t wl) {
    if (p->n - p->pos < wl || memcmp(p->s + p->pos, word, wl) != 0)
        return fail(p, p->pos,
                    "expected a value (object, array, string, number, true, false or "
                    "null)");
    p->pos += wl;
    return 0;
}

static int parse_value(parser *p, cp_jval *v);

/* Moves the values pushed since `base` into the arena as `v`'s kids. */
static int close_container(parser *p, cp_jval *v, size_t base) {
    size_t count = p->sn - base;
    if (count > UINT32_MAX)
        return fail(p, p->pos, "container with more than 2^32-1 values");
    cp_jval *kids = NULL;
    if (count) {
        kids = arena_alloc(p->doc, count * sizeof *kids);
        if (!kids)
            return oom(p);
        memcpy(kids, p->stack + base, count * sizeof *kids);
    }
    p->sn = base;
    v->u.kids = kids;
    v->len = (uint32_t)count;
    return 0;
}

static int parse_array(parser *p, cp_jval *v) {
    size_t base = p->sn;
    v->type = CP_JARRAY;
    p->pos++; /* '[' */
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ']') {
        p->pos++;
        return close_container(p, v, base);
    }
    for (;;) {
        cp_jval item;
        if (parse_value(p, &item) != 0 || push(p, &item) != 0)
            return -1;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, p->pos, "unexpected end of input: expected ',' or ']' in an array");
        char c = p->s[p->pos++];
        if (c == ']')
            return close_container(p, v, base);
        if (c != ',')
            return fail(p, p->pos - 1, "expected ',' or ']' after an array element");
    }
}

static int parse_object(parser *p, cp_jval *v) {
    size_t base = p->sn;
    v->type = CP_JOBJECT;
    p->pos++; /* '{' */
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == '}') {
        p->pos++;
        return close_container(p, v, base);
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != '"')
            return fail(p, p->pos, "expected a string key in an object");
        const char *key;
        uint32_t key_len;
        if (parse_string(p, &key, &key_len) != 0)
            return -1;
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ':')
            return fail(p, p->pos, "expected ':' after the object key \"%.40s\"", key);
        p->pos++;
        cp_jval item;
        if (parse_value(p, &item) != 0)
            return -1;
        item.key = key;
        item.key_len = key_len;
        if (push(p, &item) != 0)
            return -1;
        skip_ws(p);
        if (p->pos >= p->n)
            return fail(p, p->pos, "unexpected end of input: expected ',' or '}' in an object");
        char c = p->s[p->pos++];
        if (c == '}')
            return close_container(p, v, base);
        if (c != ',')
            return fail(p, p->pos - 1, "expected ',' or '}' after an object member");
    }
}

static int parse_value(parser *p, cp_jval *v) {
    memset(v, 0, sizeof *v);
    skip_ws(p);
    if (p->pos >= p->n)
        return fail(p, p->pos, "unexpected end of input: expected a value");
    char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[': {
        if (p->depth >= p->max_depth)
            return fail(p, p->pos, "nesting deeper than %u arrays/objects", p->max_depth);
        p->depth++;
        int rc = c == '{' ? parse_object(p, v) : parse_array(p, v);
        p->depth--;
        return rc;
    }
    case '"':
        v->type = CP_JSTRING;
        return parse_string(p, &v->u.str, &v->len);
    case 't':
        v->type = CP_JBOOL;
        v->boolean = 1;
        return literal(p, "true", 4);
    case 'f':
        v->type = CP_JBOOL;
        return literal(p, "false", 5);
    case 'n':
        v->type = CP_JNULL;
        return literal(p, "null", 4);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p, v);
        return fail(p, p->pos,
                    "expected a value (object, array, string, number, true, false or "
                    "null)");
    }
}

int cp_jsonr_parse(const char *text, size_t len, const cp_jsonr_limits *lim, cp_jsonr_doc **out,
                   cp_jsonr_error *err) {
    if (out)
        *out = NULL;
    parser p = {0};
    p.err = err;
    if (!out || (!text && len))
        return fail(&p, 0, "no input");
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : CP_JSONR_MAX_BYTES;
    p.max_depth = lim && lim->max_depth ? lim->max_depth : CP_JSONR_MAX_DEPTH;
    if (len > max_bytes)
        return fail(&p, max_bytes, "input is %zu bytes: expected at most %zu", len, max_bytes);
    p.s = text ? text : "";
    p.n = len;
    p.doc = calloc(1, sizeof *p.doc);
    if (!p.doc)
        return -2;
    int rc = parse_value(&p, &p.doc->root);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos < p.n)
            rc = fail(&p, p.pos, "unexpected data after the JSON value: expected the end of input");
    }
    free(p.stack);
    if (rc != 0) {
        cp_jsonr_free(p.doc);
        return p.oom ? -2 : -1;
    }
    *out = p.doc;
    return 0;
}

const cp_jval *cp_jsonr_root(const cp_jsonr_doc *doc) {
    return doc ? &doc->root : NULL;
}

void cp_jsonr_free(cp_jsonr_doc *doc) {
    if (!doc)
        return;
    for (chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

const cp_jval *cp_jsonr_get(const cp_jval *obj, const char *key) {
    if (!obj || obj->type != CP_JOBJECT || !key)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < obj->len; i++) {
        const cp_jval *m = &obj->u.kids[i];
        if (m->key_len == kl && memcmp(m->key, key, kl) == 0)
            return m;
    }
    return NULL;
}

/* ---- conversions ---------------------------------------------------------- */

int cp_jsonr_u64(const cp_jval *v, uint64_t *out) {
    if (!v || v->type != CP_JNUMBER)
        return -1;
    const char *s = v->u.str;
    uint64_t acc = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (!is_digit(*s))
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    *out = acc;
    return 0;
}

int cp_jsonr_i64(const cp_jval *v, int64_t *out) {
    if (!v || v->type != CP_JNUMBER)
        return -1;
    const char *s = v->u.str;
    int neg = *s == '-';
    s += neg;
    if (!*s)
        return -1;
    uint64_t acc = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        if (!is_digit(*s))
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (acc > (lim - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

int cp_jsonr_double(const cp_jval *v, double *out) {
    if (!v || v->type != CP_JNUMBER)
        return -1;
    pthread_once(&c_locale_once, c_locale_init);
    if (!c_locale)
        return -1;
    /* the text is a validated JSON number, which strtod reads whole */
    *out = strtod_l(v->u.str, NULL, c_locale);
    return 0;
}

int cp_jsonr_ns(const cp_jval *v, uint64_t *out) {
    if (!v || v->type != CP_JNUMBER)
        return -1;
    const char *s = v->u.str;
    int neg = *s == '-';
    s += neg;
    const char *ip = s;
    size_t ni = 0, nf = 0;
    while (is_digit(ip[ni]))
        ni++;
    const char *fp = ip + ni;
    if (*fp == '.') {
        fp++;
        while (is_digit(fp[nf]))
            nf++;
    }
    const char *ep = fp + nf;
    long exp = 0;
    if (*ep == 'e' || *ep == 'E') {
        ep++;
        int eneg = *ep == '-';
        if (*ep == '-' || *ep == '+')
            ep++;
        for (; is_digit(*ep); ep++)
            if (exp < 100000)
                exp = exp * 10 + (*ep - '0');
        if (eneg)
            exp = -exp;
    }
    /* digits d_0..d_{n-1}; digit i is worth 10^(k + n-1-i) ns */
    size_t n = ni + nf;
    long k = exp - (long)nf + 9;
    uint64_t acc = 0;
    int round_up = 0, nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)((i < ni ? ip[i] : fp[i - ni]) - '0');
        nonzero |= d != 0;
        long pw = k + (long)(n - 1 - i);
        if (pw >= 0) {
            if (acc > (UINT64_MAX - d) / 10)
                return -1;
            acc = acc * 10 + d;
        } else if (pw == -1) {
            round_up = d >= 5;
        } else {
            break;
        }
    }
    if (neg && nonzero)
        return -1;
    for (long i = 0; i < k && acc; i++) {
        if (acc > UINT64_MAX / 10)
            return -1;
        acc *= 10;
    }
    if (round_up) {
        if (acc == UINT64_MAX)
            return -1;
        acc++;
    }
    *out = acc;
    return 0;
}

const char *cp_jsonr_type_name(unsigned type) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}
