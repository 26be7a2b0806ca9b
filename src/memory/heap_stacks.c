/* heap_stacks.c -- allocation stacks interned into ids (heap_stacks.h).
 * Entries are fixed-size records (a header and CP_HEAP_MAX_DEPTH frames)
 * in one mapped array, found through an open-addressing hash of ids; both
 * grow by doubling. */
#include "memory/heap_stacks.h"

#include <pthread.h>
#include <string.h>

#include "memory/heap_map.h"

typedef struct stk_hdr {
    uint32_t nframes, hash;
} stk_hdr;

#define STRIDE (sizeof(stk_hdr) + (size_t)CP_HEAP_MAX_DEPTH * sizeof(cp_heap_frame))

static struct {
    pthread_mutex_t mu;
    uint8_t *ent;   /* entries                        */
    uint32_t *hash; /* id per slot, 0 empty           */
    uint32_t n, cap, hcap;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

static inline stk_hdr *entry(uint32_t id) { return (stk_hdr *)(g.ent + (size_t)id * STRIDE); }

static uint32_t frames_hash(const cp_heap_frame *f, uint32_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h = (h ^ f[i].pc) * 0x100000001b3ull;
        h = (h ^ f[i].site) * 0x100000001b3ull;
        h = (h ^ f[i].line) * 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

/* Maps an entry array of `cap` and a hash of 2*cap; -1 when either fails. */
static int map_pair(uint32_t cap, uint8_t **e, uint32_t **h) {
    *e = cp_heap_map((size_t)cap * STRIDE);
    *h = cp_heap_map((size_t)cap * 2 * sizeof **h);
    if (*e && *h)
        return 0;
    cp_heap_unmap(*e, *e ? (size_t)cap * STRIDE : 0);
    cp_heap_unmap(*h, *h ? (size_t)cap * 2 * sizeof **h : 0);
    return -1;
}

/* g.mu held: room for one more entry, the hash at most half full. */
static int reserve_locked(void) {
    if (!g.ent) {
        if (map_pair(1024, &g.ent, &g.hash) != 0)
            return -1;
        g.cap = 1024;
        g.hcap = 2048;
        g.n = 2; /* 0 none, 1 other */
    }
    if (g.n < g.cap)
        return 0;
    uint32_t ncap = g.cap * 2, nh = ncap * 2;
    uint8_t *e;
    uint32_t *h;
    if (map_pair(ncap, &e, &h) != 0)
        return -1;
    memcpy(e, g.ent, (size_t)g.n * STRIDE);
    cp_heap_unmap(g.ent, (size_t)g.cap * STRIDE);
    cp_heap_unmap(g.hash, (size_t)g.hcap * sizeof *g.hash);
    g.ent = e;
    g.hash = h;
    g.cap = ncap;
    g.hcap = nh;
    for (uint32_t id = 2; id < g.n; id++) {
        uint32_t i = entry(id)->hash & (nh - 1);
        while (h[i])
            i = (i + 1) & (nh - 1);
        h[i] = id;
    }
    return 0;
}

uint32_t cp_heap_stacks_intern(const cp_heap_frame *f, uint32_t n, uint32_t max_stacks) {
    if (n == 0)
        return CP_HEAP_STACK_NONE;
    if (n > CP_HEAP_MAX_DEPTH)
        n = CP_HEAP_MAX_DEPTH;
    uint32_t hv = frames_hash(f, n);
    uint32_t id = CP_HEAP_STACK_OTHER;
    pthread_mutex_lock(&g.mu);
    if (g.ent) {
        for (uint32_t i = hv & (g.hcap - 1); g.hash[i]; i = (i + 1) & (g.hcap - 1)) {
            stk_hdr *e = entry(g.hash[i]);
            if (e->hash == hv && e->nframes == n && memcmp(e + 1, f, n * sizeof *f) == 0) {
                id = g.hash[i];
                goto out;
            }
        }
    }
    if ((g.ent ? g.n - 2 : 0) >= max_stacks || reserve_locked() != 0)
        goto out;
    id = g.n++;
    stk_hdr *e = entry(id);
    e->nframes = n;
    e->hash = hv;
    memcpy(e + 1, f, n * sizeof *f);
    uint32_t i = hv & (g.hcap - 1);
    while (g.hash[i])
        i = (i + 1) & (g.hcap - 1);
    g.hash[i] = id;
out:
    pthread_mutex_unlock(&g.mu);
    return id;
}

uint32_t cp_heap_stacks_frames(uint32_t id, cp_heap_frame *out) {
    if (id == CP_HEAP_STACK_NONE)
        return 0;
    if (id == CP_HEAP_STACK_OTHER) {
        out[0] = (cp_heap_frame){CP_HEAP_PC_OTHER, 0, 0};
        return 1;
    }
    uint32_t n = 0;
    pthread_mutex_lock(&g.mu);
    if (g.ent && id < g.n) {
        stk_hdr *e = entry(id);
        n = e->nframes;
        memcpy(out, e + 1, n * sizeof *out);
    }
    pthread_mutex_unlock(&g.mu);
    return n;
}

uint32_t cp_heap_stacks_count(void) {
    pthread_mutex_lock(&g.mu);
    uint32_t n = g.ent ? g.n : 2;
    pthread_mutex_unlock(&g.mu);
    return n;
}

void cp_heap_stacks_discard(void) {
    pthread_mutex_lock(&g.mu);
    cp_heap_unmap(g.ent, (size_t)g.cap * STRIDE);
    cp_heap_unmap(g.hash, (size_t)g.hcap * sizeof *g.hash);
    g.ent = NULL;
    g.hash = NULL;
    g.n = g.cap = g.hcap = 0;
    pthread_mutex_unlock(&g.mu);
}

void cp_heap_stacks_atfork_child(void) {
    pthread_mutex_init(&g.mu, NULL);
    g.ent = NULL;
    g.hash = NULL;
    g.n = g.cap = g.hcap = 0;
}
