/* gpu_sync.c -- host synchronization points blamed on the Python line
 * (gpu_sync.h).
 *
 * Aggregation: one row per (function site, line, kind) under the
 * recorder's own mutex, found through an open-addressing index; at most
 * CP_GPU_MAX_SYNC_SITES rows, the last of which is the overflow row (site
 * 0, line 0, CP_GPU_SYNC_OTHER) into which every record that finds no room
 * is folded, counted in syncs_dropped.  Totals stay exact.
 *
 * CUPTI (when it loaded): one callback subscriber (CUPTI allows only one
 * per process) on the driver-API and runtime-API domains.  The callback
 * classifies each callback id once, by its function name
 * (cp_gpu_sync_classify; cached per domain and id), and turns off the
 * callback of every id that is not a synchronization
 * (cuptiEnableCallback(0, ...)), so after the first sight of each API
 * call only the syncs still cost a callback.  At ENTER it keeps the tick
 * in the calling thread's slot (thread-local: depth, kind, start); at EXIT
 * of the outermost sync (a runtime call runs driver syncs inside: only the
 * outermost counts, with its kind) it computes the blocked time, asks the
 * where-callback (src/python/gpuwhere.c: the thread's innermost user
 * Python frame, read without the GIL) for (site, line) and records.  A
 * thread slot carries the subscription's epoch, so a slot left mid-call by
 * a stop is forgotten at the next subscription.  Stop unsubscribes and
 * waits for callbacks in flight.
 *
 * Without CUPTI, or when cuptiSubscribe fails (another subscriber: Nsight,
 * the PyTorch profiler...), the source is the fallback: the facade times
 * torch's synchronizing calls and reports them through
 * codeprof_gpu_sync_record; the reason goes to m->gpu.cupti.
 *
 * Fork child: no CUPTI call; the subscription and rows are abandoned.
 */
#include "gpu/gpu_sync.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "gpu/gpu_lib.h"
#include "model/build.h"
#include "model/model.h"

/* ---- the where-callback and the clock ---- */

static _Atomic(cp_gpu_where_fn) where_g;
static _Atomic(uint64_t (*)(void)) clock_g;

void cp_gpu_sync_set_where_fn(cp_gpu_where_fn fn) {
    atomic_store(&where_g, fn);
}

int cp_gpu_sync_where(uint32_t *site, uint32_t *line) {
    uint32_t s = 0, l = 0;
    cp_gpu_where_fn fn = atomic_load(&where_g);
    int rc = fn ? fn(&s, &l) : -1;
    if (rc != 0)
        s = l = 0;
    if (site)
        *site = s;
    if (line)
        *line = l;
    return rc == 0 ? 0 : -1;
}

void cp_gpu_sync_set_clock_for_tests(uint64_t (*now_ns)(void)) {
    atomic_store(&clock_g, now_ns);
}

static inline uint64_t now_ns(void) {
    uint64_t (*f)(void) = atomic_load_explicit(&clock_g, memory_order_relaxed);
    return f ? f() : cp_clock_mono_ns();
}

/* ---- classification ---- */

static int starts(const char *s, const char *p) {
    return strncmp(s, p, strlen(p)) == 0;
}

int cp_gpu_sync_classify(int domain, const char *fn) {
    if (!fn)
        return -1;
    int async = strstr(fn, "Async") != NULL;
    if (domain == CP_CUPTI_DOMAIN_DRIVER_API) {
        if (starts(fn, "cuCtxSynchronize"))
            return CP_GPU_SYNC_DEVICE;
        if (starts(fn, "cuStreamSynchronize"))
            return CP_GPU_SYNC_STREAM;
        if (starts(fn, "cuEventSynchronize"))
            return CP_GPU_SYNC_EVENT;
        if (!async &&
            (starts(fn, "cuMemcpyDtoH") || starts(fn, "cuMemcpyAtoH") || !strcmp(fn, "cuMemcpy") ||
             starts(fn, "cuMemcpy_") || starts(fn, "cuMemcpy2D") || starts(fn, "cuMemcpy3D") ||
             starts(fn, "cuMemcpyPeer")))
            return CP_GPU_SYNC_MEMCPY;
        if (starts(fn, "cuMemFree")) /* waits for the device to finish */
            return CP_GPU_SYNC_OTHER;
        return -1;
    }
    if (domain == CP_CUPTI_DOMAIN_RUNTIME_API) {
        if (starts(fn, "cudaDeviceSynchronize") || starts(fn, "cudaThreadSynchronize"))
            return CP_GPU_SYNC_DEVICE;
        if (starts(fn, "cudaStreamSynchronize"))
            return CP_GPU_SYNC_STREAM;
        if (starts(fn, "cudaEventSynchronize"))
            return CP_GPU_SYNC_EVENT;
        if (!async &&
            (!strcmp(fn, "cudaMemcpy") || starts(fn, "cudaMemcpy_") || starts(fn, "cudaMemcpy2D") ||
             starts(fn, "cudaMemcpy3D") || starts(fn, "cudaMemcpyFromSymbol") ||
             starts(fn, "cudaMemcpyPeer") || starts(fn, "cudaMemcpyFromArray")))
            return CP_GPU_SYNC_MEMCPY;
        if (!strcmp(fn, "cudaFree") || starts(fn, "cudaFree_") || starts(fn, "cudaFreeHost"))
            return CP_GPU_SYNC_OTHER;
        return -1;
    }
    return -1;
}

