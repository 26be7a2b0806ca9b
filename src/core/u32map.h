/* u32map.h -- a map from non-zero 32-bit keys to 32-bit values (open
 * addressing, linear probing, grows at half full).
 *
 * For site ids, which may be anything from 1 to 2^32-1 (session-local ids
 * carry the top bit), so nothing may index an array by them: the model
 * build maps them to model indices, a worker's spool writer to its own
 * dense ids.  Not thread-safe; zero-initialise, free with cp_u32map_free.
 */
#ifndef CP_U32MAP_H
#define CP_U32MAP_H

#include <stdint.h>

typedef struct cp_u32map {
    uint32_t *keys; /* 0 = empty slot */
    uint32_t *vals;
    uint32_t cap;   /* power of two, or 0 */
    uint32_t n;
} cp_u32map;

/* Looks `key` up (non-zero).  Returns 1 and sets *val when present. */
int cp_u32map_get(const cp_u32map *m, uint32_t key, uint32_t *val);

/* Inserts or replaces.  0, or -1 when growing failed (map unchanged). */
int cp_u32map_put(cp_u32map *m, uint32_t key, uint32_t val);

void cp_u32map_free(cp_u32map *m);

#endif /* CP_U32MAP_H */
