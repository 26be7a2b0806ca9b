/* nvml_sampler.c -- GPU utilization on the timeline (nvml_sampler.h).
 *
 * One thread per session (gpu_sample_interval_s > 0 and NVML usable),
 * shaped like the memory sampler (src/memory/memsampler.c): it is created
 * with every signal blocked, never runs Python and never takes the
 * session's locks.  Each tick it queries NVML for every device with no
 * lock held, then folds the readings into its own state under its own
 * mutex `mu` (which the model build takes, agg_mu -> mu).  It sleeps on a
 * condition variable with a CLOCK_MONOTONIC deadline, so stop wakes it at
 * once; the first reading is taken one interval after start.
 *
 * At most 16 devices are sampled (a session warning says so when NVML
 * lists more).  Per device and tick: utilization (GPU and memory controller), memory
 * used (and total), power, GPU temperature, SM clock.  A query that fails
 * (a GPU without power readings answers NVML_ERROR_NOT_SUPPORTED) is
 * counted per device and metric, warned about once, and that metric is
 * left out of the reading; it is never fatal.
 *
 * What it keeps, all bounded:
 *  - per device summaries over every reading (exact, whatever was dropped):
 *    means and maxima, idle readings (utilization 0) and the longest run
 *    of consecutive idle readings, in ns.  NVML's utilization is the share
 *    of the period since its previous reading, so an idle reading at t
 *    stands for (previous reading, t]: a run lasts from the reading before
 *    its first idle one (one interval before it, for the first reading) to
 *    its last idle one;
 *  - the readings themselves (cp_mgpu_sample): the first half of
 *    cfg.max_samples, then a ring of the most recent half; readings pushed
 *    out of the ring are counted (m->gpu.samples_dropped);
 *  - counter events (CP_EV_COUNTER) in a timeline store of its own (same
 *    first/most-recent policy), copied to m->timeline at build flagged
 *    CP_TLF_PROCESS with thread 0 (this process), so the trace export draws
 *    them as counter tracks with no change.  Sites are interned once per
 *    device: "gpu<i> utilization %", "gpu<i> memory used", "gpu<i> power W",
 *    "gpu<i> temperature C", "gpu<i> SM clock MHz".
 * The thread's CPU time (pthread_getcpuclockid / its own thread clock at
 * exit) is m->gpu.sampler_cpu_ns.
 *
 * Fork: the thread does not exist in a child; cp_nvml_sampler_atfork_child
 * abandons the parent's state (never freed: its pages are the parent's)
 * and marks the sampler off: no NVML call is made in the child.
 */
#include "gpu/nvml_sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codeprof/codeprof.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/timeline.h"
#include "gpu/gpu_lib.h"
#include "model/build.h"
#include "model/model.h"

#define NS_MAX_DEVICES 16

/* counter tracks per device */
enum { CTR_UTIL, CTR_MEM, CTR_POWER, CTR_TEMP, CTR_CLOCK, NCTR };
static const char *const ctr_fmt[NCTR] = {"gpu%d utilization %%", "gpu%d memory used",
                                          "gpu%d power W", "gpu%d temperature C",
                                          "gpu%d SM clock MHz"};
static const char *const metric_name[CP_NVML_M_COUNT_] = {"utilization", "memory", "power",
                                                          "temperature", "SM clock"};

typedef struct ns_dev {
    cp_nvml_device h;
    int32_t index;
    char name[96];
    uint32_t site[NCTR]; /* counter sites (process-wide ids) */
    /* ---- summaries (mu) ---- */
    uint64_t mem_total;
    uint64_t samples;
    uint64_t n_util, n_mem, n_power, n_temp, n_clock;
    double util_sum, mem_util_sum, mem_sum, power_sum_mw, clock_sum;
    uint32_t util_max, power_max_mw, temp_max;
    uint64_t mem_max;
    uint64_t idle_samples, idle_from_t, longest_idle_ns;
    uint64_t last_t; /* time of the previous reading; 0 none */
    int in_idle;
    uint64_t errors[CP_NVML_M_COUNT_];
    int warned[CP_NVML_M_COUNT_];
} ns_dev;

