/* bigmem.h -- memory for the profiler's large, long-lived arrays (tree
 * nodes, hash tables, site tables, event buffers, the timeline).
 *
 * Blocks of 64 KiB and more are mapped with mmap(2) and unmapped when
 * freed, so their memory goes back to the system at once.  Through malloc
 * they would not always: glibc raises its mmap threshold to the size of the
 * largest block freed, after which the next run's arrays come from the heap
 * and stay in the process after reset() and free (measured: +20 MiB kept
 * per 100k context names from the second run on).  Smaller blocks use
 * malloc.  Every block remembers how it was allocated, so cp_big_realloc
 * and cp_big_free work on either.
 */
#ifndef CP_BIGMEM_H
#define CP_BIGMEM_H

#include <stddef.h>

/* Like malloc/calloc/realloc/free; NULL on OOM (and for size 0). */
void *cp_big_alloc(size_t size);
void *cp_big_calloc(size_t n, size_t size);
void *cp_big_realloc(void *p, size_t size);
void cp_big_free(void *p);

#endif /* CP_BIGMEM_H */
