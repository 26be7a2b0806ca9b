/* gpu_ops.c -- the GPU operation recorder (gpu_ops.h). */
#include "gpu/gpu_ops.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/bigmem.h"
#include "core/u32map.h"
#include "gpu/gpu_lib.h"
#include "model/build.h"
#include "model/model.h"
#include "model/model_gpu.h"

#define CP_GPU_MAX_CTX 8     /* contexts timed; ops in more are host only */
#define REC_CHUNK      1024u /* op records are allocated this many at a time */
#define SITE_SET       8     /* distinct streams/threads counted per site  */

/* op->flags: low byte the host-only cause, the rest the recorder's
 * generation (a fork makes every op begun before it host only). */
#define OPF_CAUSE(f) ((f)&0xffu)
#define OPF_GEN(f)   ((f) >> 8)

enum { REC_FREE = 0, REC_RUNNING = 1, REC_PENDING = 2 };

typedef struct op_mem {
    int src; /* CP_GPU_MEM_* */
    uint64_t alloc, reserved, max_alloc;
} op_mem;

typedef struct op_rec {
    cp_cu_event ev0, ev1;
    uint64_t stream;
    uint64_t host_start, host_end;
    uint64_t tid;
    uint32_t site;
    uint32_t ctxi;
    uint32_t next_free; /* index + 1 in the free list; 0 = end */
    int state;
    int force_fail; /* still not ready after a synchronize      */
    uint64_t seq;   /* which op holds the record (resolve's check) */
    op_mem mb, ma;
} op_rec;

typedef struct ctx_ent {
    cp_cu_context ctx;
    int32_t device;
    uint64_t mem_total;
    cp_cu_event *pool; /* free events (created in this context) */
    uint32_t npool, cappool;
    uint64_t created;
    cp_cu_event ref; /* reference event: its device time ~ ref_host_ns */
    uint64_t ref_host_ns;
    int ref_state; /* 0 none, 1 recording (owner thread), 2 recorded */
} ctx_ent;

typedef struct site_agg {
    cp_mgpu_op m; /* m.site: the global site id */
    uint64_t streams[SITE_SET];
    uint64_t tids[SITE_SET];
} site_agg;

struct cp_gpu_ops {
    pthread_mutex_t mu;
    uint32_t max_ops;
    uint64_t slow_ns;
    int mem_driver;
    atomic_int enabled;
    int forked;
    uint32_t gen;
    pid_t pid;
    /* op records (chunks never move) */
    op_rec **chunks;
    uint32_t nchunks, maxchunks, cap_recs;
    uint32_t free_head; /* index + 1 */
    uint32_t *pending;  /* ring of record indices, end order */
    uint32_t pend_head, npending, cap_pending;
    ctx_ent ctxs[CP_GPU_MAX_CTX];
    uint32_t nctx;
    /* results */
    site_agg *aggs;
    uint32_t naggs, cap_aggs;
    cp_u32map agg_index;
    cp_mgpu_span *spans; /* first half, then a ring of the most recent */
    uint32_t nspans, ring_pos;
    uint64_t spans_seen;
    cp_mgpu_span slow[CP_GPU_MAX_SLOW];
    uint32_t nslow;
    uint64_t unresolved, host_only, resolved, changes;
    uint64_t seq;   /* ops given a record so far */
    int cause;      /* first host-only cause */
    int ctx_seen;   /* an op found a context */
    uint64_t syncs; /* cuEventSynchronize calls made by resolve */
};

static atomic_int exiting_g;

void cp_gpu_ops_set_exiting(void) {
    atomic_store(&exiting_g, 1);
}
static void register_exit(void) {
    atexit(cp_gpu_ops_set_exiting);
}

static uint64_t my_tid(void) {
    static _Thread_local uint64_t tid;
    if (!tid)
        tid = (uint64_t)syscall(SYS_gettid);
    return tid;
}

static const cp_cuda_api *cu(void) {
    return &cp_gpu_lib_get()->cu;
}

cp_gpu_ops *cp_gpu_ops_new(uint32_t max_ops, uint64_t slow_ns, int mem_driver) {
    cp_gpu_ops *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    pthread_mutex_init(&o->mu, NULL);
    o->max_ops = max_ops;
    o->slow_ns = slow_ns;
    o->mem_driver = mem_driver;
    o->pid = getpid();
    o->gen = 1;
    o->cap_pending = max_ops < 16 ? 16 : max_ops;
    o->maxchunks = (o->cap_pending + REC_CHUNK - 1) / REC_CHUNK;
    o->chunks = calloc(o->maxchunks, sizeof *o->chunks);
    /* mmap-backed (core/bigmem.h): untouched pages cost nothing, and a
     * free gives them back without raising glibc's mmap threshold (which
     * would keep later allocations of every session in the heap). */
    o->pending = cp_big_alloc((size_t)o->cap_pending * sizeof *o->pending);
    o->spans = max_ops ? cp_big_alloc((size_t)max_ops * sizeof *o->spans) : NULL;
    if (!o->chunks || !o->pending || (max_ops && !o->spans)) {
        free(o->chunks);
        cp_big_free(o->pending);
        cp_big_free(o->spans);
        free(o);
        return NULL;
    }
    return o;
}

