/* gcstats.c -- garbage-collector counters (gcstats.h).  Relaxed atomics:
 * the callbacks run with the GIL held, one collection at a time; readers
 * only need each counter to be whole. */
#include "memory/gcstats.h"

#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"

static _Atomic uint64_t g_collections[3], g_collected[3], g_uncollectable[3], g_time_ns[3];
static _Atomic uint64_t g_max_pause_ns;
static _Atomic uint64_t g_start_ns[3];
static atomic_int g_enabled;

void cp_gcstats_on_start(int gen) {
    if (gen < 0 || gen > 2)
        return;
    atomic_store_explicit(&g_start_ns[gen], cp_clock_mono_ns(), memory_order_relaxed);
}

void cp_gcstats_on_stop(int gen, uint64_t collected, uint64_t uncollectable) {
    if (gen < 0 || gen > 2)
        return;
    uint64_t t0 = atomic_exchange_explicit(&g_start_ns[gen], 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_collections[gen], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_collected[gen], collected, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_uncollectable[gen], uncollectable, memory_order_relaxed);
    if (t0) { /* a stop whose start was seen (not one begun before install) */
        uint64_t d = cp_clock_mono_ns() - t0;
        atomic_fetch_add_explicit(&g_time_ns[gen], d, memory_order_relaxed);
        uint64_t m = atomic_load_explicit(&g_max_pause_ns, memory_order_relaxed);
        while (d > m && !atomic_compare_exchange_weak_explicit(&g_max_pause_ns, &m, d,
                                                               memory_order_relaxed,
                                                               memory_order_relaxed)) {
        }
    }
}

void cp_gcstats_set_enabled(int on) { atomic_store(&g_enabled, on ? 1 : 0); }

void cp_gcstats_read(cp_mgc *out) {
    memset(out, 0, sizeof *out);
    out->enabled = atomic_load(&g_enabled);
    for (int g = 0; g < 3; g++) {
        out->collections[g] = atomic_load_explicit(&g_collections[g], memory_order_relaxed);
        out->collected[g] = atomic_load_explicit(&g_collected[g], memory_order_relaxed);
        out->uncollectable[g] = atomic_load_explicit(&g_uncollectable[g], memory_order_relaxed);
        out->time_ns[g] = atomic_load_explicit(&g_time_ns[g], memory_order_relaxed);
    }
    out->max_pause_ns = atomic_load_explicit(&g_max_pause_ns, memory_order_relaxed);
}

void cp_gcstats_reset(void) {
    for (int g = 0; g < 3; g++) {
        atomic_store(&g_collections[g], 0);
        atomic_store(&g_collected[g], 0);
        atomic_store(&g_uncollectable[g], 0);
        atomic_store(&g_time_ns[g], 0);
    }
    atomic_store(&g_max_pause_ns, 0);
}
