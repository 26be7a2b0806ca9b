/* model_lines.c -- the model's line table (model_lines.h). */
#include "model/model_lines.h"

#include <stdlib.h>
#include <string.h>

int cp_mlines_add(cp_mlines *ml, uint32_t site, uint32_t line, uint64_t hits, uint64_t time_ns,
                  uint64_t samples, uint64_t sampled_ns) {
    if (ml->n == ml->cap) {
        if (ml->cap >= 4 * CP_MAX_LINES) { /* unsorted rows: finish, then retry */
            cp_mlines_finish(ml);
            if (ml->n == ml->cap) {
                ml->dropped++;
                return 0;
            }
        } else {
            uint32_t ncap = ml->cap ? 2 * ml->cap : 64;
            cp_mline *nv = realloc(ml->v, (size_t)ncap * sizeof *nv);
            if (!nv) {
                ml->dropped++;
                return -1;
            }
            ml->v = nv;
            ml->cap = ncap;
        }
    }
    cp_mline *r = &ml->v[ml->n++];
    memset(r, 0, sizeof *r);
    r->site = site;
    r->line = line;
    r->hits = hits;
    r->time_ns = time_ns;
    r->samples = samples;
    r->sampled_ns = sampled_ns;
    r->text = CP_MLINE_NOTEXT;
    return 0;
}

static int cmp_row(const void *a, const void *b) {
    const cp_mline *x = a, *y = b;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int cmp_weight_desc(const void *a, const void *b) {
    const cp_mline *x = a, *y = b;
    uint64_t wx = x->time_ns + x->sampled_ns, wy = y->time_ns + y->sampled_ns;
    return (wx < wy) - (wx > wy);
}

void cp_mlines_finish(cp_mlines *ml) {
    if (!ml->n)
        return;
    qsort(ml->v, ml->n, sizeof *ml->v, cmp_row);
    uint32_t w = 0;
    for (uint32_t i = 0; i < ml->n; i++) {
        if (w && ml->v[w - 1].site == ml->v[i].site && ml->v[w - 1].line == ml->v[i].line) {
            cp_mline *d = &ml->v[w - 1];
            d->hits += ml->v[i].hits;
            d->time_ns += ml->v[i].time_ns;
            d->samples += ml->v[i].samples;
            d->sampled_ns += ml->v[i].sampled_ns;
            if (d->text == CP_MLINE_NOTEXT)
                d->text = ml->v[i].text;
        } else {
            ml->v[w++] = ml->v[i];
        }
    }
    ml->n = w;
    if (ml->n > CP_MAX_LINES) { /* keep the heaviest rows */
        qsort(ml->v, ml->n, sizeof *ml->v, cmp_weight_desc);
        ml->dropped += ml->n - CP_MAX_LINES;
        ml->n = CP_MAX_LINES;
        qsort(ml->v, ml->n, sizeof *ml->v, cmp_row);
    }
}

uint32_t cp_mlines_first(const cp_mlines *ml, uint32_t site) {
    uint32_t lo = 0, hi = ml->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ml->v[mid].site < site)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ml->n && ml->v[lo].site == site ? lo : ml->n;
}

int cp_mlines_set_text(cp_mlines *ml, uint32_t i, const char *text, size_t len) {
    if (i >= ml->n)
        return -1;
    if (len > 200)
        len = 200;
    size_t k = 0;
    while (k < len && text[k] != '\n' && text[k] != '\r' && text[k] != '\0')
        k++;
    if (ml->ntext + k + 1 > ml->captext) {
        size_t ncap = ml->captext ? 2 * ml->captext : 4096;
        while (ncap < ml->ntext + k + 1)
            ncap *= 2;
        if (ncap > UINT32_MAX)
            return -1;
        char *nt = realloc(ml->text, ncap);
        if (!nt)
            return -1;
        ml->text = nt;
        ml->captext = ncap;
    }
    memcpy(ml->text + ml->ntext, text, k);
    ml->text[ml->ntext + k] = '\0';
    ml->v[i].text = (uint32_t)ml->ntext;
    ml->ntext += k + 1;
    return 0;
}

const char *cp_mlines_text(const cp_mlines *ml, uint32_t i) {
    if (i >= ml->n || ml->v[i].text == CP_MLINE_NOTEXT || ml->v[i].text >= ml->ntext)
        return NULL;
    return ml->text + ml->v[i].text;
}

void cp_mlines_free(cp_mlines *ml) {
    free(ml->v);
    free(ml->text);
    memset(ml, 0, sizeof *ml);
}

int cp_mlines_merge(cp_mlines *dst, const cp_mlines *src, const uint32_t *smap) {
    uint32_t n0 = dst->n;
    for (uint32_t i = 0; i < src->n; i++) {
        const cp_mline *r = &src->v[i];
        uint32_t site = smap ? smap[r->site] : r->site;
        if (cp_mlines_add(dst, site, r->line, r->hits, r->time_ns, r->samples, r->sampled_ns) != 0) {
            dst->n = n0;
            return -1;
        }
        const char *t = cp_mlines_text(src, i);
        if (t && cp_mlines_set_text(dst, dst->n - 1, t, strlen(t)) != 0) {
            dst->n = n0;
            return -1;
        }
    }
    dst->exact |= src->exact;
    dst->dropped += src->dropped;
    cp_mlines_finish(dst);
    return 0;
}