void cp_gpu_ops_enable(cp_gpu_ops *o, int on) {
    if (!o)
        return;
    if (on) {
        /* After exit() starts, the driver may be torn down by its own
         * handlers: no event is destroyed from then on. */
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, register_exit);
    }
    atomic_store(&o->enabled, on && !o->forked && cp_gpu_lib_get()->driver.status == CP_GPU_LIB_OK);
}

static op_rec *rec_at(cp_gpu_ops *o, uint32_t idx) {
    return &o->chunks[idx / REC_CHUNK][idx % REC_CHUNK];
}

/* A free record index, or UINT32_MAX (mu held). */
static uint32_t rec_alloc(cp_gpu_ops *o) {
    if (!o->free_head) {
        if (o->cap_recs >= o->cap_pending || o->nchunks == o->maxchunks)
            return UINT32_MAX;
        op_rec *c = calloc(REC_CHUNK, sizeof *c);
        if (!c)
            return UINT32_MAX;
        uint32_t base = o->nchunks * REC_CHUNK;
        o->chunks[o->nchunks++] = c;
        uint32_t n = REC_CHUNK;
        if (base + n > o->cap_pending)
            n = o->cap_pending - base;
        for (uint32_t i = n; i-- > 0;) {
            c[i].next_free = o->free_head;
            o->free_head = base + i + 1;
        }
        o->cap_recs = base + n;
    }
    uint32_t idx = o->free_head - 1;
    op_rec *r = rec_at(o, idx);
    o->free_head = r->next_free;
    r->next_free = 0;
    return idx;
}

static void rec_release(cp_gpu_ops *o, uint32_t idx) {
    op_rec *r = rec_at(o, idx);
    r->state = REC_FREE;
    r->ev0 = r->ev1 = NULL;
    r->next_free = o->free_head;
    o->free_head = idx + 1;
}

/* Context table entry of ctx, added on first use (mu held); UINT32_MAX
 * when the table is full.  Called on the thread whose current context is
 * ctx. */
static uint32_t ctx_find(cp_gpu_ops *o, cp_cu_context ctx) {
    for (uint32_t i = 0; i < o->nctx; i++)
        if (o->ctxs[i].ctx == ctx)
            return i;
    if (o->nctx == CP_GPU_MAX_CTX)
        return UINT32_MAX;
    ctx_ent *c = &o->ctxs[o->nctx];
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->device = -1;
    cp_cu_device dev;
    if (cu()->cuCtxGetDevice(&dev) == CP_CUDA_SUCCESS) {
        c->device = dev;
        size_t total = 0;
        if (cu()->cuDeviceTotalMem(&total, dev) == CP_CUDA_SUCCESS)
            c->mem_total = total;
    }
    return o->nctx++;
}

/* An event of context c (mu held; the context is current). */
static cp_cu_event ev_take(cp_gpu_ops *o, ctx_ent *c) {
    if (c->npool)
        return c->pool[--c->npool];
    /* Each op holds two events and at most cap_pending ops exist, so the
     * events of a context never exceed 2 * cap_pending (+ the reference). */
    if (c->created >= 2ull * o->cap_pending + 1)
        return NULL;
    cp_cu_event ev = NULL;
    if (cu()->cuEventCreate(&ev, CP_CU_EVENT_DEFAULT) != CP_CUDA_SUCCESS)
        return NULL;
    c->created++;
    return ev;
}

static void ev_give(ctx_ent *c, cp_cu_event ev) {
    if (!ev)
        return;
    if (c->npool == c->cappool) {
        uint32_t nc = c->cappool ? c->cappool * 2 : 64;
        cp_cu_event *p = realloc(c->pool, nc * sizeof *p);
        if (!p)
            return; /* leaked to the driver until it tears the context down */
        c->pool = p;
        c->cappool = nc;
    }
    c->pool[c->npool++] = ev;
}

static int ptr_in(uint64_t *set, uint64_t v) {
    for (int i = 0; i < SITE_SET; i++) {
        if (set[i] == v)
            return 1;
        if (!set[i]) {
            set[i] = v;
            return 0;
        }
    }
    return 1; /* saturated: counted no further */
}