/* Per domain and callback id: 0 not seen, 1 not a sync, 2 + kind. */
#define CB_CACHE 4096
static _Atomic unsigned char cb_class[3][CB_CACHE];

static int class_of(int domain, uint32_t cbid, const char *fn) {
    int d = domain == CP_CUPTI_DOMAIN_DRIVER_API    ? 1
            : domain == CP_CUPTI_DOMAIN_RUNTIME_API ? 2
                                                    : 0;
    if (d && cbid < CB_CACHE) {
        unsigned char c = atomic_load_explicit(&cb_class[d][cbid], memory_order_relaxed);
        if (c)
            return c == 1 ? -1 : c - 2;
    }
    int k = d ? cp_gpu_sync_classify(domain, fn) : -1;
    if (d && cbid < CB_CACHE)
        atomic_store_explicit(&cb_class[d][cbid], (unsigned char)(k < 0 ? 1 : k + 2),
                              memory_order_relaxed);
    return k;
}

/* ---- the recorder ---- */

#define IDX_SIZE 8192 /* power of two, > 2 x CP_GPU_MAX_SYNC_SITES */

struct cp_gpu_sync {
    struct codeprof_session *s;
    const cp_cupti_api *own; /* cp_gpu_sync_use_api */
    pthread_mutex_t mu;
    /* ---- mu ---- */
    cp_mgpu_sync *rows;
    uint32_t nrows, cap;
    uint32_t *idx;    /* row + 1; 0 empty */
    uint64_t dropped; /* records folded into the overflow row */
    uint64_t records;
    int source;       /* CP_GPU_SYNC_SRC_* */
    int cupti_failed; /* CUPTI loaded but could not be used */
    int child;
    char reason[256];
    /* ---- the subscription (mu for changes; the callback reads) ---- */
    const cp_cupti_api *api;
    cp_cupti_subscriber sub;
    int subscribed; /* mu */
    _Atomic uint64_t disabled;
    _Atomic uint64_t epoch;
};

/* One subscriber per process (CUPTI's rule, and ours). */
static pthread_mutex_t owner_mu = PTHREAD_MUTEX_INITIALIZER;
static cp_gpu_sync *owner_g;
static _Atomic uint64_t epoch_g;
/* The recorder callbacks may use (NULL: none), and the callbacks running.
 * A callback counts itself in before it looks at anything, and uses its
 * recorder only when that is still `active_g`; stop clears `active_g`,
 * unsubscribes, then waits for `inflight_g` to drain: a callback that
 * CUPTI delivers late never touches a recorder that is being freed. */
static _Atomic(cp_gpu_sync *) active_g;
static _Atomic int inflight_g;

typedef struct sync_slot {
    uint64_t epoch;
    uint32_t depth, kind;
    uint64_t t0;
} sync_slot;
static _Thread_local sync_slot slot_g;

cp_gpu_sync *cp_gpu_sync_new(struct codeprof_session *s) {
    cp_gpu_sync *gs = calloc(1, sizeof *gs);
    if (!gs)
        return NULL;
    if (pthread_mutex_init(&gs->mu, NULL) != 0) {
        free(gs);
        return NULL;
    }
    gs->s = s;
    return gs;
}

void cp_gpu_sync_use_api(cp_gpu_sync *gs, const struct cp_cupti_api *api) {
    if (!gs)
        return;
    pthread_mutex_lock(&gs->mu);
    gs->own = api;
    pthread_mutex_unlock(&gs->mu);
}