/* One device's reading, taken with no lock held. */
typedef struct ns_read {
    int ok[CP_NVML_M_COUNT_];
    int err[CP_NVML_M_COUNT_];
    cp_nvml_utilization util;
    cp_nvml_memory mem;
    unsigned power_mw, temp_c, sm_mhz;
} ns_read;

struct cp_nvml_sampler {
    struct codeprof_session *s;
    uint64_t interval_ns;
    uint32_t max_samples;
    const cp_nvml_api *api; /* the table in use once started             */
    const cp_nvml_api *own; /* cp_nvml_sampler_use_api                   */
    int own_inited;         /* nvmlInit of `own` succeeded (we shut down) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* ---- mu ---- */
    pthread_t th;
    int thread_pid; /* pid running the thread; 0 none            */
    int quit;
    int ready;    /* devices enumerated                        */
    int failed;   /* start failed: reason says why             */
    int child;    /* forked child: off for good                */
    uint64_t gen; /* bumped by reset                           */
    char reason[256];
    ns_dev dev[NS_MAX_DEVICES];
    uint32_t ndev;
    uint32_t ndev_listed; /* devices NVML listed (only NS_MAX_DEVICES sampled) */
    cp_mgpu_sample *head; /* first max/2 readings                      */
    uint32_t head_n, head_cap, head_alloc;
    cp_mgpu_sample *ring; /* most recent max - max/2                   */
    uint32_t ring_cap, ring_pos;
    uint64_t ring_total;
    uint64_t dropped;
    cp_timeline *ctr;     /* counter events                            */
    uint64_t cpu_done_ns; /* CPU time of threads that exited           */
    _Atomic uint64_t ticks;
};

/* ---- lifecycle ---- */

static int init_sync(cp_nvml_sampler *ns) {
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&ns->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&ns->mu, NULL) != 0) {
        pthread_cond_destroy(&ns->cv);
        return -1;
    }
    return 0;
}

cp_nvml_sampler *cp_nvml_sampler_new(struct codeprof_session *s, double interval_s,
                                     uint32_t max_samples) {
    cp_nvml_sampler *ns = calloc(1, sizeof *ns);
    if (!ns)
        return NULL;
    if (init_sync(ns) != 0) {
        free(ns);
        return NULL;
    }
    ns->s = s;
    ns->interval_ns = interval_s > 0 ? (uint64_t)(interval_s * 1e9) : 0;
    if (ns->interval_ns && ns->interval_ns < 1000000)
        ns->interval_ns = 1000000;
    ns->max_samples = max_samples;
    return ns;
}

void cp_nvml_sampler_use_api(cp_nvml_sampler *ns, const struct cp_nvml_api *api) {
    if (!ns)
        return;
    pthread_mutex_lock(&ns->mu);
    if (!ns->ready)
        ns->own = api;
    pthread_mutex_unlock(&ns->mu);
}

static const char *err_text(const cp_nvml_api *api, cp_nvml_return r) {
    const char *t = api && api->nvmlErrorString ? api->nvmlErrorString(r) : NULL;
    return t ? t : "unknown error";
}

/* Opens NVML (the loader's, or the table given) and lists the devices.
 * mu held.  0, or -1 with ns->reason set. */
