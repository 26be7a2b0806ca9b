/* heap_double.c -- a test double of the heap tracker (src/memory/heap.h)
 * for tests/python/unit/test_memhooks*.py.
 *
 * Built by the tests into a shared library and preloaded (LD_PRELOAD) into a
 * subprocess: it defines codeprof_heap_ops_v1, so the tracker linked into
 * _core forwards every call to it (heap.h, "one tracker per process").  It
 * records exactly what the hooks report: per-domain counts, bytes, live
 * bytes (an address-keyed table) and peaks, and the frames the stack
 * callback gives for blocks of one probe size.  Read through ctypes
 * (hd_* below).  Active from load when HEAPDOUBLE_ALWAYS=1, else between
 * start and stop.  Its memory comes from mmap, never from the hooked
 * allocators. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory/heap.h"

#define HD_SLOTS (1u << 21)
typedef struct hd_slot {
    uintptr_t p; /* 0 empty, 1 tombstone */
    uint64_t size;
    int dom;
} hd_slot;

static hd_slot *g_tab;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_active, g_always;
static __thread int t_in_hook __attribute__((tls_model("initial-exec")));
static cp_heap_stack_fn g_stack_fn;

static int64_t g_live[CP_HEAP_NDOMAINS], g_peak[CP_HEAP_NDOMAINS];
static uint64_t g_allocs[CP_HEAP_NDOMAINS], g_frees[CP_HEAP_NDOMAINS], g_unknown_frees;
static uint64_t g_alloc_bytes[CP_HEAP_NDOMAINS], g_reallocs[CP_HEAP_NDOMAINS];
static uint64_t g_nested; /* hook_enter refused: already inside a hook */
static uint64_t g_probe_size;
static cp_heap_frame g_probe_frames[CP_HEAP_MAX_DEPTH];
static uint32_t g_probe_n, g_probe_hits, g_probe_dom;
static uint64_t g_stack_calls;
static atomic_int g_all_stacks; /* HEAPDOUBLE_STACKS=1: walk the stack for every block */
static uint64_t g_stack_frames;

__attribute__((constructor)) static void hd_init(void) {
    g_tab = mmap(NULL, sizeof(hd_slot) * HD_SLOTS, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (g_tab == MAP_FAILED)
        abort();
    const char *e = getenv("HEAPDOUBLE_ALWAYS");
    if (e && e[0] == '1')
        atomic_store(&g_always, 1);
    e = getenv("HEAPDOUBLE_STACKS");
    if (e && e[0] == '1')
        atomic_store(&g_all_stacks, 1);
}

static inline uint32_t hd_hash(uintptr_t p) {
    uint64_t x = (uint64_t)p * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 40) & (HD_SLOTS - 1);
}

static void hd_add(int dom, void *ptr, uint64_t size) {
    uintptr_t p = (uintptr_t)ptr;
    for (uint32_t i = hd_hash(p), n = 0; n < HD_SLOTS; i = (i + 1) & (HD_SLOTS - 1), n++) {
        if (g_tab[i].p <= 1 || g_tab[i].p == p) {
            if (g_tab[i].p == p) /* a stale entry for a reused address */
                g_live[g_tab[i].dom] -= (int64_t)g_tab[i].size;
            g_tab[i].p = p;
            g_tab[i].size = size;
            g_tab[i].dom = dom;
            g_live[dom] += (int64_t)size;
            if (g_live[dom] > g_peak[dom])
                g_peak[dom] = g_live[dom];
            return;
        }
    }
}

static void hd_remove(int dom, void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    for (uint32_t i = hd_hash(p), n = 0; n < HD_SLOTS; i = (i + 1) & (HD_SLOTS - 1), n++) {
        if (g_tab[i].p == 0)
            break;
        if (g_tab[i].p == p) {
            g_live[g_tab[i].dom] -= (int64_t)g_tab[i].size;
            g_frees[dom]++;
            g_tab[i].p = 1;
            return;
        }
    }
    g_unknown_frees++;
}

static void hd_probe(int dom, uint64_t size) {
    if (atomic_load_explicit(&g_all_stacks, memory_order_relaxed) && g_stack_fn) {
        cp_heap_frame fr[CP_HEAP_MAX_DEPTH];
        uint32_t n = g_stack_fn(fr, 8);
        if (n != CP_HEAP_STACK_SKIP)
            g_stack_frames += n;
    }
    if (!g_probe_size || size != g_probe_size || !g_stack_fn)
        return;
    g_stack_calls++;
    cp_heap_frame fr[CP_HEAP_MAX_DEPTH];
    uint32_t n = g_stack_fn(fr, CP_HEAP_MAX_DEPTH);
    if (n == CP_HEAP_STACK_SKIP)
        return; /* the profiler's own block: a real tracker would not record it */
    memcpy(g_probe_frames, fr, sizeof fr[0] * n);
    g_probe_n = n;
    g_probe_dom = (uint32_t)dom;
    g_probe_hits++;
}

/* As heap.h says of the real tracker, a start begins a new ledger: blocks
 * of an earlier run whose frees were not seen (freed while stopped) must
 * not stay in the table, or a new block at a reused address (a 5 MB
 * bytearray mapped where the last one was) replaces the stale entry and
 * shows as no growth. */
