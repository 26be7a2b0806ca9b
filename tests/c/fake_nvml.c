/* fake_nvml.c -- a stand-in for libnvidia-ml.so.1 with deterministic,
 * programmable behaviour, built as a shared library for the tests
 * (tests/c/test_nvml_sampler.c; CMake block "GPU fakes (gpusync)").
 *
 * It exports the NVML entry points the profiler uses, with NVML's C ABI
 * (results are ints, device handles opaque pointers), and fake_nvml_*
 * control functions the tests look up with dlsym:
 *  - a device count, names and total memory;
 *  - per device and metric, a sequence of values: the k-th query returns
 *    value k (the last one repeats once the sequence is used up);
 *  - per device and metric, an error code returned instead (e.g.
 *    NVML_ERROR_NOT_SUPPORTED for a GPU without power readings);
 *  - nvmlInit failing with a given code;
 *  - counters of calls (all entry points) so a test can prove that no
 *    NVML call was made (a forked child).
 * Built a second time with FAKE_NVML_OLD defined: that library lacks
 * nvmlInit_v2 and the _v2 device entry points (an old driver).
 * Every entry point takes one mutex: the sampler thread and the test
 * thread use it at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FAKE_EXPORT __attribute__((visibility("default")))

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_UNKNOWN = 999,
};

/* metrics, as the control functions name them */
enum {
    FAKE_NVML_UTIL = 0,     /* utilization.gpu, percent        */
    FAKE_NVML_MEM_UTIL = 1, /* utilization.memory, percent     */
    FAKE_NVML_MEM_USED = 2, /* bytes                           */
    FAKE_NVML_POWER = 3,    /* mW                              */
    FAKE_NVML_TEMP = 4,     /* degrees C                       */
    FAKE_NVML_SM_CLOCK = 5, /* MHz                             */
    FAKE_NVML_METRICS = 6
};

#define FAKE_MAX_DEV 32
#define FAKE_MAX_SEQ 256

typedef struct fake_metric {
    unsigned long long seq[FAKE_MAX_SEQ];
    unsigned n;    /* values programmed (0: the metric reads 0) */
    unsigned next; /* queries answered                           */
    int error;     /* returned instead when non-zero             */
} fake_metric;

typedef struct fake_dev {
    int magic;
    unsigned index;
    char name[64];
    unsigned long long mem_total;
    fake_metric m[FAKE_NVML_METRICS];
} fake_dev;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static fake_dev devs[FAKE_MAX_DEV];
static unsigned ndev = 1;
static int init_result;
static int inited;
static _Atomic unsigned long calls;
static _Atomic unsigned long metric_calls;

static void dev_defaults(unsigned i) {
    fake_dev *d = &devs[i];
    memset(d, 0, sizeof *d);
    d->magic = 0x4e564d4c;
    d->index = i;
    snprintf(d->name, sizeof d->name, "Fake GPU %u", i);
    d->mem_total = 16ull << 30;
}

static void reset_locked(void) {
    for (unsigned i = 0; i < FAKE_MAX_DEV; i++)
        dev_defaults(i);
    ndev = 1;
    init_result = 0;
    inited = 0;
}

__attribute__((constructor)) static void fake_nvml_ctor(void) {
    reset_locked();
}

/* ---- control ---- */

FAKE_EXPORT void fake_nvml_reset(void) {
    pthread_mutex_lock(&mu);
    reset_locked();
    pthread_mutex_unlock(&mu);
    atomic_store(&calls, 0);
    atomic_store(&metric_calls, 0);
}

FAKE_EXPORT void fake_nvml_set_devices(unsigned n) {
    pthread_mutex_lock(&mu);
    ndev = n > FAKE_MAX_DEV ? FAKE_MAX_DEV : n;
    pthread_mutex_unlock(&mu);
}

FAKE_EXPORT void fake_nvml_set_init_result(int r) {
    pthread_mutex_lock(&mu);
    init_result = r;
    pthread_mutex_unlock(&mu);
}

