/* heap.c -- the process-wide allocation tracker (heap.h).
 *
 * Layout.  Everything the hot path reaches is either thread-local
 * (initial-exec TLS, a few words: the sampling countdown, the generator,
 * the reentrancy flag, the innermost open mark) or static; the large
 * arrays (the block table, the stacks, the snapshots, scratch space) are
 * mapped (heap_map.h), never taken from malloc (the native preload library
 * hooks malloc), and each is reached only under the lock that guards it,
 * so cp_heap_reset can unmap it while hooks run on other threads.
 *
 *  - Block table (here): NSTRIPES stripes chosen by address hash, each an
 *    open-addressing table (linear probing, backward-shift deletion) under
 *    its own mutex, grown by doubling.  Each stripe also keeps its share of
 *    the live figures, so a reset empties the stripes one at a time (never
 *    holding them all) and takes each one's share out of the global live
 *    counters: those stay equal to what the table holds, even while other
 *    threads record.
 *  - Free filter (here): FILTER_SLOTS 16-bit counters indexed by address
 *    (64-byte granules: neighbouring frees share cache lines), raised when a block is recorded and lowered when it leaves the
 *    table (a counter that reaches 65535 sticks there: only a false
 *    "maybe"): a free whose counter is 0 (most frees in sampled mode)
 *    returns after one relaxed load.
 *  - Stacks (heap_stacks.c): interned by content; id 0 "no stack", id 1
 *    "(other stacks)" past max_stacks.
 *  - Marks (here) and their peaks (heap_watch.c): the thread's open marks
 *    form a chain through mark->parent (TLS holds the innermost); each
 *    holds a watcher slot recording the highest tracked live bytes and RSS
 *    while it is open, exact across threads.
 *  - Snapshots (here): at a mark exit (cfg.snapshots) the top
 *    CP_MEM_SNAP_SITES stacks by live bytes, kept as the first and the most
 *    recent halves of max_snapshots.
 *
 * Lock order: ctl_mu > snap_mu > one stripe lock; the stacks' and the
 * watchers' locks are taken with no other tracker lock held below them.
 * At most one stripe lock is held at a time.
 *
 * fork: the child (atfork child handler) abandons the parent's arrays and
 * locks (never reads, frees or unlocks them: another thread may have held
 * them mid-update), re-initialises the locks and starts with an empty
 * ledger in the SAME mode and configuration as the parent (the session
 * keeps recording in the child, session.c).  Open marks of the forking
 * thread stay valid and are re-based on the empty ledger.
 */
#include "memory/heap.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/session.h"
#include "memory/gcstats.h"
#include "memory/heap_internal.h"
#include "memory/heap_map.h"
#include "memory/heap_stacks.h"
#include "memory/heap_watch.h"
#include "model/model_mem.h"

#define NSTRIPES 64
#define FILTER_BITS 18
#define FILTER_SLOTS (1u << FILTER_BITS)
#define TABLE_MIN 1024u
#define BIG_FACTOR 8 /* blocks >= 8 x sample_bytes: always recorded, exactly */

/* ------------------------------------------------------------------ */
/* state                                                               */

typedef struct blk {
    uintptr_t addr;  /* 0: empty slot                               */
    int64_t weight;  /* bytes counted for this block (scaled)        */
    uint64_t serial; /* context mark serial << 8 | domain            */
    uint32_t stack;
    uint32_t site;   /* context site (0: outside any)                */
} blk;

typedef struct stripe {
    pthread_mutex_t mu;
    blk *tab;
    uint32_t cap, n; /* cap: power of two or 0 */
    /* this stripe's share of the global live figures, so a reset can take
     * it out of them stripe by stripe */
    int64_t dlive[CP_HEAP_NDOMAINS];
    uint64_t dblocks[CP_HEAP_NDOMAINS];
    char pad[64];
} stripe;

typedef struct dom_ctr {
    _Atomic uint64_t ac, ab, fc, fb, blocks, peak;
    _Atomic int64_t live;
} dom_ctr;

typedef struct snap_group {
    uint32_t stack;
    uint64_t bytes, blocks;
} snap_group;

typedef struct snap_rec {
    uint32_t ctx_site, ngroups;
    uint64_t t_ns;
    int64_t live;
    snap_group g[CP_MEM_SNAP_SITES];
} snap_rec;

static atomic_int g_mode; /* cp_heap_mode */
/* The hook entry points' one load: 0 when there is nothing to do (this
 * copy's tracker is OFF and calls are not forwarded to the preload's). */
static atomic_int g_fast;
static atomic_int g_forwarded;
/* The tracker calls go to (NULL: not resolved yet; see resolve_ops). */
static _Atomic(const struct cp_heap_ops *) g_ops;
static const cp_heap_ops local_ops; /* defined with the dispatch, below */
static atomic_int g_resolving;

static void set_mode(int mode) {
    atomic_store(&g_mode, mode);
    atomic_store(&g_fast, atomic_load(&g_forwarded) || mode != CP_HEAP_OFF);
}
static pthread_mutex_t ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static cp_heap_cfg g_cfg;       /* ctl_mu */
static _Atomic uint64_t g_sample_bytes = 1;
/* cfg fields read outside ctl_mu, published by start */
static _Atomic uint32_t g_depth = 1, g_max_stacks = 1, g_max_snaps, g_max_blocks;
static atomic_int g_snap_on;
static _Atomic uint32_t g_gen = 1; /* bumped at start: threads re-seed */
static const void *g_owner;     /* ctl_mu */
static _Atomic(cp_heap_stack_fn) g_stack_fn;
static uint64_t g_seed;         /* ctl_mu */

static stripe g_str[NSTRIPES];
static _Atomic uint16_t g_filter[FILTER_SLOTS]; /* 512 KiB of zero pages until used */
static dom_ctr g_dom[CP_HEAP_NDOMAINS];
static _Atomic int64_t g_live;
static _Atomic uint64_t g_peak, g_nblocks, g_dropped_blocks, g_dropped_stacks,
    g_dropped_marks, g_dropped_snaps;

static _Atomic uint64_t g_serial;

