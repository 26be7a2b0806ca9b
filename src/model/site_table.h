/* site_table.h -- a model's own site table: every site a model refers to
 * (nodes, funcs, datasets, loaders, stages) is an index into it, and its
 * strings live in the table's arena, so a model outlives the session and
 * the process-wide table (core/site.h) it was built from.
 *
 * Index 0 is "no site" (thread roots); valid indices are 1..n-1.
 * Interning the same (name, file, line, kind) twice returns the same
 * index.  Not thread-safe: a table belongs to one model under
 * construction; a finished model's table is only read.
 */
#ifndef CP_MODEL_SITE_TABLE_H
#define CP_MODEL_SITE_TABLE_H

#include <stdint.h>

/* One site of a model.  The strings are owned by the model's table. */
typedef struct cp_msite {
    const char *name; /* never NULL */
    const char *file; /* "" when unknown, never NULL */
    uint32_t line;
    uint16_t kind;    /* codeprof_site_kind */
} cp_msite;

struct cp_msite_chunk;

typedef struct cp_msite_table {
    cp_msite *v;       /* v[0] is the unused "no site" slot once grown */
    uint32_t n, cap;   /* n counts slot 0: n == 0 or n >= 1           */
    uint32_t *hash;    /* index + 1; 0 = empty; power-of-two size      */
    uint32_t hash_cap;
    struct cp_msite_chunk *chunks; /* string arena                     */
    uint64_t string_bytes;         /* arena bytes in use               */
} cp_msite_table;

/* Returns the index of (name, file, line, kind), adding it (strings
 * copied) when new; 0 on OOM or when name is NULL.  A NULL file is "". */
uint32_t cp_msite_intern(cp_msite_table *t, const char *name, const char *file, uint32_t line,
                         uint16_t kind);

/* The site at `idx`, or NULL for 0 or an index not in the table. */
const cp_msite *cp_msite_get(const cp_msite_table *t, uint32_t idx);

/* Frees every site and string; leaves an empty table.  NULL is a no-op. */
void cp_msite_table_free(cp_msite_table *t);

#endif /* CP_MODEL_SITE_TABLE_H */
