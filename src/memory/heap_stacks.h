/* heap_stacks.h -- allocation stacks interned into ids for the tracker
 * (heap.c).  Id 0 is "no stack", id 1 "(other stacks)" (past the cap or
 * out of memory), real stacks from 2.  One mutex; memory from heap_map.h. */
#ifndef CP_HEAP_STACKS_H
#define CP_HEAP_STACKS_H

#include <stdint.h>

#include "memory/heap.h"

#define CP_HEAP_STACK_NONE 0u
#define CP_HEAP_STACK_OTHER 1u

/* The id of frames[0..n) (n <= CP_HEAP_MAX_DEPTH), interning it when new
 * and fewer than max_stacks are held; CP_HEAP_STACK_OTHER otherwise (the
 * caller counts it dropped), CP_HEAP_STACK_NONE for n == 0. */
uint32_t cp_heap_stacks_intern(const cp_heap_frame *f, uint32_t n, uint32_t max_stacks);
/* Copies stack `id`'s frames into out[CP_HEAP_MAX_DEPTH]; returns how many
 * ("(other stacks)" is one frame with pc CP_HEAP_PC_OTHER). */
uint32_t cp_heap_stacks_frames(uint32_t id, cp_heap_frame *out);
/* Ids handed out so far, the two reserved ones included (an upper bound of
 * every id). */
uint32_t cp_heap_stacks_count(void);
/* Forgets every stack and unmaps their memory. */
void cp_heap_stacks_discard(void);
/* Fork child: abandons the parent's table and lock. */
void cp_heap_stacks_atfork_child(void);

#endif /* CP_HEAP_STACKS_H */