static site_agg *agg_for(cp_gpu_ops *o, uint32_t site) {
    uint32_t i;
    if (site && cp_u32map_get(&o->agg_index, site, &i))
        return &o->aggs[i];
    if (!site) {
        for (i = 0; i < o->naggs; i++)
            if (o->aggs[i].m.site == 0)
                return &o->aggs[i];
    }
    if (o->naggs == o->cap_aggs) {
        uint32_t nc = o->cap_aggs ? o->cap_aggs * 2 : 16;
        site_agg *a = realloc(o->aggs, nc * sizeof *a);
        if (!a)
            return NULL;
        o->aggs = a;
        o->cap_aggs = nc;
    }
    if (site && cp_u32map_put(&o->agg_index, site, o->naggs) != 0)
        return NULL;
    site_agg *a = &o->aggs[o->naggs++];
    memset(a, 0, sizeof *a);
    a->m.site = site;
    return a;
}

static void mem_fold(cp_mgpu_op *m, const op_mem *b, const op_mem *a, int64_t *delta) {
    *delta = 0;
    if (b->src == CP_GPU_MEM_NONE || a->src != b->src)
        return;
    m->mem_source = b->src;
    m->mem_count++;
    int64_t d = (int64_t)a->alloc - (int64_t)b->alloc;
    *delta = d;
    m->mem_delta_sum += d;
    if (m->mem_count == 1 || d > m->mem_delta_max)
        m->mem_delta_max = d;
    uint64_t peak;
    if (b->src == CP_GPU_MEM_TORCH && a->max_alloc > b->max_alloc)
        peak = a->max_alloc; /* the high-water mark rose during the op */
    else
        peak = a->alloc > b->alloc ? a->alloc : b->alloc;
    if (peak > m->mem_peak)
        m->mem_peak = peak;
    m->reserved_delta_sum += (int64_t)a->reserved - (int64_t)b->reserved;
    uint64_t rp = a->reserved > b->reserved ? a->reserved : b->reserved;
    if (rp > m->reserved_peak)
        m->reserved_peak = rp;
}

static void span_keep(cp_gpu_ops *o, const cp_mgpu_span *sp) {
    o->spans_seen++;
    if (o->max_ops) {
        uint32_t first = o->max_ops / 2;
        if (o->nspans < o->max_ops) {
            o->spans[o->nspans++] = *sp;
        } else {
            uint32_t ring = o->max_ops - first;
            o->spans[first + o->ring_pos] = *sp;
            o->ring_pos = (o->ring_pos + 1) % ring;
        }
    }
    uint64_t t = sp->timed ? sp->device_ns : sp->host_end_ns - sp->host_start_ns;
    if (t <= o->slow_ns)
        return; /* only ops above the threshold are listed as slow */
    if (o->nslow < CP_GPU_MAX_SLOW) {
        o->slow[o->nslow++] = *sp;
        return;
    }
    uint32_t lo = 0;
    uint64_t lov = UINT64_MAX;
    for (uint32_t i = 0; i < o->nslow; i++) {
        const cp_mgpu_span *x = &o->slow[i];
        uint64_t v = x->timed ? x->device_ns : x->host_end_ns - x->host_start_ns;
        if (v < lov) {
            lov = v;
            lo = i;
        }
    }
    if (t > lov)
        o->slow[lo] = *sp;
}

/* One completed op into the aggregates, spans and slow list (mu held). */
static void fold_op(cp_gpu_ops *o, uint32_t site, uint64_t stream, uint64_t tid, uint64_t h0,
                    uint64_t h1, int timed, uint64_t dev_ns, uint64_t dev_start, int32_t device,
                    const op_mem *mb, const op_mem *ma) {
    o->changes++;
    site_agg *a = agg_for(o, site);
    int64_t delta = 0;
    uint64_t host = h1 > h0 ? h1 - h0 : 0;
    if (a) {
        cp_mgpu_op *m = &a->m;
        m->calls++;
        m->host_ns += host;
        if (host > m->host_max_ns)
            m->host_max_ns = host;
        if (timed) {
            if (!m->timed || dev_ns < m->device_min_ns)
                m->device_min_ns = dev_ns;
            if (dev_ns > m->device_max_ns)
                m->device_max_ns = dev_ns;
            m->timed++;
            m->device_ns += dev_ns;
        }
        if ((timed ? dev_ns : host) > o->slow_ns)
            m->slow++;
        if (!ptr_in(a->streams, stream + 1))
            m->streams++;
        if (!ptr_in(a->tids, tid))
            m->threads++;
        mem_fold(m, mb, ma, &delta);
    }
    cp_mgpu_span sp = {.host_start_ns = h0,
                       .host_end_ns = h1,
                       .device_start_ns = dev_start,
                       .device_ns = timed ? dev_ns : 0,
                       .stream = stream,
                       .mem_delta = delta,
                       .os_tid = tid,
                       .site = site,
                       .device = device,
                       .pid = (int32_t)getpid(),
                       .timed = (uint16_t)(timed != 0)};
    span_keep(o, &sp);
}

static void host_only(cp_gpu_ops *o, int cause) {
    o->host_only++;
    if (!o->cause)
        o->cause = cause;
}

