/* heap_map.h -- the allocation tracker's own memory: anonymous mappings
 * (MAP_NORESERVE), never the hooked allocators, counted so the report can
 * show the tracker's footprint (memory.own_bytes). */
#ifndef CP_HEAP_MAP_H
#define CP_HEAP_MAP_H

#include <stddef.h>
#include <stdint.h>

/* n bytes of zeroed memory, NULL on failure. */
void *cp_heap_map(size_t n);
/* Gives back a mapping of n bytes (NULL is a no-op). */
void cp_heap_unmap(void *p, size_t n);
/* Bytes mapped now. */
uint64_t cp_heap_mapped_bytes(void);
/* Fork child: the parent's mappings are abandoned, not counted. */
void cp_heap_map_forget(void);

#endif /* CP_HEAP_MAP_H */