static struct {
    pthread_mutex_t mu;
    snap_rec *rec;      /* max_snapshots records                       */
    size_t rec_bytes;
    uint32_t cap, head_cap, head_n; /* first half kept, then a ring    */
    uint64_t ring_total;
    snap_group *scratch; /* per stack id                               */
    size_t scratch_bytes;
} g_snap = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct tl_state {
    int64_t countdown; /* SAMPLED: bytes until the next sample point */
    int64_t big;       /* SAMPLED: blocks this large are always recorded */
    uint64_t rng;
    uint32_t gen;
    int in_hook;
    cp_heap_mark *top;
} tl_state;
static _Thread_local tl_state tl __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static inline uint64_t addr_hash(uintptr_t a) {
    uint64_t x = (uint64_t)a >> 4;
    x *= 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 31);
}
static inline uint32_t stripe_of(uint64_t h) { return (uint32_t)(h >> 58) & (NSTRIPES - 1); }
/* The free filter's slot of an address: by address, not by hash, so frees
 * of neighbouring blocks (a pool, an arena, a list's items) read the same
 * few cache lines of the filter instead of one random line each (a
 * hashed index cost a cache miss per free: 9% of a sampled run). */
static inline uint32_t filter_of_addr(uintptr_t a) {
    return (uint32_t)(a >> 6) & (FILTER_SLOTS - 1);
}