FAKE_EXPORT void fake_nvml_set_mem_total(unsigned dev, unsigned long long bytes) {
    if (dev >= FAKE_MAX_DEV)
        return;
    pthread_mutex_lock(&mu);
    devs[dev].mem_total = bytes;
    pthread_mutex_unlock(&mu);
}

/* The values `metric` of device `dev` reads, query after query. */
FAKE_EXPORT void fake_nvml_set_sequence(unsigned dev, int metric, const unsigned long long *v,
                                        unsigned n) {
    if (dev >= FAKE_MAX_DEV || metric < 0 || metric >= FAKE_NVML_METRICS)
        return;
    pthread_mutex_lock(&mu);
    fake_metric *m = &devs[dev].m[metric];
    m->n = n > FAKE_MAX_SEQ ? FAKE_MAX_SEQ : n;
    memcpy(m->seq, v, m->n * sizeof *v);
    m->next = 0;
    pthread_mutex_unlock(&mu);
}

/* `metric` of `dev` answers `error` (0: values again). */
FAKE_EXPORT void fake_nvml_set_error(unsigned dev, int metric, int error) {
    if (dev >= FAKE_MAX_DEV || metric < 0 || metric >= FAKE_NVML_METRICS)
        return;
    pthread_mutex_lock(&mu);
    devs[dev].m[metric].error = error;
    pthread_mutex_unlock(&mu);
}

/* Entry points called since the last reset (all / device metric queries). */
FAKE_EXPORT unsigned long fake_nvml_calls(void) {
    return atomic_load(&calls);
}
FAKE_EXPORT unsigned long fake_nvml_metric_calls(void) {
    return atomic_load(&metric_calls);
}
FAKE_EXPORT int fake_nvml_inited(void) {
    pthread_mutex_lock(&mu);
    int r = inited;
    pthread_mutex_unlock(&mu);
    return r;
}

/* ---- NVML ---- */

static fake_dev *dev_of(void *h) {
    fake_dev *d = h;
    if (!d || d < devs || d >= devs + FAKE_MAX_DEV || d->magic != 0x4e564d4c)
        return NULL;
    return d;
}

/* The next value of a metric, or its error. */
static int read_metric(void *h, int metric, unsigned long long *out) {
    atomic_fetch_add(&calls, 1);
    atomic_fetch_add(&metric_calls, 1);
    pthread_mutex_lock(&mu);
    int rc = NVML_SUCCESS;
    fake_dev *d = dev_of(h);
    if (!inited)
        rc = NVML_ERROR_UNINITIALIZED;
    else if (!d || d->index >= ndev)
        rc = NVML_ERROR_INVALID_ARGUMENT;
    else if (d->m[metric].error)
        rc = d->m[metric].error;
    else {
        fake_metric *m = &d->m[metric];
        unsigned k = m->next < m->n ? m->next : (m->n ? m->n - 1 : 0);
        *out = m->n ? m->seq[k] : 0;
        if (m->next < UINT32_MAX)
            m->next++;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static int do_init(void) {
    atomic_fetch_add(&calls, 1);
    pthread_mutex_lock(&mu);
    int r = init_result;
    if (r == 0)
        inited = 1;
    pthread_mutex_unlock(&mu);
    return r;
}

#ifndef FAKE_NVML_OLD
FAKE_EXPORT int nvmlInit_v2(void) {
    return do_init();
}
#endif
FAKE_EXPORT int nvmlInit(void) {
    return do_init();
}

FAKE_EXPORT int nvmlShutdown(void) {
    atomic_fetch_add(&calls, 1);
    pthread_mutex_lock(&mu);
    int r = inited ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    inited = 0;
    pthread_mutex_unlock(&mu);
    return r;
}

FAKE_EXPORT const char *nvmlErrorString(int r) {
    switch (r) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_UNINITIALIZED:
        return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
        return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    default:
        return "Unknown Error";
    }
}

FAKE_EXPORT int nvmlSystemGetDriverVersion(char *buf, unsigned len) {
    atomic_fetch_add(&calls, 1);
    if (!buf || len < 8)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    snprintf(buf, len, "%s", "550.00.fake");
    return NVML_SUCCESS;
}

static int get_count(unsigned *n) {
    atomic_fetch_add(&calls, 1);
    if (!n)
        return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&mu);
    int rc = inited ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    if (!rc)
        *n = ndev;
    pthread_mutex_unlock(&mu);
    return rc;
}