static void read_mem(cp_gpu_ops *o, const codeprof_gpu_mem *mem, int ctx_ok, op_mem *out) {
    memset(out, 0, sizeof *out);
    if (mem && mem->known) {
        out->src = CP_GPU_MEM_TORCH;
        out->alloc = mem->allocated;
        out->reserved = mem->reserved;
        out->max_alloc = mem->max_allocated;
    } else if (o->mem_driver && ctx_ok) {
        size_t fr = 0, tot = 0;
        if (cu()->cuMemGetInfo(&fr, &tot) == CP_CUDA_SUCCESS && tot >= fr) {
            out->src = CP_GPU_MEM_DRIVER;
            out->alloc = tot - fr;
        }
    }
}

/* ---- resolution ---- */

/* Resolves record idx whose end event is complete (or failed: r != 0)
 * (mu held). */
static void resolve_rec(cp_gpu_ops *o, uint32_t idx, cp_cu_result r) {
    op_rec *rec = rec_at(o, idx);
    ctx_ent *c = &o->ctxs[rec->ctxi];
    float ms = 0;
    int timed = 0;
    uint64_t dev_ns = 0, dev_start = 0;
    if (r == CP_CUDA_SUCCESS &&
        cu()->cuEventElapsedTime(&ms, rec->ev0, rec->ev1) == CP_CUDA_SUCCESS && ms >= 0) {
        timed = 1;
        dev_ns = (uint64_t)((double)ms * 1e6 + 0.5);
        float ref_ms = 0;
        if (c->ref_state == 2 &&
            cu()->cuEventElapsedTime(&ref_ms, c->ref, rec->ev0) == CP_CUDA_SUCCESS && ref_ms >= 0) {
            dev_start = c->ref_host_ns + (uint64_t)((double)ref_ms * 1e6 + 0.5);
            /* Work cannot start on the device before it was enqueued. */
            if (dev_start < rec->host_start)
                dev_start = rec->host_start;
        }
        o->resolved++;
    } else {
        o->unresolved++;
    }
    fold_op(o, rec->site, rec->stream, rec->tid, rec->host_start, rec->host_end, timed, dev_ns,
            dev_start, c->device, &rec->mb, &rec->ma);
    ev_give(c, rec->ev0);
    ev_give(c, rec->ev1);
    rec_release(o, idx);
}

/* Sets ctx current on this thread when it is not; returns 1 when pushed,
 * 0 when already current, -1 on failure. */
static int ctx_enter(cp_cu_context ctx) {
    cp_cu_context cur = NULL;
    if (cu()->cuCtxGetCurrent(&cur) == CP_CUDA_SUCCESS && cur == ctx)
        return 0;
    return cu()->cuCtxPushCurrent(ctx) == CP_CUDA_SUCCESS ? 1 : -1;
}
static void ctx_leave(int pushed) {
    if (pushed == 1) {
        cp_cu_context dummy;
        cu()->cuCtxPopCurrent(&dummy);
    }
}

/* Resolves the pending ops of context ci that are ready, in order,
 * querying at most `budget` of them (mu held); with fail_all, every one of
 * them as failed.  Returns how many were resolved. */
static uint32_t resolve_ready_ctx(cp_gpu_ops *o, uint32_t ci, int fail_all, uint32_t budget) {
    uint32_t kept = 0, done = 0, n = o->npending;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t idx = o->pending[(o->pend_head + k) % o->cap_pending];
        op_rec *rec = rec_at(o, idx);
        if (rec->ctxi != ci || !budget) {
            o->pending[(o->pend_head + kept++) % o->cap_pending] = idx;
            continue;
        }
        budget--;
        cp_cu_result r = (fail_all || rec->force_fail) ? CP_CUDA_ERROR_INVALID_CONTEXT
                                                       : cu()->cuEventQuery(rec->ev1);
        if (r == CP_CUDA_ERROR_NOT_READY) {
            o->pending[(o->pend_head + kept++) % o->cap_pending] = idx;
            continue;
        }
        resolve_rec(o, idx, r);
        done++;
    }
    o->npending = kept;
    return done;
}

/* budget: pending ops queried per context at most (the hot path, when the
 * table is full, looks at the oldest CP_GPU_HOT_BUDGET only). */
static uint32_t resolve_ready_all(cp_gpu_ops *o, uint32_t budget) {
    uint32_t done = 0;
    for (uint32_t ci = 0; ci < o->nctx; ci++) {
        int p = ctx_enter(o->ctxs[ci].ctx);
        done += resolve_ready_ctx(o, ci, p < 0, budget);
        ctx_leave(p);
    }
    return done;
}
#define CP_GPU_HOT_BUDGET 8u

