/* gpu_lib.c -- the one place the CUDA driver, NVML and CUPTI are opened
 * (gpu_lib.h).
 *
 * dlopen(RTLD_NOW | RTLD_LOCAL) by explicit name (or the file named by the
 * $CODEPROF_*_LIBRARY override), dlsym on that handle only.  The driver
 * and CUPTI load together on the first cp_gpu_lib_get (CUPTI only when the
 * driver is usable), NVML on the first cp_gpu_lib_nvml_init.  One mutex
 * serialises loading; a published flag (acquire/release) lets readers skip
 * it afterwards.  The tables never change once published, except in a
 * forked child (cp_gpu_lib_atfork_child, which runs with one thread).
 */
#include "gpu/gpu_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cuEventElapsedTime and the _v2 entry points exist since CUDA 4.0; the
 * newest entry point the recorder needs (cuCtxGetDevice with a current
 * context pushed by another thread) is older than 9.0.  10.0 is the oldest
 * driver torch wheels of recent years accept. */
#define CP_CUDA_MIN_VERSION  10000
#define CP_CUPTI_MIN_VERSION 10 /* CUPTI API version of CUDA 10.0 */

static cp_gpu_libs libs_g;
static void *h_cuda, *h_nvml, *h_cupti;
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int driver_loaded; /* libs_g.driver/cupti final */
static atomic_int nvml_loaded;   /* libs_g.nvml final */
static atomic_int forked;        /* this process is a fork child */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static const char forked_reason[] = "forked child: no CUDA calls in a DataLoader worker";

static void set_lib(cp_mgpu_lib *l, int status, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_lib(cp_mgpu_lib *l, int status, const char *path, const char *fmt, ...) {
    l->status = status;
    if (path) {
        strncpy(l->path, path, sizeof l->path - 1);
        l->path[sizeof l->path - 1] = 0;
    }
    l->reason[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->reason, sizeof l->reason, fmt, ap);
        va_end(ap);
    }
}

/* Opens the library named by $env, else the first of names[] that opens.
 * NULL with l set to NOT_FOUND and the loader's text of the first name
 * tried (the canonical one) otherwise. */
static void *open_lib(cp_mgpu_lib *l, const char *env, const char *const *names) {
    const char *over = getenv(env);
    if (over && *over) {
        void *h = dlopen(over, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            set_lib(l, CP_GPU_LIB_NOT_FOUND, over, "%s (named by $%s)", e ? e : over, env);
            return NULL;
        }
        set_lib(l, CP_GPU_LIB_OK, over, NULL);
        return h;
    }
    char first_err[256] = "";
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            set_lib(l, CP_GPU_LIB_OK, names[i], NULL);
            return h;
        }
        if (i == 0) {
            const char *e = dlerror();
            snprintf(first_err, sizeof first_err, "%s", e ? e : names[0]);
        }
    }
    set_lib(l, CP_GPU_LIB_NOT_FOUND, names[0], "%s", first_err);
    return NULL;
}

/* Looks every entry point of `syms` up on h (no global lookup).  On the
 * first missing one: TOO_OLD naming it, returns -1. */
typedef struct sym_spec {
    const char *name;
    size_t off; /* offset of the function pointer in the table */
    int optional;
} sym_spec;

static int bind_all(cp_mgpu_lib *l, void *h, void *table, const sym_spec *syms) {
    for (int i = 0; syms[i].name; i++) {
        dlerror();
        void *p = dlsym(h, syms[i].name);
        if (!p && !syms[i].optional) {
            set_lib(l, CP_GPU_LIB_TOO_OLD, NULL,
                    "%s has no entry point %s (a newer library is needed)", l->path, syms[i].name);
            return -1;
        }
        memcpy((char *)table + syms[i].off, &p, sizeof p);
    }
    return 0;
}

#define CU(f, n)                                                                                   \
    { n, offsetof(cp_cuda_api, f), 0 }
