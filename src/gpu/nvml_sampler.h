/* nvml_sampler.h -- GPU utilization on the timeline: one thread per session
 * (gpu_sample_interval_s > 0 and NVML usable) reading, per device,
 * utilization, memory used, power, temperature and SM clock.  Readings live
 * in a bounded store of its own (first and most recent halves of
 * cfg.max_samples) and reach the model at build: m->gpu.devices (summaries)
 * and m->gpu.samples, and CP_EV_COUNTER events flagged CP_TLF_PROCESS on
 * m->timeline (counter tracks in the trace export), as the memory sampler
 * does.  Blocks every signal, never runs Python, never takes session locks.
 */
#ifndef CP_NVML_SAMPLER_H
#define CP_NVML_SAMPLER_H

#include <stdint.h>

struct codeprof_session;
struct cp_model;
typedef struct cp_nvml_sampler cp_nvml_sampler;

/* NULL on OOM. */
cp_nvml_sampler *cp_nvml_sampler_new(struct codeprof_session *s, double interval_s,
                                     uint32_t max_samples);
/* Starts the thread (no-op when interval 0); returns 0, or -1 when NVML is
 * not usable (the reason is in cp_gpu_lib_get()->nvml). */
int cp_nvml_sampler_start(cp_nvml_sampler *ns);
void cp_nvml_sampler_stop(cp_nvml_sampler *ns);
void cp_nvml_sampler_reset(cp_nvml_sampler *ns);
void cp_nvml_sampler_free(cp_nvml_sampler *ns);
/* Fork child: the thread does not exist there; abandon state, no NVML call. */
void cp_nvml_sampler_atfork_child(cp_nvml_sampler *ns);
uint64_t cp_nvml_sampler_fingerprint(cp_nvml_sampler *ns);
/* Fills m->gpu.devices, m->gpu.samples, counter events on m->timeline. */
int cp_nvml_sampler_fill_model(cp_nvml_sampler *ns, struct cp_model *m);

/* Reads NVML through `api` (already loaded, not yet initialised: start
 * calls its nvmlInit) instead of the loader's table (gpu_lib.h).  For the
 * tests and the bench, which point it at tests/c/fake_nvml.c; call before
 * start.  The table must outlive the sampler. */
struct cp_nvml_api;
void cp_nvml_sampler_use_api(cp_nvml_sampler *ns, const struct cp_nvml_api *api);
/* One reading of every device now, stamped `t_ns` (CLOCK_MONOTONIC ns; 0:
 * now): what the thread does each tick.  For tests (exact timestamps);
 * needs a successful start (the thread may be off: interval 0 is refused
 * by start, so tests use a long interval).  Thread-safe. */
void cp_nvml_sampler_tick(cp_nvml_sampler *ns, uint64_t t_ns);
/* Metrics the sampler reads per device (error counters, tests). */
enum {
    CP_NVML_M_UTIL = 0,     /* utilization (GPU and memory: one query)  */
    CP_NVML_M_MEMORY = 1,   /* memory used / total                       */
    CP_NVML_M_POWER = 2,
    CP_NVML_M_TEMP = 3,
    CP_NVML_M_SM_CLOCK = 4,
    CP_NVML_M_COUNT_ = 5
};
/* Failed queries of `metric` on device position `dev` since the last
 * reset (a GPU without power readings fails every power query). */
uint64_t cp_nvml_sampler_query_errors(cp_nvml_sampler *ns, uint32_t dev, int metric);
/* Why start failed ("" when it did not). */
const char *cp_nvml_sampler_reason(cp_nvml_sampler *ns);

#endif /* CP_NVML_SAMPLER_H */