uint32_t cp_gpu_ops_resolve(cp_gpu_ops *o, int wait) {
    if (!o)
        return 0;
    pthread_mutex_lock(&o->mu);
    if (o->forked || cp_gpu_lib_get()->driver.status != CP_GPU_LIB_OK || !o->npending) {
        uint32_t n = o->npending;
        pthread_mutex_unlock(&o->mu);
        return n;
    }
    resolve_ready_all(o, UINT32_MAX);
    if (wait && o->npending) {
        /* Synchronize on the end events still pending, outside the lock
         * (begin/end on other threads must not wait for the GPU).  The
         * events stay valid: they are only destroyed at free. */
        uint32_t n = o->npending;
        cp_cu_event *evs = malloc(n * sizeof *evs);
        uint32_t *cis = malloc(n * sizeof *cis);
        uint32_t *idxs = malloc(n * sizeof *idxs);
        uint64_t *seqs = malloc(n * sizeof *seqs);
        if (evs && cis && idxs && seqs) {
            for (uint32_t k = 0; k < n; k++) {
                idxs[k] = o->pending[(o->pend_head + k) % o->cap_pending];
                op_rec *rec = rec_at(o, idxs[k]);
                evs[k] = rec->ev1;
                cis[k] = rec->ctxi;
                seqs[k] = rec->seq;
            }
            cp_cu_context ctxs[CP_GPU_MAX_CTX];
            uint32_t nctx = o->nctx;
            for (uint32_t ci = 0; ci < nctx; ci++)
                ctxs[ci] = o->ctxs[ci].ctx;
            o->syncs += n;
            pthread_mutex_unlock(&o->mu);
            for (uint32_t ci = 0; ci < nctx; ci++) {
                int p = -2;
                for (uint32_t k = 0; k < n; k++) {
                    if (cis[k] != ci)
                        continue;
                    if (p == -2)
                        p = ctx_enter(ctxs[ci]);
                    if (p >= 0)
                        cu()->cuEventSynchronize(evs[k]);
                }
                if (p != -2)
                    ctx_leave(p);
            }
            pthread_mutex_lock(&o->mu);
            resolve_ready_all(o, UINT32_MAX);
            /* Those synchronized that still answer "not ready" failed (ops
             * that ended meanwhile are left for the next report). */
            uint32_t failed = 0;
            for (uint32_t k = 0; k < n; k++) {
                op_rec *rec = rec_at(o, idxs[k]);
                if (rec->state == REC_PENDING && rec->seq == seqs[k]) {
                    rec->force_fail = 1;
                    failed++;
                }
            }
            if (failed)
                resolve_ready_all(o, UINT32_MAX);
        }
        free(evs);
        free(cis);
        free(idxs);
        free(seqs);
    }
    uint32_t left = o->npending;
    pthread_mutex_unlock(&o->mu);
    return left;
}

/* ---- begin / end ---- */

void cp_gpu_ops_begin(cp_gpu_ops *o, uint32_t site, uint64_t stream, const codeprof_gpu_mem *mem,
                      codeprof_gpu_op *op) {
    op->site = site;
    op->stream = stream;
    op->slot = 0;
    op->flags = 0;
    op->host_start = 0;
    int cause = CP_GPU_HOST_ONLY_OFF;
    uint32_t idx = UINT32_MAX;
    op_rec *rec = NULL;
    if (!o)
        goto host;
    op->flags = o->gen << 8;
    if (!atomic_load_explicit(&o->enabled, memory_order_acquire)) {
        cause = o->forked ? CP_GPU_HOST_ONLY_FORKED : CP_GPU_HOST_ONLY_OFF;
        goto host;
    }
    const cp_cuda_api *api = cu();
    cp_cu_context ctx = NULL;
    if (api->cuCtxGetCurrent(&ctx) != CP_CUDA_SUCCESS || !ctx) {
        cause = CP_GPU_HOST_ONLY_NO_CONTEXT;
        goto host;
    }
    int need_ref = 0;
    cp_cu_event ref = NULL;
    pthread_mutex_lock(&o->mu);
    o->ctx_seen = 1;
    uint32_t ci = ctx_find(o, ctx);
    if (ci == UINT32_MAX) {
        pthread_mutex_unlock(&o->mu);
        cause = CP_GPU_HOST_ONLY_ERROR;
        goto host;
    }
    idx = rec_alloc(o);
    if (idx == UINT32_MAX && resolve_ready_all(o, CP_GPU_HOT_BUDGET) > 0)
        idx = rec_alloc(o);
    if (idx == UINT32_MAX) {
        pthread_mutex_unlock(&o->mu);
        cause = CP_GPU_HOST_ONLY_FULL;
        goto host;
    }
    ctx_ent *c = &o->ctxs[ci];
    rec = rec_at(o, idx);
    rec->ev0 = ev_take(o, c);
    rec->ev1 = rec->ev0 ? ev_take(o, c) : NULL;
    if (!rec->ev1) {
        ev_give(c, rec->ev0);
        rec_release(o, idx);
        pthread_mutex_unlock(&o->mu);
        cause = CP_GPU_HOST_ONLY_ERROR;
        goto host;
    }
    if (c->ref_state == 0) {
        cp_cu_event ev = NULL;
        if (api->cuEventCreate(&ev, CP_CU_EVENT_DEFAULT) == CP_CUDA_SUCCESS) {
            c->ref = ev;
            c->ref_state = 1;
            ref = ev;
            need_ref = 1;
        }
    }
    rec->state = REC_RUNNING;
    rec->force_fail = 0;
    rec->seq = ++o->seq;
    rec->ctxi = ci;
    pthread_mutex_unlock(&o->mu);

    rec->site = site;
    rec->stream = stream;
    rec->tid = my_tid();
    read_mem(o, mem, 1, &rec->mb);
    if (need_ref) {
        uint64_t t = codeprof_now_ns();
        int ok = api->cuEventRecord(ref, (cp_cu_stream)(uintptr_t)stream) == CP_CUDA_SUCCESS;
        pthread_mutex_lock(&o->mu);
        c->ref_host_ns = t;
        c->ref_state = ok ? 2 : 3; /* 3: failed, never retried */
        pthread_mutex_unlock(&o->mu);
    }
    rec->host_start = codeprof_now_ns();
    if (api->cuEventRecord(rec->ev0, (cp_cu_stream)(uintptr_t)stream) != CP_CUDA_SUCCESS) {
        pthread_mutex_lock(&o->mu);
        ev_give(c, rec->ev0);
        ev_give(c, rec->ev1);
        rec_release(o, idx);
        pthread_mutex_unlock(&o->mu);
        cause = CP_GPU_HOST_ONLY_ERROR;
        goto host;
    }
    op->host_start = rec->host_start;
    op->slot = (uint64_t)idx + 1;
    return;
host:
    op->flags |= (uint32_t)cause;
    op->host_start = codeprof_now_ns();
}