static inline uint32_t hash3(uint32_t site, uint32_t line, uint32_t kind) {
    uint64_t h =
        ((uint64_t)site * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)line * 0xC2B2AE3D27D4EB4Full) ^ kind;
    h ^= h >> 29;
    return (uint32_t)h & (IDX_SIZE - 1);
}

/* The row of (site, line, kind), added when fewer than `limit` rows exist;
 * NULL when not (no room, or OOM).  mu held. */
static cp_mgpu_sync *row_of(cp_gpu_sync *gs, uint32_t site, uint32_t line, uint32_t kind,
                            uint32_t limit) {
    if (!gs->idx && !(gs->idx = calloc(IDX_SIZE, sizeof *gs->idx)))
        return NULL;
    uint32_t h = hash3(site, line, kind);
    for (uint32_t probe = 0; probe < IDX_SIZE; probe++, h = (h + 1) & (IDX_SIZE - 1)) {
        uint32_t r = gs->idx[h];
        if (!r)
            break;
        cp_mgpu_sync *row = &gs->rows[r - 1];
        if (row->site == site && row->line == line && row->kind == kind)
            return row;
    }
    if (gs->nrows >= limit)
        return NULL;
    if (gs->nrows == gs->cap) {
        uint32_t nc = gs->cap ? 2 * gs->cap : 32;
        if (nc > CP_GPU_MAX_SYNC_SITES)
            nc = CP_GPU_MAX_SYNC_SITES;
        cp_mgpu_sync *nr = realloc(gs->rows, (size_t)nc * sizeof *nr);
        if (!nr)
            return NULL;
        gs->rows = nr;
        gs->cap = nc;
    }
    cp_mgpu_sync *row = &gs->rows[gs->nrows++];
    memset(row, 0, sizeof *row);
    row->site = site;
    row->line = line;
    row->kind = kind;
    gs->idx[h] = gs->nrows;
    return row;
}

void cp_gpu_sync_record(cp_gpu_sync *gs, uint32_t kind, uint32_t site, uint32_t line,
                        uint64_t blocked_ns) {
    if (!gs || kind >= CP_GPU_SYNC_KINDS_)
        return;
    pthread_mutex_lock(&gs->mu);
    cp_mgpu_sync *row = row_of(gs, site, line, kind, CP_GPU_MAX_SYNC_SITES - 1);
    if (!row) {
        /* no room: the overflow row, which may take the reserved last slot */
        row = row_of(gs, 0, 0, CP_GPU_SYNC_OTHER, CP_GPU_MAX_SYNC_SITES);
        gs->dropped++;
    }
    if (row) {
        row->count++;
        row->blocked_ns += blocked_ns;
        if (blocked_ns > row->max_ns)
            row->max_ns = blocked_ns;
    }
    gs->records++;
    pthread_mutex_unlock(&gs->mu);
}

/* ---- CUPTI ---- */

static void on_api(void *ud, int domain, uint32_t cbid, const void *cbdata) {
    atomic_fetch_add_explicit(&inflight_g, 1, memory_order_seq_cst);
    cp_gpu_sync *gs = atomic_load_explicit(&active_g, memory_order_seq_cst);
    if (!gs || gs != ud || !cbdata)
        goto out;
    const cp_cupti_cbdata *cd = cbdata;
    int kind = class_of(domain, cbid, cd->functionName);
    if (kind < 0) {
        /* not a sync: never called again for this id */
        gs->api->cuptiEnableCallback(0, gs->sub, domain, cbid);
        atomic_fetch_add_explicit(&gs->disabled, 1, memory_order_relaxed);
        goto out;
    }
    sync_slot *sl = &slot_g;
    uint64_t ep = atomic_load_explicit(&gs->epoch, memory_order_relaxed);
    if (sl->epoch != ep) {
        sl->epoch = ep;
        sl->depth = 0;
    }
    if (cd->callbackSite == CP_CUPTI_API_ENTER) {
        if (sl->depth++ == 0) {
            sl->kind = (uint32_t)kind;
            sl->t0 = now_ns();
        }
    } else if (sl->depth > 0 && --sl->depth == 0) {
        uint64_t t1 = now_ns();
        uint32_t site, line;
        cp_gpu_sync_where(&site, &line);
        cp_gpu_sync_record(gs, sl->kind, site, line, t1 > sl->t0 ? t1 - sl->t0 : 0);
    }
out:
    atomic_fetch_sub_explicit(&inflight_g, 1, memory_order_seq_cst);
}