static void atomic_max_u64(_Atomic uint64_t *a, uint64_t v) {
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static uint64_t gc_total(void) {
    cp_mgc gc;
    cp_gcstats_read(&gc);
    return gc.collections[0] + gc.collections[1] + gc.collections[2];
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* An exponentially distributed gap of mean `mean` bytes (>= 1). */
static int64_t next_gap(uint64_t mean) {
    double u = ((double)(rng_next(&tl.rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double g = -log(u) * (double)mean;
    if (g < 1.0)
        g = 1.0;
    if (g > 9.0e18)
        g = 9.0e18;
    return (int64_t)g;
}

static _Atomic uint64_t g_thread_seq;

static void tl_reseed(uint32_t gen) {
    uint64_t seed = __atomic_load_n(&g_seed, __ATOMIC_RELAXED);
    uint64_t k = atomic_fetch_add_explicit(&g_thread_seq, 1, memory_order_relaxed) + 1;
    if (seed)
        tl.rng = seed ^ (k * 0xD1B54A32D192ED03ull);
    else
        tl.rng = cp_clock_mono_ns() ^ ((uint64_t)(uintptr_t)&tl << 16) ^ (k * 0xD1B54A32D192ED03ull);
    if (!tl.rng)
        tl.rng = 0x9E3779B97F4A7C15ull;
    tl.gen = gen;
    uint64_t mean = atomic_load_explicit(&g_sample_bytes, memory_order_relaxed);
    tl.countdown = next_gap(mean);
    tl.big = mean > (uint64_t)INT64_MAX / BIG_FACTOR ? INT64_MAX : (int64_t)(mean * BIG_FACTOR);
}

/* ------------------------------------------------------------------ */
/* block table                                                         */

/* Stripe lock held. */
static int table_find(const stripe *st, uintptr_t a, uint64_t h) {
    if (!st->tab)
        return -1;
    uint32_t mask = st->cap - 1;
    for (uint32_t i = (uint32_t)h & mask; st->tab[i].addr; i = (i + 1) & mask)
        if (st->tab[i].addr == a)
            return (int)i;
    return -1;
}

static void table_put_raw(blk *tab, uint32_t cap, const blk *b) {
    uint32_t mask = cap - 1;
    uint32_t i = (uint32_t)addr_hash(b->addr) & mask;
    while (tab[i].addr)
        i = (i + 1) & mask;
    tab[i] = *b;
}

/* Stripe lock held: room for one more (load <= 1/2). */
static int table_reserve(stripe *st) {
    if (st->tab && (st->n + 1) * 2 <= st->cap)
        return 0;
    uint32_t ncap = st->cap ? st->cap * 2 : TABLE_MIN;
    blk *nt = cp_heap_map((size_t)ncap * sizeof *nt);
    if (!nt)
        return -1;
    for (uint32_t i = 0; i < st->cap; i++)
        if (st->tab[i].addr)
            table_put_raw(nt, ncap, &st->tab[i]);
    cp_heap_unmap(st->tab, (size_t)st->cap * sizeof *st->tab);
    st->tab = nt;
    st->cap = ncap;
    return 0;
}

/* Stripe lock held: removes slot i (backward-shift deletion). */
static void table_remove(stripe *st, uint32_t i) {
    uint32_t mask = st->cap - 1;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!st->tab[j].addr)
            break;
        uint32_t home = (uint32_t)addr_hash(st->tab[j].addr) & mask;
        /* can tab[j] move to the hole at i? (home not cyclically in (i, j]) */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            st->tab[i] = st->tab[j];
            i = j;
        }
    }
    st->tab[i].addr = 0;
    st->n--;
}

static void filter_inc(uintptr_t a) {
    _Atomic uint16_t *c = &g_filter[filter_of_addr(a)];
    uint16_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v != UINT16_MAX &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v + 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void filter_dec(uintptr_t a) {
    _Atomic uint16_t *c = &g_filter[filter_of_addr(a)];
    uint16_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v != UINT16_MAX && v != 0 &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v - 1), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* Stripe lock held: the accounting of a block leaving the ledger. */
static void account_free(stripe *st, const blk *b) {
    st->dlive[b->serial & 0xff] -= b->weight;
    st->dblocks[b->serial & 0xff]--;
    dom_ctr *d = &g_dom[b->serial & 0xff];
    atomic_fetch_add_explicit(&d->fc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->fb, (uint64_t)b->weight, memory_order_relaxed);
    atomic_fetch_sub_explicit(&d->live, b->weight, memory_order_relaxed);
    atomic_fetch_sub_explicit(&d->blocks, 1, memory_order_relaxed);
    atomic_fetch_sub(&g_live, b->weight);
    atomic_fetch_sub_explicit(&g_nblocks, 1, memory_order_relaxed);
    filter_dec(b->addr);
}

/* Appends a recorded allocation or free to the current session's events.
 * SAMPLED: every recorded block (about one per sample_bytes).  ALL: only
 * blocks of at least sample_bytes -- one event per small block would be
 * tens of millions per second in an allocation-heavy loop and would crowd
 * the scopes' events out of the session's buffers. */
static void emit(uint16_t kind, int dom, int64_t bytes, uintptr_t addr) {
    if (atomic_load_explicit(&g_mode, memory_order_relaxed) == CP_HEAP_ALL &&
        (uint64_t)bytes < atomic_load_explicit(&g_sample_bytes, memory_order_relaxed))
        return;
    cp_session *s = cp_session_resolve(NULL);
    if (s)
        cp_emit(s, kind, (uint16_t)dom, 0, bytes, (uint64_t)addr);
}

/* Records block `p` of `weight` bytes in domain `dom`. */
static void record(int dom, void *p, int64_t weight) {
    uintptr_t a = (uintptr_t)p;
    uint64_t h = addr_hash(a);
    cp_heap_frame fr[CP_HEAP_MAX_DEPTH];
    uint32_t nfr = 0;
    cp_heap_stack_fn fn = atomic_load_explicit(&g_stack_fn, memory_order_acquire);
    uint32_t depth = atomic_load_explicit(&g_depth, memory_order_relaxed);
    if (fn && depth) {
        nfr = fn(fr, depth > CP_HEAP_MAX_DEPTH ? CP_HEAP_MAX_DEPTH : depth);
        if (nfr == CP_HEAP_STACK_SKIP)
            return; /* the profiler's own block */
        if (nfr > depth)
            nfr = depth;
    }
    uint32_t stack = cp_heap_stacks_intern(fr, nfr, atomic_load_explicit(&g_max_stacks,
                                                                         memory_order_relaxed));
    if (stack == CP_HEAP_STACK_OTHER)
        atomic_fetch_add_explicit(&g_dropped_stacks, 1, memory_order_relaxed);
    cp_heap_mark *top = tl.top;
    blk b = {a, weight, ((top ? top->serial : 0) << 8) | (uint64_t)dom, stack,
             top ? top->site : 0};
    int64_t live = 0;
    int recorded = 0, replaced = 0;
    blk old;
    stripe *st = &g_str[stripe_of(h)];
    pthread_mutex_lock(&st->mu);
    if (atomic_load_explicit(&g_mode, memory_order_relaxed) == CP_HEAP_OFF)
        goto out;
    int i = table_find(st, a, h);
    if (i >= 0) { /* the free of the previous block at `a` was not seen */
        old = st->tab[i];
        account_free(st, &old);
        table_remove(st, (uint32_t)i);
        replaced = 1;
    }
    if (atomic_fetch_add_explicit(&g_nblocks, 1, memory_order_relaxed) >=
            atomic_load_explicit(&g_max_blocks, memory_order_relaxed) ||
        table_reserve(st) != 0) {
        atomic_fetch_sub_explicit(&g_nblocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_dropped_blocks, 1, memory_order_relaxed);
        goto out;
    }
    table_put_raw(st->tab, st->cap, &b);
    st->n++;
    st->dlive[dom] += weight;
    st->dblocks[dom]++;
    filter_inc(a);
    dom_ctr *d = &g_dom[dom];
    atomic_fetch_add_explicit(&d->ac, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->ab, (uint64_t)weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->blocks, 1, memory_order_relaxed);
    int64_t dl = atomic_fetch_add_explicit(&d->live, weight, memory_order_relaxed) + weight;
    if (dl > 0)
        atomic_max_u64(&d->peak, (uint64_t)dl);
    live = atomic_fetch_add(&g_live, weight) + weight;
    if (live > 0)
        atomic_max_u64(&g_peak, (uint64_t)live);
    recorded = 1;
out:
    pthread_mutex_unlock(&st->mu);
    if (replaced)
        emit(CP_EV_FREE, (int)(old.serial & 0xff), old.weight, a);
    if (recorded) {
        cp_heap_watch_note_live(live);
        emit(CP_EV_ALLOC, dom, weight, a);
    }
}

static void local_on_free(int dom, void *p) {
    (void)dom; /* the block's own domain is the one it was recorded in */
    if (atomic_load_explicit(&g_mode, memory_order_relaxed) == CP_HEAP_OFF || !p)
        return;
    uintptr_t a = (uintptr_t)p;
    if (__builtin_expect(!atomic_load_explicit(&g_filter[filter_of_addr(a)], memory_order_relaxed), 1))
        return;
    uint64_t h = addr_hash(a);
    stripe *st = &g_str[stripe_of(h)];
    pthread_mutex_lock(&st->mu);
    int i = table_find(st, a, h);
    blk b;
    if (i >= 0) {
        b = st->tab[i];
        account_free(st, &b);
        table_remove(st, (uint32_t)i);
    }
    pthread_mutex_unlock(&st->mu);
    if (i >= 0)
        emit(CP_EV_FREE, (int)(b.serial & 0xff), b.weight, a);
}

static void on_alloc_slow(int dom, void *p, size_t size, int mode) __attribute__((noinline));

/* The fast path, kept apart from the rest so that it saves no registers:
 * in sampled mode most allocations only count down. */
static inline void local_on_alloc(int dom, void *p, size_t size) {
    int mode = atomic_load_explicit(&g_mode, memory_order_relaxed);
    if (__builtin_expect(mode == CP_HEAP_OFF, 1) || !p || (unsigned)dom >= CP_HEAP_NDOMAINS)
        return;
    if (mode == CP_HEAP_SAMPLED) {
        /* no sample point inside this block, not a big one */
        int64_t c = tl.countdown - (int64_t)size;
        if (__builtin_expect(c > 0 && (int64_t)size < tl.big, 1)) {
            tl.countdown = c;
            return;
        }
    }
    on_alloc_slow(dom, p, size, mode);
}

static void on_alloc_slow(int dom, void *p, size_t size, int mode) {
    int64_t weight = (int64_t)size;
    if (mode == CP_HEAP_SAMPLED) {
        int64_t c = tl.countdown - weight;
        if (c > 0 && weight < tl.big) {
            tl.countdown = c;
            return;
        }
        uint32_t gen = atomic_load_explicit(&g_gen, memory_order_relaxed);
        if (tl.gen != gen) { /* this thread's first look at this run */
            tl_reseed(gen);
            c = tl.countdown - weight;
            if (c > 0 && weight < tl.big) {
                tl.countdown = c;
                return;
            }
        }
        if (weight < tl.big) {
            /* a sample point falls inside: recorded with probability
             * 1 - exp(-size/mean), so weighted size / that */
            uint64_t mean = atomic_load_explicit(&g_sample_bytes, memory_order_relaxed);
            tl.countdown = next_gap(mean);
            double pr = -expm1(-(double)size / (double)mean);
            double w = pr > 0 ? (double)size / pr : (double)mean;
            weight = w > 9.0e18 ? INT64_MAX / 4 : (int64_t)(w + 0.5);
        }
        /* else: a big block, recorded at its size, outside the countdown */
    }
    record(dom, p, weight);
}


static void local_on_realloc(int dom, void *old, void *new_ptr, size_t size) {
    if (atomic_load_explicit(&g_mode, memory_order_relaxed) == CP_HEAP_OFF)
        return;
    if (!old) {
        local_on_alloc(dom, new_ptr, size);
        return;
    }
    if (!new_ptr) {
        if (size == 0) /* realloc(p, 0) that freed p */
            local_on_free(dom, old);
        return; /* a failed realloc: p is still the live block */
    }
    local_on_free(dom, old);
    local_on_alloc(dom, new_ptr, size);
}

static int local_hook_enter(void) {
    if (tl.in_hook)
        return 0;
    tl.in_hook = 1;
    return 1;
}
static void local_hook_leave(void) { tl.in_hook = 0; }

/* ------------------------------------------------------------------ */
/* reset / start / stop                                                */

/* Zeroes every counter and the filter (fork child: one thread). */
static void zero_counters(void) {
    for (int d = 0; d < CP_HEAP_NDOMAINS; d++) {
        dom_ctr *c = &g_dom[d];
        atomic_store(&c->ac, 0);
        atomic_store(&c->ab, 0);
        atomic_store(&c->fc, 0);
        atomic_store(&c->fb, 0);
        atomic_store(&c->blocks, 0);
        atomic_store(&c->peak, 0);
        atomic_store(&c->live, 0);
    }
    for (uint32_t i = 0; i < FILTER_SLOTS; i++)
        atomic_store_explicit(&g_filter[i], 0, memory_order_relaxed);
    atomic_store(&g_live, 0);
    atomic_store(&g_peak, 0);
    atomic_store(&g_nblocks, 0);
    atomic_store(&g_dropped_blocks, 0);
    atomic_store(&g_dropped_stacks, 0);
    atomic_store(&g_dropped_marks, 0);
    atomic_store(&g_dropped_snaps, 0);
}

/* Empties stripe st (its lock held): its blocks leave the filter and its
 * share leaves the global live figures. */
static void stripe_clear(stripe *st) {
    for (uint32_t i = 0; st->tab && i < st->cap; i++)
        if (st->tab[i].addr)
            filter_dec(st->tab[i].addr);
    int64_t live = 0;
    for (int d = 0; d < CP_HEAP_NDOMAINS; d++) {
        atomic_fetch_sub_explicit(&g_dom[d].live, st->dlive[d], memory_order_relaxed);
        atomic_fetch_sub_explicit(&g_dom[d].blocks, st->dblocks[d], memory_order_relaxed);
        live += st->dlive[d];
        st->dlive[d] = 0;
        st->dblocks[d] = 0;
    }
    atomic_fetch_sub(&g_live, live);
    atomic_fetch_sub_explicit(&g_nblocks, st->n, memory_order_relaxed);
    cp_heap_unmap(st->tab, (size_t)st->cap * sizeof(blk));
    st->tab = NULL;
    st->cap = st->n = 0;
}

/* Discards the ledger (ctl_mu held).  Safe while other threads record:
 * what they record meanwhile stays consistent with the counters. */
static void discard_locked(void) {
    pthread_mutex_lock(&g_snap.mu);
    for (uint32_t i = 0; i < NSTRIPES; i++) {
        pthread_mutex_lock(&g_str[i].mu);
        stripe_clear(&g_str[i]);
        pthread_mutex_unlock(&g_str[i].mu);
    }
    for (int d = 0; d < CP_HEAP_NDOMAINS; d++) {
        dom_ctr *c = &g_dom[d];
        atomic_store(&c->ac, 0);
        atomic_store(&c->ab, 0);
        atomic_store(&c->fc, 0);
        atomic_store(&c->fb, 0);
        int64_t l = atomic_load(&c->live);
        atomic_store(&c->peak, l > 0 ? (uint64_t)l : 0);
    }
    int64_t l = atomic_load(&g_live);
    atomic_store(&g_peak, l > 0 ? (uint64_t)l : 0);
    atomic_store(&g_dropped_blocks, 0);
    atomic_store(&g_dropped_stacks, 0);
    atomic_store(&g_dropped_marks, 0);
    atomic_store(&g_dropped_snaps, 0);
    cp_heap_stacks_discard();
    cp_heap_unmap(g_snap.rec, g_snap.rec_bytes);
    cp_heap_unmap(g_snap.scratch, g_snap.scratch_bytes);
    g_snap.rec = NULL;
    g_snap.scratch = NULL;
    g_snap.rec_bytes = g_snap.scratch_bytes = 0;
    g_snap.cap = g_snap.head_cap = g_snap.head_n = 0;
    g_snap.ring_total = 0;
    pthread_mutex_unlock(&g_snap.mu);
    /* Open marks keep their slots; their maxima restart from the ledger
     * as it is now. */
    cp_heap_watch_rebase(atomic_load(&g_live));
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void atfork_child(void);
static void install_atfork(void) { pthread_atfork(NULL, NULL, atfork_child); }

static codeprof_status local_start(const cp_heap_cfg *cfg, const void *owner,
                                   codeprof_error *err) {
    if (!cfg)
        return cp_error_set(err, CODEPROF_EINVAL, "cfg", "heap tracker: cfg must not be NULL");
    if (cfg->mode < CP_HEAP_OFF || cfg->mode > CP_HEAP_ALL)
        return cp_error_set(err, CODEPROF_ECONFIG, "memory_mode",
                            "expected 0, 1 or 2, got %d", (int)cfg->mode);
    if (cfg->sample_bytes < 1 || cfg->sample_bytes > (1ull << 40))
        return cp_error_set(err, CODEPROF_ECONFIG, "memory_sample_bytes",
                            "expected [1, 2^40], got %llu", (unsigned long long)cfg->sample_bytes);
    if (cfg->stack_depth < 1 || cfg->stack_depth > CP_HEAP_MAX_DEPTH)
        return cp_error_set(err, CODEPROF_ECONFIG, "memory_stack_depth",
                            "expected [1, %d], got %u", CP_HEAP_MAX_DEPTH, cfg->stack_depth);
    if (cfg->max_blocks < 1 || cfg->max_stacks < 1)
        return cp_error_set(err, CODEPROF_ECONFIG, "memory_max_blocks",
                            "memory_max_blocks and memory_max_stacks must be >= 1");
    pthread_once(&atfork_once, install_atfork);
    /* Started through this copy's table: this copy is the tracker (in the
     * preload library, the hooks then never need dlsym to find it). */
    const cp_heap_ops *unresolved = NULL;
    atomic_compare_exchange_strong(&g_ops, &unresolved, &local_ops);
    pthread_mutex_lock(&ctl_mu);
    if (g_owner && g_owner != owner &&
        atomic_load_explicit(&g_mode, memory_order_relaxed) != CP_HEAP_OFF) {
        pthread_mutex_unlock(&ctl_mu);
        return cp_error_set(err, CODEPROF_EBUSY, "memory_mode",
                            "the allocation tracker is recording for another session");
    }
    set_mode(CP_HEAP_OFF);
    discard_locked();
    g_cfg = *cfg; /* ctl_mu; recording threads read the atomics below */
    atomic_store(&g_max_blocks, cfg->max_blocks);
    atomic_store(&g_depth, cfg->stack_depth);
    atomic_store(&g_max_stacks, cfg->max_stacks);
    atomic_store(&g_max_snaps, cfg->max_snapshots);
    atomic_store(&g_snap_on, cfg->snapshots != 0);
    atomic_store(&g_sample_bytes, cfg->sample_bytes);
    atomic_fetch_add(&g_gen, 1);
    g_owner = owner;
    set_mode((int)cfg->mode);
    pthread_mutex_unlock(&ctl_mu);
    return CODEPROF_OK;
}

static void local_stop(const void *owner) {
    pthread_mutex_lock(&ctl_mu);
    if (g_owner == owner)
        set_mode(CP_HEAP_OFF);
    pthread_mutex_unlock(&ctl_mu);
}

static void local_reset(const void *owner) {
    pthread_mutex_lock(&ctl_mu);
    if (g_owner == owner) {
        discard_locked();
        if (atomic_load(&g_mode) == CP_HEAP_OFF)
            g_owner = NULL; /* stopped and discarded: the tracker is free */
    }
    pthread_mutex_unlock(&ctl_mu);
}

static void local_set_stack_fn(cp_heap_stack_fn fn) {
    atomic_store_explicit(&g_stack_fn, fn, memory_order_release);
}

static int local_active(void) {
    return atomic_load_explicit(&g_mode, memory_order_relaxed) != CP_HEAP_OFF;
}

/* ------------------------------------------------------------------ */
/* marks                                                               */

static void snapshot_take(uint32_t site);

static void local_mark_enter(cp_heap_mark *m, uint32_t site) {
    memset(m, 0, sizeof *m);
    m->serial = atomic_fetch_add_explicit(&g_serial, 1, memory_order_relaxed) + 1;
    m->site = site;
    m->watch = -1;
    m->rss_enter = codeprof_rss_bytes();
    m->gc_enter = gc_total();
    m->parent = tl.top;
    tl.top = m;
    if (atomic_load_explicit(&g_mode, memory_order_relaxed) == CP_HEAP_OFF) {
        m->live_enter = atomic_load(&g_live);
        return;
    }
    m->watch = cp_heap_watch_claim(m->serial, m->rss_enter, &g_live, &m->live_enter);
    if (m->watch < 0)
        atomic_fetch_add_explicit(&g_dropped_marks, 1, memory_order_relaxed);
}

static void local_mark_exit(cp_heap_mark *m, cp_heap_span *out) {
    memset(out, 0, sizeof *out);
    /* unlink from this thread's chain (innermost first; tolerate a skip) */
    if (tl.top == m) {
        tl.top = m->parent;
    } else {
        for (cp_heap_mark *p = tl.top; p; p = p->parent)
            if (p->parent == m) {
                tl.top = m->parent; /* marks above m were not exited: drop them */
                break;
            }
    }
    int64_t live = atomic_load(&g_live);
    uint64_t rss = codeprof_rss_bytes();
    int64_t maxlive = live > m->live_enter ? live : m->live_enter;
    uint64_t rssmax = rss > m->rss_enter ? rss : m->rss_enter;
    if (m->watch >= 0) {
        cp_heap_watch_release(m->watch, m->serial, &maxlive, &rssmax);
        m->watch = -1;
    }
    out->delta = live - m->live_enter;
    out->peak = (uint64_t)(maxlive - m->live_enter);
    out->live_exit = live;
    out->rss_delta = (int64_t)(rss - m->rss_enter);
    out->rss_peak = rssmax - m->rss_enter;
    out->rss_exit = rss;
    uint64_t gc = gc_total();
    out->gc_collections = gc >= m->gc_enter ? gc - m->gc_enter : 0;
    int mode = atomic_load_explicit(&g_mode, memory_order_relaxed);
    out->estimated = mode == CP_HEAP_SAMPLED;
    if (mode != CP_HEAP_OFF && atomic_load_explicit(&g_snap_on, memory_order_relaxed))
        snapshot_take(m->site);
}

static void local_watch_rss(uint64_t rss) { cp_heap_watch_note_rss(rss); }

/* ------------------------------------------------------------------ */
/* reading                                                             */

static void local_get_totals(cp_heap_totals *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ctl_mu);
    out->mode = (cp_heap_mode)atomic_load(&g_mode);
    if (g_owner || out->mode != CP_HEAP_OFF) {
        /* stopped: report the mode the ledger was recorded in */
        out->mode = g_cfg.mode;
        out->sample_bytes = g_cfg.sample_bytes;
        out->stack_depth = g_cfg.stack_depth;
    }
    pthread_mutex_unlock(&ctl_mu);
    for (int d = 0; d < CP_HEAP_NDOMAINS; d++) {
        dom_ctr *c = &g_dom[d];
        cp_heap_domain_totals *o = &out->dom[d];
        o->alloc_count = atomic_load(&c->ac);
        o->alloc_bytes = atomic_load(&c->ab);
        o->free_count = atomic_load(&c->fc);
        o->free_bytes = atomic_load(&c->fb);
        o->live_bytes = atomic_load(&c->live);
        o->live_blocks = atomic_load(&c->blocks);
        o->peak_bytes = atomic_load(&c->peak);
    }
    out->live_bytes = atomic_load(&g_live);
    out->peak_bytes = atomic_load(&g_peak);
    out->own_bytes = cp_heap_mapped_bytes();
    out->dropped_blocks = atomic_load(&g_dropped_blocks);
    out->dropped_stacks = atomic_load(&g_dropped_stacks);
    out->dropped_snapshots = atomic_load(&g_dropped_snaps);
    out->dropped_marks = atomic_load(&g_dropped_marks);
}

/* Grouping live blocks by (stack, site, open) in mapped scratch space. */
typedef struct grp {
    uint32_t stack, site;
    uint32_t open, used;
    uint64_t bytes, blocks;
} grp;

typedef struct grp_tab {
    grp *g;
    uint32_t cap, n;
} grp_tab;

static int serial_open(const uint64_t *open, uint32_t nopen, uint64_t serial) {
    uint32_t lo = 0, hi = nopen;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (open[mid] < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nopen && open[lo] == serial;
}

static void grp_add(grp_tab *t, uint32_t stack, uint32_t site, uint32_t open, int64_t bytes) {
    uint64_t h = ((uint64_t)stack * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)site * 0xC2B2AE3D27D4EB4Full) ^
                 open;
    h ^= h >> 29;
    uint32_t mask = t->cap - 1;
    uint32_t i = (uint32_t)h & mask;
    for (;;) {
        grp *g = &t->g[i];
        if (!g->used) {
            if ((t->n + 1) * 4 > t->cap * 3) { /* full: fold into "(other stacks)" */
                if (stack == CP_HEAP_STACK_OTHER && site == 0)
                    return; /* cannot happen: that key is added before full */
                grp_add(t, CP_HEAP_STACK_OTHER, 0, open, bytes);
                return;
            }
            *g = (grp){stack, site, open, 1, 0, 0};
            t->n++;
        }
        if (g->stack == stack && g->site == site && g->open == open) {
            g->bytes += (uint64_t)bytes;
            g->blocks++;
            return;
        }
        i = (i + 1) & mask;
    }
}

static void local_foreach_live(cp_heap_group_fn fn, void *arg) {
    if (!fn)
        return;
    uint64_t open[CP_HEAP_WATCHERS];
    uint32_t nopen = cp_heap_watch_open_serials(open);
    uint64_t nb = atomic_load(&g_nblocks);
    uint64_t want = nb + 4;
    uint64_t limit = (uint64_t)4 * (atomic_load(&g_max_stacks) + 2) + 1024;
    if (want > limit)
        want = limit;
    uint32_t cap = 64;
    while (cap < want * 2)
        cap *= 2;
    grp_tab t = {cp_heap_map((size_t)cap * sizeof(grp)), cap, 0};
    if (!t.g)
        return;
    /* the fold targets exist before the table can be full */
    grp_add(&t, CP_HEAP_STACK_OTHER, 0, 0, 0);
    grp_add(&t, CP_HEAP_STACK_OTHER, 0, 1, 0);
    for (uint32_t i = 0; i < t.cap; i++)
        if (t.g[i].used && t.g[i].stack == CP_HEAP_STACK_OTHER && t.g[i].site == 0)
            t.g[i].blocks = 0;
    for (uint32_t s = 0; s < NSTRIPES; s++) {
        stripe *st = &g_str[s];
        pthread_mutex_lock(&st->mu);
        for (uint32_t i = 0; st->tab && i < st->cap; i++) {
            const blk *b = &st->tab[i];
            if (!b->addr)
                continue;
            uint64_t serial = b->serial >> 8;
            uint32_t o = serial && b->site ? (uint32_t)serial_open(open, nopen, serial) : 1;
            if (!b->site)
                o = 0;
            grp_add(&t, b->stack, b->site, o, b->weight);
        }
        pthread_mutex_unlock(&st->mu);
    }
    cp_heap_frame fr[CP_HEAP_MAX_DEPTH];
    for (uint32_t i = 0; i < t.cap; i++) {
        const grp *g = &t.g[i];
        if (!g->used || !g->blocks)
            continue;
        uint32_t n = cp_heap_stacks_frames(g->stack, fr);
        fn(arg, fr, n, g->site, (int)g->open, g->bytes, g->blocks);
    }
    cp_heap_unmap(t.g, (size_t)cap * sizeof(grp));
}

/* ------------------------------------------------------------------ */
/* snapshots                                                           */

static void snapshot_take(uint32_t site) {
    uint32_t max_snaps = atomic_load(&g_max_snaps);
    if (!max_snaps) {
        atomic_fetch_add_explicit(&g_dropped_snaps, 1, memory_order_relaxed);
        return;
    }
    pthread_mutex_lock(&g_snap.mu);
    if (!g_snap.rec) {
        g_snap.cap = max_snaps;
        g_snap.head_cap = (g_snap.cap + 1) / 2;
        g_snap.rec_bytes = (size_t)g_snap.cap * sizeof(snap_rec);
        g_snap.rec = cp_heap_map(g_snap.rec_bytes);
        if (!g_snap.rec) {
            g_snap.rec_bytes = 0;
            goto fail;
        }
    }
    uint32_t nst = cp_heap_stacks_count();
    size_t need = (size_t)(nst + 64) * sizeof(snap_group);
    if (need > g_snap.scratch_bytes) {
        size_t nb = need * 2;
        snap_group *sc = cp_heap_map(nb);
        if (!sc)
            goto fail;
        cp_heap_unmap(g_snap.scratch, g_snap.scratch_bytes);
        g_snap.scratch = sc;
        g_snap.scratch_bytes = nb;
    }
    uint32_t nsc = (uint32_t)(g_snap.scratch_bytes / sizeof(snap_group));
    memset(g_snap.scratch, 0, g_snap.scratch_bytes);
    for (uint32_t s = 0; s < NSTRIPES; s++) {
        stripe *st = &g_str[s];
        pthread_mutex_lock(&st->mu);
        for (uint32_t i = 0; st->tab && i < st->cap; i++) {
            const blk *b = &st->tab[i];
            if (!b->addr)
                continue;
            uint32_t k = b->stack < nsc ? b->stack : CP_HEAP_STACK_OTHER;
            g_snap.scratch[k].bytes += (uint64_t)b->weight;
            g_snap.scratch[k].blocks++;
        }
        pthread_mutex_unlock(&st->mu);
    }
    snap_rec *r;
    if (g_snap.head_n < g_snap.head_cap) {
        r = &g_snap.rec[g_snap.head_n++];
    } else {
        uint32_t ring = g_snap.cap - g_snap.head_cap;
        if (!ring)
            goto fail;
        if (g_snap.ring_total >= ring)
            atomic_fetch_add_explicit(&g_dropped_snaps, 1, memory_order_relaxed);
        r = &g_snap.rec[g_snap.head_cap + g_snap.ring_total % ring];
        g_snap.ring_total++;
    }
    r->ctx_site = site;
    r->t_ns = cp_clock_mono_ns();
    r->live = atomic_load(&g_live);
    r->ngroups = 0;
    /* top CP_MEM_SNAP_SITES by bytes: insertion into a sorted array */
    for (uint32_t k = 0; k < nsc; k++) {
        const snap_group *c = &g_snap.scratch[k];
        if (!c->blocks)
            continue;
        uint32_t n = r->ngroups;
        if (n == CP_MEM_SNAP_SITES && r->g[n - 1].bytes >= c->bytes)
            continue;
        uint32_t j = n < CP_MEM_SNAP_SITES ? n : n - 1;
        while (j > 0 && r->g[j - 1].bytes < c->bytes) {
            r->g[j] = r->g[j - 1];
            j--;
        }
        r->g[j] = (snap_group){k, c->bytes, c->blocks};
        if (n < CP_MEM_SNAP_SITES)
            r->ngroups++;
    }
    pthread_mutex_unlock(&g_snap.mu);
    return;
fail:
    pthread_mutex_unlock(&g_snap.mu);
    atomic_fetch_add_explicit(&g_dropped_snaps, 1, memory_order_relaxed);
}

/* snap_mu held: the record of snapshot i in order, or NULL. */
static const snap_rec *snap_at(uint32_t i) {
    if (!g_snap.rec)
        return NULL;
    if (i < g_snap.head_n)
        return &g_snap.rec[i];
    i -= g_snap.head_n;
    uint32_t ring = g_snap.cap - g_snap.head_cap;
    uint64_t nring = g_snap.ring_total < ring ? g_snap.ring_total : ring;
    if (i >= nring)
        return NULL;
    uint64_t start = g_snap.ring_total > ring ? g_snap.ring_total % ring : 0;
    return &g_snap.rec[g_snap.head_cap + (start + i) % ring];
}

static uint32_t local_snapshot_count(void) {
    pthread_mutex_lock(&g_snap.mu);
    uint32_t ring = g_snap.cap - g_snap.head_cap;
    uint64_t nring = g_snap.ring_total < ring ? g_snap.ring_total : ring;
    uint32_t n = g_snap.rec ? g_snap.head_n + (uint32_t)nring : 0;
    pthread_mutex_unlock(&g_snap.mu);
    return n;
}

static int local_snapshot_get(uint32_t i, cp_heap_snapshot_info *info, cp_heap_group_fn fn,
                              void *arg) {
    snap_rec r;
    pthread_mutex_lock(&g_snap.mu);
    const snap_rec *p = snap_at(i);
    if (p)
        r = *p;
    pthread_mutex_unlock(&g_snap.mu);
    if (!p)
        return -1;
    if (info)
        *info = (cp_heap_snapshot_info){r.ctx_site, r.t_ns, r.live, r.ngroups};
    if (fn) {
        cp_heap_frame fr[CP_HEAP_MAX_DEPTH];
        for (uint32_t k = 0; k < r.ngroups; k++) {
            uint32_t n = cp_heap_stacks_frames(r.g[k].stack, fr);
            fn(arg, fr, n, r.ctx_site, 0, r.g[k].bytes, r.g[k].blocks);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* fork                                                                */

static void atfork_child(void) {
    pthread_mutex_init(&ctl_mu, NULL);
    pthread_mutex_init(&g_snap.mu, NULL);
    for (uint32_t i = 0; i < NSTRIPES; i++) {
        pthread_mutex_init(&g_str[i].mu, NULL);
        g_str[i].tab = NULL; /* the parent's: abandoned */
        g_str[i].cap = g_str[i].n = 0;
        memset(g_str[i].dlive, 0, sizeof g_str[i].dlive);
        memset(g_str[i].dblocks, 0, sizeof g_str[i].dblocks);
    }
    cp_heap_stacks_atfork_child();
    g_snap.rec = NULL;
    g_snap.scratch = NULL;
    g_snap.rec_bytes = g_snap.scratch_bytes = 0;
    g_snap.cap = g_snap.head_cap = g_snap.head_n = 0;
    g_snap.ring_total = 0;
    zero_counters();
    cp_heap_map_forget();
    /* Watchers: only this thread's open marks survive, re-based on the
     * empty ledger. */
    cp_heap_watch_atfork_child(tl.top);
    atomic_fetch_add(&g_gen, 1);
    tl.in_hook = 0;
}

/* ------------------------------------------------------------------ */
/* tests                                                               */

void cp_heap_seed_for_tests(uint64_t seed) {
    pthread_mutex_lock(&ctl_mu);
    __atomic_store_n(&g_seed, seed, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ctl_mu);
}

uint32_t cp_heap_watchers_in_use(void) { return cp_heap_watch_in_use(); }

/* ------------------------------------------------------------------ */
/* dispatch: one tracker per process                                   */

static const cp_heap_ops local_ops = {
    CP_HEAP_OPS_VERSION,  sizeof(cp_heap_ops), local_start,         local_stop,
    local_reset,          local_set_stack_fn,  local_active,        local_on_alloc,
    local_on_free,        local_on_realloc,    local_hook_enter,    local_hook_leave,
    local_mark_enter,     local_mark_exit,     local_watch_rss,     local_get_totals,
    local_foreach_live,   local_snapshot_count, local_snapshot_get,
};

const cp_heap_ops *cp_heap_local_ops(void) { return &local_ops; }


/* The tracker to use: the preload library's when it is loaded, else this
 * copy's.  Resolved once; while resolution is under way (dlsym may
 * allocate, and so re-enter a hook) this copy's is used. */
static const cp_heap_ops *resolve_ops(void) {
    int expect = 0;
    if (!atomic_compare_exchange_strong(&g_resolving, &expect, 1))
        return &local_ops;
    const cp_heap_ops *o = &local_ops;
#ifndef CP_HEAP_LOCAL_ONLY
    void *sym = dlsym(RTLD_DEFAULT, "codeprof_heap_ops_v1");
    if (sym) {
        cp_heap_ops_fn f;
        memcpy(&f, &sym, sizeof f);
        const cp_heap_ops *other = f();
        if (other && other != &local_ops && other->version == CP_HEAP_OPS_VERSION &&
            other->size == sizeof(cp_heap_ops))
            o = other;
    }
#endif
    atomic_store_explicit(&g_ops, o, memory_order_release);
    if (o != &local_ops) {
        atomic_store(&g_forwarded, 1);
        set_mode(atomic_load(&g_mode));
    }
    return o;
}

static inline const cp_heap_ops *ops(void) {
    const cp_heap_ops *o = atomic_load_explicit(&g_ops, memory_order_acquire);
    return __builtin_expect(o != NULL, 1) ? o : resolve_ops();
}

const char *cp_heap_domain_name(int dom) {
    static const char *const names[CP_HEAP_NDOMAINS] = {"raw", "mem", "object", "numpy", "native"};
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? names[dom] : "unknown";
}

/* The hooks' entry points: one relaxed load when there is nothing to do.
 * Before the tracker was resolved (no start yet) there is nothing to do. */
static inline const cp_heap_ops *hot_ops(void) {
    const cp_heap_ops *o = atomic_load_explicit(&g_ops, memory_order_acquire);
    return o ? o : &local_ops;
}
codeprof_status cp_heap_start(const cp_heap_cfg *cfg, const void *owner, codeprof_error *err) {
    return ops()->start(cfg, owner, err);
}
void cp_heap_stop(const void *owner) { ops()->stop(owner); }
void cp_heap_reset(const void *owner) { ops()->reset(owner); }
void cp_heap_set_stack_fn(cp_heap_stack_fn fn) { ops()->set_stack_fn(fn); }
int cp_heap_active(void) {
    if (__builtin_expect(!atomic_load_explicit(&g_fast, memory_order_relaxed), 1))
        return 0;
    const cp_heap_ops *o = hot_ops();
    return o == &local_ops ? local_active() : o->active();
}

void cp_heap_on_alloc(int dom, void *ptr, size_t size) {
    if (__builtin_expect(!atomic_load_explicit(&g_fast, memory_order_relaxed), 1))
        return;
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1))
        local_on_alloc(dom, ptr, size);
    else
        o->on_alloc(dom, ptr, size);
}
void cp_heap_on_free(int dom, void *ptr) {
    if (__builtin_expect(!atomic_load_explicit(&g_fast, memory_order_relaxed), 1))
        return;
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1))
        local_on_free(dom, ptr);
    else
        o->on_free(dom, ptr);
}
void cp_heap_on_realloc(int dom, void *old, void *new_ptr, size_t size) {
    if (__builtin_expect(!atomic_load_explicit(&g_fast, memory_order_relaxed), 1))
        return;
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1))
        local_on_realloc(dom, old, new_ptr, size);
    else
        o->on_realloc(dom, old, new_ptr, size);
}
int cp_heap_hook_enter(void) {
    const cp_heap_ops *o = ops();
    return __builtin_expect(o == &local_ops, 1) ? local_hook_enter() : o->hook_enter();
}
void cp_heap_hook_leave(void) {
    const cp_heap_ops *o = ops();
    if (__builtin_expect(o == &local_ops, 1))
        local_hook_leave();
    else
        o->hook_leave();
}

