/* samplesink.h -- the sample sink: folds CP_EV_SAMPLE events (event.h)
 * into per-thread sampled trees (calls-free nodes carrying sample counts
 * and weights), per (site, line) counts for sampled lines, and a bounded
 * timeline of individual samples (first and most recent halves of
 * cfg.max_samples).  Registered on the session by sample_session.c; read by
 * the model build (src/model/build_sample.c).
 *
 * Folding one sample whose stack (stacktab.h) is f[0] (innermost) ..
 * f[n-1] (outermost), on OS thread `aux`, weight w = value >> 32:
 *   the thread's root, then the path root -> f[n-1] -> ... -> f[0] (nodes
 *   keyed by the frame's site; the line goes to the line table) each get
 *   samples += 1, sampled_ns += w, and samples_running += 1 when the state
 *   is CP_SAMPF_RUNNING; the last node reached also gets samples_self += 1,
 *   sampled_self_ns += w.  Stack id 0 ("(other stacks)", past the table's
 *   cap) folds into a root child of site 0.  Past the node cap
 *   (cfg.max_nodes over all sampled trees) the rest of the path is
 *   attributed to the deepest node reached (counted in dropped_nodes).
 *   The innermost frame's (site, line) gets samples += 1 and weight w
 *   (line 0 is not kept).  The sample is kept on the timeline while fewer
 *   than cap/2 were kept, else it replaces the oldest of a ring of the
 *   cap - cap/2 most recent ones (counted in timeline_dropped).
 * Fed on the aggregation side only (agg_mu), like every sink.
 */
#ifndef CP_SAMPLESINK_H
#define CP_SAMPLESINK_H

#include <stdint.h>

#include "core/event.h"

struct codeprof_session;
struct cp_stacktab;
struct cp_model;
typedef struct cp_samplesink cp_samplesink;

/* Creates the sink and registers it on the session (cp_session_add_sink);
 * the sink is freed with the session (its destroy).  NULL on OOM. */
cp_samplesink *cp_samplesink_register(struct codeprof_session *s, struct cp_stacktab *tab);
/* A sink that is not registered (tests, replays): bounds as a session with
 * `cfg` would have; free with cp_samplesink_free. */
struct codeprof_config;
cp_samplesink *cp_samplesink_new(const struct codeprof_config *cfg, struct cp_stacktab *tab);
void cp_samplesink_free(cp_samplesink *k);
/* What the registered sink's consume does: folds the CP_EV_SAMPLE events
 * of [ev, ev+n) appended by OS thread `emitter_tid` (others are ignored). */
void cp_samplesink_consume(cp_samplesink *k, uint64_t emitter_tid, const cp_event *ev, uint32_t n);
/* Discards everything folded (session reset). */
void cp_samplesink_reset(cp_samplesink *k);
/* Samples folded so far (report cache).  Any thread. */
uint64_t cp_samplesink_count(const cp_samplesink *k);
/* 1 when the events of the thread `os_tid` (events_total of them
 * consumed) were all CP_EV_SAMPLE events: the sampler's own buffer, which
 * the build leaves out of the threads. */
int cp_samplesink_only_samples(const cp_samplesink *k, uint64_t os_tid, uint64_t events_total);
/* The sampler's own figures, added to what it reported before (any
 * thread; m->samp's ticks, missed_ticks, read_errors, dropped_samples,
 * sampler_cpu_ns come from here).  Reset clears them. */
void cp_samplesink_add_sampler_stats(cp_samplesink *k, uint64_t ticks, uint64_t missed_ticks,
                                     uint64_t read_errors, uint64_t dropped_samples,
                                     uint64_t sampler_cpu_ns);
/* Memory the sink holds (its trees, lines, timeline). */
uint64_t cp_samplesink_bytes(const cp_samplesink *k);
/* The build: folds the sampled trees into m's threads (by OS tid) and
 * fills m->samp and the sampled rows of m->lines (build_sample.c). */
int cp_samplesink_fill_model(cp_samplesink *k, struct cp_model *m, struct codeprof_session *s);

#endif /* CP_SAMPLESINK_H */
