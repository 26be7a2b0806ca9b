/* report_gpu.h -- the report's `gpu` section (docs/report-schema.md,
 * "gpu") and its block of the text summary.  One description for the JSON
 * report and Model.report("gpu") (docw.h), which the facade's
 * get_gpu_report() returns as is.
 *
 * Reads m->gpu only (names through the model's site table).  Bounded by
 * the model's own caps: every operation site (the recorder bounds them),
 * at most CP_GPU_MAX_SLOW slow operations, CP_GPU_MAX_SYNC_SITES sync
 * points, the NVML devices.  The section is always written with the same
 * keys: a disabled GPU profiler writes "enabled": false, zeros and empty
 * lists.  Thread-safe for distinct writers.
 */
#ifndef CP_REPORT_GPU_H
#define CP_REPORT_GPU_H

#include <stdint.h>

#include "report/strbuf.h"

struct cp_model;
struct cp_docw;
struct cp_mgpu;
struct cp_mgpu_op;
struct cp_mgpu_span;

/* Writes the section's value (an object) through the document writer. */
void cp_report_gpu_doc(const struct cp_model *m, struct cp_docw *w);
/* Appends the text summary's block (nothing when GPU profiling was off). */
void cp_report_gpu_text(const struct cp_model *m, cp_strbuf *out);

/* Report names: library status ("ok", "not_found", ...; CP_GPU_LIB_*),
 * sync kind ("device", "stream", "event", "memcpy", "other"; CP_GPU_SYNC_*),
 * sync source ("none", "cupti", "fallback"), memory source ("none",
 * "torch", "driver").  Static strings; out of range -> "unknown".  The
 * parse functions return the number, or -1 for an unknown name. */
const char *cp_report_gpu_lib_status_name(int status);
int cp_report_gpu_lib_status_parse(const char *name);
const char *cp_report_gpu_sync_kind_name(unsigned kind);
int cp_report_gpu_sync_kind_parse(const char *name);
const char *cp_report_gpu_sync_source_name(int src);
int cp_report_gpu_sync_source_parse(const char *name);
const char *cp_report_gpu_mem_source_name(int src);
int cp_report_gpu_mem_source_parse(const char *name);

/* An operation site's time as the report gives it: device time summed over
 * its timed operations when any was timed, else its host time. */
uint64_t cp_report_gpu_op_total_ns(const struct cp_mgpu_op *op);
/* A kept operation's elapsed time: device time when timed, else host. */
uint64_t cp_report_gpu_span_ns(const struct cp_mgpu_span *s);
/* The section's memory source: torch when any op measured torch's
 * allocator, else driver when any measured the driver, else none. */
int cp_report_gpu_mem_source(const struct cp_mgpu *g);

#endif /* CP_REPORT_GPU_H */