/* The fused entry points of the Python allocator hooks: one call per
 * event on the fast path instead of four (heap.h). */
int cp_heap_alloc_begin(void) {
    if (__builtin_expect(!atomic_load_explicit(&g_fast, memory_order_relaxed), 1))
        return 0;
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1)) {
        if (!local_active() || tl.in_hook)
            return 0;
        tl.in_hook = 1;
        return 1;
    }
    return o->active() && o->hook_enter();
}

void cp_heap_alloc_end(int dom, void *ptr, size_t size) {
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1)) {
        if (ptr)
            local_on_alloc(dom, ptr, size);
        local_hook_leave();
        return;
    }
    if (ptr)
        o->on_alloc(dom, ptr, size);
    o->hook_leave();
}

void cp_heap_realloc_end(int dom, void *old, void *new_ptr, size_t size) {
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1)) {
        if (new_ptr)
            local_on_realloc(dom, old, new_ptr, size);
        local_hook_leave();
        return;
    }
    if (new_ptr)
        o->on_realloc(dom, old, new_ptr, size);
    o->hook_leave();
}

void cp_heap_free_hooked(int dom, void *ptr) {
    if (__builtin_expect(!atomic_load_explicit(&g_fast, memory_order_relaxed), 1) || !ptr)
        return;
    const cp_heap_ops *o = hot_ops();
    if (__builtin_expect(o == &local_ops, 1)) {
        /* Most frees are of blocks never recorded: the filter says so
         * before anything else (the caller owns the block, so no other
         * thread can be recording this address meanwhile). */
        if (__builtin_expect(!atomic_load_explicit(&g_filter[filter_of_addr((uintptr_t)ptr)],
                                                   memory_order_relaxed),
                             1) ||
            tl.in_hook)
            return;
        tl.in_hook = 1;
        local_on_free(dom, ptr);
        local_hook_leave();
        return;
    }
    if (o->active() && o->hook_enter()) {
        o->on_free(dom, ptr);
        o->hook_leave();
    }
}
/* GC counters are fed into the copy of gcstats linked with the caller (the
 * extension's gc.callbacks): when the marks run in the preload library's
 * tracker, the GC figures are taken here, on the caller's side. */
