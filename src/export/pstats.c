/* pstats.c -- the pstats export (pstats.h), marshal written by hand.
 *
 * The subset of marshal used: '{' dict ... '0' (end), ')' small tuple
 * (count byte), 'i' int32, 'l' long (int32 digit count, base-2^15 digits),
 * 'g' binary double, 'u' UTF-8 string (int32 length), and references: a
 * site's key tuple is written once with the FLAG_REF bit (0x80), which
 * gives it the reader's next reference index, and later as 'r' + that
 * index.  Every integer is little-endian. */
#include "export/pstats.h"

#include <stdlib.h>
#include <string.h>

#include "export/walk.h"

#define M_FLAG_REF 0x80

typedef struct site_stat {
    uint64_t nc, cc, tt_ns, ct_ns;
    uint64_t samples; /* sampled-only contexts have nc 0 and estimated times */
    uint32_t onpath; /* activations of the site on the current path */
    uint32_t ref;    /* reference index + 1 of its key tuple; 0: not written */
} site_stat;

typedef struct edge {
    uint32_t callee, caller;
    uint64_t nc, cc, tt_ns, ct_ns;
} edge;

typedef struct pstate {
    site_stat *s;
    uint32_t ns;
    edge *e;
    size_t ne, cap_e;
    uint32_t depth;     /* depth of the last node visited (onpath holds path[1..depth]) */
    uint32_t *pathsite; /* sites on the current path, by depth */
    uint32_t cap_path;
    uint32_t nrefs;
    cp_strbuf *out;
} pstate;

static void put_u32(cp_strbuf *sb, uint32_t v) {
    char b[4] = {(char)(v & 0xff), (char)((v >> 8) & 0xff), (char)((v >> 16) & 0xff),
                 (char)((v >> 24) & 0xff)};
    cp_strbuf_append(sb, b, 4);
}

static void put_int(cp_strbuf *sb, uint64_t v) {
    if (v <= INT32_MAX) {
        cp_strbuf_putc(sb, 'i');
        put_u32(sb, (uint32_t)v);
        return;
    }
    uint16_t digits[5]; /* 64 bits in 15-bit digits */
    uint32_t n = 0;
    while (v) {
        digits[n++] = (uint16_t)(v & 0x7fff);
        v >>= 15;
    }
    cp_strbuf_putc(sb, 'l');
    put_u32(sb, n);
    for (uint32_t i = 0; i < n; i++) {
        char b[2] = {(char)(digits[i] & 0xff), (char)(digits[i] >> 8)};
        cp_strbuf_append(sb, b, 2);
    }
}