void cp_gpu_ops_end(cp_gpu_ops *o, codeprof_gpu_op *op, const codeprof_gpu_mem *mem) {
    if (!o)
        return;
    if (op->slot && OPF_GEN(op->flags) == o->gen && !o->forked) {
        uint32_t idx = (uint32_t)(op->slot - 1);
        op_rec *rec;
        pthread_mutex_lock(&o->mu);
        rec = rec_at(o, idx);
        pthread_mutex_unlock(&o->mu);
        cp_cu_result r = cu()->cuEventRecord(rec->ev1, (cp_cu_stream)(uintptr_t)op->stream);
        rec->host_end = codeprof_now_ns();
        read_mem(o, mem, 1, &rec->ma);
        pthread_mutex_lock(&o->mu);
        if (r != CP_CUDA_SUCCESS) {
            host_only(o, CP_GPU_HOST_ONLY_ERROR);
            ctx_ent *c = &o->ctxs[rec->ctxi];
            fold_op(o, rec->site, rec->stream, rec->tid, rec->host_start, rec->host_end, 0, 0, 0,
                    c->device, &rec->mb, &rec->ma);
            ev_give(c, rec->ev0);
            ev_give(c, rec->ev1);
            rec_release(o, idx);
        } else {
            rec->state = REC_PENDING;
            o->pending[(o->pend_head + o->npending++) % o->cap_pending] = idx;
            o->changes++;
        }
        pthread_mutex_unlock(&o->mu);
        op->slot = 0;
        return;
    }
    /* Host only (or begun before a fork). */
    uint64_t h1 = codeprof_now_ns();
    int cause = OPF_CAUSE(op->flags);
    if (OPF_GEN(op->flags) != o->gen || op->slot)
        cause = CP_GPU_HOST_ONLY_FORKED;
    if (!cause)
        cause = CP_GPU_HOST_ONLY_OFF;
    op_mem none = {0}, ma;
    read_mem(o, mem, 0, &ma);
    pthread_mutex_lock(&o->mu);
    host_only(o, cause);
    /* The caller's figures at begin are not kept for a host-only op: only
     * the end figures are known, so no delta (memory source none). */
    fold_op(o, op->site, op->stream, my_tid(), op->host_start, h1, 0, 0, 0, -1, &none, &ma);
    pthread_mutex_unlock(&o->mu);
    op->slot = 0;
}

/* ---- life ---- */

