/* scope.c -- named scopes of the public C API (codeprof_scope_*). */
#include <stdatomic.h>

#include "codeprof/codeprof.h"
#include "core/session.h"

static inline uint16_t scope_flags(cp_session *s, uint32_t flags) {
    uint16_t f = CP_EVF_EXPLICIT;
    if (flags & CODEPROF_SCOPE_ITEM)
        f |= CP_EVF_ITEM;
    if (flags & CODEPROF_SCOPE_BATCH)
        f |= CP_EVF_BATCH;
    if ((flags & CODEPROF_SCOPE_CPU) && (s->cfg.flags & CODEPROF_CFG_SCOPE_CPU))
        f |= CP_EVF_CPU;
    if (flags & CODEPROF_SCOPE_RSS)
        f |= CP_EVF_RSS;
    return f;
}

void codeprof_scope_begin(codeprof_session *s, uint32_t site, uint32_t flags) {
    s = cp_session_resolve(s);
    if (!s || atomic_load_explicit(&s->state, memory_order_relaxed) != CP_STATE_RUNNING)
        return;
    if (__builtin_expect(flags == 0, 1)) { /* the plain scope: one append */
        cp_emit(s, CP_EV_ENTER, CP_EVF_EXPLICIT, site, 0, 0);
        return;
    }
    uint16_t f = scope_flags(s, flags);
    if (__builtin_expect(!(f & (CP_EVF_CPU | CP_EVF_RSS)), 1)) {
        cp_emit(s, CP_EV_ENTER, f, site, 0, 0);
        return;
    }
    uint64_t cpu = (f & CP_EVF_CPU) ? cp_clock_thread_cpu_ns() : 0;
    cp_emit(s, CP_EV_ENTER, f, site, 0, cpu);
    if (f & CP_EVF_RSS)
        cp_emit(s, CP_EV_RSS, 0, site, (int64_t)codeprof_rss_bytes(), 0);
}

void codeprof_scope_end(codeprof_session *s, uint32_t site, uint32_t flags) {
    s = cp_session_resolve(s);
    if (!s || atomic_load_explicit(&s->state, memory_order_relaxed) != CP_STATE_RUNNING)
        return;
    if (__builtin_expect(flags == 0, 1)) {
        cp_emit(s, CP_EV_EXIT, CP_EVF_EXPLICIT, site, 0, 0);
        return;
    }
    uint16_t f = scope_flags(s, flags);
    if (__builtin_expect(!(f & (CP_EVF_CPU | CP_EVF_RSS)), 1)) {
        cp_emit(s, CP_EV_EXIT, f & (CP_EVF_CPU | CP_EVF_EXPLICIT), site, 0, 0);
    } else {
        if (f & CP_EVF_RSS)
            cp_emit(s, CP_EV_RSS, 0, site, (int64_t)codeprof_rss_bytes(), 0);
        uint64_t cpu = (f & CP_EVF_CPU) ? cp_clock_thread_cpu_ns() : 0;
        cp_emit(s, CP_EV_EXIT, f & (CP_EVF_CPU | CP_EVF_EXPLICIT), site, 0, cpu);
    }
    /* A worker's item reaches its spool file as soon as it ends. */
    if ((f & CP_EVF_ITEM) && s->worker_id >= 0)
        cp_session_flush_self(s);
}

void codeprof_scope_attr(codeprof_session *s, codeprof_attr_key key, int64_t value) {
    s = cp_session_resolve(s);
    if (!s || atomic_load_explicit(&s->state, memory_order_relaxed) != CP_STATE_RUNNING)
        return;
    cp_emit(s, CP_EV_ATTR, (uint16_t)key, 0, value, 0);
}

static uint32_t loc_site(codeprof_srcloc *loc) {
    uint32_t id = __atomic_load_n(&loc->id, __ATOMIC_ACQUIRE);
    if (__builtin_expect(id != 0, 1))
        return id;
    id = codeprof_site(loc->name, loc->file, loc->line, CODEPROF_SITE_SCOPE);
    __atomic_store_n(&loc->id, id, __ATOMIC_RELEASE);
    return id;
}

void codeprof_scope_begin_loc(codeprof_session *s, codeprof_srcloc *loc, uint32_t flags) {
    if (!loc)
        return;
    codeprof_scope_begin(s, loc_site(loc), flags);
}

void codeprof_scope_end_loc(codeprof_session *s, codeprof_srcloc *loc, uint32_t flags) {
    if (!loc)
        return;
    codeprof_scope_end(s, loc_site(loc), flags);
}
