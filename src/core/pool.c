/* pool.c -- the pool of event buffers (pool.h). */
#include "core/bigmem.h"
#include "core/pool.h"

#include <stdlib.h>
#include <string.h>

int cp_pool_init(cp_pool *p, uint32_t cap, uint32_t buffer_events) {
    memset(p, 0, sizeof *p);
    if (cap == 0)
        cap = 1;
    p->slots = calloc(cap, sizeof *p->slots);
    p->all = calloc(cap, sizeof *p->all);
    if (!p->slots || !p->all) {
        free((void *)p->slots);
        free(p->all);
        memset(p, 0, sizeof *p);
        return -1;
    }
    for (uint32_t i = 0; i < cap; i++)
        atomic_init(&p->slots[i], NULL);
    p->nslots = cap;
    p->buffer_events = buffer_events;
    atomic_init(&p->allocated, 0);
    atomic_init(&p->nfree, 0);
    return 0;
}

void cp_pool_destroy(cp_pool *p) {
    if (!p->all)
        return;
    uint32_t n = atomic_load(&p->allocated);
    for (uint32_t i = 0; i < n && i < p->nslots; i++)
        cp_big_free(p->all[i]);
    free(p->all);
    free((void *)p->slots);
    memset(p, 0, sizeof *p);
}

cp_evbuf *cp_pool_take(cp_pool *p) {
    /* Reserve one free buffer first: with none free, an appender that
     * drops events pays one load, not a scan of every slot. */
    uint32_t f = atomic_load_explicit(&p->nfree, memory_order_relaxed);
    do {
        if (f == 0)
            return NULL;
    } while (!atomic_compare_exchange_weak_explicit(&p->nfree, &f, f - 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    /* The reservation stands for a buffer already in a slot (nfree grows
     * only after a put's store), so the scan finds one; it may have to go
     * round again when other takers emptied the slots it passed. */
    uint32_t n = p->nslots;
    for (uint32_t k = 0;; k++) {
        uint32_t i = k % n;
        if (atomic_load_explicit(&p->slots[i], memory_order_relaxed) == NULL)
            continue;
        cp_evbuf *b = atomic_exchange_explicit(&p->slots[i], NULL, memory_order_acquire);
        if (b)
            return b;
    }
    return NULL;
}

cp_evbuf *cp_pool_new_buffer(cp_pool *p) {
    uint32_t i = atomic_load_explicit(&p->allocated, memory_order_relaxed);
    for (;;) {
        if (i >= p->nslots)
            return NULL;
        if (atomic_compare_exchange_weak(&p->allocated, &i, i + 1))
            break;
    }
    cp_evbuf *b = cp_big_alloc(sizeof *b + (size_t)p->buffer_events * sizeof(cp_event));
    if (!b) {
        /* The slot index stays reserved (NULL entry in all[]); freeing
         * skips NULL. */
        return NULL;
    }
    atomic_init(&b->len, 0);
    b->cap = p->buffer_events;
    b->folded = 0;
    p->all[i] = b;
    return b;
}

uint32_t cp_pool_grow(cp_pool *p, uint32_t n) {
    uint32_t added = 0;
    for (; added < n; added++) {
        cp_evbuf *b = cp_pool_new_buffer(p);
        if (!b)
            break;
        cp_pool_put(p, b);
    }
    return added;
}

void cp_pool_put(cp_pool *p, cp_evbuf *b) {
    atomic_store_explicit(&b->len, 0, memory_order_relaxed);
    b->folded = 0;
    /* There are as many slots as buffers, so one pass finds a free slot;
     * were it ever not to, the buffer stays listed in all[] and is freed
     * with the pool. */
    {
        for (uint32_t i = 0; i < p->nslots; i++) {
            cp_evbuf *expect = NULL;
            if (atomic_load_explicit(&p->slots[i], memory_order_relaxed) == NULL &&
                atomic_compare_exchange_strong_explicit(&p->slots[i], &expect, b,
                                                        memory_order_release,
                                                        memory_order_relaxed)) {
                atomic_fetch_add_explicit(&p->nfree, 1, memory_order_release);
                return;
            }
        }
    }
}
