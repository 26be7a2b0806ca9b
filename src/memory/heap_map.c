/* heap_map.c -- the allocation tracker's own memory (heap_map.h). */
#include "memory/heap_map.h"

#include <stdatomic.h>
#include <sys/mman.h>

static _Atomic uint64_t g_mapped;

void *cp_heap_map(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    atomic_fetch_add_explicit(&g_mapped, n, memory_order_relaxed);
    return p;
}

void cp_heap_unmap(void *p, size_t n) {
    if (!p)
        return;
    munmap(p, n);
    atomic_fetch_sub_explicit(&g_mapped, n, memory_order_relaxed);
}

uint64_t cp_heap_mapped_bytes(void) { return atomic_load_explicit(&g_mapped, memory_order_relaxed); }

void cp_heap_map_forget(void) { atomic_store(&g_mapped, 0); }
