/* fake_cuda.c -- a fake CUDA driver (libcuda.so.1's entry points that
 * src/gpu/gpu_lib.c looks up), built as a shared library for the tests.
 *
 * Deterministic: a device clock in ms advances by a programmed amount after
 * every cuEventRecord (fake_cuda_queue_advance, else the default set with
 * fake_cuda_set_default_advance), so the elapsed time between two records
 * is known exactly; an event becomes ready after a programmed number of
 * cuEventQuery calls (fake_cuda_set_ready_after); entry points can be made
 * to fail (fake_cuda_fail).  Every call is counted (fake_cuda_count), and a
 * call from a process other than the one that last called fake_cuda_reset
 * counts as a "call after fork".  Built a second time with FAKE_CUDA_OLD:
 * an old driver lacking cuEventDestroy_v2.
 *
 * Tests dlopen the same file as the loader (dlopen of one path returns one
 * handle), so the control functions reach the instance the loader uses.
 * Thread-safe: one mutex around the state.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_API __attribute__((visibility("default")))

enum {
    OK = 0,
    E_INVALID_VALUE = 1,
    E_NOT_INITIALIZED = 3,
    E_INVALID_CONTEXT = 201,
    E_INVALID_HANDLE = 400,
    E_NOT_READY = 600
};

typedef struct fake_event {
    uint32_t magic;
    int ctx;
    int recorded;
    int destroyed;
    double t_ms;
    int queries_left;
    struct fake_event *next_all;
} fake_event;
#define EV_MAGIC 0xcafe0e0eu

/* Counters (fake_cuda_count names them). */
enum {
    C_INIT,
    C_CTX_CREATE,
    C_CTX_GET,
    C_EV_CREATE,
    C_EV_DESTROY,
    C_EV_RECORD,
    C_EV_QUERY,
    C_EV_SYNC,
    C_EV_ELAPSED,
    C_MEMINFO,
    C_TOTALMEM,
    C_PUSH,
    C_POP,
    C_AFTER_FORK,
    C_N_
};
static const char *const count_names[C_N_] = {
    "cuInit",          "cuCtxCreate",        "cuCtxGetCurrent",
    "cuEventCreate",   "cuEventDestroy",     "cuEventRecord",
    "cuEventQuery",    "cuEventSynchronize", "cuEventElapsedTime",
    "cuMemGetInfo",    "cuDeviceTotalMem",   "cuCtxPushCurrent",
    "cuCtxPopCurrent", "after_fork"};

#define MAX_FAILS 8
#define MAX_ADV   4096
static struct {
    pthread_mutex_t mu;
    pid_t pid;
    int version;
    int ctx_mode; /* -1 not initialised, 0 none, n>0 context n */
    int pushed[8];
    int npushed;
    int device;
    double clock_ms;
    double default_adv;
    double adv[MAX_ADV];
    int nadv, adv_head;
    int ready_after;
    size_t mem_free, mem_total;
    struct {
        char name[48];
        int code;
    } fails[MAX_FAILS];
    int nfails;
    uint64_t counts[C_N_];
    fake_event *all;
    long live;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .version = 12040,
       .ctx_mode = 1,
       .default_adv = 1.0,
       .mem_free = 6ull << 30,
       .mem_total = 8ull << 30};

static int contexts[4]; /* addresses used as CUcontext values */

static void enter(int counter) {
    pthread_mutex_lock(&F.mu);
    if (F.pid && getpid() != F.pid)
        F.counts[C_AFTER_FORK]++;
    if (counter >= 0)
        F.counts[counter]++;
}
static void leave(void) {
    pthread_mutex_unlock(&F.mu);
}

static int failing(const char *name) {
    for (int i = 0; i < F.nfails; i++)
        if (strcmp(F.fails[i].name, name) == 0)
            return F.fails[i].code;
    return 0;
}
#define FAILCHECK(name)                                                                            \
    do {                                                                                           \
        int fc_ = failing(name);                                                                   \
        if (fc_) {                                                                                 \
            leave();                                                                               \
            return fc_;                                                                            \
        }                                                                                          \
    } while (0)