static int open_devices(cp_nvml_sampler *ns) {
    const cp_nvml_api *api = ns->own;
    if (!api) {
        if (cp_gpu_lib_nvml_init() != 0) {
            const cp_mgpu_lib *l = &cp_gpu_lib_get()->nvml;
            snprintf(ns->reason, sizeof ns->reason, "NVML not usable: %.200s",
                     l->reason[0] ? l->reason : "not loaded");
            return -1;
        }
        api = &cp_gpu_lib_get()->nvml_api;
    } else if (!ns->own_inited) {
        if (!api->nvmlInit) {
            snprintf(ns->reason, sizeof ns->reason, "NVML has no nvmlInit_v2 (driver too old)");
            return -1;
        }
        cp_nvml_return r = api->nvmlInit();
        if (r != 0) {
            snprintf(ns->reason, sizeof ns->reason, "nvmlInit_v2 failed: %s (NVML error %d)",
                     err_text(api, r), r);
            return -1;
        }
        ns->own_inited = 1;
    }
    if (!api->nvmlDeviceGetCount || !api->nvmlDeviceGetHandleByIndex) {
        snprintf(ns->reason, sizeof ns->reason,
                 "NVML lacks nvmlDeviceGetCount_v2 / nvmlDeviceGetHandleByIndex_v2 (too old)");
        return -1;
    }
    unsigned n = 0;
    cp_nvml_return r = api->nvmlDeviceGetCount(&n);
    if (r != 0) {
        snprintf(ns->reason, sizeof ns->reason, "nvmlDeviceGetCount_v2 failed: %s (NVML error %d)",
                 err_text(api, r), r);
        return -1;
    }
    ns->ndev = 0;
    ns->ndev_listed = n;
    for (unsigned i = 0; i < n && ns->ndev < NS_MAX_DEVICES; i++) {
        ns_dev *d = &ns->dev[ns->ndev];
        memset(d, 0, sizeof *d);
        if (api->nvmlDeviceGetHandleByIndex(i, &d->h) != 0)
            continue;
        d->index = (int32_t)i;
        if (!api->nvmlDeviceGetName || api->nvmlDeviceGetName(d->h, d->name, sizeof d->name) != 0)
            snprintf(d->name, sizeof d->name, "GPU %u", i);
        d->name[sizeof d->name - 1] = 0;
        for (int c = 0; c < NCTR; c++) {
            char nm[64];
            snprintf(nm, sizeof nm, ctr_fmt[c], (int)i);
            d->site[c] = codeprof_site(nm, NULL, 0, CODEPROF_SITE_SCOPE);
        }
        ns->ndev++;
    }
    if (!ns->ndev) {
        snprintf(ns->reason, sizeof ns->reason, "NVML reports no usable device (%u listed)", n);
        return -1;
    }
    ns->api = api;
    return 0;
}

/* ---- one tick ---- */

static void read_device(const cp_nvml_api *api, cp_nvml_device h, ns_read *rd) {
    memset(rd, 0, sizeof *rd);
    cp_nvml_return r;
#define NS_Q(m, call)                                                                              \
    do {                                                                                           \
        r = (call);                                                                                \
        rd->ok[m] = r == 0;                                                                        \
        rd->err[m] = r;                                                                            \
    } while (0)
    NS_Q(CP_NVML_M_UTIL, api->nvmlDeviceGetUtilizationRates
                             ? api->nvmlDeviceGetUtilizationRates(h, &rd->util)
                             : -1);
    NS_Q(CP_NVML_M_MEMORY,
         api->nvmlDeviceGetMemoryInfo ? api->nvmlDeviceGetMemoryInfo(h, &rd->mem) : -1);
    NS_Q(CP_NVML_M_POWER,
         api->nvmlDeviceGetPowerUsage ? api->nvmlDeviceGetPowerUsage(h, &rd->power_mw) : -1);
    NS_Q(CP_NVML_M_TEMP,
         api->nvmlDeviceGetTemperature
             ? api->nvmlDeviceGetTemperature(h, CP_NVML_TEMPERATURE_GPU, &rd->temp_c)
             : -1);
    NS_Q(CP_NVML_M_SM_CLOCK, api->nvmlDeviceGetClockInfo
                                 ? api->nvmlDeviceGetClockInfo(h, CP_NVML_CLOCK_SM, &rd->sm_mhz)
                                 : -1);
#undef NS_Q
}

