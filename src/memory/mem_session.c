/* mem_session.c -- a session's memory instruments (mem_session.h).
 * MINIMAL VERSION committed by the lead: GC counters reach the model; the
 * heap engineer wires the tracker and the memory sink, the process-memory
 * engineer the sampler. */
#include "memory/mem_session.h"

#include "core/session.h"
#include "memory/gcstats.h"
#include "model/model.h"

codeprof_status cp_mem_session_new(struct codeprof_session *s, codeprof_error *err) {
    (void)err;
    s->mem = NULL;
    return CODEPROF_OK;
}
void cp_mem_session_start(struct codeprof_session *s) { (void)s; }
void cp_mem_session_stop(struct codeprof_session *s) { (void)s; }
void cp_mem_session_reset(struct codeprof_session *s) {
    if (s->cfg.flags & CODEPROF_CFG_GC)
        cp_gcstats_reset();
}
void cp_mem_session_free(struct codeprof_session *s) { (void)s; }
void cp_mem_session_atfork_child(struct codeprof_session *s) { (void)s; }
uint64_t cp_mem_session_fingerprint(struct codeprof_session *s) {
    (void)s;
    cp_mgc gc;
    cp_gcstats_read(&gc);
    return gc.collections[0] + gc.collections[1] + gc.collections[2];
}
int cp_mem_model_build(struct cp_model *m, struct codeprof_session *s) {
    if (s->cfg.flags & CODEPROF_CFG_GC)
        cp_gcstats_read(&m->mem.gc);
    return 0;
}

codeprof_status codeprof_session_watch_process(codeprof_session *s, int pid, int worker,
                                               uint32_t loader_site) {
    (void)worker, (void)loader_site;
    s = cp_session_resolve(s);
    if (!s || pid <= 0)
        return CODEPROF_EINVAL;
    return CODEPROF_ENOTSUP;
}