static const sym_spec cuda_syms[] = {CU(cuDriverGetVersion, "cuDriverGetVersion"),
                                     CU(cuCtxGetCurrent, "cuCtxGetCurrent"),
                                     CU(cuCtxGetDevice, "cuCtxGetDevice"),
                                     CU(cuCtxPushCurrent, "cuCtxPushCurrent_v2"),
                                     CU(cuCtxPopCurrent, "cuCtxPopCurrent_v2"),
                                     CU(cuEventCreate, "cuEventCreate"),
                                     CU(cuEventRecord, "cuEventRecord"),
                                     CU(cuEventQuery, "cuEventQuery"),
                                     CU(cuEventSynchronize, "cuEventSynchronize"),
                                     CU(cuEventElapsedTime, "cuEventElapsedTime"),
                                     CU(cuEventDestroy, "cuEventDestroy_v2"),
                                     CU(cuMemGetInfo, "cuMemGetInfo_v2"),
                                     CU(cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
                                     CU(cuGetErrorString, "cuGetErrorString"),
                                     {NULL, 0, 0}};
#undef CU

#define NV(f, n, o)                                                                                \
    { n, offsetof(cp_nvml_api, f), o }
static const sym_spec nvml_syms[] = {
    NV(nvmlInit, "nvmlInit_v2", 0),
    NV(nvmlShutdown, "nvmlShutdown", 0),
    NV(nvmlErrorString, "nvmlErrorString", 0),
    NV(nvmlSystemGetDriverVersion, "nvmlSystemGetDriverVersion", 1),
    NV(nvmlDeviceGetCount, "nvmlDeviceGetCount_v2", 0),
    NV(nvmlDeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2", 0),
    NV(nvmlDeviceGetName, "nvmlDeviceGetName", 0),
    NV(nvmlDeviceGetUtilizationRates, "nvmlDeviceGetUtilizationRates", 0),
    NV(nvmlDeviceGetMemoryInfo, "nvmlDeviceGetMemoryInfo", 0),
    NV(nvmlDeviceGetPowerUsage, "nvmlDeviceGetPowerUsage", 0),
    NV(nvmlDeviceGetTemperature, "nvmlDeviceGetTemperature", 0),
    NV(nvmlDeviceGetClockInfo, "nvmlDeviceGetClockInfo", 0),
    {NULL, 0, 0}};
#undef NV

#define CT(f, n)                                                                                   \
    { n, offsetof(cp_cupti_api, f), 0 }
static const sym_spec cupti_syms[] = {CT(cuptiGetVersion, "cuptiGetVersion"),
                                      CT(cuptiSubscribe, "cuptiSubscribe"),
                                      CT(cuptiUnsubscribe, "cuptiUnsubscribe"),
                                      CT(cuptiEnableDomain, "cuptiEnableDomain"),
                                      CT(cuptiEnableCallback, "cuptiEnableCallback"),
                                      CT(cuptiGetResultString, "cuptiGetResultString"),
                                      {NULL, 0, 0}};
#undef CT

static void atfork_child_handler(void) {
    cp_gpu_lib_atfork_child();
}
static void register_atfork(void) {
    pthread_atfork(NULL, NULL, atfork_child_handler);
}

static void load_cupti(void) {
    static const char *const names[] = {"libcupti.so", "libcupti.so.12", "libcupti.so.11.8", NULL};
    cp_mgpu_lib *l = &libs_g.cupti;
    h_cupti = open_lib(l, "CODEPROF_CUPTI_LIBRARY", names);
    if (!h_cupti)
        return;
    if (bind_all(l, h_cupti, &libs_g.cupti_api, cupti_syms) != 0)
        return;
    uint32_t v = 0;
    if (libs_g.cupti_api.cuptiGetVersion(&v) != 0) {
        set_lib(l, CP_GPU_LIB_INIT_FAILED, NULL, "cuptiGetVersion failed in %s", l->path);
        return;
    }
    l->version = (int)v;
    if (v < CP_CUPTI_MIN_VERSION)
        set_lib(l, CP_GPU_LIB_TOO_OLD, NULL, "%s is CUPTI API version %u; %d or newer is needed",
                l->path, v, CP_CUPTI_MIN_VERSION);
}

static void load_driver(void) {
    static const char *const names[] = {"libcuda.so.1", "libcuda.so", NULL};
    cp_mgpu_lib *l = &libs_g.driver;
    h_cuda = open_lib(l, "CODEPROF_CUDA_LIBRARY", names);
    if (!h_cuda)
        goto no_cupti;
    if (bind_all(l, h_cuda, &libs_g.cu, cuda_syms) != 0)
        goto no_cupti;
    int v = 0;
    /* cuDriverGetVersion works before cuInit (it initialises nothing). */
    if (libs_g.cu.cuDriverGetVersion(&v) != CP_CUDA_SUCCESS) {
        set_lib(l, CP_GPU_LIB_INIT_FAILED, NULL, "cuDriverGetVersion failed in %s", l->path);
        goto no_cupti;
    }
    l->version = v;
    if (v < CP_CUDA_MIN_VERSION) {
        set_lib(l, CP_GPU_LIB_TOO_OLD, NULL,
                "%s is CUDA driver version %d.%d; %d.%d or newer is needed", l->path, v / 1000,
                (v % 1000) / 10, CP_CUDA_MIN_VERSION / 1000, (CP_CUDA_MIN_VERSION % 1000) / 10);
        goto no_cupti;
    }
    load_cupti();
    return;
no_cupti:
    set_lib(&libs_g.cupti, CP_GPU_LIB_NOT_TRIED, "", "not loaded: the CUDA driver is not usable");
}

const cp_gpu_libs *cp_gpu_lib_get(void) {
    if (atomic_load_explicit(&driver_loaded, memory_order_acquire))
        return &libs_g;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&load_mu);
    if (!atomic_load_explicit(&driver_loaded, memory_order_relaxed)) {
        if (atomic_load(&forked)) {
            set_lib(&libs_g.driver, CP_GPU_LIB_DISABLED, "", "%s", forked_reason);
            set_lib(&libs_g.cupti, CP_GPU_LIB_DISABLED, "", "%s", forked_reason);
        } else {
            load_driver();
        }
        atomic_store_explicit(&driver_loaded, 1, memory_order_release);
    }
    pthread_mutex_unlock(&load_mu);
    return &libs_g;
}

int cp_gpu_lib_nvml_init(void) {
    if (!atomic_load_explicit(&nvml_loaded, memory_order_acquire)) {
        pthread_once(&atfork_once, register_atfork);
        pthread_mutex_lock(&load_mu);
        if (!atomic_load_explicit(&nvml_loaded, memory_order_relaxed)) {
            static const char *const names[] = {"libnvidia-ml.so.1", "libnvidia-ml.so", NULL};
            cp_mgpu_lib *l = &libs_g.nvml;
            if (atomic_load(&forked)) {
                set_lib(l, CP_GPU_LIB_DISABLED, "", "%s", forked_reason);
            } else if ((h_nvml = open_lib(l, "CODEPROF_NVML_LIBRARY", names)) &&
                       bind_all(l, h_nvml, &libs_g.nvml_api, nvml_syms) == 0) {
                cp_nvml_return r = libs_g.nvml_api.nvmlInit();
                if (r != 0) {
                    const char *e = libs_g.nvml_api.nvmlErrorString(r);
                    set_lib(l, CP_GPU_LIB_INIT_FAILED, NULL, "nvmlInit_v2 failed: %s (%d)",
                            e ? e : "unknown error", r);
                } else {
                    libs_g.nvml_inited = 1;
                    char buf[96] = "";
                    if (libs_g.nvml_api.nvmlSystemGetDriverVersion &&
                        libs_g.nvml_api.nvmlSystemGetDriverVersion(buf, sizeof buf) == 0) {
                        /* "535.104.05" -> 535104 */
                        unsigned maj = 0, min = 0;
                        if (sscanf(buf, "%u.%u", &maj, &min) >= 1)
                            l->version = (int)(maj * 1000 + min);
                    }
                }
            }
            atomic_store_explicit(&nvml_loaded, 1, memory_order_release);
        }
        pthread_mutex_unlock(&load_mu);
    }
    return libs_g.nvml.status == CP_GPU_LIB_OK ? 0 : -1;
}

void cp_gpu_lib_atfork_child(void) {
    /* One thread exists: the mutex may have been held by a thread that is
     * gone; make a fresh one. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&load_mu, &fresh, sizeof fresh);
    atomic_store(&forked, 1);
    set_lib(&libs_g.driver, CP_GPU_LIB_DISABLED, NULL, "%s", forked_reason);
    set_lib(&libs_g.cupti, CP_GPU_LIB_DISABLED, NULL, "%s", forked_reason);
    set_lib(&libs_g.nvml, CP_GPU_LIB_DISABLED, NULL, "%s", forked_reason);
    libs_g.nvml_inited = 0; /* the parent's NVML is not shut down from here */
    atomic_store(&driver_loaded, 1);
    atomic_store(&nvml_loaded, 1);
}

void cp_gpu_lib_reset_for_tests(void) {
    pthread_mutex_lock(&load_mu);
    if (libs_g.nvml_inited && libs_g.nvml_api.nvmlShutdown)
        libs_g.nvml_api.nvmlShutdown();
    if (h_cupti)
        dlclose(h_cupti);
    if (h_nvml)
        dlclose(h_nvml);
    if (h_cuda)
        dlclose(h_cuda);
    h_cupti = h_nvml = h_cuda = NULL;
    memset(&libs_g, 0, sizeof libs_g);
    atomic_store(&forked, 0);
    atomic_store(&driver_loaded, 0);
    atomic_store(&nvml_loaded, 0);
    pthread_mutex_unlock(&load_mu);
}
