/* mem_state.h -- a session's memory instruments (s->mem), shared by
 * mem_session.c (their life) and build_mem.c (the model build).  Internal. */
#ifndef CP_MEM_STATE_H
#define CP_MEM_STATE_H

#include "codeprof/codeprof.h"
#include "memory/memsampler.h"
#include "memory/memsink.h"

struct cp_mem_state {
    cp_memsink *sink;          /* per-context figures (always present)      */
    cp_memsampler *sampler;    /* NULL when memory_sample_interval_s == 0    */
    int heap_wanted;           /* memory_mode != 0                           */
    int heap_started;          /* this session started the tracker (ledger)  */
    codeprof_status heap_status; /* the last cp_heap_start's status          */
};

/* 1 when the tracker's ledger is this session's (it started it and no
 * later session has taken the tracker over). */
int cp_mem_session_owns_ledger(const struct codeprof_session *s);

#endif /* CP_MEM_STATE_H */
