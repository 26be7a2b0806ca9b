/* site.c -- the process-wide, append-only site table (see site.h).
 *
 * Storage is a fixed directory of chunks, so an id maps to its entry with
 * two loads and entries never move (lock-free readers).  Interning looks up
 * an open-addressing hash of (name, file, line, kind) under a mutex.
 */
#include "core/site.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096 /* 16M sites */

static _Atomic(cp_site_info *) chunks[MAX_CHUNKS];
static atomic_uint site_count;          /* ids 1..site_count are valid */
static pthread_mutex_t site_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *hash_ids;              /* 0 = empty slot */
static uint32_t hash_cap;               /* power of two */

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

const cp_site_info *cp_site_get(uint32_t id) {
    if (id == 0 || id > atomic_load_explicit(&site_count, memory_order_acquire))
        return NULL;
    uint32_t i = id - 1;
    cp_site_info *c = atomic_load_explicit(&chunks[i >> CHUNK_BITS], memory_order_acquire);
    return c ? &c[i & (CHUNK_SIZE - 1)] : NULL;
}

uint32_t cp_site_count(void) { return atomic_load_explicit(&site_count, memory_order_acquire); }

static int same_site(const cp_site_info *s, const char *name, const char *file, uint32_t line,
                     uint16_t kind) {
    return s->line == line && s->kind == kind && strcmp(s->name, name) == 0 &&
           strcmp(s->file, file) == 0;
}

static int hash_grow(void) {
    uint32_t ncap = hash_cap ? hash_cap * 2 : 1024;
    uint32_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < hash_cap; i++) {
        uint32_t id = hash_ids[i];
        if (!id)
            continue;
        const cp_site_info *s = cp_site_get(id);
        uint64_t h = site_hash(s->name, s->file, s->line, s->kind);
        uint32_t j = (uint32_t)h & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = id;
    }
    free(hash_ids);
    hash_ids = n;
    hash_cap = ncap;
    return 0;
}

uint32_t codeprof_site(const char *name, const char *file, uint32_t line,
                       codeprof_site_kind kind) {
    if (!name || (unsigned)kind >= CODEPROF_SITE_KIND_COUNT_)
        return 0;
    if (!file)
        file = "";
    uint64_t h = site_hash(name, file, line, (uint16_t)kind);
    uint32_t id = 0;
    pthread_mutex_lock(&site_mu);
    uint32_t n = atomic_load_explicit(&site_count, memory_order_relaxed);
    if ((n + 1) * 2 > hash_cap && hash_grow() != 0)
        goto out;
    uint32_t j = (uint32_t)h & (hash_cap - 1);
    while (hash_ids[j]) {
        const cp_site_info *s = cp_site_get(hash_ids[j]);
        if (same_site(s, name, file, line, (uint16_t)kind)) {
            id = hash_ids[j];
            goto out;
        }
        j = (j + 1) & (hash_cap - 1);
    }
    if (n >= (uint32_t)MAX_CHUNKS * CHUNK_SIZE)
        goto out;
    uint32_t ci = n >> CHUNK_BITS;
    cp_site_info *c = atomic_load_explicit(&chunks[ci], memory_order_relaxed);
    if (!c) {
        c = calloc(CHUNK_SIZE, sizeof *c);
        if (!c)
            goto out;
        atomic_store_explicit(&chunks[ci], c, memory_order_release);
    }
    size_t ln = strlen(name) + 1, lf = strlen(file) + 1;
    char *mem = malloc(ln + lf);
    if (!mem)
        goto out;
    memcpy(mem, name, ln);
    memcpy(mem + ln, file, lf);
    cp_site_info *e = &c[n & (CHUNK_SIZE - 1)];
    e->name = mem;
    e->file = mem + ln;
    e->line = line;
    e->kind = (uint16_t)kind;
    id = n + 1;
    hash_ids[j] = id;
    atomic_store_explicit(&site_count, id, memory_order_release);
out:
    pthread_mutex_unlock(&site_mu);
    return id;
}

void cp_site_atfork_prepare(void) { pthread_mutex_lock(&site_mu); }
void cp_site_atfork_parent(void) { pthread_mutex_unlock(&site_mu); }
/* The forking thread held the mutex across fork; the child starts it fresh. */
void cp_site_atfork_child(void) { pthread_mutex_init(&site_mu, NULL); }