static void put_seconds(cp_strbuf *sb, uint64_t ns) {
    double d = (double)ns / 1e9;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    char b[9];
    b[0] = 'g';
    for (int i = 0; i < 8; i++)
        b[1 + i] = (char)((bits >> (8 * i)) & 0xff);
    cp_strbuf_append(sb, b, 9);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

/* The concatenation of `n` strings as marshal's 'u'; bytes that are not
 * valid UTF-8 become '?', so Python always decodes it. */
static void put_str(cp_strbuf *sb, const char *const *parts, int n) {
    size_t total = 0;
    for (int p = 0; p < n; p++)
        total += strlen(parts[p]);
    cp_strbuf_putc(sb, 'u');
    put_u32(sb, (uint32_t)total);
    for (int p = 0; p < n; p++) {
        const unsigned char *s = (const unsigned char *)parts[p];
        size_t len = strlen(parts[p]), i = 0;
        while (i < len) {
            size_t k = utf8_len(s + i, len - i);
            if (k == 0) {
                cp_strbuf_putc(sb, '?');
                i++;
            } else {
                cp_strbuf_append(sb, (const char *)s + i, k);
                i += k;
            }
        }
    }
}

static void put_str1(cp_strbuf *sb, const char *s) { put_str(sb, &s, 1); }

/* The key tuple of site `site`: written in full the first time (flagged as
 * a reference), as a reference afterwards. */
static void put_key(pstate *st, const cp_model *m, uint32_t site) {
    cp_strbuf *sb = st->out;
    site_stat *ss = &st->s[site];
    if (ss->ref) {
        cp_strbuf_putc(sb, 'r');
        put_u32(sb, ss->ref - 1);
        return;
    }
    ss->ref = ++st->nrefs;
    const cp_msite *s = cp_model_site(m, site);
    const char *name = s ? s->name : "?";
    const char *file = s ? s->file : "";
    cp_strbuf_putc(sb, (char)(')' | M_FLAG_REF));
    cp_strbuf_putc(sb, 3);
    if (!file[0]) {
        /* cProfile's key for built-ins: ('~', 0, "<built-in method ...>") */
        put_str1(sb, "~");
        put_int(sb, 0);
        if (s && s->kind == CODEPROF_SITE_NATIVE) {
            const char *parts[3] = {"<built-in method ", name, ">"};
            put_str(sb, parts, 3);
        } else {
            put_str1(sb, name);
        }
    } else {
        put_str1(sb, file);
        put_int(sb, s->line);
        put_str1(sb, name);
    }
}

static int on_node(const cp_model *m, const uint32_t *path, uint32_t depth, void *ctx) {
    pstate *st = ctx;
    /* Leave the sites of the path below this node's parent. */
    while (st->depth >= depth) {
        uint32_t site = st->pathsite[st->depth];
        if (site < st->ns && st->s[site].onpath)
            st->s[site].onpath--;
        st->depth--;
    }
    if (depth >= st->cap_path) {
        uint32_t ncap = st->cap_path ? st->cap_path : 64;
        while (ncap <= depth)
            ncap *= 2;
        uint32_t *np = realloc(st->pathsite, ncap * sizeof *np);
        if (!np)
            return -1;
        st->pathsite = np;
        st->cap_path = ncap;
    }
    const cp_mnode *n = &m->nodes[path[depth]];
    uint32_t site = n->site < st->ns ? n->site : 0;
    st->depth = depth;
    st->pathsite[depth] = site;
    if (!site)
        return 0;
    site_stat *ss = &st->s[site];
    int primitive = ss->onpath == 0;
    ss->onpath++;
    ss->nc += n->count;
    ss->samples += n->samples;
    ss->tt_ns += n->self_ns;
    if (primitive) {
        ss->cc += n->count;
        ss->ct_ns += n->incl_ns;
    }
    if (depth >= 2) {
        uint32_t caller = st->pathsite[depth - 1];
        if (caller) {
            if (st->ne == st->cap_e) {
                size_t ncap = st->cap_e ? 2 * st->cap_e : 256;
                edge *ne = realloc(st->e, ncap * sizeof *ne);
                if (!ne)
                    return -1;
                st->e = ne;
                st->cap_e = ncap;
            }
            st->e[st->ne++] = (edge){site, caller, n->count, primitive ? n->count : 0,
                                     n->self_ns, primitive ? n->incl_ns : 0};
        }
    }
    return 0;
}

static int cmp_edge(const void *a, const void *b) {
    const edge *x = a, *y = b;
    if (x->callee != y->callee)
        return x->callee < y->callee ? -1 : 1;
    return (x->caller > y->caller) - (x->caller < y->caller);
}

int cp_export_pstats(const cp_model *m, cp_strbuf *out) {
    pstate st;
    memset(&st, 0, sizeof st);
    st.out = out;
    st.ns = m->sites.n ? m->sites.n : 1;
    st.s = calloc(st.ns, sizeof *st.s);
    if (!st.s)
        return -1;
    int rc = 0;
    for (uint32_t t = 0; t < m->nthreads && rc == 0; t++) {
        for (uint32_t i = 0; i < st.ns; i++)
            st.s[i].onpath = 0;
        st.depth = 0;
        rc = cp_export_walk(m, &m->threads[t], on_node, &st);
    }
    if (rc != 0)
        goto out;
    if (st.ne)
        qsort(st.e, st.ne, sizeof *st.e, cmp_edge);
    /* Merge equal (callee, caller) edges in place. */
    size_t k = 0;
    for (size_t i = 0; i < st.ne; i++) {
        if (k && st.e[k - 1].callee == st.e[i].callee && st.e[k - 1].caller == st.e[i].caller) {
            st.e[k - 1].nc += st.e[i].nc;
            st.e[k - 1].cc += st.e[i].cc;
            st.e[k - 1].tt_ns += st.e[i].tt_ns;
            st.e[k - 1].ct_ns += st.e[i].ct_ns;
        } else {
            st.e[k++] = st.e[i];
        }
    }
    st.ne = k;

    /* The stats dict, one entry per site with calls or samples, by site
     * index.  A sampled-only site has 0 calls (pstats prints no per-call
     * time for it) and its estimated times (docs/exports.md). */
    cp_strbuf_putc(out, '{');
    size_t e = 0;
    for (uint32_t site = 1; site < st.ns; site++) {
        site_stat *ss = &st.s[site];
        if (!ss->nc && !ss->samples)
            continue;
        put_key(&st, m, site);
        cp_strbuf_putc(out, ')');
        cp_strbuf_putc(out, 5);
        put_int(out, ss->cc);
        put_int(out, ss->nc);
        put_seconds(out, ss->tt_ns);
        put_seconds(out, ss->ct_ns);
        cp_strbuf_putc(out, '{');
        while (e < st.ne && st.e[e].callee < site)
            e++;
        for (; e < st.ne && st.e[e].callee == site; e++) {
            put_key(&st, m, st.e[e].caller);
            cp_strbuf_putc(out, ')');
            cp_strbuf_putc(out, 4);
            put_int(out, st.e[e].nc);
            put_int(out, st.e[e].cc);
            put_seconds(out, st.e[e].tt_ns);
            put_seconds(out, st.e[e].ct_ns);
        }
        cp_strbuf_putc(out, '0');
    }
    cp_strbuf_putc(out, '0');
    rc = cp_strbuf_ok(out) ? 0 : -1;
out:
    free(st.s);
    free(st.e);
    free(st.pathsite);
    return rc;
}
