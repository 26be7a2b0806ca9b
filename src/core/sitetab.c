/* sitetab.c -- a table of interned sites (sitetab.h). */
#include "core/bigmem.h"
#include "core/sitetab.h"
#include "memory/heap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (256u * 1024u) /* mapped, and unmapped when freed (bigmem.h) */

static const char *const other_names[CODEPROF_SITE_KIND_COUNT_] = {
    "(other scopes)",         "(other Python functions)", "(other C functions)",
    "(other functions)",      "(other datasets)",         "(other loaders)",
    "(other preprocessing)",  "(other augmentation)",     "(other GPU operations)",
};

static uint64_t site_hash(const char *name, const char *file, uint32_t line, uint16_t kind) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const unsigned char *p = (const unsigned char *)file; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h ^= (uint64_t)line * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)kind << 56;
    return h ^ (h >> 29);
}

int cp_sitetab_init(cp_sitetab *t, uint32_t cap, uint32_t base) {
    memset(t, 0, sizeof *t);
    t->cap = cap;
    t->base = base;
    uint64_t entries = (uint64_t)cap + CODEPROF_SITE_KIND_COUNT_;
    t->nchunks = (uint32_t)((entries + CP_SITETAB_CHUNK - 1) / CP_SITETAB_CHUNK);
    t->chunks = calloc(t->nchunks, sizeof *t->chunks);
    if (!t->chunks)
        return -1;
    for (uint32_t i = 0; i < t->nchunks; i++)
        atomic_init(&t->chunks[i], NULL);
    atomic_init(&t->count, 0);
    atomic_init(&t->dropped, 0);
    pthread_mutex_init(&t->mu, NULL);
    return 0;
}

void cp_sitetab_destroy(cp_sitetab *t) {
    if (!t->chunks)
        return;
    for (uint32_t i = 0; i < t->nchunks; i++)
        cp_big_free(atomic_load_explicit(&t->chunks[i], memory_order_relaxed));
    free((void *)t->chunks);
    for (uint32_t i = 0; i < t->nblocks; i++)
        cp_big_free(t->blocks[i]);
    free(t->blocks);
    cp_big_free(t->hash);
    pthread_mutex_destroy(&t->mu);
    memset(t, 0, sizeof *t);
}

/* Copies name\0file\0 into the arena; NULL on OOM. */
static char *arena_copy(cp_sitetab *t, const char *name, size_t ln, const char *file, size_t lf) {
    size_t need = ln + lf;
    if (t->arena_used + need > t->arena_cap) {
        size_t bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        if (t->nblocks == t->cap_blocks) {
            uint32_t nc = t->cap_blocks ? t->cap_blocks * 2 : 16;
            char **nb = realloc(t->blocks, (size_t)nc * sizeof *nb);
            if (!nb)
                return NULL;
            t->blocks = nb;
            t->cap_blocks = nc;
        }
        char *blk = cp_big_alloc(bsize);
        if (!blk)
            return NULL;
        t->blocks[t->nblocks++] = blk;
        t->arena = blk;
        t->arena_used = 0;
        t->arena_cap = bsize;
    }
    char *p = t->arena + t->arena_used;
    memcpy(p, name, ln);
    memcpy(p + ln, file, lf);
    t->arena_used += need;
    return p;
}

static int hash_grow(cp_sitetab *t) {
    uint32_t ncap = t->hash_cap ? t->hash_cap * 2 : 1024;
    uint32_t *n = cp_big_calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < t->hash_cap; i++) {
        uint32_t e = t->hash[i];
        if (!e)
            continue;
        const cp_site_info *s = cp_sitetab_get(t, t->base + e);
        uint64_t h = site_hash(s->name, s->file, s->line, s->kind);
        uint32_t j = (uint32_t)h & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = e;
    }
    cp_big_free(t->hash);
    t->hash = n;
    t->hash_cap = ncap;
    return 0;
}

/* Appends an entry (mutex held); returns its id or 0. */
static uint32_t append(cp_sitetab *t, const char *name, const char *file, uint32_t line,
                       uint16_t kind) {
    uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    uint32_t ci = n >> CP_SITETAB_CHUNK_BITS;
    if (ci >= t->nchunks)
        return 0;
    cp_site_info *c = atomic_load_explicit(&t->chunks[ci], memory_order_relaxed);
    if (!c) {
        c = cp_big_calloc(CP_SITETAB_CHUNK, sizeof *c);
        if (!c)
            return 0;
        atomic_store_explicit(&t->chunks[ci], c, memory_order_release);
    }
    size_t ln = strlen(name) + 1, lf = strlen(file) + 1;
    char *mem = arena_copy(t, name, ln, file, lf);
    if (!mem)
        return 0;
    cp_site_info *e = &c[n & (CP_SITETAB_CHUNK - 1)];
    e->name = mem;
    e->file = mem + ln;
    e->line = line;
    e->kind = kind;
    atomic_store_explicit(&t->count, n + 1, memory_order_release);
    return t->base + n + 1;
}

uint32_t cp_sitetab_intern(cp_sitetab *t, const char *name, const char *file, uint32_t line,
                           uint16_t kind) {
    if (!name || kind >= CODEPROF_SITE_KIND_COUNT_ || !t->chunks)
        return 0;
    if (!file)
        file = "";
    uint64_t h = site_hash(name, file, line, kind);
    uint32_t id = 0;
    /* What the table allocates under its lock is the profiler's own memory:
     * the allocation hooks must neither record it nor (from a native malloc
     * hook) ask for a Python stack, which may intern a site and would wait
     * for this lock on this very thread. */
    int hooked = cp_heap_hook_enter();
    pthread_mutex_lock(&t->mu);
    uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    if ((n + 1) * 2 > t->hash_cap && hash_grow(t) != 0)
        goto out;
    uint32_t j = (uint32_t)h & (t->hash_cap - 1);
    while (t->hash[j]) {
        const cp_site_info *s = cp_sitetab_get(t, t->base + t->hash[j]);
        if (s->line == line && s->kind == kind && strcmp(s->name, name) == 0 &&
            strcmp(s->file, file) == 0) {
            id = t->base + t->hash[j];
            goto out;
        }
        j = (j + 1) & (t->hash_cap - 1);
    }
    if (t->names >= t->cap) {
        /* Past the cap: one overflow entry per kind. */
        atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
        if (!t->other[kind])
            t->other[kind] = append(t, other_names[kind], "", CP_SITE_OTHER_LINE, kind);
        id = t->other[kind];
        goto out;
    }
    id = append(t, name, file, line, kind);
    if (id) {
        t->hash[j] = id - t->base;
        t->names++;
    }
out:
    pthread_mutex_unlock(&t->mu);
    if (hooked)
        cp_heap_hook_leave();
    return id;
}

void cp_sitetab_lock(cp_sitetab *t) { pthread_mutex_lock(&t->mu); }
void cp_sitetab_unlock(cp_sitetab *t) { pthread_mutex_unlock(&t->mu); }
void cp_sitetab_reinit_lock(cp_sitetab *t) { pthread_mutex_init(&t->mu, NULL); }