static const char *cupti_err(const cp_cupti_api *api, cp_cupti_result r) {
    const char *s = NULL;
    if (api->cuptiGetResultString && api->cuptiGetResultString(r, &s) == 0 && s)
        return s;
    return "unknown CUPTI error";
}

int cp_gpu_sync_start(cp_gpu_sync *gs) {
    if (!gs)
        return CP_GPU_SYNC_SRC_NONE;
    pthread_mutex_lock(&gs->mu);
    if (gs->subscribed) {
        pthread_mutex_unlock(&gs->mu);
        return CP_GPU_SYNC_SRC_CUPTI;
    }
    gs->source = CP_GPU_SYNC_SRC_FALLBACK;
    gs->cupti_failed = 0;
    gs->reason[0] = 0;
    const cp_cupti_api *api = gs->own;
    if (gs->child) {
        snprintf(gs->reason, sizeof gs->reason, "forked child: no CUPTI calls");
        goto done;
    }
    if (!api) {
        const cp_gpu_libs *l = cp_gpu_lib_get();
        if (l->cupti.status != CP_GPU_LIB_OK) {
            snprintf(gs->reason, sizeof gs->reason, "CUPTI not loaded: %.200s",
                     l->cupti.reason[0] ? l->cupti.reason : "not tried");
            goto done;
        }
        api = &l->cupti_api;
    }
    if (!api->cuptiSubscribe || !api->cuptiUnsubscribe || !api->cuptiEnableDomain ||
        !api->cuptiEnableCallback) {
        snprintf(gs->reason, sizeof gs->reason,
                 "CUPTI lacks cuptiSubscribe/cuptiEnableDomain/cuptiEnableCallback");
        gs->cupti_failed = 1;
        goto done;
    }
    pthread_mutex_lock(&owner_mu);
    if (owner_g && owner_g != gs) {
        pthread_mutex_unlock(&owner_mu);
        snprintf(gs->reason, sizeof gs->reason,
                 "another codeprof session holds the process's CUPTI subscription");
        goto done;
    }
    gs->api = api;
    atomic_store(&gs->epoch, atomic_fetch_add(&epoch_g, 1) + 1);
    atomic_store(&active_g, gs); /* before subscribing: callbacks may come at once */
    cp_cupti_result r = api->cuptiSubscribe(&gs->sub, on_api, gs);
    if (r != 0) {
        atomic_store(&active_g, NULL);
        pthread_mutex_unlock(&owner_mu);
        snprintf(gs->reason, sizeof gs->reason,
                 "cuptiSubscribe failed: %.80s (CUPTI error %d); CUPTI allows one subscriber "
                 "per process: another tool (Nsight, the PyTorch profiler) may hold it",
                 cupti_err(api, r), r);
        gs->cupti_failed = 1;
        goto done;
    }
    cp_cupti_result r1 = api->cuptiEnableDomain(1, gs->sub, CP_CUPTI_DOMAIN_DRIVER_API);
    cp_cupti_result r2 = api->cuptiEnableDomain(1, gs->sub, CP_CUPTI_DOMAIN_RUNTIME_API);
    if (r1 != 0 || r2 != 0) {
        atomic_store(&active_g, NULL);
        api->cuptiUnsubscribe(gs->sub);
        pthread_mutex_unlock(&owner_mu);
        snprintf(gs->reason, sizeof gs->reason, "cuptiEnableDomain failed: %.80s (CUPTI error %d)",
                 cupti_err(api, r1 ? r1 : r2), r1 ? r1 : r2);
        gs->cupti_failed = 1;
        goto done;
    }
    owner_g = gs;
    pthread_mutex_unlock(&owner_mu);
    gs->subscribed = 1;
    gs->source = CP_GPU_SYNC_SRC_CUPTI;
done:;
    int src = gs->source;
    pthread_mutex_unlock(&gs->mu);
    return src;
}

void cp_gpu_sync_stop(cp_gpu_sync *gs) {
    if (!gs)
        return;
    pthread_mutex_lock(&gs->mu);
    if (!gs->subscribed) {
        pthread_mutex_unlock(&gs->mu);
        return;
    }
    gs->subscribed = 0;
    const cp_cupti_api *api = gs->api;
    cp_cupti_subscriber sub = gs->sub;
    pthread_mutex_unlock(&gs->mu);
    atomic_store(&active_g, NULL);
    api->cuptiUnsubscribe(sub);
    /* callbacks already running finish (they record under mu: not held);
     * bounded, in case CUPTI never returns from one */
    for (int i = 0; i < 1000000 && atomic_load(&inflight_g) > 0; i++)
        sched_yield();
    pthread_mutex_lock(&owner_mu);
    if (owner_g == gs)
        owner_g = NULL;
    pthread_mutex_unlock(&owner_mu);
}

