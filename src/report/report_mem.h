/* report_mem.h -- the report's memory section (docs/report-schema.md,
 * "memory"): what the memory instruments measured (cp_model.mem,
 * model_mem.h), written once through the document writer (docw.h) so the
 * JSON report and the Python view `Model.report("memory")` (which the
 * facade's get_memory_report() returns) cannot drift apart, and the
 * "Memory" block of the text summary.
 *
 * Reads the model only (names through its site table).  Bounded: at most
 * cfg.report_top_functions contexts, CP_MEM_MAX_SITES top allocations,
 * CP_MEM_MAX_LEAKS leak groups, CP_MEM_MAX_PROCS processes, and of the
 * stacks only those a written entry refers to (renumbered in model
 * order).  Not thread-safe for the same writer; thread-safe otherwise.
 */
#ifndef CP_REPORT_MEM_H
#define CP_REPORT_MEM_H

#include <stdint.h>

#include "model/model.h"
#include "report/strbuf.h"

struct cp_docw;

/* Writes the "memory" object as the next value of `w` (always: with zero
 * figures and empty lists, "mode": "off", when nothing was measured).
 * Errors (OOM) surface through `w`.  `m` and `w` must not be NULL. */
void cp_report_mem_doc(const cp_model *m, struct cp_docw *w);

/* Appends the text summary's "Memory" block (mode, tracked bytes by
 * domain, top contexts, leak suspects with their sites, GC, processes);
 * appends nothing when memory profiling was off.  OOM sets out->oom.
 * `m` and `out` must not be NULL. */
void cp_report_mem_text(const cp_model *m, cp_strbuf *out);

/* 1 when some memory instrument ran: allocation tracking (mode 1 or 2),
 * the native tracker, GC callbacks, a memory context, or a sampled
 * process.  A model with only per-function RSS deltas (cp_mfunc) is "off". */
int cp_report_mem_enabled(const cp_mmem *mm);

/* The report's name of the mode: "off" (not enabled), "rss" (mode 0:
 * RSS and GC only), "sampled" (1), "all" (2).  Static string. */
const char *cp_report_mem_mode_name(const cp_mmem *mm);
/* The number of a process's reading source from its report name ("none",
 * "rollup", "smaps", "statm"; cp_mproc.source), or -1. */
int cp_report_mem_source_parse(const char *name);
/* "file:line function" naming allocation stack `s` (cp_mmem_stack_frame),
 * control characters replaced; "?" for an unknown or empty stack. */
void cp_report_mem_put_stack(cp_strbuf *sb, const cp_model *m, uint32_t s);

/* "raw", "mem", "object", "numpy", "native" for domains 0..4 (heap.h
 * order); NULL out of range.  Static string. */
const char *cp_report_mem_domain_name(unsigned dom);

/* A context's figures as the report writes them: in mode "rss" (no
 * allocation tracking) the tracked-heap figures are the RSS ones. */
int64_t cp_report_mem_ctx_delta(const cp_mmem *mm, const cp_mmem_ctx *c);
uint64_t cp_report_mem_ctx_peak(const cp_mmem *mm, const cp_mmem_ctx *c);

#endif /* CP_REPORT_MEM_H */
