/* stacktab.c -- the session's table of sampled stacks (stacktab.h).
 *
 * Hash-consing: a stack's frames are hashed (FNV-1a over site and line of
 * every frame) into an open-addressing table of ids; ids are dense from 1.
 * Frames live in append-only chunks that never move (a chunk is allocated
 * when the current one cannot hold the next stack whole), and the per-id
 * record (chunk pointer, count) lives in a directory of fixed-size pages
 * that never move either, so `get` hands out pointers that stay valid
 * while more stacks are interned, until reset or free.  One mutex guards
 * intern and get: the writer is the sampler thread (one intern per sampled
 * thread per tick, short critical section), readers are the aggregation
 * side.  Large arrays come from bigmem (mmap-backed, given back at reset).
 */
#include "sampling/stacktab.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"

#define CHUNK_FRAMES (1u << 14)  /* 128 KiB of frames per chunk          */
#define PAGE_IDS (1u << 12)      /* stack records per directory page     */
#define MAX_PAGES (1u << 12)     /* up to 16M ids (caps are far below)    */

typedef struct stack_rec {
    const cp_sframe *frames;
    uint32_t n;
    uint32_t hash;
} stack_rec;

typedef struct chunk {
    struct chunk *next;
    uint32_t used, cap;
    cp_sframe frames[];
} chunk;

struct cp_stacktab {
    pthread_mutex_t mu;
    uint32_t max_stacks;
    uint32_t count;         /* ids 1..count are valid                    */
    uint64_t dropped;
    uint32_t *slots;        /* id or 0; open addressing, linear probing  */
    uint32_t nslots;        /* power of two or 0                         */
    stack_rec *pages[MAX_PAGES];
    uint32_t npages;
    chunk *chunks;          /* newest first                              */
    uint64_t bytes;         /* chunks + pages + slots                    */
};

cp_stacktab *cp_stacktab_new(uint32_t max_stacks) {
    cp_stacktab *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return NULL;
    }
    if (max_stacks > PAGE_IDS * MAX_PAGES - 1)
        max_stacks = PAGE_IDS * MAX_PAGES - 1;
    t->max_stacks = max_stacks;
    return t;
}

static uint32_t hash_frames(const cp_sframe *f, uint32_t n) {
    uint32_t h = 2166136261u ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h = (h ^ f[i].site) * 16777619u;
        h = (h ^ f[i].line) * 16777619u;
    }
    return h ? h : 1;
}

static stack_rec *rec_of(const cp_stacktab *t, uint32_t id) {
    return &t->pages[(id - 1) / PAGE_IDS][(id - 1) % PAGE_IDS];
}

/* Doubles the slot array (or creates it); -1 on OOM (table unchanged). */
static int grow_slots(cp_stacktab *t) {
    uint32_t ncap = t->nslots ? t->nslots * 2 : 1024;
    uint32_t *ns = cp_big_calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (uint32_t id = 1; id <= t->count; id++) {
        uint32_t j = rec_of(t, id)->hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = id;
    }
    if (t->slots) {
        cp_big_free(t->slots);
        t->bytes -= (uint64_t)t->nslots * sizeof *t->slots;
    }
    t->slots = ns;
    t->nslots = ncap;
    t->bytes += (uint64_t)ncap * sizeof *ns;
    return 0;
}

/* Room for n frames that never move; NULL on OOM. */
static cp_sframe *frames_room(cp_stacktab *t, uint32_t n) {
    chunk *c = t->chunks;
    if (!c || c->cap - c->used < n) {
        uint32_t cap = n > CHUNK_FRAMES ? n : CHUNK_FRAMES;
        size_t sz = sizeof(chunk) + (size_t)cap * sizeof(cp_sframe);
        c = cp_big_alloc(sz);
        if (!c)
            return NULL;
        c->next = t->chunks;
        c->used = 0;
        c->cap = cap;
        t->chunks = c;
        t->bytes += sz;
    }
    cp_sframe *p = &c->frames[c->used];
    c->used += n;
    return p;
}