void cp_gpu_sync_reset(cp_gpu_sync *gs) {
    if (!gs)
        return;
    pthread_mutex_lock(&gs->mu);
    gs->nrows = 0;
    if (gs->idx)
        memset(gs->idx, 0, IDX_SIZE * sizeof *gs->idx);
    gs->dropped = 0;
    gs->records = 0;
    pthread_mutex_unlock(&gs->mu);
}

void cp_gpu_sync_free(cp_gpu_sync *gs) {
    if (!gs)
        return;
    cp_gpu_sync_stop(gs);
    free(gs->rows);
    free(gs->idx);
    pthread_mutex_destroy(&gs->mu);
    free(gs);
}

void cp_gpu_sync_atfork_child(cp_gpu_sync *gs) {
    if (!gs)
        return;
    /* only the forking thread exists; mu may have been held mid-change:
     * the rows are abandoned (the parent's pages), no CUPTI call is made */
    pthread_mutex_init(&gs->mu, NULL);
    pthread_mutex_init(&owner_mu, NULL);
    if (owner_g == gs)
        owner_g = NULL;
    atomic_store(&active_g, NULL);
    atomic_store(&inflight_g, 0);
    gs->subscribed = 0;
    gs->child = 1;
    gs->rows = NULL;
    gs->idx = NULL;
    gs->nrows = gs->cap = 0;
    gs->dropped = gs->records = 0;
    gs->source = CP_GPU_SYNC_SRC_NONE;
    gs->cupti_failed = 0;
    snprintf(gs->reason, sizeof gs->reason, "forked child: no CUPTI calls");
}

uint64_t cp_gpu_sync_fingerprint(cp_gpu_sync *gs) {
    if (!gs)
        return 0;
    pthread_mutex_lock(&gs->mu);
    uint64_t r = gs->records;
    pthread_mutex_unlock(&gs->mu);
    return r;
}

const char *cp_gpu_sync_reason(cp_gpu_sync *gs) {
    return gs ? gs->reason : "";
}

uint64_t cp_gpu_sync_disabled_cbids(cp_gpu_sync *gs) {
    return gs ? atomic_load_explicit(&gs->disabled, memory_order_relaxed) : 0;
}

static int by_blocked_desc(const void *a, const void *b) {
    const cp_mgpu_sync *x = a, *y = b;
    if (x->blocked_ns != y->blocked_ns)
        return x->blocked_ns < y->blocked_ns ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    if (x->site != y->site)
        return x->site < y->site ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return (x->kind > y->kind) - (x->kind < y->kind);
}

int cp_gpu_sync_fill_model(cp_gpu_sync *gs, struct cp_model *m) {
    if (!gs || !m)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&gs->mu);
    cp_mgpu *g = &m->gpu;
    g->sync_source = gs->source;
    if (gs->cupti_failed &&
        (g->cupti.status == CP_GPU_LIB_NOT_TRIED || g->cupti.status == CP_GPU_LIB_OK)) {
        g->cupti.status = CP_GPU_LIB_INIT_FAILED;
        snprintf(g->cupti.reason, sizeof g->cupti.reason, "%s", gs->reason);
    } else if (gs->child && g->cupti.status == CP_GPU_LIB_NOT_TRIED) {
        g->cupti.status = CP_GPU_LIB_DISABLED;
        snprintf(g->cupti.reason, sizeof g->cupti.reason, "%s", gs->reason);
    }
    if (gs->nrows) {
        cp_mgpu_sync *nv = realloc(g->syncs, ((size_t)g->nsyncs + gs->nrows) * sizeof *nv);
        if (!nv) {
            rc = -1;
        } else {
            g->syncs = nv;
            uint32_t k = g->nsyncs;
            for (uint32_t i = 0; i < gs->nrows; i++) {
                cp_mgpu_sync r = gs->rows[i];
                r.site = r.site ? cp_model_map_site(m, r.site) : 0;
                r.pad_ = 0;
                nv[k++] = r;
            }
            g->nsyncs = k;
            qsort(g->syncs, g->nsyncs, sizeof *g->syncs, by_blocked_desc);
        }
    }
    g->syncs_dropped += gs->dropped;
    pthread_mutex_unlock(&gs->mu);
    return rc;
}
