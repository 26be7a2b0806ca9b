/* gpu_fakes_fixture.h -- the GPU fakes for the C tests (gpusync): opens
 * tests/c/fake_nvml.c / fake_cupti.c, built as shared libraries, by the
 * paths CMake puts in the environment, and fills the profiler's API tables
 * (gpu_lib.h) from them with dlsym on that handle, as the loader does. */
#ifndef CP_TEST_GPU_FAKES_FIXTURE_H
#define CP_TEST_GPU_FAKES_FIXTURE_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_lib.h"

/* fake_nvml.c's metric numbers */
enum { FK_UTIL = 0, FK_MEM_UTIL = 1, FK_MEM_USED = 2, FK_POWER = 3, FK_TEMP = 4, FK_SM = 5 };

#define FX_SYM(h, field, name) (*(void **)(&(field)) = dlsym((h), (name)))

static inline void *fx_open(const char *env) {
    const char *path = getenv(env);
    if (!path) {
        fprintf(stderr, "$%s is not set (run through ctest)\n", env);
        return NULL;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    return h;
}

static inline void fx_nvml_api(void *h, cp_nvml_api *a) {
    memset(a, 0, sizeof *a);
    FX_SYM(h, a->nvmlInit, "nvmlInit_v2");
    FX_SYM(h, a->nvmlShutdown, "nvmlShutdown");
    FX_SYM(h, a->nvmlErrorString, "nvmlErrorString");
    FX_SYM(h, a->nvmlSystemGetDriverVersion, "nvmlSystemGetDriverVersion");
    FX_SYM(h, a->nvmlDeviceGetCount, "nvmlDeviceGetCount_v2");
    FX_SYM(h, a->nvmlDeviceGetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2");
    FX_SYM(h, a->nvmlDeviceGetName, "nvmlDeviceGetName");
    FX_SYM(h, a->nvmlDeviceGetUtilizationRates, "nvmlDeviceGetUtilizationRates");
    FX_SYM(h, a->nvmlDeviceGetMemoryInfo, "nvmlDeviceGetMemoryInfo");
    FX_SYM(h, a->nvmlDeviceGetPowerUsage, "nvmlDeviceGetPowerUsage");
    FX_SYM(h, a->nvmlDeviceGetTemperature, "nvmlDeviceGetTemperature");
    FX_SYM(h, a->nvmlDeviceGetClockInfo, "nvmlDeviceGetClockInfo");
}

static inline void fx_cupti_api(void *h, cp_cupti_api *a) {
    memset(a, 0, sizeof *a);
    FX_SYM(h, a->cuptiGetVersion, "cuptiGetVersion");
    FX_SYM(h, a->cuptiSubscribe, "cuptiSubscribe");
    FX_SYM(h, a->cuptiUnsubscribe, "cuptiUnsubscribe");
    FX_SYM(h, a->cuptiEnableDomain, "cuptiEnableDomain");
    FX_SYM(h, a->cuptiEnableCallback, "cuptiEnableCallback");
    FX_SYM(h, a->cuptiGetResultString, "cuptiGetResultString");
}

#endif /* CP_TEST_GPU_FAKES_FIXTURE_H */
