/* site_table.c -- a model's own interned sites (site_table.h). */
#include "model/site_table.h"

#include <stdlib.h>
#include <string.h>

/* Strings are copied into chunks of at least CHUNK_MIN bytes; a string
 * longer than that gets a chunk of its own. */
#define CHUNK_MIN 16384u

typedef struct cp_msite_chunk {
    struct cp_msite_chunk *next;
    size_t used, size;
    char data[];
} cp_msite_chunk;

static uint64_t site_hash(const char *name, const char *file, uint32_t line, uint16_t kind) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over name, NUL, file */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h = (h ^ 0xffu) * 0x100000001b3ull;
    for (const unsigned char *p = (const unsigned char *)file; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h ^= (uint64_t)line * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)kind << 48;
    h ^= h >> 31;
    return h;
}

static const char *arena_copy(cp_msite_table *t, const char *s) {
    size_t len = strlen(s) + 1;
    cp_msite_chunk *c = t->chunks;
    if (!c || c->size - c->used < len) {
        size_t size = len > CHUNK_MIN ? len : CHUNK_MIN;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->used = 0;
        c->size = size;
        if (len > CHUNK_MIN && t->chunks) {
            /* keep filling the current chunk: put the big one behind it */
            c->next = t->chunks->next;
            t->chunks->next = c;
        } else {
            c->next = t->chunks;
            t->chunks = c;
        }
    }
    char *dst = c->data + c->used;
    memcpy(dst, s, len);
    c->used += len;
    t->string_bytes += len;
    return dst;
}

static int hash_grow(cp_msite_table *t) {
    uint32_t ncap = t->hash_cap ? t->hash_cap * 2 : 256;
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!nh)
        return -1;
    for (uint32_t i = 1; i < t->n; i++) {
        const cp_msite *s = &t->v[i];
        uint32_t slot = (uint32_t)site_hash(s->name, s->file, s->line, s->kind) & (ncap - 1);
        while (nh[slot])
            slot = (slot + 1) & (ncap - 1);
        nh[slot] = i + 1;
    }
    free(t->hash);
    t->hash = nh;
    t->hash_cap = ncap;
    return 0;
}

uint32_t cp_msite_intern(cp_msite_table *t, const char *name, const char *file, uint32_t line,
                         uint16_t kind) {
    if (!name)
        return 0;
    if (!file)
        file = "";
    /* keep the load factor at or below 1/2 */
    if ((uint64_t)(t->n + 1) * 2 > t->hash_cap && hash_grow(t) != 0)
        return 0;
    uint32_t mask = t->hash_cap - 1;
    uint32_t slot = (uint32_t)site_hash(name, file, line, kind) & mask;
    for (; t->hash[slot]; slot = (slot + 1) & mask) {
        const cp_msite *s = &t->v[t->hash[slot] - 1];
        if (s->line == line && s->kind == kind && strcmp(s->name, name) == 0 &&
            strcmp(s->file, file) == 0)
            return t->hash[slot] - 1;
    }
    if (t->n == UINT32_MAX - 1)
        return 0;
    if (t->n + 1 >= t->cap) {
        uint32_t ncap = t->cap ? t->cap * 2 : 64;
        cp_msite *nv = realloc(t->v, (size_t)ncap * sizeof *nv);
        if (!nv)
            return 0;
        if (t->cap == 0)
            memset(&nv[0], 0, sizeof nv[0]);
        t->v = nv;
        t->cap = ncap;
    }
    if (t->n == 0)
        t->n = 1; /* slot 0: no site */
    const char *n = arena_copy(t, name);
    const char *f = *file ? arena_copy(t, file) : "";
    if (!n || !f)
        return 0; /* the copied string stays in the arena until freed */
    uint32_t idx = t->n++;
    t->v[idx] = (cp_msite){n, f, line, kind};
    t->hash[slot] = idx + 1;
    return idx;
}

const cp_msite *cp_msite_get(const cp_msite_table *t, uint32_t idx) {
    return idx && idx < t->n ? &t->v[idx] : NULL;
}

void cp_msite_table_free(cp_msite_table *t) {
    if (!t)
        return;
    for (cp_msite_chunk *c = t->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(t->v);
    free(t->hash);
    memset(t, 0, sizeof *t);
}