static void sample_put(cp_nvml_sampler *ns, const cp_mgpu_sample *smp) {
    if (!ns->max_samples) {
        ns->dropped++;
        return;
    }
    if (!ns->head_cap && !ns->ring_cap) {
        ns->head_cap = ns->max_samples / 2;
        ns->ring_cap = ns->max_samples - ns->head_cap;
    }
    if (ns->head_n < ns->head_cap) {
        if (ns->head_n == ns->head_alloc) {
            uint32_t na = ns->head_alloc ? 2 * ns->head_alloc : 64;
            if (na > ns->head_cap)
                na = ns->head_cap;
            cp_mgpu_sample *nh = realloc(ns->head, (size_t)na * sizeof *nh);
            if (!nh) {
                ns->dropped++;
                return;
            }
            ns->head = nh;
            ns->head_alloc = na;
        }
        ns->head[ns->head_n++] = *smp;
        return;
    }
    if (!ns->ring) {
        ns->ring = malloc((size_t)ns->ring_cap * sizeof *ns->ring);
        if (!ns->ring) {
            ns->dropped++;
            return;
        }
    }
    if (ns->ring_total >= ns->ring_cap)
        ns->dropped++; /* the oldest of the ring falls out */
    ns->ring[ns->ring_pos] = *smp;
    ns->ring_pos = (ns->ring_pos + 1) % ns->ring_cap;
    ns->ring_total++;
}

static void put_counter(cp_nvml_sampler *ns, uint64_t t, uint32_t site, uint64_t v) {
    if (!ns->ctr && ns->max_samples)
        ns->ctr = cp_timeline_new(ns->max_samples * NCTR > UINT32_MAX / 2 ? UINT32_MAX / 2
                                                                          : ns->max_samples * NCTR,
                                  0, 0);
    if (!ns->ctr)
        return;
    cp_tl_event e = {
        t, (int64_t)(v > INT64_MAX ? INT64_MAX : v), site, 0, CP_EV_COUNTER, CP_TLF_PROCESS, 0};
    cp_timeline_put(ns->ctr, &e);
}

/* Folds one device's reading in.  mu held. */
static void fold(cp_nvml_sampler *ns, ns_dev *d, const ns_read *rd, uint64_t t) {
    cp_mgpu_sample smp;
    memset(&smp, 0, sizeof smp);
    smp.t_ns = t;
    smp.device = d->index;
    d->samples++;
    for (int m = 0; m < CP_NVML_M_COUNT_; m++)
        if (!rd->ok[m])
            d->errors[m]++;
    if (rd->ok[CP_NVML_M_UTIL]) {
        uint32_t u = rd->util.gpu;
        smp.util_pct = u;
        smp.mem_util_pct = rd->util.memory;
        d->n_util++;
        d->util_sum += u;
        d->mem_util_sum += rd->util.memory;
        if (u > d->util_max)
            d->util_max = u;
        if (u == 0) {
            d->idle_samples++;
            if (!d->in_idle) {
                d->in_idle = 1;
                uint64_t prev =
                    d->last_t ? d->last_t : (t > ns->interval_ns ? t - ns->interval_ns : 0);
                d->idle_from_t = prev < t ? prev : t;
            }
            uint64_t run = t - d->idle_from_t;
            if (run > d->longest_idle_ns)
                d->longest_idle_ns = run;
        } else {
            d->in_idle = 0;
        }
        put_counter(ns, t, d->site[CTR_UTIL], u);
    }
    if (rd->ok[CP_NVML_M_MEMORY]) {
        smp.mem_used = rd->mem.used;
        d->mem_total = rd->mem.total;
        d->n_mem++;
        d->mem_sum += (double)rd->mem.used;
        if (rd->mem.used > d->mem_max)
            d->mem_max = rd->mem.used;
        put_counter(ns, t, d->site[CTR_MEM], rd->mem.used);
    }
    if (rd->ok[CP_NVML_M_POWER]) {
        smp.power_mw = rd->power_mw;
        d->n_power++;
        d->power_sum_mw += rd->power_mw;
        if (rd->power_mw > d->power_max_mw)
            d->power_max_mw = rd->power_mw;
        put_counter(ns, t, d->site[CTR_POWER], (rd->power_mw + 500) / 1000);
    }
    if (rd->ok[CP_NVML_M_TEMP]) {
        smp.temp_c = rd->temp_c;
        d->n_temp++;
        if (rd->temp_c > d->temp_max)
            d->temp_max = rd->temp_c;
        put_counter(ns, t, d->site[CTR_TEMP], rd->temp_c);
    }
    if (rd->ok[CP_NVML_M_SM_CLOCK]) {
        smp.sm_mhz = rd->sm_mhz;
        d->n_clock++;
        d->clock_sum += rd->sm_mhz;
        put_counter(ns, t, d->site[CTR_CLOCK], rd->sm_mhz);
    }
    d->last_t = t;
    sample_put(ns, &smp);
}

