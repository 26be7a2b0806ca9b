/* rules_mem.h -- the memory analysis rules (CP-MEM-001..004).
 *
 * Each function reads m->mem (model_mem.h), the call tree's per-function
 * RSS figures (CP-MEM-001's fallback) and m->cfg thresholds, and appends
 * one finding per subject that fires, with `info`'s id and category (the
 * rules[] table in rules.c owns both).  They return 0, or -1 on OOM.  `m`
 * and `info` must not be NULL.  Not thread-safe for the same model.
 * Byte figures are printed in MiB (2^20 bytes, "MiB").  A finding fires
 * when its value is strictly above its threshold.  Memory is not time:
 * saving_s is 0 except for CP-MEM-003 (see there).
 *
 *   CP-MEM-001 memory_intensive_functions  a memory context or
 *              memory-measured function (m->mem.ctxs; tracked heap, or RSS
 *              in mode rss) whose largest per-call use -- the larger of its
 *              peak within one call and its largest net growth in one call
 *              -- is above cfg.memory_intensive_bytes.  Without any context
 *              with calls: a function whose largest one-call RSS growth
 *              (cp_mfunc.rss_delta_max) is above it.  Value: that use
 *              (bytes; the bottleneck's memory_delta).  Advice follows the
 *              numbers: kept (largest net growth >= half the peak) ->
 *              release references, process in chunks, compact arrays;
 *              transient (peak more than twice the net growth) -> chunks,
 *              reused buffers, in-place ops.
 *   CP-MEM-002 memory_leaks  a context called >= 3 times whose floor (live
 *              tracked bytes after each call) rose after >= 80% of its calls
 *              (after the first) with a least-squares growth per call above
 *              max(1 MiB, 1% of its last floor) (value: growth, unit
 *              "bytes/call"); or a context called >= 2 times whose blocks
 *              allocated inside and alive after it (leaked bytes) are above
 *              memory_intensive_bytes / 10 and above its largest one-call
 *              peak, so that blocks of several calls are alive (value:
 *              leaked bytes).  Names its top allocation sites (m->mem.leaks:
 *              file:line and function, live MiB) and the growth per call.
 *   CP-MEM-003 gc_overhead  the garbage collector's time is above 5% of the
 *              run's wall time (value: that share).  Quotes time, share,
 *              collections per generation and the longest pause; advice:
 *              gc.freeze() after start-up (before DataLoader workers fork),
 *              fewer temporary containers, gc.set_threshold with larger
 *              values.  saving_s: the GC time itself (the upper bound every
 *              saving_s is: the time gone if GC cost nothing).
 *   CP-MEM-004 memory_pressure  the peak memory is above 80% of the
 *              machine's physical memory: this process's RSS peak, or the
 *              sum of the peak PSS of the sampled processes (main and
 *              workers), whichever is larger (value: that share).  Advice
 *              with numbers: fewer workers (how many to drop to get under
 *              70%), a smaller prefetch_factor, a smaller batch size.
 */
#ifndef CP_RULES_MEM_H
#define CP_RULES_MEM_H

#include "analysis/rules.h"
#include "model/model.h"

/* The floor-growth test of CP-MEM-002: at least 3 calls, a rise after at
 * least 80% of the calls after the first, growth per call above
 * max(1 MiB, 1% of the last floor). */
#define CP_MEM_LEAK_MIN_CALLS 3
#define CP_MEM_LEAK_RISE_SHARE 0.8
#define CP_MEM_LEAK_MIN_GROWTH (1024.0 * 1024.0)
#define CP_MEM_GC_SHARE 0.05
#define CP_MEM_PRESSURE_SHARE 0.8

/* CP-MEM-002's test of one context: 1 when its floor rises (value: the
 * growth per call), 2 when blocks of several of its calls are live
 * (value: leaked bytes), 0 when it is no leak suspect.  *value and
 * *threshold (may be NULL) receive the figures the finding quotes.
 * `intensive_bytes` is cfg.memory_intensive_bytes.  The text summary's
 * leak suspects are the contexts this returns non-zero for. */
int cp_mem_leak_suspect(const cp_mmem_ctx *c, double intensive_bytes, double *value,
                        double *threshold);

int cp_rule_mem_intensive(cp_model *m, const cp_rule_info *info); /* CP-MEM-001 */
int cp_rule_mem_leak(cp_model *m, const cp_rule_info *info);      /* CP-MEM-002 */
int cp_rule_mem_gc(cp_model *m, const cp_rule_info *info);        /* CP-MEM-003 */
int cp_rule_mem_pressure(cp_model *m, const cp_rule_info *info);  /* CP-MEM-004 */

#endif /* CP_RULES_MEM_H */
