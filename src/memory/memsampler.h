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
/* Fills m->mem.procs (this process first, worker -1, then the watched
 * processes in the order they were watched), rss_last / rss_peak /
 * machine_bytes, the dataset notes and dropped_samples / dropped_procs,
 * and appends the sampler's counter events to m->timeline (CP_EV_COUNTER
 * with CP_TLF_PROCESS, timeline.h: thread = pid, 0 for this process; sites
 * "memory.rss", "memory.heap_live" (memory_mode > 0), and per watched
 * process "memory.rss", "memory.pss", "memory.uss"; ns as the model's
 * timeline).  Call with agg_mu held, after the model's timeline and data
 * section are built (cp_mem_model_build).  `ms` may be NULL (then only
 * machine_bytes).  Returns 0, or -1 on OOM (the model keeps what fit). */
int cp_memsampler_fill_model(const cp_memsampler *ms, struct cp_model *m);

/* Takes one reading now (what the thread does each tick).  For tests and
 * for a report taken while the thread sleeps; thread-safe. */
void cp_memsampler_tick(cp_memsampler *ms);

/* The sampler of session `s` (NULL: none; the session's memory state
 * created it with cp_memsampler_new).  Thread-safe. */
cp_memsampler *cp_memsampler_of(const codeprof_session *s);

/* codeprof_session_watch_process for a sampler: follow `pid` (worker id,
 * loader's site id or 0).  A pid already watched keeps one entry (worker
 * and loader updated).  CODEPROF_EINVAL for pid <= 0, CODEPROF_ENOTSUP
 * when the interval is 0, CODEPROF_ENOMEM past CP_MEM_MAX_PROCS (counted
 * in dropped_procs). */
codeprof_status cp_memsampler_watch(cp_memsampler *ms, int pid, int worker, uint32_t loader_site);

/* Describes the dataset of the loader at `loader_site` (its dataset site,
 * 0 unknown): `text` (copied, truncated to 255 bytes) names its large
 * attributes and their types, `py_objects` counts Python objects held in
 * its containers, `array_bytes` the bytes in numpy arrays / tensors.  One
 * note per loader (a later call replaces it), at most CP_MEM_MAX_DSNOTES
 * (model_mem.h).  For the copy-on-write rule (CP-DATA-009). */
codeprof_status cp_memsampler_describe_dataset(cp_memsampler *ms, uint32_t loader_site,
                                               uint32_t dataset_site, const char *text,
                                               uint64_t py_objects, uint64_t array_bytes);

/* Which /proc directory the sampler reads ("/proc" when NULL): tests point
 * it at fixture directories.  The string must outlive the sampler. */
void cp_memsampler_set_proc_root(cp_memsampler *ms, const char *root);

#endif /* CP_MEMSAMPLER_H */