void cp_nvml_sampler_tick(cp_nvml_sampler *ns, uint64_t t_ns) {
    if (!ns)
        return;
    pthread_mutex_lock(&ns->mu);
    if (!ns->ready || ns->child) {
        pthread_mutex_unlock(&ns->mu);
        return;
    }
    const cp_nvml_api *api = ns->api;
    uint64_t gen = ns->gen;
    uint32_t nd = ns->ndev;
    cp_nvml_device h[NS_MAX_DEVICES];
    for (uint32_t i = 0; i < nd; i++)
        h[i] = ns->dev[i].h;
    pthread_mutex_unlock(&ns->mu);

    /* NVML, no lock held */
    ns_read rd[NS_MAX_DEVICES];
    uint64_t t = t_ns ? t_ns : cp_clock_mono_ns();
    for (uint32_t i = 0; i < nd; i++)
        read_device(api, h[i], &rd[i]);

    char warn[CP_NVML_M_COUNT_ * NS_MAX_DEVICES][200];
    uint32_t nwarn = 0;
    pthread_mutex_lock(&ns->mu);
    if (gen != ns->gen) { /* reset meanwhile: this reading belongs to before */
        pthread_mutex_unlock(&ns->mu);
        return;
    }
    for (uint32_t i = 0; i < nd; i++) {
        ns_dev *d = &ns->dev[i];
        fold(ns, d, &rd[i], t);
        for (int m = 0; m < CP_NVML_M_COUNT_; m++)
            if (!rd[i].ok[m] && !d->warned[m]) {
                d->warned[m] = 1;
                snprintf(warn[nwarn++], sizeof warn[0],
                         "gpu%d (%.60s): the %s reading failed (%s, NVML error %d); it is left out "
                         "of the GPU utilization figures",
                         d->index, d->name, metric_name[m],
                         rd[i].err[m] == -1 ? "entry point missing" : err_text(api, rd[i].err[m]),
                         rd[i].err[m]);
            }
    }
    atomic_fetch_add_explicit(&ns->ticks, 1, memory_order_relaxed);
    pthread_mutex_unlock(&ns->mu);
    for (uint32_t i = 0; i < nwarn && ns->s; i++)
        codeprof_session_warn(ns->s, "gpu_metric_unavailable", warn[i]);
}

static uint64_t thread_cpu_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *thread_main(void *arg) {
    cp_nvml_sampler *ns = arg;
    pthread_mutex_lock(&ns->mu);
    while (!ns->quit) {
        struct timespec now, dl;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t nsx = (uint64_t)now.tv_nsec + ns->interval_ns;
        dl.tv_sec = now.tv_sec + (time_t)(nsx / 1000000000ull);
        dl.tv_nsec = (long)(nsx % 1000000000ull);
        int timed_out = 0;
        while (!ns->quit && !timed_out)
            timed_out = pthread_cond_timedwait(&ns->cv, &ns->mu, &dl) == ETIMEDOUT;
        if (ns->quit)
            break;
        pthread_mutex_unlock(&ns->mu);
        cp_nvml_sampler_tick(ns, 0);
        pthread_mutex_lock(&ns->mu);
    }
    ns->cpu_done_ns += thread_cpu_now();
    pthread_mutex_unlock(&ns->mu);
    return NULL;
}

