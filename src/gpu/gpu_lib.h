/* gpu_lib.h -- the one place the CUDA driver, NVML and CUPTI are opened.
 *
 * Each library is opened with dlopen by explicit name (libcuda.so.1,
 * libnvidia-ml.so.1, libcupti.so; tests and users may name a file instead
 * with $CODEPROF_CUDA_LIBRARY, $CODEPROF_NVML_LIBRARY,
 * $CODEPROF_CUPTI_LIBRARY) and every entry point is looked up with dlsym on
 * that handle only: nothing is linked at build time and no symbol comes from
 * the global namespace.  The loader never initialises CUDA (no cuInit, no
 * context creation); it opens NVML (nvmlInit_v2) only when asked, for the
 * sampler.  Each library's outcome (CP_GPU_LIB_*, model_gpu.h) keeps the
 * loader's error text, so the report says which and why, once.
 *
 * Loading is once per process (cp_gpu_lib_get); the tables are read-only
 * afterwards.  In a forked child every library is marked
 * CP_GPU_LIB_DISABLED ("forked child: no CUDA calls") by
 * cp_gpu_lib_atfork_child: a child must make no CUDA call.
 *
 * The types below mirror the C ABI of the real headers (which are not
 * needed to build): handles are opaque pointers, results are ints.
 */
#ifndef CP_GPU_LIB_H
#define CP_GPU_LIB_H

#include <stddef.h>
#include <stdint.h>

#include "model/model_gpu.h"

/* ---- CUDA driver API (subset) ---- */
typedef int cp_cu_result;          /* CUresult: 0 = CUDA_SUCCESS */
typedef void *cp_cu_context;       /* CUcontext */
typedef void *cp_cu_stream;        /* CUstream  */
typedef void *cp_cu_event;         /* CUevent   */
typedef int cp_cu_device;          /* CUdevice  */
enum {
    CP_CUDA_SUCCESS = 0,
    CP_CUDA_ERROR_NOT_INITIALIZED = 3,
    CP_CUDA_ERROR_INVALID_CONTEXT = 201,
    CP_CUDA_ERROR_NOT_READY = 600,
};
enum { CP_CU_EVENT_DEFAULT = 0, CP_CU_EVENT_BLOCKING_SYNC = 1, CP_CU_EVENT_DISABLE_TIMING = 2 };

typedef struct cp_cuda_api {
    cp_cu_result (*cuDriverGetVersion)(int *version);
    cp_cu_result (*cuCtxGetCurrent)(cp_cu_context *ctx);
    cp_cu_result (*cuCtxGetDevice)(cp_cu_device *dev);
    cp_cu_result (*cuCtxPushCurrent)(cp_cu_context ctx);   /* cuCtxPushCurrent_v2 */
    cp_cu_result (*cuCtxPopCurrent)(cp_cu_context *ctx);   /* cuCtxPopCurrent_v2  */
    cp_cu_result (*cuEventCreate)(cp_cu_event *ev, unsigned flags);
    cp_cu_result (*cuEventRecord)(cp_cu_event ev, cp_cu_stream stream);
    cp_cu_result (*cuEventQuery)(cp_cu_event ev);
    cp_cu_result (*cuEventSynchronize)(cp_cu_event ev);
    cp_cu_result (*cuEventElapsedTime)(float *ms, cp_cu_event start, cp_cu_event end);
    cp_cu_result (*cuEventDestroy)(cp_cu_event ev);        /* cuEventDestroy_v2   */
    cp_cu_result (*cuMemGetInfo)(size_t *free_b, size_t *total_b); /* cuMemGetInfo_v2 */
    cp_cu_result (*cuDeviceTotalMem)(size_t *bytes, cp_cu_device dev); /* _v2 */
    cp_cu_result (*cuGetErrorString)(cp_cu_result r, const char **s);
} cp_cuda_api;

/* ---- NVML (subset) ---- */
typedef int cp_nvml_return;        /* nvmlReturn_t: 0 = NVML_SUCCESS */
typedef void *cp_nvml_device;      /* nvmlDevice_t */
typedef struct cp_nvml_utilization { unsigned int gpu, memory; } cp_nvml_utilization;
typedef struct cp_nvml_memory { unsigned long long total, free, used; } cp_nvml_memory;
enum { CP_NVML_TEMPERATURE_GPU = 0, CP_NVML_CLOCK_SM = 1 };

