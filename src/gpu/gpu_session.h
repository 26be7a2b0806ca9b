/* gpu_session.h -- a session's GPU instruments: what codeprof_session_*
 * call so the operation recorder (gpu_ops.h), the NVML sampler
 * (nvml_sampler.h) and the synchronization recorder (gpu_sync.h) follow the
 * session's life.  The session holds one `struct cp_gpu_state *gpu`
 * (gpu_session.c), present whatever the config: with CODEPROF_CFG_GPU off
 * GPU operations are timed on the host only and the report says so. */
#ifndef CP_GPU_SESSION_H
#define CP_GPU_SESSION_H

#include <stdint.h>

#include "codeprof/codeprof.h"

struct codeprof_session;
struct cp_model;
struct cp_gpu_state;

/* At session creation: allocates s->gpu.  Returns CODEPROF_OK or
 * CODEPROF_ENOMEM.  Loads nothing (the libraries load at start when
 * CODEPROF_CFG_GPU is set). */
codeprof_status cp_gpu_session_new(struct codeprof_session *s, codeprof_error *err);
/* Start / stop / reset / free follow the session's (life_mu held). */
void cp_gpu_session_start(struct codeprof_session *s);
void cp_gpu_session_stop(struct codeprof_session *s);
void cp_gpu_session_reset(struct codeprof_session *s);
void cp_gpu_session_free(struct codeprof_session *s);
/* Fork child (only the forking thread exists): no CUDA call from now on. */
void cp_gpu_session_atfork_child(struct codeprof_session *s);
/* Changes whenever GPU data a report shows may have changed (report cache);
 * pending events count as a change. */
uint64_t cp_gpu_session_fingerprint(struct codeprof_session *s);
/* Resolves pending events (synchronizing only on those still pending) and
 * fills m->gpu (called by cp_model_finish with agg_mu held). */
int cp_gpu_model_build(struct cp_model *m, struct codeprof_session *s);

#endif /* CP_GPU_SESSION_H */
