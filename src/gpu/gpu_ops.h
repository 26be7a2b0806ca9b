/* gpu_ops.h -- the GPU operation recorder: CUDA events around an
 * operation on the caller's stream, resolved later (docs/gpu.md, "How GPU
 * operations are timed").
 *
 * begin: when the driver is usable and the calling thread has a current
 * context (never one of ours: no cuInit, no context creation), two events
 * come from that context's free list (created only when it is empty) and
 * the start one is recorded on the stream; host start, thread, site and
 * memory before are noted.  end: the end event is recorded, host end and
 * memory after noted, and the op waits in a bounded pending table.  Nothing
 * waits for the GPU there: when the table is full the oldest ops whose end
 * event is ready (cuEventQuery) are resolved, and if none is, the new op
 * keeps only its host time (counted as unresolved).  Otherwise the op is
 * "host only" (no driver, no context, GPU profiling off, forked child).
 *
 * cp_gpu_ops_resolve (the model build, agg_mu held) turns ready ops into
 * per-site aggregates (exact), a bounded list of spans (first half + most
 * recent half of max_ops) and the slowest CP_GPU_MAX_SLOW; with wait=1 it
 * synchronizes on the end events still pending, and only on those.
 *
 * Thread safety: begin/end from any thread (an op's end on the thread that
 * began it); one short mutex guards the tables (no CUDA call that can block
 * is made under it: event records are outside, queries are non-blocking).
 */
#ifndef CP_GPU_OPS_H
#define CP_GPU_OPS_H

#include <stdint.h>

#include "codeprof/codeprof.h"

struct cp_model;
typedef struct cp_gpu_ops cp_gpu_ops;

/* Why an op was timed on the host only (the first cause seen is reported). */
enum {
    CP_GPU_HOST_ONLY_NONE = 0,
    CP_GPU_HOST_ONLY_OFF = 1,        /* GPU profiling off or driver unusable */
    CP_GPU_HOST_ONLY_NO_CONTEXT = 2, /* no current context on the thread     */
    CP_GPU_HOST_ONLY_FORKED = 3,     /* forked child                         */
    CP_GPU_HOST_ONLY_FULL = 4,       /* pending table full, nothing ready    */
    CP_GPU_HOST_ONLY_ERROR = 5,      /* an event call failed                 */
};

/* max_ops: cfg.gpu_max_ops (ops pending at once, and spans kept); slow_ns:
 * cfg.slow_gpu_op_s in ns; mem_driver: read cuMemGetInfo when the caller
 * gives no figures (CODEPROF_CFG_GPU_MEMORY).  NULL on OOM. */
cp_gpu_ops *cp_gpu_ops_new(uint32_t max_ops, uint64_t slow_ns, int mem_driver);
/* Device timing on (the driver table is cp_gpu_lib_get()'s and its status
 * is OK) or off (host only).  Called at session start / stop. */
void cp_gpu_ops_enable(cp_gpu_ops *o, int on);
/* Fills *op; never fails for lack of a GPU (host only then). */
void cp_gpu_ops_begin(cp_gpu_ops *o, uint32_t site, uint64_t stream, const codeprof_gpu_mem *mem,
                      codeprof_gpu_op *op);
void cp_gpu_ops_end(cp_gpu_ops *o, codeprof_gpu_op *op, const codeprof_gpu_mem *mem);
/* Resolves pending ops in order; wait=1 synchronizes on those not ready.
 * Returns the number still pending. */
uint32_t cp_gpu_ops_resolve(cp_gpu_ops *o, int wait);
/* Resolve-or-drop without blocking; every pooled event is kept for reuse
 * but the aggregates, spans and counters are cleared. */
void cp_gpu_ops_reset(cp_gpu_ops *o);
/* Fork child: the parent's events are abandoned (never destroyed here),
 * device timing off for good, recorded aggregates kept. */
void cp_gpu_ops_atfork_child(cp_gpu_ops *o);
/* Destroys the events this process created (when the driver is usable and
 * the process is not exiting, cp_gpu_ops_set_exiting) and frees. */
void cp_gpu_ops_free(cp_gpu_ops *o);
/* From now on no CUDA call at free (process exit: the driver may be torn
 * down).  Process-wide. */
void cp_gpu_ops_set_exiting(void);
uint64_t cp_gpu_ops_fingerprint(cp_gpu_ops *o);
/* Fills m->gpu ops/spans/slow/idle gaps/counters, device_mem_total and
 * `available` (sites mapped with cp_model_map_site).  Returns 0 or -1 on
 * OOM.  Call after cp_gpu_ops_resolve. */
int cp_gpu_ops_fill_model(cp_gpu_ops *o, struct cp_model *m);
/* The first reason ops were timed on the host only (CP_GPU_HOST_ONLY_*),
 * and how many were. */
int cp_gpu_ops_host_only_cause(cp_gpu_ops *o, uint64_t *count);

#endif /* CP_GPU_OPS_H */
