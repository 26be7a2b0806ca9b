/* site.h -- the process-wide site table: every named place (function,
 * scope, dataset, ...) is interned once and referred to by a dense id.
 *
 * Ids start at 1 (0 means "none").  The table is append-only and lives for
 * the whole process, so ids cached in static source locations and in
 * Python code objects stay valid across sessions.  Interning takes a mutex;
 * lookups by id (cp_site_get) are lock-free.
 */
#ifndef CP_SITE_H
#define CP_SITE_H

#include <stdint.h>

#include "codeprof/codeprof.h"

typedef struct cp_site_info {
    const char *name; /* never NULL */
    const char *file; /* "" when unknown */
    uint32_t line;
    uint16_t kind;    /* codeprof_site_kind */
} cp_site_info;

/* Returns the site for `id`, or NULL if id is 0 or not yet interned.
 * Lock-free; the pointer stays valid for the process lifetime. */
const cp_site_info *cp_site_get(uint32_t id);

/* Number of ids handed out so far (the largest valid id). */
uint32_t cp_site_count(void);

/* Fork support: called from the atfork handlers in session.c. */
void cp_site_atfork_prepare(void);
void cp_site_atfork_parent(void);
void cp_site_atfork_child(void);

#endif /* CP_SITE_H */
