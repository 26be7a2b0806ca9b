/* bigmem.c -- large blocks through mmap (bigmem.h). */
#include "core/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAP_MIN (64u * 1024u)
#define HDR 16u /* keeps the payload 16-byte aligned */

typedef struct hdr {
    size_t size;   /* payload bytes                         */
    size_t mapped; /* bytes mapped (0: the block is malloc'd) */
} hdr;

_Static_assert(sizeof(hdr) == HDR, "bigmem header must stay 16 bytes");

static size_t page_round(size_t n) {
    size_t pg = 4096; /* mmap rounds to the real page size itself */
    return (n + pg - 1) & ~(pg - 1);
}

void *cp_big_alloc(size_t size) {
    if (size == 0 || size > SIZE_MAX - HDR - 4096)
        return NULL;
    hdr *h;
    if (size >= MAP_MIN) {
        size_t total = page_round(size + HDR);
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        h = p;
        h->mapped = total;
    } else {
        h = malloc(size + HDR);
        if (!h)
            return NULL;
        h->mapped = 0;
    }
    h->size = size;
    return (char *)h + HDR;
}

void *cp_big_calloc(size_t n, size_t size) {
    if (n && size > SIZE_MAX / n)
        return NULL;
    size_t total = n * size;
    void *p = cp_big_alloc(total);
    if (p) {
        hdr *h = (hdr *)((char *)p - HDR);
        if (!h->mapped) /* fresh mappings are already zero */
            memset(p, 0, total);
    }
    return p;
}

void cp_big_free(void *p) {
    if (!p)
        return;
    hdr *h = (hdr *)((char *)p - HDR);
    if (h->mapped)
        munmap(h, h->mapped);
    else
        free(h);
}

void *cp_big_realloc(void *p, size_t size) {
    if (!p)
        return cp_big_alloc(size);
    if (size == 0) {
        cp_big_free(p);
        return NULL;
    }
    hdr *h = (hdr *)((char *)p - HDR);
    if (h->mapped && size >= MAP_MIN) {
        size_t total = page_round(size + HDR);
        void *np = mremap(h, h->mapped, total, MREMAP_MAYMOVE);
        if (np == MAP_FAILED)
            return NULL;
        h = np;
        h->mapped = total;
        h->size = size;
        return (char *)h + HDR;
    }
    void *n = cp_big_alloc(size);
    if (!n)
        return NULL;
    memcpy(n, p, h->size < size ? h->size : size);
    cp_big_free(p);
    return n;
}
