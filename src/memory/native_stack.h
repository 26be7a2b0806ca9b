/* native_stack.h -- native allocation stacks for the preload library.
 *
 * The unwinder runs inside malloc, so it must neither allocate nor take a
 * lock malloc (or the dynamic loader, which calls malloc) may hold.  DWARF
 * unwinders (libgcc's _Unwind_Backtrace behind backtrace(3), libunwind)
 * take the loader's lock through dl_iterate_phdr and load libgcc_s with
 * dlopen on first use, so they can deadlock or recurse there.  This one
 * walks the frame-pointer chain: each frame record is {saved fp, return
 * address} (x86-64 and AArch64), read only within the current thread's
 * stack bounds and only while frame addresses strictly increase, so a
 * function built without frame pointers ends the stack early (its caller
 * is still found: the first frame is the hook's own return address) but
 * can never make the walk read outside the stack.
 *
 * The stack bounds of a thread are looked up once (pthread_getattr_np) on
 * its first recorded allocation -- that call may allocate, which is fine
 * because the hook's reentrancy flag is set -- and cached in a
 * thread-local.
 */
#ifndef CP_NATIVE_STACK_H
#define CP_NATIVE_STACK_H

#include <stdint.h>

/* Walks the frame-pointer chain from the frame record at `fp`: stores up
 * to `max` return addresses in `pcs`, innermost first, and returns how
 * many.  A record is read only when [fp, fp + 16) lies within [lo, hi) and
 * fp is 8-aligned; the walk stops at a null return address or when the
 * next record is not above the current one. */
uint32_t cp_native_fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint64_t *pcs,
                           uint32_t max);

/* The calling thread's stack [lo, hi) (cached per thread).  Returns 0, or
 * -1 when the bounds cannot be found (then no walk is made). */
int cp_native_stack_bounds(uintptr_t *lo, uintptr_t *hi);

#endif /* CP_NATIVE_STACK_H */
