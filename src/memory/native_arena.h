/* native_arena.h -- the preload library's bootstrap arena.
 *
 * While libcodeprof_malloc.so resolves the real allocator with
 * dlsym(RTLD_NEXT, ...), dlsym itself may call calloc/malloc (glibc
 * allocates its dlerror buffer), and those calls reach the library's own
 * malloc before it has a real one to forward to.  They are served from a
 * small static arena: a lock-free bump allocator over a fixed buffer.
 * Arena blocks are never reused; free() of an arena block is recognised
 * (cp_native_arena_owns) and ignored, realloc() of one copies it out to
 * the real allocator (cp_native_arena_size gives the bytes to copy).
 *
 * Every function is async-signal-safe and thread-safe (one atomic
 * fetch-add), allocates nothing and takes no lock.
 */
#ifndef CP_NATIVE_ARENA_H
#define CP_NATIVE_ARENA_H

#include <stddef.h>

/* Size of the arena buffer.  glibc's bootstrap needs well under 1 KiB;
 * the rest is headroom for other libraries' constructors that run before
 * the library resolved its functions. */
#define CP_NATIVE_ARENA_BYTES (64u * 1024u)

/* Returns a block of at least `size` bytes aligned to `align` (a power of
 * two, at most 4096; 0 means 16), zero-filled, or NULL when the arena has
 * no room left (or for a bad alignment).  size 0 gives a unique block. */
void *cp_native_arena_alloc(size_t size, size_t align);
/* Nonzero when `p` points into the arena (any byte of it). */
int cp_native_arena_owns(const void *p);
/* The size requested for the arena block that starts at `p` (0 if `p` is
 * not the start of an arena block). */
size_t cp_native_arena_size(const void *p);
/* Bytes of the arena handed out so far (headers and padding included). */
size_t cp_native_arena_used(void);

#endif /* CP_NATIVE_ARENA_H */