static int get_handle(unsigned i, void **d) {
    atomic_fetch_add(&calls, 1);
    if (!d)
        return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&mu);
    int rc = !inited ? NVML_ERROR_UNINITIALIZED
                     : (i >= ndev ? NVML_ERROR_INVALID_ARGUMENT : NVML_SUCCESS);
    if (!rc)
        *d = &devs[i];
    pthread_mutex_unlock(&mu);
    return rc;
}

#ifndef FAKE_NVML_OLD
FAKE_EXPORT int nvmlDeviceGetCount_v2(unsigned *n) {
    return get_count(n);
}
FAKE_EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) {
    return get_handle(i, d);
}
#endif
FAKE_EXPORT int nvmlDeviceGetCount(unsigned *n) {
    return get_count(n);
}
FAKE_EXPORT int nvmlDeviceGetHandleByIndex(unsigned i, void **d) {
    return get_handle(i, d);
}

FAKE_EXPORT int nvmlDeviceGetName(void *h, char *buf, unsigned len) {
    atomic_fetch_add(&calls, 1);
    pthread_mutex_lock(&mu);
    fake_dev *d = dev_of(h);
    int rc = !inited ? NVML_ERROR_UNINITIALIZED : (!d || !buf ? NVML_ERROR_INVALID_ARGUMENT : 0);
    if (!rc)
        snprintf(buf, len, "%s", d->name);
    pthread_mutex_unlock(&mu);
    return rc;
}

typedef struct {
    unsigned int gpu, memory;
} fake_util;
typedef struct {
    unsigned long long total, free, used;
} fake_mem;

FAKE_EXPORT int nvmlDeviceGetUtilizationRates(void *h, fake_util *u) {
    unsigned long long g = 0, m = 0;
    if (!u)
        return NVML_ERROR_INVALID_ARGUMENT;
    int rc = read_metric(h, FAKE_NVML_UTIL, &g);
    if (rc)
        return rc;
    rc = read_metric(h, FAKE_NVML_MEM_UTIL, &m);
    if (rc)
        return rc;
    u->gpu = (unsigned)g;
    u->memory = (unsigned)m;
    return NVML_SUCCESS;
}

FAKE_EXPORT int nvmlDeviceGetMemoryInfo(void *h, fake_mem *out) {
    unsigned long long used = 0;
    if (!out)
        return NVML_ERROR_INVALID_ARGUMENT;
    int rc = read_metric(h, FAKE_NVML_MEM_USED, &used);
    if (rc)
        return rc;
    fake_dev *d = dev_of(h);
    out->total = d ? d->mem_total : 0;
    out->used = used;
    out->free = out->total > used ? out->total - used : 0;
    return NVML_SUCCESS;
}

FAKE_EXPORT int nvmlDeviceGetPowerUsage(void *h, unsigned *mw) {
    unsigned long long v = 0;
    if (!mw)
        return NVML_ERROR_INVALID_ARGUMENT;
    int rc = read_metric(h, FAKE_NVML_POWER, &v);
    if (!rc)
        *mw = (unsigned)v;
    return rc;
}

FAKE_EXPORT int nvmlDeviceGetTemperature(void *h, int sensor, unsigned *c) {
    unsigned long long v = 0;
    if (!c || sensor != 0) /* NVML_TEMPERATURE_GPU */
        return NVML_ERROR_INVALID_ARGUMENT;
    int rc = read_metric(h, FAKE_NVML_TEMP, &v);
    if (!rc)
        *c = (unsigned)v;
    return rc;
}

FAKE_EXPORT int nvmlDeviceGetClockInfo(void *h, int type, unsigned *mhz) {
    unsigned long long v = 0;
    if (!mhz || type != 1) /* NVML_CLOCK_SM */
        return NVML_ERROR_INVALID_ARGUMENT;
    int rc = read_metric(h, FAKE_NVML_SM_CLOCK, &v);
    if (!rc)
        *mhz = (unsigned)v;
    return rc;
}
