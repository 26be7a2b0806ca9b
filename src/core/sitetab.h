/* sitetab.h -- one table of sites: (name, file, line, kind) -> dense id.
 *
 * Used twice (site.c): the process-wide table, whose ids live for the
 * process and may be cached anywhere (static source locations, Python code
 * objects), and one table per session for names that come and go with it
 * (profiling_context names), freed with the session.
 *
 * Storage is a fixed directory of chunks, so an id maps to its entry with
 * two loads and entries never move: lookups by id are lock-free.  Strings
 * live in large arena blocks (returned to the OS when the table is freed).
 * Interning takes the table's mutex.  A table holds at most `cap` sites;
 * past the cap a name is folded into one "(other <kind> sites)" entry per
 * kind and counted in `dropped`.
 */
#ifndef CP_SITETAB_H
#define CP_SITETAB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "codeprof/codeprof.h"

typedef struct cp_site_info {
    const char *name; /* never NULL */
    const char *file; /* "" when unknown */
    uint32_t line;
    uint16_t kind;    /* codeprof_site_kind */
} cp_site_info;

/* Line of the overflow entries ("(other ...)"), never a real line. */
#define CP_SITE_OTHER_LINE UINT32_MAX

#define CP_SITETAB_CHUNK_BITS 12
#define CP_SITETAB_CHUNK (1u << CP_SITETAB_CHUNK_BITS)

typedef struct cp_sitetab {
    _Atomic(cp_site_info *) *chunks; /* directory, cap/CHUNK+1 entries     */
    uint32_t nchunks;
    atomic_uint count;               /* entries 0..count-1 valid            */
    uint32_t cap;                    /* names before folding into "other"   */
    uint32_t names;                  /* names held (mutex)                  */
    uint32_t base;                   /* id of entry i is base + i + 1       */
    pthread_mutex_t mu;
    uint32_t *hash;                  /* entry index + 1; 0 = empty          */
    uint32_t hash_cap;
    uint32_t other[CODEPROF_SITE_KIND_COUNT_]; /* overflow entry ids, 0 = none */
    _Atomic uint64_t dropped;        /* names folded into an "other" entry  */
    char *arena;                     /* current string block                */
    size_t arena_used, arena_cap;
    char **blocks;                   /* every string block, for freeing     */
    uint32_t nblocks, cap_blocks;
} cp_sitetab;

/* Initialises an empty table for at most `cap` names (plus one overflow
 * entry per kind); ids are base+1, base+2, ...  0 or -1 on OOM. */
int cp_sitetab_init(cp_sitetab *t, uint32_t cap, uint32_t base);

/* Frees everything; entries returned by cp_sitetab_get become invalid. */
void cp_sitetab_destroy(cp_sitetab *t);

/* Interns a site; returns its id, or 0 when out of memory.  Past the cap
 * returns the kind's overflow id.  Thread-safe (mutex). */
uint32_t cp_sitetab_intern(cp_sitetab *t, const char *name, const char *file, uint32_t line,
                           uint16_t kind);

/* Entry for `id` or NULL.  Lock-free. */
static inline const cp_site_info *cp_sitetab_get(const cp_sitetab *t, uint32_t id) {
    if (id <= t->base)
        return NULL;
    uint32_t i = id - t->base - 1;
    if (i >= atomic_load_explicit(&((cp_sitetab *)t)->count, memory_order_acquire))
        return NULL;
    cp_site_info *c = atomic_load_explicit(&t->chunks[i >> CP_SITETAB_CHUNK_BITS],
                                           memory_order_acquire);
    return c ? &c[i & (CP_SITETAB_CHUNK - 1)] : NULL;
}

/* Entries held (including overflow entries). */
static inline uint32_t cp_sitetab_count(const cp_sitetab *t) {
    return atomic_load_explicit(&((cp_sitetab *)t)->count, memory_order_acquire);
}

/* Fork support: the forking thread holds `mu` across fork. */
void cp_sitetab_lock(cp_sitetab *t);
void cp_sitetab_unlock(cp_sitetab *t);
void cp_sitetab_reinit_lock(cp_sitetab *t);

#endif /* CP_SITETAB_H */
