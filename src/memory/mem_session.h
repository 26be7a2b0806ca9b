/* mem_session.h -- a session's memory instruments: what codeprof_session_*
 * call so the heap tracker (heap.h), the memory sink (memsink.h) and the
 * process sampler (memsampler.h) follow the session's life.  The session
 * holds one `struct cp_mem_state *mem` (mem_state.h), present whatever the
 * config (memory scopes give RSS and GC figures even with memory_mode 0);
 * its tracker part is used when memory_mode != 0, its sampler when
 * memory_sample_interval_s > 0. */
#ifndef CP_MEM_SESSION_H
#define CP_MEM_SESSION_H

#include <stdint.h>

#include "codeprof/codeprof.h"

struct codeprof_session;
struct cp_model;

/* At session creation: allocates s->mem per the config (and registers the
 * memory sink).  Returns CODEPROF_OK or CODEPROF_ENOMEM. */
codeprof_status cp_mem_session_new(struct codeprof_session *s, codeprof_error *err);
/* Start / stop / reset / free follow the session's (life_mu held). */
void cp_mem_session_start(struct codeprof_session *s);
void cp_mem_session_stop(struct codeprof_session *s);
void cp_mem_session_reset(struct codeprof_session *s);
void cp_mem_session_free(struct codeprof_session *s);
/* Fork child (atfork_child, only the forking thread exists). */
void cp_mem_session_atfork_child(struct codeprof_session *s);
/* Changes whenever memory data a report shows changes (report cache). */
uint64_t cp_mem_session_fingerprint(struct codeprof_session *s);
/* The model build fills m->mem (called by cp_model_finish with agg_mu held). */
int cp_mem_model_build(struct cp_model *m, struct codeprof_session *s);

#endif /* CP_MEM_SESSION_H */
