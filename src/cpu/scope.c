/* scope.c -- named scopes of the public C API (codeprof_scope_*). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "codeprof/codeprof.h"
#include "core/session.h"
#include "cpu/scope_heap.h"
#include "memory/heap.h"

/* ---- CODEPROF_SCOPE_HEAP: memory contexts ----
 * Each thread keeps its open memory scopes' marks (heap.h) in a fixed
 * array, allocated at its first memory scope and freed at thread exit (a
 * pointer in TLS: the extension's whole TLS block is static TLS, which is
 * scarce); scopes nested deeper than CP_SCOPE_HEAP_DEPTH are not measured
 * (counted in cp_scope_heap_overflow, reported as dropped marks).  The end
 * emits the span as CP_EV_HEAP events just before the scope's EXIT. */
typedef struct heap_stack {
    uint32_t depth; /* may exceed CP_SCOPE_HEAP_DEPTH: the excess is unmeasured */
    cp_heap_mark m[CP_SCOPE_HEAP_DEPTH];
} heap_stack;
static _Thread_local heap_stack *heap_marks;
static _Atomic uint64_t heap_overflow;
static pthread_key_t heap_key;
static pthread_once_t heap_key_once = PTHREAD_ONCE_INIT;

/* Thread exit: marks still open give their watcher slots back. */
static void heap_stack_free(void *p) {
    heap_stack *hs = p;
    uint32_t d = hs->depth < CP_SCOPE_HEAP_DEPTH ? hs->depth : CP_SCOPE_HEAP_DEPTH;
    while (d > 0) {
        cp_heap_span span;
        cp_heap_mark_exit(&hs->m[--d], &span);
    }
    heap_marks = NULL;
    int entered = cp_heap_hook_enter();
    free(p);
    if (entered)
        cp_heap_hook_leave();
}
static void heap_key_init(void) {
    if (pthread_key_create(&heap_key, heap_stack_free) != 0)
        heap_key = (pthread_key_t)-1;
}

/* This thread's marks, allocated on first use; NULL on OOM. */
static heap_stack *heap_stack_get(void) {
    heap_stack *hs = heap_marks;
    if (__builtin_expect(hs != NULL, 1))
        return hs;
    pthread_once(&heap_key_once, heap_key_init);
    int entered = cp_heap_hook_enter(); /* the profiler's memory, not the user's */
    hs = calloc(1, sizeof *hs);
    if (entered)
        cp_heap_hook_leave();
    if (!hs)
        return NULL;
    if (heap_key != (pthread_key_t)-1)
        pthread_setspecific(heap_key, hs);
    heap_marks = hs;
    return hs;
}

uint64_t cp_scope_heap_overflow(void) {
    return atomic_load_explicit(&heap_overflow, memory_order_relaxed);
}

static void heap_begin(uint32_t site) {
    heap_stack *hs = heap_stack_get();
    if (!hs) {
        atomic_fetch_add_explicit(&heap_overflow, 1, memory_order_relaxed);
        return;
    }
    if (hs->depth < CP_SCOPE_HEAP_DEPTH)
        cp_heap_mark_enter(&hs->m[hs->depth], site);
    else
        atomic_fetch_add_explicit(&heap_overflow, 1, memory_order_relaxed);
    hs->depth++;
}

/* Takes the span of the innermost open memory scope if it is `site`'s;
 * returns 1 with *out filled, 0 when there is nothing to report. */
static int heap_end(uint32_t site, cp_heap_span *out) {
    heap_stack *hs = heap_marks;
    if (!hs || hs->depth == 0)
        return 0;
    if (hs->depth > CP_SCOPE_HEAP_DEPTH) {
        hs->depth--;
        return 0;
    }
    cp_heap_mark *m = &hs->m[hs->depth - 1];
    if (m->site != site)
        return 0; /* not this scope's mark (it began while not running) */
    hs->depth--;
    cp_heap_mark_exit(m, out);
    return 1;
}

static void heap_emit(cp_session *s, uint32_t site, const cp_heap_span *sp) {
    uint16_t est = sp->estimated ? CP_HEAPF_ESTIMATED : 0;
    cp_emit(s, CP_EV_HEAP, CP_HEAPF_SPAN | est, site, sp->delta, sp->peak);
    cp_emit(s, CP_EV_HEAP, CP_HEAPF_FLOOR | est, site, sp->live_exit, sp->rss_exit);
    cp_emit(s, CP_EV_HEAP, CP_HEAPF_RSS, site, sp->rss_delta, sp->rss_peak);
    cp_emit(s, CP_EV_HEAP, CP_HEAPF_GC, site, (int64_t)sp->gc_collections, 0);
}

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
    } else {
        uint64_t cpu = (f & CP_EVF_CPU) ? cp_clock_thread_cpu_ns() : 0;
        cp_emit(s, CP_EV_ENTER, f, site, 0, cpu);
        if (f & CP_EVF_RSS)
            cp_emit(s, CP_EV_RSS, 0, site, (int64_t)codeprof_rss_bytes(), 0);
    }
    /* the mark last: the appends above are outside the measured span */
    if (flags & CODEPROF_SCOPE_HEAP)
        heap_begin(site);
}

void codeprof_scope_end(codeprof_session *s, uint32_t site, uint32_t flags) {
    s = cp_session_resolve(s);
    if (__builtin_expect(flags == 0, 1)) {
        if (s && atomic_load_explicit(&s->state, memory_order_relaxed) == CP_STATE_RUNNING)
            cp_emit(s, CP_EV_EXIT, CP_EVF_EXPLICIT, site, 0, 0);
        return;
    }
    /* A memory scope's mark is taken back even when the session stopped
     * meanwhile, so the thread's stack of marks stays matched. */
    cp_heap_span span;
    int has_span = (flags & CODEPROF_SCOPE_HEAP) && heap_end(site, &span);
    if (!s || atomic_load_explicit(&s->state, memory_order_relaxed) != CP_STATE_RUNNING)
        return;
    if (has_span)
        heap_emit(s, site, &span);
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
