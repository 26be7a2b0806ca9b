/* site.h -- sites: every named place (function, scope, dataset, ...) is
 * interned once and referred to by a 32-bit id (0 means "none").
 *
 * Two kinds of table (sitetab.h), one id space:
 * - the process-wide table (ids below CP_SITE_LOCAL_BIT): append-only for
 *   the process, so ids cached in static source locations and in Python
 *   code objects stay valid across sessions.  Capped at
 *   CP_SITE_GLOBAL_CAP names; past it names fold into one "(other ...)"
 *   entry per kind (counted by cp_site_dropped).
 * - one table per session (codeprof_session_site) for names that live
 *   with the session, such as profiling_context names built at run time:
 *   ids carry CP_SITE_LOCAL_BIT and the session's slot, and the table is
 *   freed with the session.  Capped by codeprof_config.max_sites.
 * Lookups by id (cp_site_get) are lock-free for both.
 */
#ifndef CP_SITE_H
#define CP_SITE_H

#include <stdint.h>

#include "codeprof/codeprof.h"
#include "core/sitetab.h"

#define CP_SITE_LOCAL_BIT 0x80000000u
#define CP_SITE_SLOT_BITS 11                 /* 2048 live session tables */
#define CP_SITE_LOCAL_BITS 20                /* ids per session table     */
#define CP_SITE_LOCAL_MAX ((1u << CP_SITE_LOCAL_BITS) - 1 - CODEPROF_SITE_KIND_COUNT_)
#define CP_SITE_GLOBAL_CAP (1u << 22)

/* Returns the site for `id` (global or session-local), or NULL if id is 0
 * or not interned.  Lock-free; the pointer stays valid while its table
 * lives (the process for global ids, the session for local ids). */
const cp_site_info *cp_site_get(uint32_t id);

/* 1 if `id` is a session-local id. */
static inline int cp_site_is_local(uint32_t id) { return (id & CP_SITE_LOCAL_BIT) != 0; }

/* Number of global ids handed out so far (the largest valid global id). */
uint32_t cp_site_count(void);

/* Global names folded into an overflow entry so far. */
uint64_t cp_site_dropped(void);

/* Session-local tables: a new table for at most `cap` names; returns its
 * slot (>= 0) or -1 when out of memory or every slot is in use. */
int cp_site_local_new(uint32_t cap);
/* Frees the table of `slot` (no thread may use its ids any more). */
void cp_site_local_free(int slot);
/* Interns into the table of `slot`; 0 on OOM. */
uint32_t cp_site_local_intern(int slot, const char *name, const char *file, uint32_t line,
                              uint16_t kind);
/* Names folded into an overflow entry in the table of `slot`. */
uint64_t cp_site_local_dropped(int slot);

/* Tests only: lower the global cap (takes effect for later names). */
void cp_site_set_global_cap_for_tests(uint32_t cap);

/* Fork support: called from the atfork handlers in session.c. */
void cp_site_atfork_prepare(void);
void cp_site_atfork_parent(void);
void cp_site_atfork_child(void);

#endif /* CP_SITE_H */
