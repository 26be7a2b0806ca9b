/* u32map.c -- 32-bit key -> value map (u32map.h). */
#include "core/u32map.h"

#include <stdlib.h>

static uint32_t slot(const cp_u32map *m, uint32_t key) {
    uint32_t j = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    return j;
}

int cp_u32map_get(const cp_u32map *m, uint32_t key, uint32_t *val) {
    if (!m->cap || !key)
        return 0;
    uint32_t j = slot(m, key);
    if (!m->keys[j])
        return 0;
    *val = m->vals[j];
    return 1;
}

static int grow(cp_u32map *m) {
    uint32_t ncap = m->cap ? m->cap * 2 : 256;
    if (ncap < m->cap)
        return -1;
    uint32_t *nk = calloc(ncap, sizeof *nk), *nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    cp_u32map old = *m;
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    for (uint32_t i = 0; i < old.cap; i++) {
        if (!old.keys[i])
            continue;
        uint32_t j = slot(m, old.keys[i]);
        m->keys[j] = old.keys[i];
        m->vals[j] = old.vals[i];
    }
    free(old.keys);
    free(old.vals);
    return 0;
}

int cp_u32map_put(cp_u32map *m, uint32_t key, uint32_t val) {
    if (!key)
        return -1;
    if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
        return -1;
    uint32_t j = slot(m, key);
    if (!m->keys[j]) {
        m->keys[j] = key;
        m->n++;
    }
    m->vals[j] = val;
    return 0;
}

void cp_u32map_free(cp_u32map *m) {
    free(m->keys);
    free(m->vals);
    m->keys = m->vals = NULL;
    m->cap = m->n = 0;
}