typedef struct cp_nvml_api {
    cp_nvml_return (*nvmlInit)(void);                                   /* nvmlInit_v2 */
    cp_nvml_return (*nvmlShutdown)(void);
    const char *(*nvmlErrorString)(cp_nvml_return r);
    cp_nvml_return (*nvmlSystemGetDriverVersion)(char *buf, unsigned len);
    cp_nvml_return (*nvmlDeviceGetCount)(unsigned *n);                  /* _v2 */
    cp_nvml_return (*nvmlDeviceGetHandleByIndex)(unsigned i, cp_nvml_device *d); /* _v2 */
    cp_nvml_return (*nvmlDeviceGetName)(cp_nvml_device d, char *buf, unsigned len);
    cp_nvml_return (*nvmlDeviceGetUtilizationRates)(cp_nvml_device d, cp_nvml_utilization *u);
    cp_nvml_return (*nvmlDeviceGetMemoryInfo)(cp_nvml_device d, cp_nvml_memory *m);
    cp_nvml_return (*nvmlDeviceGetPowerUsage)(cp_nvml_device d, unsigned *mw);
    cp_nvml_return (*nvmlDeviceGetTemperature)(cp_nvml_device d, int sensor, unsigned *c);
    cp_nvml_return (*nvmlDeviceGetClockInfo)(cp_nvml_device d, int type, unsigned *mhz);
} cp_nvml_api;

/* ---- CUPTI callback API (subset) ---- */
typedef int cp_cupti_result;       /* CUptiResult: 0 = CUPTI_SUCCESS */
typedef void *cp_cupti_subscriber; /* CUpti_SubscriberHandle */
typedef void (*cp_cupti_callback)(void *userdata, int domain, uint32_t cbid, const void *cbdata);
enum { CP_CUPTI_DOMAIN_DRIVER_API = 1, CP_CUPTI_DOMAIN_RUNTIME_API = 2 };
enum { CP_CUPTI_API_ENTER = 0, CP_CUPTI_API_EXIT = 1 };
/* The first fields of CUpti_CallbackData (the part read). */
typedef struct cp_cupti_cbdata {
    int callbackSite;              /* CP_CUPTI_API_ENTER / _EXIT */
    const char *functionName;
    const void *functionParams;
    void *functionReturnValue;
    const char *symbolName;
    cp_cu_context context;
    uint32_t contextUid;
    uint64_t *correlationData;
    uint32_t correlationId;
} cp_cupti_cbdata;

typedef struct cp_cupti_api {
    cp_cupti_result (*cuptiGetVersion)(uint32_t *version);
    cp_cupti_result (*cuptiSubscribe)(cp_cupti_subscriber *sub, cp_cupti_callback cb, void *ud);
    cp_cupti_result (*cuptiUnsubscribe)(cp_cupti_subscriber sub);
    cp_cupti_result (*cuptiEnableDomain)(uint32_t enable, cp_cupti_subscriber sub, int domain);
    cp_cupti_result (*cuptiEnableCallback)(uint32_t enable, cp_cupti_subscriber sub, int domain,
                                           uint32_t cbid);
    cp_cupti_result (*cuptiGetResultString)(cp_cupti_result r, const char **s);
} cp_cupti_api;

/* What was loaded.  Status and reason of each library in model_gpu.h's
 * cp_mgpu_lib form; an API table is usable only when its status is
 * CP_GPU_LIB_OK. */
typedef struct cp_gpu_libs {
    cp_mgpu_lib driver, nvml, cupti;
    cp_cuda_api cu;
    cp_nvml_api nvml_api;
    cp_cupti_api cupti_api;
    int nvml_inited;  /* nvmlInit succeeded (cp_gpu_lib_nvml_init) */
} cp_gpu_libs;

/* Loads the driver (and, on first call, looks for CUPTI) once per process;
 * thread-safe.  Never NULL.  The driver's status says whether it is usable;
 * a context is a separate question (cp_gpu_ops: CP_GPU_LIB_NO_CONTEXT). */
const cp_gpu_libs *cp_gpu_lib_get(void);
/* Opens and initialises NVML (once); returns 0 when usable. */
int cp_gpu_lib_nvml_init(void);
/* Fork child: every library marked disabled; no CUDA or NVML call after. */
void cp_gpu_lib_atfork_child(void);
/* Tests: forget everything loaded (dlclose) so the next get loads again
 * with the current environment.  Not thread-safe; no session may use GPU
 * profiling meanwhile. */
void cp_gpu_lib_reset_for_tests(void);

#endif /* CP_GPU_LIB_H */