int cp_nvml_sampler_start(cp_nvml_sampler *ns) {
    if (!ns)
        return -1;
    int pid = (int)getpid();
    pthread_mutex_lock(&ns->mu);
    if (!ns->interval_ns || ns->thread_pid == pid) {
        pthread_mutex_unlock(&ns->mu);
        return 0;
    }
    if (ns->child) {
        snprintf(ns->reason, sizeof ns->reason, "forked child: no NVML calls");
        ns->failed = 1;
        pthread_mutex_unlock(&ns->mu);
        return -1;
    }
    if (!ns->ready) {
        if (open_devices(ns) != 0) {
            ns->failed = 1;
            pthread_mutex_unlock(&ns->mu);
            return -1;
        }
        ns->ready = 1;
        ns->failed = 0;
        ns->reason[0] = 0;
    }
    ns->quit = 0;
    uint32_t listed = ns->ndev_listed;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&ns->th, NULL, thread_main, ns);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        ns->thread_pid = pid;
    else
        snprintf(ns->reason, sizeof ns->reason, "could not start the NVML sampler thread: %s",
                 strerror(rc));
    pthread_mutex_unlock(&ns->mu);
    if (rc == 0 && listed > NS_MAX_DEVICES && ns->s) {
        char msg[160];
        snprintf(msg, sizeof msg, "NVML lists %u devices; the first %d are sampled", listed,
                 NS_MAX_DEVICES);
        codeprof_session_warn(ns->s, "gpu_devices_capped", msg);
    }
    return rc == 0 ? 0 : -1;
}

void cp_nvml_sampler_stop(cp_nvml_sampler *ns) {
    if (!ns)
        return;
    pthread_mutex_lock(&ns->mu);
    if (ns->thread_pid != (int)getpid()) {
        pthread_mutex_unlock(&ns->mu);
        return;
    }
    ns->quit = 1;
    pthread_cond_broadcast(&ns->cv);
    pthread_t th = ns->th;
    ns->thread_pid = 0;
    pthread_mutex_unlock(&ns->mu);
    pthread_join(th, NULL);
}

void cp_nvml_sampler_reset(cp_nvml_sampler *ns) {
    if (!ns)
        return;
    pthread_mutex_lock(&ns->mu);
    ns->gen++;
    for (uint32_t i = 0; i < ns->ndev; i++) {
        ns_dev *d = &ns->dev[i];
        ns_dev keep = *d;
        memset(d, 0, sizeof *d);
        d->h = keep.h;
        d->index = keep.index;
        memcpy(d->name, keep.name, sizeof d->name);
        memcpy(d->site, keep.site, sizeof d->site);
    }
    ns->head_n = 0;
    free(ns->ring);
    ns->ring = NULL;
    ns->ring_pos = 0;
    ns->ring_total = 0;
    ns->dropped = 0;
    cp_timeline_free(ns->ctr);
    ns->ctr = NULL;
    atomic_store_explicit(&ns->ticks, 0, memory_order_relaxed);
    pthread_mutex_unlock(&ns->mu);
}

void cp_nvml_sampler_free(cp_nvml_sampler *ns) {
    if (!ns)
        return;
    cp_nvml_sampler_stop(ns);
    if (ns->own_inited && !ns->child && ns->own->nvmlShutdown)
        ns->own->nvmlShutdown();
    free(ns->head);
    free(ns->ring);
    cp_timeline_free(ns->ctr);
    pthread_mutex_destroy(&ns->mu);
    pthread_cond_destroy(&ns->cv);
    free(ns);
}

void cp_nvml_sampler_atfork_child(cp_nvml_sampler *ns) {
    if (!ns)
        return;
    /* Only the forking thread exists; `mu` may have been held by the
     * sampler thread.  The parent's stores are abandoned, not freed. */
    init_sync(ns);
    ns->thread_pid = 0;
    ns->quit = 0;
    ns->child = 1;
    ns->ready = 0;
    ns->own_inited = 0;
    ns->gen++;
    ns->ndev = 0;
    ns->head = NULL;
    ns->head_n = ns->head_alloc = 0;
    ns->ring = NULL;
    ns->ring_pos = 0;
    ns->ring_total = 0;
    ns->dropped = 0;
    ns->ctr = NULL;
    ns->cpu_done_ns = 0;
    atomic_store_explicit(&ns->ticks, 0, memory_order_relaxed);
}

uint64_t cp_nvml_sampler_fingerprint(cp_nvml_sampler *ns) {
    return ns ? atomic_load_explicit(&ns->ticks, memory_order_relaxed) : 0;
}

