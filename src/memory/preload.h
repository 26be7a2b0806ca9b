/* preload.h -- what libcodeprof_malloc.so exports besides the allocator
 * functions it interposes (malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, reallocarray, mmap, mmap64,
 * munmap, mremap).  docs/native-memory.md describes the library.
 *
 * The library is built from preload.c and the libcodeprof objects (so it
 * holds its own copy of the heap tracker) and exports only the symbols
 * named here and the interposed functions (native_preload.map): the copy
 * of the codeprof C API inside it stays private, so that a process that
 * also loads code_profiler._core never binds _core's calls to it.
 */
#ifndef CP_PRELOAD_H
#define CP_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "memory/heap.h"

/* The preload's tracker (heap.h, "one tracker per process"): _core's heap.c
 * finds it with dlsym(RTLD_DEFAULT, "codeprof_heap_ops_v1") and forwards
 * every cp_heap_* call to it. */
CODEPROF_API const cp_heap_ops *codeprof_heap_ops_v1(void);

/* What an observer is told. */
enum codeprof_native_op {
    CODEPROF_NATIVE_ALLOC = 1, /* new_ptr, size: malloc family             */
    CODEPROF_NATIVE_FREE = 2,  /* old_ptr: free, or the old block of realloc */
    CODEPROF_NATIVE_MMAP = 3,  /* new_ptr, size: anonymous mmap / mremap   */
    CODEPROF_NATIVE_MUNMAP = 4 /* old_ptr, size: munmap / mremap's old map */
};

/* Diagnostics and tests: `fn` (NULL: none) is called on the allocating
 * thread for every allocation and free the library hands to the tracker,
 * with the tracker's reentrancy flag held (a call it makes to malloc is
 * not observed) and before the tracker sees it.  While an observer is set
 * every call goes through the hook path even when the tracker is off.
 * The observer must be async-signal-safe in practice (it may run inside a
 * signal handler's malloc) and must not block. */
typedef void (*codeprof_native_observer_v1)(int op, void *old_ptr, void *new_ptr, size_t size);
CODEPROF_API void codeprof_native_observe_v1(codeprof_native_observer_v1 fn);

/* Called from an observer: the stack the tracker gets for the block being
 * reported (the native walker's return addresses, innermost first: the
 * first is in the function that called malloc).  Stores up to `max`
 * (at most CP_HEAP_MAX_DEPTH) and returns how many. */
CODEPROF_API uint32_t codeprof_native_stack_v1(uint64_t *pcs, uint32_t max);

#endif /* CP_PRELOAD_H */
