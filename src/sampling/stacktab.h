/* stacktab.h -- the session's table of sampled stacks.
 *
 * The sampler thread interns each stack it reads (frames innermost first,
 * as site id + line) and appends a CP_EV_SAMPLE event carrying the id; the
 * sample sink and the model build read the frames back by id.  Ids are
 * dense from 1; 0 is "(other stacks)", what a stack becomes past the cap
 * (cfg.sample_max_stacks; counted in dropped).  Storage is append-only and
 * chunked, so a reader's frames stay valid while the sampler interns more;
 * intern and get are thread-safe.  Reset empties it (no reader may hold
 * frames across a reset: the session's reset holds agg_mu).
 */
#ifndef CP_STACKTAB_H
#define CP_STACKTAB_H

#include <stdint.h>

typedef struct cp_sframe {
    uint32_t site; /* site id (site.h: process-wide or session)            */
    uint32_t line; /* line executing in the frame; 0: unknown               */
} cp_sframe;

#define CP_STACK_OTHER 0u
#define CP_STACK_MAX_DEPTH 256u /* frames kept per stack (innermost ones) */

typedef struct cp_stacktab cp_stacktab;

cp_stacktab *cp_stacktab_new(uint32_t max_stacks);
/* The id of frames[0..n) (n <= CP_STACK_MAX_DEPTH), interning it.
 * CP_STACK_OTHER past the cap or on OOM (counted). */
uint32_t cp_stacktab_intern(cp_stacktab *t, const cp_sframe *frames, uint32_t n);
/* Frames of `id`; returns 0, or -1 for an unknown id or CP_STACK_OTHER. */
int cp_stacktab_get(const cp_stacktab *t, uint32_t id, const cp_sframe **frames, uint32_t *n);
uint32_t cp_stacktab_count(const cp_stacktab *t);   /* stacks interned   */
uint64_t cp_stacktab_dropped(const cp_stacktab *t); /* interns refused   */
uint64_t cp_stacktab_bytes(const cp_stacktab *t);   /* memory it holds   */
void cp_stacktab_reset(cp_stacktab *t);
/* Fork child (only the forking thread exists): when the table's mutex was
 * held at the fork (the sampler thread was interning), the table may be
 * half-updated: it is emptied (its memory abandoned in the child, not
 * freed: its chunk list cannot be trusted) and the mutex re-made;
 * otherwise it is kept as is.  Returns 1 when it was emptied. */
int cp_stacktab_atfork_child(cp_stacktab *t);
void cp_stacktab_free(cp_stacktab *t);

#endif /* CP_STACKTAB_H */