static int current_ctx(void) {
    if (F.npushed > 0)
        return F.pushed[F.npushed - 1];
    return F.ctx_mode > 0 ? F.ctx_mode : 0;
}

/* ---- control API ---- */

/* Back to defaults: context 1, version 12040, 1 ms per record, events ready
 * at once, 6 of 8 GiB free, no failures, counters 0; every event of the
 * previous test forgotten (their memory freed).  The calling process
 * becomes the "parent" for the after-fork counter. */
FAKE_API void fake_cuda_reset(void) {
    pthread_mutex_lock(&F.mu);
    fake_event *e = F.all;
    while (e) {
        fake_event *n = e->next_all;
        e->magic = 0;
        free(e);
        e = n;
    }
    F.all = NULL;
    F.live = 0;
    F.pid = getpid();
    F.version = 12040;
    F.ctx_mode = 1;
    F.npushed = 0;
    F.device = 0;
    F.clock_ms = 0;
    F.default_adv = 1.0;
    F.nadv = F.adv_head = 0;
    F.ready_after = 0;
    F.mem_free = 6ull << 30;
    F.mem_total = 8ull << 30;
    F.nfails = 0;
    memset(F.counts, 0, sizeof F.counts);
    pthread_mutex_unlock(&F.mu);
}
/* -1: cuCtxGetCurrent returns CUDA_ERROR_NOT_INITIALIZED; 0: no context;
 * n in 1..3: context n is current (on every thread). */
FAKE_API void fake_cuda_set_context(int mode) {
    pthread_mutex_lock(&F.mu);
    F.ctx_mode = mode;
    pthread_mutex_unlock(&F.mu);
}
FAKE_API void fake_cuda_set_version(int v) {
    pthread_mutex_lock(&F.mu);
    F.version = v;
    pthread_mutex_unlock(&F.mu);
}
FAKE_API void fake_cuda_set_default_advance(double ms) {
    pthread_mutex_lock(&F.mu);
    F.default_adv = ms;
    pthread_mutex_unlock(&F.mu);
}
/* The next cuEventRecord calls advance the device clock by ms[0], ms[1]...
 * after stamping their event (then the default advance again). */
FAKE_API void fake_cuda_queue_advance(const double *ms, int n) {
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < n && F.nadv < MAX_ADV; i++)
        F.adv[F.nadv++] = ms[i];
    pthread_mutex_unlock(&F.mu);
}
/* Events recorded from now on answer CUDA_ERROR_NOT_READY to their first
 * n queries (cuEventSynchronize makes them ready). */
FAKE_API void fake_cuda_set_ready_after(int n) {
    pthread_mutex_lock(&F.mu);
    F.ready_after = n;
    pthread_mutex_unlock(&F.mu);
}
FAKE_API void fake_cuda_set_mem(size_t free_b, size_t total_b) {
    pthread_mutex_lock(&F.mu);
    F.mem_free = free_b;
    F.mem_total = total_b;
    pthread_mutex_unlock(&F.mu);
}
/* Entry point `name` (as counted, e.g. "cuEventRecord") returns `code`
 * from now on; code 0 removes the failure; name NULL removes all. */
FAKE_API void fake_cuda_fail(const char *name, int code) {
    pthread_mutex_lock(&F.mu);
    if (!name) {
        F.nfails = 0;
    } else {
        int i;
        for (i = 0; i < F.nfails; i++)
            if (strcmp(F.fails[i].name, name) == 0)
                break;
        if (code == 0) {
            if (i < F.nfails)
                F.fails[i] = F.fails[--F.nfails];
        } else if (i < MAX_FAILS) {
            strncpy(F.fails[i].name, name, sizeof F.fails[i].name - 1);
            F.fails[i].name[sizeof F.fails[i].name - 1] = 0;
            F.fails[i].code = code;
            if (i == F.nfails)
                F.nfails++;
        }
    }
    pthread_mutex_unlock(&F.mu);
}
/* A counter by name (see count_names; "after_fork" counts any entry point
 * called by another process than the one that last reset); "live_events":
 * events created and not destroyed; -1 for an unknown name. */
