/* native_arena.c -- the preload library's bootstrap arena (native_arena.h). */
#include "memory/native_arena.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

/* Each block is preceded by a header that records the requested size and a
 * tag, so that cp_native_arena_size can tell a block start from an interior
 * pointer. */
typedef struct arena_hdr {
    uint64_t size;
    uint64_t tag;
} arena_hdr;

#define ARENA_TAG 0x63706172656e6131ull /* "cparena1" */

static alignas(4096) unsigned char g_arena[CP_NATIVE_ARENA_BYTES];
static atomic_size_t g_used;

void *cp_native_arena_alloc(size_t size, size_t align) {
    if (align == 0)
        align = 16;
    if ((align & (align - 1)) != 0 || align > 4096 || size > CP_NATIVE_ARENA_BYTES)
        return NULL;
    if (align < alignof(arena_hdr))
        align = alignof(arena_hdr);
    /* Worst case: header + padding up to `align` + size. */
    size_t need = sizeof(arena_hdr) + (align - 1) + size;
    size_t start = atomic_fetch_add_explicit(&g_used, need, memory_order_relaxed);
    if (start > CP_NATIVE_ARENA_BYTES || need > CP_NATIVE_ARENA_BYTES - start) {
        /* Leave g_used past the end: every later call fails too. */
        return NULL;
    }
    uintptr_t base = (uintptr_t)g_arena + start + sizeof(arena_hdr);
    uintptr_t user = (base + (align - 1)) & ~(uintptr_t)(align - 1);
    arena_hdr *h = (arena_hdr *)(user - sizeof(arena_hdr));
    h->size = size;
    h->tag = ARENA_TAG ^ (uint64_t)user;
    /* The static buffer starts zeroed and is never reused: already zero. */
    return (void *)user;
}

int cp_native_arena_owns(const void *p) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)g_arena;
    return a >= lo && a < lo + CP_NATIVE_ARENA_BYTES;
}

size_t cp_native_arena_size(const void *p) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)g_arena;
    if (a < lo + sizeof(arena_hdr) || a >= lo + CP_NATIVE_ARENA_BYTES || (a & 7u) != 0)
        return 0;
    const arena_hdr *h = (const arena_hdr *)(a - sizeof(arena_hdr));
    if (h->tag != (ARENA_TAG ^ (uint64_t)a))
        return 0;
    return (size_t)h->size;
}

size_t cp_native_arena_used(void) {
    size_t u = atomic_load_explicit(&g_used, memory_order_relaxed);
    return u > CP_NATIVE_ARENA_BYTES ? CP_NATIVE_ARENA_BYTES : u;
}
