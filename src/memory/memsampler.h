/* memsampler.h -- the process memory sampler: one thread per session with
 * memory profiling on (config memory_sample_interval_s > 0) that reads this
 * process's RSS and, for every process it was told about (DataLoader
 * workers: codeprof_session_watch_process), RSS, PSS and USS from
 * /proc/<pid>/smaps_rollup.  Each reading of this process goes to the
 * timeline as a counter event (bounded by memory_timeline_samples, drops
 * counted) and to the heap tracker (cp_heap_watch_rss) so open memory
 * contexts see RSS peaks; per-process first/last/max figures go to the
 * model (cp_mmem.procs).  Its CPU time is part of the overhead figures. */
#ifndef CP_MEMSAMPLER_H
#define CP_MEMSAMPLER_H

#include "codeprof/codeprof.h"

struct cp_model;
typedef struct cp_memsampler cp_memsampler;

/* Creates a stopped sampler for session `s` (NULL on OOM). */
cp_memsampler *cp_memsampler_new(codeprof_session *s);
/* Starts / stops its thread (no-op when the interval is 0 or already in
 * that state).  Stop joins it. */
int cp_memsampler_start(cp_memsampler *ms);
void cp_memsampler_stop(cp_memsampler *ms);
/* Session reset: forget the series (watched processes stay watched). */
void cp_memsampler_reset(cp_memsampler *ms);
void cp_memsampler_free(cp_memsampler *ms);
/* Fork child: the parent's thread does not exist here; abandon state. */
void cp_memsampler_forget(cp_memsampler *ms);
/* Samples taken so far (for the report cache's fingerprint). */
uint64_t cp_memsampler_samples(const cp_memsampler *ms);
/* Fills m->mem.procs (and rss_last / rss_peak / machine_bytes). */
int cp_memsampler_fill_model(const cp_memsampler *ms, struct cp_model *m);

#endif /* CP_MEMSAMPLER_H */
