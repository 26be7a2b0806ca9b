/* gcstats.h -- garbage-collector counters, fed by the extension's
 * gc.callbacks entry (src/python/gchook.c) and read by the model build.
 * Process-wide, lock-free (atomics); a fork child starts from zero. */
#ifndef CP_GCSTATS_H
#define CP_GCSTATS_H

#include <stdint.h>

#include "model/model_mem.h"

/* A collection of generation `gen` (0..2) starts / stops; `collected` and
 * `uncollectable` are the callback's info values.  Times are taken here. */
void cp_gcstats_on_start(int gen);
void cp_gcstats_on_stop(int gen, uint64_t collected, uint64_t uncollectable);
/* Marks the counters as fed (callbacks installed) or not. */
void cp_gcstats_set_enabled(int on);
/* Copies the counters (and enabled) into `out`. */
void cp_gcstats_read(cp_mgc *out);
/* Zeroes the counters (session reset). */
void cp_gcstats_reset(void);

#endif /* CP_GCSTATS_H */
