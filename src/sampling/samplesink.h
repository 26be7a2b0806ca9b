/* samplesink.h -- the sample sink: folds CP_EV_SAMPLE events (event.h)
 * into per-thread sampled trees (calls-free nodes carrying sample counts
 * and weights), per (site, line) counts for sampled lines, and a bounded
 * timeline of individual samples (first and most recent halves of
 * cfg.max_samples).  Registered on the session by sample_session.c; read by
 * the model build (build_sample.c). */
#ifndef CP_SAMPLESINK_H
#define CP_SAMPLESINK_H

#include <stdint.h>

struct codeprof_session;
struct cp_stacktab;
struct cp_model;
typedef struct cp_samplesink cp_samplesink;

/* Creates the sink and registers it on the session (cp_session_add_sink).
 * NULL on OOM. */
cp_samplesink *cp_samplesink_register(struct codeprof_session *s, struct cp_stacktab *tab);
/* Samples folded so far (report cache). */
uint64_t cp_samplesink_count(const cp_samplesink *k);
/* The build: folds the sampled trees into m's threads (by OS tid) and
 * fills m->samp and the sampled rows of m->lines. */
int cp_samplesink_fill_model(cp_samplesink *k, struct cp_model *m, struct codeprof_session *s);

#endif /* CP_SAMPLESINK_H */