static codeprof_status hd_start(const cp_heap_cfg *cfg, const void *owner, codeprof_error *err) {
    (void)cfg, (void)owner, (void)err;
    pthread_mutex_lock(&g_mu);
    /* an anonymous private mapping reads as zeros once its pages are dropped */
    madvise(g_tab, sizeof(hd_slot) * HD_SLOTS, MADV_DONTNEED);
    memset(g_live, 0, sizeof g_live);
    memset(g_peak, 0, sizeof g_peak);
    pthread_mutex_unlock(&g_mu);
    atomic_store(&g_active, 1);
    return CODEPROF_OK;
}
static void hd_stop(const void *owner) {
    (void)owner;
    atomic_store(&g_active, 0);
}
static void hd_reset_ops(const void *owner) {
    (void)owner;
}
static void hd_set_stack_fn(cp_heap_stack_fn fn) {
    g_stack_fn = fn;
}
static int hd_active(void) {
    return atomic_load_explicit(&g_active, memory_order_relaxed) ||
           atomic_load_explicit(&g_always, memory_order_relaxed);
}
static void hd_on_alloc(int dom, void *ptr, size_t size) {
    if (dom < 0 || dom >= CP_HEAP_NDOMAINS || !ptr)
        return;
    pthread_mutex_lock(&g_mu);
    g_allocs[dom]++;
    g_alloc_bytes[dom] += size;
    hd_add(dom, ptr, size);
    pthread_mutex_unlock(&g_mu);
    hd_probe(dom, size);
}
static void hd_on_free(int dom, void *ptr) {
    if (dom < 0 || dom >= CP_HEAP_NDOMAINS || !ptr)
        return;
    pthread_mutex_lock(&g_mu);
    hd_remove(dom, ptr);
    pthread_mutex_unlock(&g_mu);
}
static void hd_on_realloc(int dom, void *old, void *new_ptr, size_t size) {
    if (dom < 0 || dom >= CP_HEAP_NDOMAINS)
        return;
    pthread_mutex_lock(&g_mu);
    g_reallocs[dom]++;
    if (old)
        hd_remove(dom, old);
    if (new_ptr) {
        g_allocs[dom]++;
        g_alloc_bytes[dom] += size;
        hd_add(dom, new_ptr, size);
    }
    pthread_mutex_unlock(&g_mu);
    if (new_ptr)
        hd_probe(dom, size);
}
static int hd_hook_enter(void) {
    if (t_in_hook) {
        __atomic_fetch_add(&g_nested, 1, __ATOMIC_RELAXED);
        return 0;
    }
    t_in_hook = 1;
    return 1;
}
static void hd_hook_leave(void) {
    t_in_hook = 0;
}
static void hd_mark_enter(cp_heap_mark *m, uint32_t site) {
    memset(m, 0, sizeof *m);
    m->site = site;
    m->watch = -1;
}
static void hd_mark_exit(cp_heap_mark *m, cp_heap_span *out) {
    (void)m;
    memset(out, 0, sizeof *out);
}
static void hd_watch_rss(uint64_t rss) {
    (void)rss;
}
static void hd_get_totals(cp_heap_totals *out) {
    memset(out, 0, sizeof *out);
}
static void hd_foreach_live(cp_heap_group_fn fn, void *arg) {
    (void)fn, (void)arg;
}
static uint32_t hd_snapshot_count(void) {
    return 0;
}
static int hd_snapshot_get(uint32_t i, cp_heap_snapshot_info *info, cp_heap_group_fn fn,
                           void *arg) {
    (void)i, (void)info, (void)fn, (void)arg;
    return -1;
}

static const cp_heap_ops hd_ops = {
    CP_HEAP_OPS_VERSION, sizeof(cp_heap_ops), hd_start,          hd_stop,        hd_reset_ops,
    hd_set_stack_fn,     hd_active,           hd_on_alloc,       hd_on_free,     hd_on_realloc,
    hd_hook_enter,       hd_hook_leave,       hd_mark_enter,     hd_mark_exit,   hd_watch_rss,
    hd_get_totals,       hd_foreach_live,     hd_snapshot_count, hd_snapshot_get};

__attribute__((visibility("default"))) const cp_heap_ops *codeprof_heap_ops_v1(void) {
    return &hd_ops;
}

/* ---- read by the tests (ctypes) ---- */
#define HD_API __attribute__((visibility("default")))
HD_API long long hd_live(int dom) {
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? g_live[dom] : 0;
}
HD_API long long hd_peak(int dom) {
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? g_peak[dom] : 0;
}
HD_API unsigned long long hd_allocs(int dom) {
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? g_allocs[dom] : 0;
}
HD_API unsigned long long hd_frees(int dom) {
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? g_frees[dom] : 0;
}
HD_API unsigned long long hd_alloc_bytes(int dom) {
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? g_alloc_bytes[dom] : 0;
}
HD_API unsigned long long hd_nested(void) {
    return g_nested;
}
HD_API int hd_has_stack_fn(void) {
    return g_stack_fn != NULL;
}
HD_API void hd_reset_peak(int dom) {
    pthread_mutex_lock(&g_mu);
    g_peak[dom] = g_live[dom];
    pthread_mutex_unlock(&g_mu);
}
HD_API void hd_set_probe(unsigned long long size) {
    g_probe_n = 0;
    g_probe_hits = 0;
    g_probe_size = size;
}
HD_API unsigned hd_probe_hits(void) {
    return g_probe_hits;
}
HD_API unsigned hd_probe_dom(void) {
    return g_probe_dom;
}
/* Copies the last probe's frames as (site, line) pairs; returns how many. */
HD_API unsigned hd_probe_frames(unsigned *out, unsigned max) {
    unsigned n = g_probe_n < max ? g_probe_n : max;
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = g_probe_frames[i].site;
        out[2 * i + 1] = g_probe_frames[i].line;
    }
    return n;
}
HD_API unsigned long long hd_stack_frames(void) {
    return g_stack_frames;
}
HD_API void hd_set_stacks(int on) {
    atomic_store(&g_all_stacks, on ? 1 : 0);
}
HD_API void hd_set_active(int on) {
    atomic_store(&g_always, on ? 1 : 0);
}