FAKE_API long long fake_cuda_count(const char *name) {
    long long r = -1;
    pthread_mutex_lock(&F.mu);
    if (strcmp(name, "live_events") == 0)
        r = F.live;
    for (int i = 0; i < C_N_; i++)
        if (strcmp(name, count_names[i]) == 0)
            r = (long long)F.counts[i];
    pthread_mutex_unlock(&F.mu);
    return r;
}
/* The CUcontext value of context n (1..3), to compare. */
FAKE_API void *fake_cuda_context_handle(int n) {
    return (n >= 1 && n <= 3) ? (void *)&contexts[n] : NULL;
}

/* ---- driver entry points ---- */

static int ctx_index(void *c) {
    for (int i = 1; i <= 3; i++)
        if (c == (void *)&contexts[i])
            return i;
    return -1;
}

FAKE_API int cuInit(unsigned flags) {
    (void)flags;
    enter(C_INIT);
    leave();
    return OK;
}
FAKE_API int cuCtxCreate_v2(void **ctx, unsigned flags, int dev) {
    (void)flags;
    (void)dev;
    enter(C_CTX_CREATE);
    *ctx = &contexts[1];
    leave();
    return OK;
}
FAKE_API int cuDriverGetVersion(int *v) {
    enter(-1);
    *v = F.version;
    leave();
    return OK;
}
FAKE_API int cuCtxGetCurrent(void **ctx) {
    enter(C_CTX_GET);
    FAILCHECK("cuCtxGetCurrent");
    if (F.ctx_mode < 0 && F.npushed == 0) {
        *ctx = NULL;
        leave();
        return E_NOT_INITIALIZED;
    }
    int c = current_ctx();
    *ctx = c ? (void *)&contexts[c] : NULL;
    leave();
    return OK;
}
FAKE_API int cuCtxGetDevice(int *dev) {
    enter(-1);
    int c = current_ctx();
    *dev = c ? c - 1 : 0;
    leave();
    return c ? OK : E_INVALID_CONTEXT;
}
FAKE_API int cuCtxPushCurrent_v2(void *ctx) {
    enter(C_PUSH);
    int i = ctx_index(ctx);
    if (i < 0 || F.npushed == 8) {
        leave();
        return E_INVALID_CONTEXT;
    }
    F.pushed[F.npushed++] = i;
    leave();
    return OK;
}
FAKE_API int cuCtxPopCurrent_v2(void **ctx) {
    enter(C_POP);
    if (F.npushed == 0) {
        leave();
        return E_INVALID_CONTEXT;
    }
    int i = F.pushed[--F.npushed];
    if (ctx)
        *ctx = &contexts[i];
    leave();
    return OK;
}
FAKE_API int cuEventCreate(void **ev, unsigned flags) {
    (void)flags;
    enter(C_EV_CREATE);
    FAILCHECK("cuEventCreate");
    int c = current_ctx();
    if (!c) {
        leave();
        return E_INVALID_CONTEXT;
    }
    fake_event *e = calloc(1, sizeof *e);
    if (!e) {
        leave();
        return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
    }
    e->magic = EV_MAGIC;
    e->ctx = c;
    e->next_all = F.all;
    F.all = e;
    F.live++;
    *ev = e;
    leave();
    return OK;
}
/* e completed: so did everything recorded before it (one device clock
 * stands for stream order). */