void cp_gpu_ops_reset(cp_gpu_ops *o) {
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    if (!o->forked && cp_gpu_lib_get()->driver.status == CP_GPU_LIB_OK)
        resolve_ready_all(o, UINT32_MAX);
    /* Still pending: dropped; their events go back to the pool (recording
     * an event again is allowed while earlier work is outstanding). */
    for (uint32_t k = 0; k < o->npending; k++) {
        uint32_t idx = o->pending[(o->pend_head + k) % o->cap_pending];
        op_rec *rec = rec_at(o, idx);
        ev_give(&o->ctxs[rec->ctxi], rec->ev0);
        ev_give(&o->ctxs[rec->ctxi], rec->ev1);
        rec_release(o, idx);
    }
    o->npending = 0;
    o->pend_head = 0;
    o->naggs = 0;
    cp_u32map_free(&o->agg_index);
    memset(&o->agg_index, 0, sizeof o->agg_index);
    o->nspans = o->ring_pos = 0;
    o->spans_seen = 0;
    o->nslow = 0;
    o->unresolved = o->host_only = o->resolved = 0;
    o->cause = 0;
    o->changes++;
    pthread_mutex_unlock(&o->mu);
}

void cp_gpu_ops_atfork_child(cp_gpu_ops *o) {
    if (!o)
        return;
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&o->mu, &fresh, sizeof fresh);
    o->forked = 1;
    atomic_store(&o->enabled, 0);
    o->gen++;
    /* The parent's events and records are abandoned: never queried,
     * recorded or destroyed here (the records' memory is kept, unused). */
    for (uint32_t ci = 0; ci < o->nctx; ci++)
        free(o->ctxs[ci].pool);
    memset(o->ctxs, 0, sizeof o->ctxs);
    o->nctx = 0;
    o->npending = 0;
    o->pend_head = 0;
    o->free_head = 0;
    for (uint32_t i = 0; i < o->nchunks; i++)
        free(o->chunks[i]);
    o->nchunks = 0;
    o->cap_recs = 0;
    /* The child reports its own operations only. */
    o->naggs = 0;
    cp_u32map_free(&o->agg_index);
    memset(&o->agg_index, 0, sizeof o->agg_index);
    o->nspans = o->ring_pos = 0;
    o->spans_seen = 0;
    o->nslow = 0;
    o->unresolved = o->host_only = o->resolved = 0;
    o->cause = 0;
    o->ctx_seen = 0;
    o->changes++;
    o->pid = getpid();
}

void cp_gpu_ops_free(cp_gpu_ops *o) {
    if (!o)
        return;
    int may_call = !o->forked && o->pid == getpid() && !atomic_load(&exiting_g) &&
                   cp_gpu_lib_get()->driver.status == CP_GPU_LIB_OK;
    for (uint32_t ci = 0; ci < o->nctx; ci++) {
        ctx_ent *c = &o->ctxs[ci];
        if (may_call) {
            /* Events of ops still pending or running go too. */
            for (uint32_t i = 0; i < o->cap_recs; i++) {
                op_rec *r = rec_at(o, i);
                if (r->state != REC_FREE && r->ctxi == ci) {
                    cu()->cuEventDestroy(r->ev0);
                    cu()->cuEventDestroy(r->ev1);
                }
            }
            for (uint32_t k = 0; k < c->npool; k++)
                cu()->cuEventDestroy(c->pool[k]);
            if (c->ref_state >= 1)
                cu()->cuEventDestroy(c->ref);
        }
        free(c->pool);
    }
    for (uint32_t i = 0; i < o->nchunks; i++)
        free(o->chunks[i]);
    free(o->chunks);
    cp_big_free(o->pending);
    cp_big_free(o->spans);
    free(o->aggs);
    cp_u32map_free(&o->agg_index);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

uint64_t cp_gpu_ops_fingerprint(cp_gpu_ops *o) {
    if (!o)
        return 0;
    pthread_mutex_lock(&o->mu);
    uint64_t h = o->changes * 0x9e3779b97f4a7c15ull ^ ((uint64_t)o->npending << 32) ^ o->resolved;
    pthread_mutex_unlock(&o->mu);
    return h;
}

int cp_gpu_ops_host_only_cause(cp_gpu_ops *o, uint64_t *count) {
    if (!o) {
        if (count)
            *count = 0;
        return 0;
    }
    pthread_mutex_lock(&o->mu);
    int c = o->cause;
    if (count)
        *count = o->host_only;
    pthread_mutex_unlock(&o->mu);
    return c;
}

/* ---- model ---- */

static int cmp_op_device(const void *a, const void *b) {
    const cp_mgpu_op *x = a, *y = b;
    if (x->device_ns != y->device_ns)
        return x->device_ns < y->device_ns ? 1 : -1;
    if (x->host_ns != y->host_ns)
        return x->host_ns < y->host_ns ? 1 : -1;
    return x->site < y->site ? -1 : x->site > y->site;
}
static uint64_t span_time(const cp_mgpu_span *s) {
    return s->timed ? s->device_ns : s->host_end_ns - s->host_start_ns;
}
static int cmp_slow(const void *a, const void *b) {
    uint64_t x = span_time(a), y = span_time(b);
    return x < y ? 1 : x > y ? -1 : 0;
}
static int cmp_host_start(const void *a, const void *b) {
    const cp_mgpu_span *x = a, *y = b;
    return x->host_start_ns < y->host_start_ns ? -1 : x->host_start_ns > y->host_start_ns;
}
static int cmp_dev_start(const void *a, const void *b) {
    const cp_mgpu_span *x = a, *y = b;
    if (x->device != y->device)
        return x->device < y->device ? -1 : 1;
    return x->device_start_ns < y->device_start_ns ? -1 : x->device_start_ns > y->device_start_ns;
}

/* Idle gaps and busy time over the timed spans with a device start, per
 * device in device-start order. */
static void idle_gaps(cp_mgpu *g) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->nspans; i++)
        if (g->spans[i].timed && g->spans[i].device_start_ns)
            n++;
    uint64_t first = UINT64_MAX, last = 0;
    if (n) {
        cp_mgpu_span *v = malloc(n * sizeof *v);
        if (v) {
            uint32_t k = 0;
            for (uint32_t i = 0; i < g->nspans; i++)
                if (g->spans[i].timed && g->spans[i].device_start_ns)
                    v[k++] = g->spans[i];
            qsort(v, n, sizeof *v, cmp_dev_start);
            uint64_t end = 0;
            for (uint32_t i = 0; i < n; i++) {
                uint64_t s = v[i].device_start_ns, e = s + v[i].device_ns;
                if (i == 0 || v[i].device != v[i - 1].device) {
                    end = e;
                    g->busy_ns += e - s;
                } else if (s > end) {
                    uint64_t gap = s - end;
                    g->idle_gap_ns += gap;
                    g->idle_gaps++;
                    if (gap > g->idle_gap_max_ns)
                        g->idle_gap_max_ns = gap;
                    g->busy_ns += e - s;
                    end = e;
                } else if (e > end) {
                    g->busy_ns += e - end;
                    end = e;
                }
                if (s < first)
                    first = s;
                if (e > last)
                    last = e;
            }
            free(v);
            g->span_ns = last - first;
            return;
        }
    }
    for (uint32_t i = 0; i < g->nspans; i++) {
        if (g->spans[i].host_start_ns < first)
            first = g->spans[i].host_start_ns;
        if (g->spans[i].host_end_ns > last)
            last = g->spans[i].host_end_ns;
    }
    g->span_ns = last > first ? last - first : 0;
}

