/* native_stack.c -- frame-pointer walks within the thread's stack
 * (native_stack.h). */
#include "memory/native_stack.h"

#include <pthread.h>
#include <stddef.h>

uint32_t cp_native_fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint64_t *pcs,
                           uint32_t max) {
    uint32_t n = 0;
    while (n < max) {
        if ((fp & 7u) != 0 || fp < lo || hi < 16 || fp > hi - 16)
            break;
        const uintptr_t *rec = (const uintptr_t *)fp;
        uintptr_t next = rec[0], ret = rec[1];
        if (ret == 0)
            break;
        pcs[n++] = (uint64_t)ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

/* 0: not looked up yet; 1: found; -1: not available on this thread. */
static _Thread_local int t_state;
static _Thread_local uintptr_t t_lo, t_hi;

int cp_native_stack_bounds(uintptr_t *lo, uintptr_t *hi) {
    if (t_state == 0) {
        pthread_attr_t attr;
        void *addr = NULL;
        size_t size = 0;
        t_state = -1;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr && size) {
                t_lo = (uintptr_t)addr;
                t_hi = t_lo + size;
                t_state = 1;
            }
            pthread_attr_destroy(&attr);
        }
    }
    if (t_state != 1)
        return -1;
    *lo = t_lo;
    *hi = t_hi;
    return 0;
}