void cp_heap_mark_enter(cp_heap_mark *m, uint32_t site) {
    const cp_heap_ops *o = ops();
    o->mark_enter(m, site);
    if (o != &local_ops)
        m->gc_enter = gc_total();
}
void cp_heap_mark_exit(cp_heap_mark *m, cp_heap_span *out) {
    const cp_heap_ops *o = ops();
    o->mark_exit(m, out);
    if (o != &local_ops) {
        uint64_t gc = gc_total();
        out->gc_collections = gc >= m->gc_enter ? gc - m->gc_enter : 0;
    }
}
void cp_heap_watch_rss(uint64_t rss) { ops()->watch_rss(rss); }
void cp_heap_get_totals(cp_heap_totals *out) {
    const cp_heap_ops *o = ops();
    o->get_totals(out);
    /* the preload library is in the process: its tracker is the tracker
     * (this copy forwards to it, or this copy is the preload's own) */
    out->native = o != &local_ops || dlsym(RTLD_DEFAULT, "codeprof_heap_ops_v1") != NULL;
}
void cp_heap_foreach_live(cp_heap_group_fn fn, void *arg) { ops()->foreach_live(fn, arg); }
uint32_t cp_heap_snapshot_count(void) { return ops()->snapshot_count(); }
int cp_heap_snapshot_get(uint32_t i, cp_heap_snapshot_info *info, cp_heap_group_fn fn,
                         void *arg) {
    return ops()->snapshot_get(i, info, fn, arg);
}