int cp_gpu_ops_fill_model(cp_gpu_ops *o, struct cp_model *m) {
    if (!o)
        return 0;
    cp_mgpu *g = &m->gpu;
    pthread_mutex_lock(&o->mu);
    int rc = -1;
    free(g->ops);
    free(g->spans);
    free(g->slow);
    g->ops = NULL;
    g->spans = g->slow = NULL;
    g->nops = g->nspans = g->nslow = 0;
    if (o->naggs && !(g->ops = malloc(o->naggs * sizeof *g->ops)))
        goto out;
    for (uint32_t i = 0; i < o->naggs; i++) {
        g->ops[i] = o->aggs[i].m;
        g->ops[i].site = cp_model_map_site(m, o->aggs[i].m.site);
    }
    g->nops = o->naggs;
    if (g->nops > 1)
        qsort(g->ops, g->nops, sizeof *g->ops, cmp_op_device);
    if (o->nspans) {
        if (!(g->spans = malloc(o->nspans * sizeof *g->spans)))
            goto out;
        memcpy(g->spans, o->spans, o->nspans * sizeof *g->spans);
        for (uint32_t i = 0; i < o->nspans; i++)
            g->spans[i].site = cp_model_map_site(m, g->spans[i].site);
        g->nspans = o->nspans;
        qsort(g->spans, g->nspans, sizeof *g->spans, cmp_host_start);
    }
    if (o->nslow) {
        uint32_t k = 0;
        if (!(g->slow = malloc(o->nslow * sizeof *g->slow)))
            goto out;
        for (uint32_t i = 0; i < o->nslow; i++)
            if (span_time(&o->slow[i]) > o->slow_ns) {
                g->slow[k] = o->slow[i];
                g->slow[k].site = cp_model_map_site(m, o->slow[i].site);
                k++;
            }
        g->nslow = k;
        qsort(g->slow, g->nslow, sizeof *g->slow, cmp_slow);
    }
    g->idle_gap_ns = g->idle_gap_max_ns = g->idle_gaps = g->busy_ns = g->span_ns = 0;
    idle_gaps(g);
    g->ops_dropped = o->spans_seen - o->nspans;
    g->ops_unresolved = o->unresolved + o->npending;
    g->ops_host_only = o->host_only;
    g->available = o->ctx_seen && !o->forked;
    for (uint32_t ci = 0; ci < o->nctx; ci++)
        if (o->ctxs[ci].mem_total) {
            g->device_mem_total = o->ctxs[ci].mem_total;
            break;
        }
    rc = 0;
out:
    pthread_mutex_unlock(&o->mu);
    return rc;
}
