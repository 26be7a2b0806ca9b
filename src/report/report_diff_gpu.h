/* report_diff_gpu.h -- the GPU part of `codeprof diff` (report_diff.h):
 * GPU operations matched by context name (average time per operation in
 * ms -- device time when timed, else host --, calls, total ms), largest
 * absolute change of total time first, at most CP_DIFF_MAX_FUNCTIONS (the
 * number left out is given); the total host time blocked in syncs and
 * their count; the mean utilization of each NVML device, matched by index.
 * Every figure is {"a": x|null, "b": y|null, "ratio": b/a|null}.  Written
 * when either side profiled the GPU (else "enabled": false, empty lists;
 * the text block is left out).  Reads both models only.  OOM surfaces
 * through the writer / buffer. */
#ifndef CP_REPORT_DIFF_GPU_H
#define CP_REPORT_DIFF_GPU_H

#include "model/model.h"
#include "report/strbuf.h"

struct cp_jsonw;

/* Appends the text block "GPU operations ..." (nothing when neither side
 * profiled the GPU). */
void cp_report_diff_gpu_text(const cp_model *a, const cp_model *b, cp_strbuf *out);

/* Writes "gpu": {"enabled", "operations": [{"context", "avg_time_ms",
 * "calls", "total_time_ms"}], "operations_omitted", "sync_blocked_ms",
 * "sync_count", "devices": [{"index", "name", "util_mean"}]} as the next
 * member of the object `w` is writing ("gpu": null when the comparison
 * could not be allocated). */
void cp_report_diff_gpu_json(const cp_model *a, const cp_model *b, struct cp_jsonw *w);

#endif /* CP_REPORT_DIFF_GPU_H */