static uint32_t intern_locked(cp_stacktab *t, const cp_sframe *frames, uint32_t n) {
    uint32_t h = hash_frames(frames, n);
    if (t->nslots) {
        for (uint32_t j = h & (t->nslots - 1); t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
            const stack_rec *r = rec_of(t, t->slots[j]);
            if (r->hash == h && r->n == n &&
                (n == 0 || memcmp(r->frames, frames, (size_t)n * sizeof *frames) == 0))
                return t->slots[j];
        }
    }
    if (t->count >= t->max_stacks)
        return CP_STACK_OTHER;
    if (((uint64_t)t->count + 1) * 2 > t->nslots && grow_slots(t) != 0)
        return CP_STACK_OTHER;
    uint32_t id = t->count + 1;
    uint32_t page = (id - 1) / PAGE_IDS;
    if (page >= t->npages) {
        stack_rec *p = cp_big_calloc(PAGE_IDS, sizeof *p);
        if (!p)
            return CP_STACK_OTHER;
        t->pages[t->npages++] = p;
        t->bytes += (uint64_t)PAGE_IDS * sizeof *p;
    }
    cp_sframe *dst = n ? frames_room(t, n) : NULL;
    if (n && !dst)
        return CP_STACK_OTHER;
    if (n)
        memcpy(dst, frames, (size_t)n * sizeof *frames);
    stack_rec *r = rec_of(t, id);
    r->frames = dst;
    r->n = n;
    r->hash = h;
    uint32_t j = h & (t->nslots - 1);
    while (t->slots[j])
        j = (j + 1) & (t->nslots - 1);
    t->slots[j] = id;
    t->count = id;
    return id;
}

uint32_t cp_stacktab_intern(cp_stacktab *t, const cp_sframe *frames, uint32_t n) {
    if (!t)
        return CP_STACK_OTHER;
    if (n > CP_STACK_MAX_DEPTH)
        n = CP_STACK_MAX_DEPTH; /* the innermost frames are kept */
    pthread_mutex_lock(&t->mu);
    uint32_t id = intern_locked(t, frames, n);
    if (id == CP_STACK_OTHER)
        t->dropped++;
    pthread_mutex_unlock(&t->mu);
    return id;
}

int cp_stacktab_get(const cp_stacktab *t, uint32_t id, const cp_sframe **frames, uint32_t *n) {
    if (!t || id == CP_STACK_OTHER)
        return -1;
    cp_stacktab *w = (cp_stacktab *)t; /* the mutex only */
    pthread_mutex_lock(&w->mu);
    int rc = -1;
    if (id <= t->count) {
        const stack_rec *r = rec_of(t, id);
        *frames = r->frames;
        *n = r->n;
        rc = 0;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

uint32_t cp_stacktab_count(const cp_stacktab *t) {
    if (!t)
        return 0;
    cp_stacktab *w = (cp_stacktab *)t;
    pthread_mutex_lock(&w->mu);
    uint32_t c = t->count;
    pthread_mutex_unlock(&w->mu);
    return c;
}

uint64_t cp_stacktab_dropped(const cp_stacktab *t) {
    if (!t)
        return 0;
    cp_stacktab *w = (cp_stacktab *)t;
    pthread_mutex_lock(&w->mu);
    uint64_t d = t->dropped;
    pthread_mutex_unlock(&w->mu);
    return d;
}

uint64_t cp_stacktab_bytes(const cp_stacktab *t) {
    if (!t)
        return 0;
    cp_stacktab *w = (cp_stacktab *)t;
    pthread_mutex_lock(&w->mu);
    uint64_t b = sizeof *t + t->bytes;
    pthread_mutex_unlock(&w->mu);
    return b;
}

static void release_locked(cp_stacktab *t) {
    for (chunk *c = t->chunks, *nx; c; c = nx) {
        nx = c->next;
        cp_big_free(c);
    }
    t->chunks = NULL;
    for (uint32_t i = 0; i < t->npages; i++) {
        cp_big_free(t->pages[i]);
        t->pages[i] = NULL;
    }
    t->npages = 0;
    cp_big_free(t->slots);
    t->slots = NULL;
    t->nslots = 0;
    t->count = 0;
    t->dropped = 0;
    t->bytes = 0;
}

void cp_stacktab_reset(cp_stacktab *t) {
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    release_locked(t);
    pthread_mutex_unlock(&t->mu);
}

int cp_stacktab_atfork_child(cp_stacktab *t) {
    if (!t)
        return 0;
    if (pthread_mutex_trylock(&t->mu) == 0) {
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    /* Held by a thread that does not exist here. */
    t->chunks = NULL;
    for (uint32_t i = 0; i < MAX_PAGES; i++)
        t->pages[i] = NULL;
    t->npages = 0;
    t->slots = NULL;
    t->nslots = 0;
    t->count = 0;
    t->bytes = 0;
    pthread_mutex_init(&t->mu, NULL);
    return 1;
}

void cp_stacktab_free(cp_stacktab *t) {
    if (!t)
        return;
    release_locked(t);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