static void complete_upto(const fake_event *e) {
    for (fake_event *x = F.all; x; x = x->next_all)
        if (x->recorded && x->t_ms <= e->t_ms)
            x->queries_left = 0;
}
static fake_event *ev_ok(void *p) {
    fake_event *e = p;
    return (e && e->magic == EV_MAGIC && !e->destroyed) ? e : NULL;
}
FAKE_API int cuEventRecord(void *ev, void *stream) {
    (void)stream;
    enter(C_EV_RECORD);
    FAILCHECK("cuEventRecord");
    fake_event *e = ev_ok(ev);
    if (!e) {
        leave();
        return E_INVALID_HANDLE;
    }
    if (e->ctx != current_ctx()) {
        leave();
        return E_INVALID_CONTEXT;
    }
    e->recorded = 1;
    e->t_ms = F.clock_ms;
    e->queries_left = F.ready_after;
    F.clock_ms += F.adv_head < F.nadv ? F.adv[F.adv_head++] : F.default_adv;
    if (F.adv_head == F.nadv)
        F.adv_head = F.nadv = 0;
    leave();
    return OK;
}
FAKE_API int cuEventQuery(void *ev) {
    enter(C_EV_QUERY);
    FAILCHECK("cuEventQuery");
    fake_event *e = ev_ok(ev);
    int r = OK;
    if (!e)
        r = E_INVALID_HANDLE;
    else if (e->queries_left > 0) {
        e->queries_left--;
        r = E_NOT_READY;
    } else {
        complete_upto(e);
    }
    leave();
    return r;
}
FAKE_API int cuEventSynchronize(void *ev) {
    enter(C_EV_SYNC);
    FAILCHECK("cuEventSynchronize");
    fake_event *e = ev_ok(ev);
    if (e)
        complete_upto(e);
    leave();
    return e ? OK : E_INVALID_HANDLE;
}
FAKE_API int cuEventElapsedTime(float *ms, void *a, void *b) {
    enter(C_EV_ELAPSED);
    FAILCHECK("cuEventElapsedTime");
    fake_event *s = ev_ok(a), *e = ev_ok(b);
    int r = OK;
    if (!s || !e || !s->recorded || !e->recorded)
        r = E_INVALID_HANDLE;
    else if (s->queries_left > 0 || e->queries_left > 0)
        r = E_NOT_READY;
    else
        *ms = (float)(e->t_ms - s->t_ms);
    leave();
    return r;
}
static int destroy(void *ev) {
    enter(C_EV_DESTROY);
    FAILCHECK("cuEventDestroy");
    fake_event *e = ev_ok(ev);
    if (e) {
        e->destroyed = 1; /* kept (and freed at reset) so a double destroy is caught */
        F.live--;
    }
    leave();
    return e ? OK : E_INVALID_HANDLE;
}
#ifndef FAKE_CUDA_OLD
FAKE_API int cuEventDestroy_v2(void *ev) {
    return destroy(ev);
}
#endif
FAKE_API int cuEventDestroy(void *ev) {
    return destroy(ev);
}
FAKE_API int cuMemGetInfo_v2(size_t *free_b, size_t *total_b) {
    enter(C_MEMINFO);
    FAILCHECK("cuMemGetInfo");
    int c = current_ctx();
    *free_b = F.mem_free;
    *total_b = F.mem_total;
    leave();
    return c ? OK : E_INVALID_CONTEXT;
}
FAKE_API int cuDeviceTotalMem_v2(size_t *bytes, int dev) {
    (void)dev;
    enter(C_TOTALMEM);
    *bytes = F.mem_total;
    leave();
    return OK;
}
FAKE_API int cuGetErrorString(int r, const char **s) {
    switch (r) {
    case OK:
        *s = "no error";
        break;
    case E_NOT_INITIALIZED:
        *s = "initialization error";
        break;
    case E_INVALID_CONTEXT:
        *s = "invalid device context";
        break;
    case E_INVALID_HANDLE:
        *s = "invalid resource handle";
        break;
    case E_NOT_READY:
        *s = "device not ready";
        break;
    default:
        *s = "unknown error";
        return E_INVALID_VALUE;
    }
    return OK;
}
