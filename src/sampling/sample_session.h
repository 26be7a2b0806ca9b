/* sample_session.h -- a session's statistical-profiling instruments: what
 * codeprof_session_* call so the stack sampler (sampler.h), the table of
 * sampled stacks (stacktab.h), the sample sink (samplesink.h) and the line
 * sink (src/cpu/linesink.h) follow the session's life.  The session holds
 * one `struct cp_samp_state *samp` (sample_session.c), present whatever the
 * config; the sampler thread runs only when sample_interval_s > 0. */
#ifndef CP_SAMPLE_SESSION_H
#define CP_SAMPLE_SESSION_H

#include <stdint.h>

#include "codeprof/codeprof.h"

struct codeprof_session;
struct cp_model;
struct cp_stacktab;
struct cp_samplesink;

/* At session creation: allocates s->samp, the stack table, registers the
 * sample sink and (CODEPROF_CFG_LINES) the line sink.  CODEPROF_OK or
 * CODEPROF_ENOMEM. */
codeprof_status cp_samp_session_new(struct codeprof_session *s, codeprof_error *err);
/* Start / stop / reset / free follow the session's (life_mu held): start
 * starts the sampler thread, stop joins it. */
void cp_samp_session_start(struct codeprof_session *s);
void cp_samp_session_stop(struct codeprof_session *s);
void cp_samp_session_reset(struct codeprof_session *s);
void cp_samp_session_free(struct codeprof_session *s);
/* Fork child (only the forking thread exists): the sampler thread is gone;
 * it is re-armed in the child (docs/sampling.md says when). */
void cp_samp_session_atfork_child(struct codeprof_session *s);
/* In a fork child once it is consistent (the CPython extension's
 * os.register_at_fork(after_in_child) hook): starts again the samplers of
 * running sessions that sampled when the process forked. */
void cp_samp_after_fork_child(void);
/* 1 when `os_tid` is the session's sampler thread (a thread buffer of
 * CP_EV_SAMPLE events about other threads: the model build and the
 * retiring of exited threads must not count it as a thread). */
int cp_samp_session_is_sampler_thread(struct codeprof_session *s, uint64_t os_tid);
/* 1 while the session's sampler thread runs in this process. */
int cp_samp_session_sampling_active(struct codeprof_session *s);
uint64_t cp_samp_session_fingerprint(struct codeprof_session *s);
/* The session's stack table and sample sink (NULL before new). */
struct cp_stacktab *cp_samp_session_stacktab(struct codeprof_session *s);
struct cp_samplesink *cp_samp_session_sink(struct codeprof_session *s);
/* The model build: sampled stacks into the trees and m->samp, sampled and
 * profiled lines into m->lines (called by cp_model_finish, agg_mu held). */
int cp_samp_model_build(struct cp_model *m, struct codeprof_session *s);

#endif /* CP_SAMPLE_SESSION_H */
