/* gpu_session.c -- a session's GPU instruments (gpu_session.h): the
 * operation recorder (gpu_ops.h), the NVML sampler (nvml_sampler.h) and the
 * synchronization recorder (gpu_sync.h), created with the session and
 * started with it when CODEPROF_CFG_GPU is set (sync recording with
 * CODEPROF_CFG_GPU_SYNC, NVML with gpu_sample_interval_s > 0).
 * codeprof_gpu_op_begin/end open/close a CPU scope on the caller's site so
 * the operation is in the call tree with its host time. */
#include "gpu/gpu_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/session.h"
#include "gpu/gpu_lib.h"
#include "gpu/gpu_ops.h"
#include "gpu/gpu_sync.h"
#include "gpu/nvml_sampler.h"
#include "model/model.h"

/* op->flags of an op begun while the session was not running. */
#define OP_IGNORED UINT32_MAX

struct cp_gpu_state {
    cp_gpu_ops *ops;
    cp_nvml_sampler *nvml;
    cp_gpu_sync *sync;
    int loaded;  /* the loader was asked (CODEPROF_CFG_GPU at a start) */
    int sync_on; /* sync recording started                            */
    int nvml_on;
    int forked;
};

codeprof_status cp_gpu_session_new(struct codeprof_session *s, codeprof_error *err) {
    (void)err;
    struct cp_gpu_state *g = calloc(1, sizeof *g);
    if (!g)
        return CODEPROF_ENOMEM;
    g->ops = cp_gpu_ops_new(s->cfg.gpu_max_ops, (uint64_t)(s->cfg.slow_gpu_op_s * 1e9),
                            (s->cfg.flags & CODEPROF_CFG_GPU_MEMORY) != 0);
    g->sync = cp_gpu_sync_new(s);
    g->nvml = cp_nvml_sampler_new(s, s->cfg.gpu_sample_interval_s, s->cfg.max_samples);
    if (!g->ops || !g->sync || !g->nvml) {
        cp_gpu_ops_free(g->ops);
        cp_gpu_sync_free(g->sync);
        cp_nvml_sampler_free(g->nvml);
        free(g);
        return CODEPROF_ENOMEM;
    }
    s->gpu = g;
    return CODEPROF_OK;
}

void cp_gpu_session_start(struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    if (!g || !(s->cfg.flags & CODEPROF_CFG_GPU) || g->forked)
        return;
    const cp_gpu_libs *L = cp_gpu_lib_get();
    g->loaded = 1;
    cp_gpu_ops_enable(g->ops, L->driver.status == CP_GPU_LIB_OK);
    if ((s->cfg.flags & CODEPROF_CFG_GPU_SYNC) && !g->sync_on) {
        cp_gpu_sync_start(g->sync);
        g->sync_on = 1;
    }
    if (s->cfg.gpu_sample_interval_s > 0 && !g->nvml_on) {
        cp_nvml_sampler_start(g->nvml); /* -1: NVML unusable, reason in the loader */
        g->nvml_on = 1;
    }
}

void cp_gpu_session_stop(struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    if (!g)
        return;
    cp_gpu_ops_enable(g->ops, 0);
    if (g->sync_on) {
        cp_gpu_sync_stop(g->sync);
        g->sync_on = 0;
    }
    if (g->nvml_on) {
        cp_nvml_sampler_stop(g->nvml);
        g->nvml_on = 0;
    }
}

void cp_gpu_session_reset(struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    if (!g)
        return;
    cp_gpu_ops_reset(g->ops);
    cp_gpu_sync_reset(g->sync);
    cp_nvml_sampler_reset(g->nvml);
}

void cp_gpu_session_free(struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    if (!g)
        return;
    if (g->nvml_on)
        cp_nvml_sampler_stop(g->nvml);
    if (g->sync_on)
        cp_gpu_sync_stop(g->sync);
    cp_nvml_sampler_free(g->nvml);
    cp_gpu_sync_free(g->sync);
    cp_gpu_ops_free(g->ops);
    free(g);
    s->gpu = NULL;
}

void cp_gpu_session_atfork_child(struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    cp_gpu_lib_atfork_child();
    if (!g)
        return;
    g->forked = 1;
    g->sync_on = 0;
    g->nvml_on = 0;
    cp_gpu_ops_atfork_child(g->ops);
    cp_gpu_sync_atfork_child(g->sync);
    cp_nvml_sampler_atfork_child(g->nvml);
}

uint64_t cp_gpu_session_fingerprint(struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    if (!g)
        return 0;
    uint64_t h = cp_gpu_ops_fingerprint(g->ops);
    h = h * 1099511628211ull ^ cp_gpu_sync_fingerprint(g->sync);
    h = h * 1099511628211ull ^ cp_nvml_sampler_fingerprint(g->nvml);
    return h;
}

static const char *lib_word(int status) {
    switch (status) {
    case CP_GPU_LIB_NOT_FOUND:
        return "not found";
    case CP_GPU_LIB_TOO_OLD:
        return "too old";
    case CP_GPU_LIB_INIT_FAILED:
        return "failed to initialise";
    case CP_GPU_LIB_DISABLED:
        return "disabled";
    default:
        return "not usable";
    }
}

