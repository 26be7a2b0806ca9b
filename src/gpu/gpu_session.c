/* gpu_session.c -- a session's GPU instruments (gpu_session.h).
 * PLACEHOLDER (the "cuda" engineer completes it): GPU operations are timed
 * on the host only (a scope), nothing is loaded. */
#include "gpu/gpu_session.h"

#include <stdlib.h>

#include "core/session.h"
#include "gpu/gpu_sync.h"
#include "gpu/nvml_sampler.h"
#include "model/model.h"

struct cp_gpu_state {
    cp_nvml_sampler *nvml;
    cp_gpu_sync *sync;
};

codeprof_status cp_gpu_session_new(struct codeprof_session *s, codeprof_error *err) {
    (void)err;
    struct cp_gpu_state *g = calloc(1, sizeof *g);
    if (!g)
        return CODEPROF_ENOMEM;
    s->gpu = g;
    return CODEPROF_OK;
}
void cp_gpu_session_start(struct codeprof_session *s) { (void)s; }
void cp_gpu_session_stop(struct codeprof_session *s) { (void)s; }
void cp_gpu_session_reset(struct codeprof_session *s) { (void)s; }
void cp_gpu_session_free(struct codeprof_session *s) {
    free(s->gpu);
    s->gpu = NULL;
}
void cp_gpu_session_atfork_child(struct codeprof_session *s) { (void)s; }
uint64_t cp_gpu_session_fingerprint(struct codeprof_session *s) { (void)s; return 0; }
int cp_gpu_model_build(struct cp_model *m, struct codeprof_session *s) {
    m->gpu.enabled = (s->cfg.flags & CODEPROF_CFG_GPU) != 0;
    return 0;
}

codeprof_status codeprof_gpu_op_begin(codeprof_session *s, uint32_t site, uint64_t stream,
                                      const codeprof_gpu_mem *mem, codeprof_gpu_op *op) {
    (void)mem;
    if (!op)
        return CODEPROF_EINVAL;
    op->site = site;
    op->stream = stream;
    op->slot = 0;
    op->flags = 0;
    op->host_start = 0;
    codeprof_scope_begin(s, site, CODEPROF_SCOPE_CPU);
    return CODEPROF_OK;
}

codeprof_status codeprof_gpu_op_end(codeprof_session *s, codeprof_gpu_op *op,
                                    const codeprof_gpu_mem *mem) {
    (void)mem;
    if (!op)
        return CODEPROF_EINVAL;
    codeprof_scope_end(s, op->site, CODEPROF_SCOPE_CPU);
    return CODEPROF_OK;
}

codeprof_status codeprof_gpu_sync_record(codeprof_session *s, uint32_t kind, uint32_t site,
                                         uint32_t line, uint64_t blocked_ns) {
    s = cp_session_resolve(s);
    if (!s || kind >= CP_GPU_SYNC_KINDS_)
        return CODEPROF_EINVAL;
    if (s->gpu && s->gpu->sync)
        cp_gpu_sync_record(s->gpu->sync, kind, site, line, blocked_ns);
    return CODEPROF_OK;
}
