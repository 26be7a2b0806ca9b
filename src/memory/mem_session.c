/* mem_session.c -- a session's memory instruments (mem_session.h): the
 * memory sink (always: memory scopes give RSS and GC figures even without
 * allocation tracking), the allocation tracker (heap.h; memory_mode 1 or
 * 2, owned by this session while it records) and the process sampler
 * (memsampler.h; memory_sample_interval_s > 0).  The model build is in
 * src/model/build_mem.c. */
#include "memory/mem_session.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/session.h"
#include "memory/gcstats.h"
#include "memory/heap.h"
#include "memory/mem_state.h"

/* The session whose ledger the tracker holds (the tracker is one per
 * process; a later session may take it over once this one stopped). */
static _Atomic(const struct codeprof_session *) g_ledger_owner;

int cp_mem_session_owns_ledger(const struct codeprof_session *s) {
    return s->mem && s->mem->heap_started && atomic_load(&g_ledger_owner) == s;
}

codeprof_status cp_mem_session_new(struct codeprof_session *s, codeprof_error *err) {
    s->mem = NULL;
    struct cp_mem_state *ms = calloc(1, sizeof *ms);
    if (!ms || !(ms->sink = cp_memsink_new()))
        goto oom;
    if (s->cfg.memory_sample_interval_s > 0 && !(ms->sampler = cp_memsampler_new(s)))
        goto oom;
    ms->heap_wanted = s->cfg.memory_mode != 0;
    cp_sink sk = cp_memsink_sink(ms->sink);
    if (cp_session_add_sink(s, &sk) != 0) {
        cp_memsampler_free(ms->sampler);
        cp_memsink_free(ms->sink);
        free(ms);
        return cp_error_set(err, CODEPROF_ENOMEM, "", "no sink slot left for the memory sink");
    }
    s->mem = ms;
    return CODEPROF_OK;
oom:
    if (ms) {
        cp_memsampler_free(ms->sampler);
        cp_memsink_free(ms->sink);
        free(ms);
    }
    return cp_error_set(err, CODEPROF_ENOMEM, "", "out of memory creating the memory instruments");
}

static void heap_cfg_from(const codeprof_config *c, cp_heap_cfg *h) {
    memset(h, 0, sizeof *h);
    h->mode = c->memory_mode == 2 ? CP_HEAP_ALL : CP_HEAP_SAMPLED;
    h->sample_bytes = c->memory_sample_bytes;
    h->max_blocks = c->memory_max_blocks;
    h->max_stacks = c->memory_max_stacks;
    h->stack_depth = c->memory_stack_depth;
    h->max_snapshots = c->memory_max_snapshots;
    h->snapshots = (c->flags & CODEPROF_CFG_MEM_SNAPSHOTS) != 0;
}

void cp_mem_session_start(struct codeprof_session *s) {
    struct cp_mem_state *ms = s->mem;
    if (!ms)
        return;
    if (ms->heap_wanted) {
        /* heap.h has no resume: a restart begins a new ledger (blocks of
         * the earlier run are forgotten; their frees are then ignored);
         * the per-context figures of the sink accumulate across runs. */
        cp_heap_cfg h;
        heap_cfg_from(&s->cfg, &h);
        codeprof_error err;
        memset(&err, 0, sizeof err);
        ms->heap_status = cp_heap_start(&h, s, &err);
        ms->heap_started = ms->heap_status == CODEPROF_OK;
        if (ms->heap_started)
            atomic_store(&g_ledger_owner, s);
        if (!ms->heap_started) {
            char msg[700];
            snprintf(msg, sizeof msg,
                     "allocation tracking (memory_mode %u) did not start: %.300s; this session's "
                     "memory figures are RSS and GC only",
                     s->cfg.memory_mode, err.message[0] ? err.message : "unknown error");
            (void)codeprof_session_warn(s, "memory_tracking_unavailable", msg);
        }
    }
    if (ms->sampler)
        cp_memsampler_start(ms->sampler);
}

void cp_mem_session_stop(struct codeprof_session *s) {
    struct cp_mem_state *ms = s->mem;
    if (!ms)
        return;
    if (ms->sampler)
        cp_memsampler_stop(ms->sampler);
    if (ms->heap_started)
        cp_heap_stop(s);
}

void cp_mem_session_reset(struct codeprof_session *s) {
    if (s->cfg.flags & CODEPROF_CFG_GC)
        cp_gcstats_reset();
    struct cp_mem_state *ms = s->mem;
    if (!ms)
        return;
    /* the sink is reset with the session's sinks */
    if (ms->heap_started) {
        cp_heap_reset(s);
        if (!cp_heap_active())
            ms->heap_started = 0; /* stopped: the tracker was released */
    }
    if (ms->sampler)
        cp_memsampler_reset(ms->sampler);
}

void cp_mem_session_free(struct codeprof_session *s) {
    struct cp_mem_state *ms = s->mem;
    if (!ms)
        return;
    if (ms->sampler) {
        cp_memsampler_stop(ms->sampler);
        cp_memsampler_free(ms->sampler);
    }
    if (ms->heap_started) {
        cp_heap_stop(s);
        cp_heap_reset(s);
    }
    const struct codeprof_session *me = s;
    atomic_compare_exchange_strong(&g_ledger_owner, &me, NULL);
    cp_memsink_free(ms->sink);
    free(ms);
    s->mem = NULL;
}

void cp_mem_session_atfork_child(struct codeprof_session *s) {
    struct cp_mem_state *ms = s->mem;
    if (!ms)
        return;
    /* The parent's sink may have been mid-update on the (absent) drain
     * thread: abandon it (never freed or read) for a fresh one. */
    cp_memsink *fresh = cp_memsink_new();
    for (uint32_t i = 0; i < s->nsinks; i++)
        if (s->sinks[i].ctx == ms->sink) {
            if (fresh)
                s->sinks[i] = cp_memsink_sink(fresh);
            else
                s->sinks[i] = s->sinks[--s->nsinks];
            break;
        }
    ms->sink = fresh;
    if (ms->sampler)
        cp_memsampler_forget(ms->sampler);
    /* The tracker's own atfork handler emptied the ledger; it keeps
     * recording in the child in the parent's mode. */
}

uint64_t cp_mem_session_fingerprint(struct codeprof_session *s) {
    cp_mgc gc;
    cp_gcstats_read(&gc);
    uint64_t h = 0xcbf29ce484222325ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 0x100000001b3ull)
    MIX(gc.collections[0] + gc.collections[1] + gc.collections[2]);
    MIX(gc.time_ns[0] + gc.time_ns[1] + gc.time_ns[2]);
    struct cp_mem_state *ms = s->mem;
    if (ms) {
        cp_memsink_stats st;
        cp_memsink_stats_get(ms->sink, &st);
        MIX(st.events);
        MIX(st.dropped_ctxs);
        if (ms->sampler)
            MIX(cp_memsampler_samples(ms->sampler));
        if (cp_mem_session_owns_ledger(s)) {
            cp_heap_totals t;
            cp_heap_get_totals(&t);
            for (int d = 0; d < CP_HEAP_NDOMAINS; d++) {
                MIX(t.dom[d].alloc_count);
                MIX(t.dom[d].free_count);
            }
            MIX(t.live_bytes);
            MIX(t.dropped_blocks);
            MIX(cp_heap_snapshot_count());
        }
    }
#undef MIX
    return h;
}