/* The one sentence of m->gpu.reason. */
static void set_reason(cp_mgpu *mg, const struct cp_gpu_state *g, const codeprof_session *s,
                       int cause, uint64_t host_only) {
    const char *tail = "GPU operations were timed on the host only";
    mg->reason[0] = 0;
    if (!(s->cfg.flags & CODEPROF_CFG_GPU)) {
        snprintf(mg->reason, sizeof mg->reason,
                 "GPU profiling is off (enable_gpu_profiler / gpu=True): %s", tail);
    } else if (g->forked || mg->driver.status == CP_GPU_LIB_DISABLED) {
        snprintf(mg->reason, sizeof mg->reason,
                 "forked child: no CUDA calls in a DataLoader worker: %s", tail);
    } else if (mg->driver.status != CP_GPU_LIB_OK && mg->driver.status != CP_GPU_LIB_NO_CONTEXT) {
        snprintf(mg->reason, sizeof mg->reason, "CUDA driver %s (%s): %s",
                 lib_word(mg->driver.status), mg->driver.reason, tail);
    } else if (!mg->available) {
        snprintf(mg->reason, sizeof mg->reason,
                 "the program has not initialised CUDA / made no context: %s", tail);
    } else if (host_only) {
        const char *why = cause == CP_GPU_HOST_ONLY_NO_CONTEXT
                              ? "had no current CUDA context on their thread"
                          : cause == CP_GPU_HOST_ONLY_FULL
                              ? "found the pending table full (gpu_max_ops) with nothing ready"
                              : "met a failing CUDA event call";
        snprintf(mg->reason, sizeof mg->reason,
                 "%llu GPU operations %s and were timed on the host only",
                 (unsigned long long)host_only, why);
    }
}

int cp_gpu_model_build(struct cp_model *m, struct codeprof_session *s) {
    struct cp_gpu_state *g = s->gpu;
    cp_mgpu *mg = &m->gpu;
    mg->enabled = (s->cfg.flags & CODEPROF_CFG_GPU) != 0;
    if (!g)
        return 0;
    if (g->loaded || g->forked) {
        const cp_gpu_libs *L = cp_gpu_lib_get();
        mg->driver = L->driver;
        mg->nvml = L->nvml;
        mg->cupti = L->cupti;
    } else {
        memset(&mg->driver, 0, sizeof mg->driver);
        memset(&mg->nvml, 0, sizeof mg->nvml);
        memset(&mg->cupti, 0, sizeof mg->cupti);
    }
    if (g->forked)
        mg->driver.status = mg->cupti.status = mg->nvml.status = CP_GPU_LIB_DISABLED;
    if (!g->forked && g->loaded)
        cp_gpu_ops_resolve(g->ops, 1);
    if (cp_gpu_ops_fill_model(g->ops, m) != 0)
        return -1;
    if (mg->driver.status == CP_GPU_LIB_OK && !mg->available) {
        uint64_t n = 0;
        int cause = cp_gpu_ops_host_only_cause(g->ops, &n);
        if (n && cause == CP_GPU_HOST_ONLY_NO_CONTEXT) {
            mg->driver.status = CP_GPU_LIB_NO_CONTEXT;
            snprintf(mg->driver.reason, sizeof mg->driver.reason,
                     "the program has not initialised CUDA / made no context");
        }
    }
    uint64_t host_only = 0;
    int cause = cp_gpu_ops_host_only_cause(g->ops, &host_only);
    set_reason(mg, g, s, cause, host_only);
    if (cp_nvml_sampler_fill_model(g->nvml, m) != 0)
        return -1;
    if (cp_gpu_sync_fill_model(g->sync, m) != 0)
        return -1;
    return 0;
}

codeprof_status codeprof_gpu_op_begin(codeprof_session *s, uint32_t site, uint64_t stream,
                                      const codeprof_gpu_mem *mem, codeprof_gpu_op *op) {
    if (!op)
        return CODEPROF_EINVAL;
    s = cp_session_resolve(s);
    if (!s) {
        memset(op, 0, sizeof *op);
        op->site = site;
        op->stream = stream;
        return CODEPROF_EINVAL;
    }
    if (atomic_load_explicit(&s->state, memory_order_acquire) != CP_STATE_RUNNING) {
        /* Not recording: nothing measured, the end is a no-op too. */
        memset(op, 0, sizeof *op);
        op->site = site;
        op->stream = stream;
        op->flags = OP_IGNORED;
        return CODEPROF_OK;
    }
    cp_gpu_ops_begin(s->gpu ? s->gpu->ops : NULL, site, stream, mem, op);
    codeprof_scope_begin(s, site, CODEPROF_SCOPE_CPU);
    return CODEPROF_OK;
}

codeprof_status codeprof_gpu_op_end(codeprof_session *s, codeprof_gpu_op *op,
                                    const codeprof_gpu_mem *mem) {
    if (!op)
        return CODEPROF_EINVAL;
    s = cp_session_resolve(s);
    if (!s)
        return CODEPROF_EINVAL;
    if (op->flags == OP_IGNORED)
        return CODEPROF_OK;
    codeprof_scope_end(s, op->site, CODEPROF_SCOPE_CPU);
    cp_gpu_ops_end(s->gpu ? s->gpu->ops : NULL, op, mem);
    return CODEPROF_OK;
}

codeprof_status codeprof_gpu_sync_record(codeprof_session *s, uint32_t kind, uint32_t site,
                                         uint32_t line, uint64_t blocked_ns) {
    s = cp_session_resolve(s);
    if (!s || kind >= CP_GPU_SYNC_KINDS_)
        return CODEPROF_EINVAL;
    if (s->gpu && s->gpu->sync)
        cp_gpu_sync_record(s->gpu->sync, kind, site, line, blocked_ns);
    return CODEPROF_OK;
}
