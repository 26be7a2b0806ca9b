/* heap_internal.h -- what the tracker (heap.c) offers its own tests and
 * the session glue beyond heap.h.  Not part of the dispatch table: these act
 * on the tracker of the copy they are linked into. */
#ifndef CP_HEAP_INTERNAL_H
#define CP_HEAP_INTERNAL_H

#include <stdint.h>

/* Seeds the per-thread sampling generators of the next cp_heap_start
 * (0: seed from the clock, the default).  For deterministic tests. */
void cp_heap_seed_for_tests(uint64_t seed);

/* Number of open marks holding a watcher slot (tests). */
uint32_t cp_heap_watchers_in_use(void);

#endif /* CP_HEAP_INTERNAL_H */
