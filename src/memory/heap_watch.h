/* heap_watch.h -- watcher slots: each open memory mark (heap.h) holds one,
 * in which the tracker keeps the highest tracked live bytes and RSS seen
 * while the mark is open, so its peak is exact across threads.
 *
 * g_wmin (inside) is a lower bound of the smallest maximum held by a used
 * slot: a live-bytes increase that does not exceed it costs one load.  A
 * claim lowers it to INT64_MIN before reading live bytes (sequentially
 * consistent), so an increase the claim did not see finds it low and
 * raises the new slot.  Slots, maxima and serials are under one mutex. */
#ifndef CP_HEAP_WATCH_H
#define CP_HEAP_WATCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "memory/heap.h"

#define CP_HEAP_WATCHERS 256

/* Claims a slot for the mark `serial`, its maximum starting at the current
 * value of *live (returned in *live_at) and its RSS maximum at `rss`.
 * Returns the slot, or -1 when all are in use (*live_at is still set). */
int cp_heap_watch_claim(uint64_t serial, uint64_t rss, _Atomic int64_t *live, int64_t *live_at);
/* Releases `slot` if it still belongs to `serial`, raising *max_live and
 * *max_rss to its maxima. */
void cp_heap_watch_release(int slot, uint64_t serial, int64_t *max_live, uint64_t *max_rss);
/* Tracked live bytes just reached `live`. */
void cp_heap_watch_note_live(int64_t live);
/* A process RSS reading. */
void cp_heap_watch_note_rss(uint64_t rss);
/* The serials of marks holding a slot, ascending; returns how many
 * (out holds CP_HEAP_WATCHERS). */
uint32_t cp_heap_watch_open_serials(uint64_t *out);
/* The ledger was emptied: every maximum restarts at `live`. */
void cp_heap_watch_rebase(int64_t live);
/* Slots in use. */
uint32_t cp_heap_watch_in_use(void);
/* Fork child: only the marks on `top`'s chain (the forking thread's) keep
 * their slots, re-based on an empty ledger (their live_enter becomes 0). */
void cp_heap_watch_atfork_child(cp_heap_mark *top);

#endif /* CP_HEAP_WATCH_H */