uint64_t cp_nvml_sampler_query_errors(cp_nvml_sampler *ns, uint32_t dev, int metric) {
    if (!ns || metric < 0 || metric >= CP_NVML_M_COUNT_)
        return 0;
    pthread_mutex_lock(&ns->mu);
    uint64_t r = dev < ns->ndev ? ns->dev[dev].errors[metric] : 0;
    pthread_mutex_unlock(&ns->mu);
    return r;
}

const char *cp_nvml_sampler_reason(cp_nvml_sampler *ns) {
    return ns ? ns->reason : "";
}

/* ---- the model ---- */


int cp_nvml_sampler_fill_model(cp_nvml_sampler *ns, struct cp_model *m) {
    if (!ns || !m)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&ns->mu);
    cp_mgpu *g = &m->gpu;
    if (ns->failed && (g->nvml.status == CP_GPU_LIB_NOT_TRIED || g->nvml.status == CP_GPU_LIB_OK)) {
        g->nvml.status = ns->child ? CP_GPU_LIB_DISABLED : CP_GPU_LIB_INIT_FAILED;
        snprintf(g->nvml.reason, sizeof g->nvml.reason, "%s", ns->reason);
    }
    uint32_t nd = 0;
    for (uint32_t i = 0; i < ns->ndev; i++)
        nd += ns->dev[i].samples ? 1u : 0u;
    if (nd) {
        cp_mgpu_device *nv = realloc(g->devices, ((size_t)g->ndevices + nd) * sizeof *nv);
        if (!nv) {
            rc = -1;
        } else {
            g->devices = nv;
            for (uint32_t i = 0; i < ns->ndev; i++) {
                const ns_dev *d = &ns->dev[i];
                if (!d->samples)
                    continue;
                cp_mgpu_device *o = &nv[g->ndevices++];
                memset(o, 0, sizeof *o);
                o->index = d->index;
                memcpy(o->name, d->name, sizeof o->name);
                o->mem_total = d->mem_total;
                o->samples = d->samples;
                if (d->n_util) {
                    o->util_mean = d->util_sum / (double)d->n_util;
                    o->mem_util_mean = d->mem_util_sum / (double)d->n_util;
                }
                o->util_max = d->util_max;
                if (d->n_mem)
                    o->mem_used_mean = (uint64_t)(d->mem_sum / (double)d->n_mem + 0.5);
                o->mem_used_max = d->mem_max;
                if (d->n_power)
                    o->power_mean_w = d->power_sum_mw / (double)d->n_power / 1000.0;
                o->power_max_w = d->power_max_mw / 1000.0;
                o->temp_max_c = d->temp_max;
                if (d->n_clock)
                    o->sm_clock_mean_mhz = d->clock_sum / (double)d->n_clock;
                o->idle_samples = d->idle_samples;
                o->longest_idle_ns = d->longest_idle_ns;
            }
        }
    }
    uint32_t nr =
        ns->ring ? (uint32_t)(ns->ring_total < ns->ring_cap ? ns->ring_total : ns->ring_cap) : 0;
    uint32_t want = ns->head_n + nr;
    if (want) {
        cp_mgpu_sample *sv = realloc(g->samples, ((size_t)g->nsamples + want) * sizeof *sv);
        if (!sv) {
            rc = -1;
        } else {
            g->samples = sv;
            memcpy(sv + g->nsamples, ns->head, (size_t)ns->head_n * sizeof *sv);
            g->nsamples += ns->head_n;
            uint32_t start = ns->ring_total < ns->ring_cap ? 0 : ns->ring_pos;
            for (uint32_t i = 0; i < nr; i++)
                sv[g->nsamples++] = ns->ring[(start + i) % ns->ring_cap];
        }
    }
    g->samples_dropped += ns->dropped;
    uint64_t cpu = ns->cpu_done_ns;
    if (ns->thread_pid == (int)getpid()) {
        clockid_t cid;
        struct timespec ts;
        if (pthread_getcpuclockid(ns->th, &cid) == 0 && clock_gettime(cid, &ts) == 0)
            cpu += (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    g->sampler_cpu_ns += cpu;
    if (cp_model_append_counters(m, ns->ctr) != 0)
        rc = -1;
    pthread_mutex_unlock(&ns->mu);
    return rc;
}
