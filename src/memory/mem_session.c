/* mem_session.c -- a session's memory instruments (mem_session.h).
 * MINIMAL VERSION committed by the lead: GC counters reach the model; the
 * heap engineer wires the tracker and the memory sink, the process-memory
 * engineer the sampler. */
#include "memory/mem_session.h"

#include "core/session.h"
#include "memory/gcstats.h"
#include "memory/memsampler.h"
#include "model/model.h"

/* INTERIM (procmem branch): the process sampler wired through its
 * registry (cp_memsampler_of) until the heap engineer's mem_session.c,
 * which owns this file, replaces this version. */
codeprof_status cp_mem_session_new(struct codeprof_session *s, codeprof_error *err) {
    (void)err;
    s->mem = NULL;
    if (s->cfg.memory_sample_interval_s > 0 && !cp_memsampler_new(s))
        return CODEPROF_ENOMEM;
    return CODEPROF_OK;
}
void cp_mem_session_start(struct codeprof_session *s) {
    cp_memsampler_start(cp_memsampler_of(s));
}
void cp_mem_session_stop(struct codeprof_session *s) { cp_memsampler_stop(cp_memsampler_of(s)); }
void cp_mem_session_reset(struct codeprof_session *s) {
    if (s->cfg.flags & CODEPROF_CFG_GC)
        cp_gcstats_reset();
    cp_memsampler_reset(cp_memsampler_of(s));
}
void cp_mem_session_free(struct codeprof_session *s) { cp_memsampler_free(cp_memsampler_of(s)); }
void cp_mem_session_atfork_child(struct codeprof_session *s) {
    cp_memsampler_forget(cp_memsampler_of(s));
}
uint64_t cp_mem_session_fingerprint(struct codeprof_session *s) {
    cp_mgc gc;
    cp_gcstats_read(&gc);
    return gc.collections[0] + gc.collections[1] + gc.collections[2] +
           (cp_memsampler_samples(cp_memsampler_of(s)) << 32);
}
int cp_mem_model_build(struct cp_model *m, struct codeprof_session *s) {
    if (s->cfg.flags & CODEPROF_CFG_GC)
        cp_gcstats_read(&m->mem.gc);
    return cp_memsampler_fill_model(cp_memsampler_of(s), m);
}
