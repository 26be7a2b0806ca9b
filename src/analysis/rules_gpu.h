/* rules_gpu.h -- the GPU analysis rules (CP-GPU-001..005).
 *
 * Each function reads m->gpu (model_gpu.h), the data-loading findings and
 * loaders (CP-GPU-002/005) and m->cfg thresholds, and appends one finding
 * per subject that fires, with `info`'s id and category (the rules[] table
 * in rules.c holds the entries, CP_RULES_GPU_ENTRIES below, after the data
 * rules: CP-GPU-002/005 read their findings).  They return 0, or -1 on
 * OOM.  Not thread-safe for the same model.  A device's utilization is
 * NVML's (m->gpu.devices); it is judged only over at least
 * CP_GPU_MIN_UTIL_SAMPLES samples and only on a device that was busy at
 * some sample (util_max > 0: the program used it).
 *
 *   CP-GPU-001 slow_gpu_operations  an operation site (cuda_context name or
 *              profile_cuda_operation function) whose longest operation is
 *              above cfg.slow_gpu_op_s: device time when timed, else host
 *              time (said so).  Value: that time (s).  Advice follows the
 *              figures: one slow call among calls whose average without it
 *              is below a tenth of it -> warm-up (lazy init, cuDNN
 *              autotuning); otherwise every call is slow -> less work per
 *              call (mixed precision, smaller inputs, fused ops).
 *              saving_s: the summed elapsed time of its kept slow
 *              operations (m->gpu.slow), at least its longest one.
 *   CP-GPU-002 gpu_utilization  data-bound GPU: a device's mean
 *              utilization below 50% while a data loader stalls (a
 *              CP-DATA-001 finding, or a loader with >= 3 batches whose
 *              stall fraction is above cfg.data_stall_fraction).  Never
 *              without that data evidence.  Names the loader and points at
 *              its CP-DATA-001 finding.  Value: mean utilization (percent),
 *              threshold 50.  saving_s 0 (the data finding holds it).
 *   CP-GPU-003 gpu_synchronization  frequent host syncs: a sync point with
 *              >= 100 calls blocking >= 1% of the run in all (fewer-but-
 *              cheap syncs would not repay removing them), or one blocking
 *              >= 5% of the run.  Names file:line, kind, count and blocked
 *              time; the advice is the kind's (.item()/.cpu() -> keep
 *              values on the GPU and read them once every N steps;
 *              synchronize -> remove it, time with CUDA events; stream /
 *              event -> wait on the GPU (wait_stream / wait_event)).
 *              Value: blocked time (s).  saving_s: the blocked time.
 *   CP-GPU-004 gpu_memory  peak GPU memory above 90% of the
 *              device: torch's peak allocated bytes (the ops' peak) over
 *              the device total (m->gpu.device_mem_total), or a device's
 *              NVML used maximum over its total.  Value: that share.
 *              Advice: gradient checkpointing, mixed precision, a smaller
 *              batch.  saving_s 0.
 *   CP-GPU-005 gpu_utilization  low utilization with low memory: a
 *              device's mean utilization below 40% and its used memory
 *              maximum below 50% of its total, with no data stall (neither
 *              CP-DATA-001 nor a stalling loader): a larger batch size
 *              (the memory headroom quoted).  Value: mean utilization
 *              (percent), threshold 40.  saving_s 0.
 */
#ifndef CP_RULES_GPU_H
#define CP_RULES_GPU_H

#include "analysis/rules.h"
#include "model/model.h"

#define CP_GPU_MIN_UTIL_SAMPLES 10
#define CP_GPU_DATA_BOUND_UTIL 50.0
#define CP_GPU_LOW_UTIL 40.0
#define CP_GPU_LOW_MEM_SHARE 0.5
#define CP_GPU_SYNC_MIN_COUNT 100
#define CP_GPU_SYNC_COUNT_SHARE 0.01
#define CP_GPU_SYNC_SHARE 0.05
#define CP_GPU_MEM_SHARE 0.9

int cp_rule_gpu_slow(cp_model *m, const cp_rule_info *info);       /* CP-GPU-001 */
int cp_rule_gpu_data_bound(cp_model *m, const cp_rule_info *info); /* CP-GPU-002 */
int cp_rule_gpu_sync(cp_model *m, const cp_rule_info *info);       /* CP-GPU-003 */
int cp_rule_gpu_memory(cp_model *m, const cp_rule_info *info);     /* CP-GPU-004 */
int cp_rule_gpu_batch(cp_model *m, const cp_rule_info *info);      /* CP-GPU-005 */

/* The entries of rules.c's rules[] table (one line there). */
#define CP_RULES_GPU_ENTRIES                                                                     \
    {{"CP-GPU-001", "slow_gpu_operations",                                                     \
      "a GPU operation's longest call exceeds slow_gpu_op_s (device time; host time when not " \
      "timed)"},                                                                               \
     cp_rule_gpu_slow},                                                                        \
        {{"CP-GPU-002", "gpu_utilization",                                                 \
          "GPU mean utilization < 50% (>= 10 NVML samples) while a data loader stalls: "       \
          "data-bound"},                                                                       \
         cp_rule_gpu_data_bound},                                                              \
        {{"CP-GPU-003", "gpu_synchronization",                                                 \
          "a host sync point with >= 100 calls blocking >= 1% of the run, or blocking >= 5%"}, \
         cp_rule_gpu_sync},                                                                    \
        {{"CP-GPU-004", "gpu_memory",                                                 \
          "peak GPU memory (torch peak or NVML used) > 90% of the device's memory"},           \
         cp_rule_gpu_memory},                                                                  \
    {                                                                                          \
        {"CP-GPU-005", "gpu_utilization",                                                  \
         "GPU mean utilization < 40% and used memory < 50% of the device, no data stall: "     \
         "larger batch"},                                                                      \
            cp_rule_gpu_batch                                                                  \
    }

#endif /* CP_RULES_GPU_H */
