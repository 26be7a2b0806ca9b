/* trace.h -- the Chrome Trace Event / Perfetto timeline export: one JSON
 * file across processes and threads that Perfetto UI (ui.perfetto.dev)
 * and chrome://tracing open.  docs/exports.md describes it.
 *
 *     {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}
 *
 * Events ("ts" and "dur" in microseconds from the earliest event, with
 * nanosecond decimals; every time is CLOCK_MONOTONIC, shared by the main
 * process and its DataLoader workers):
 *  - "X" complete events for the model's timeline: ENTER/EXIT pairs of
 *    explicit scopes (C API scopes, profiling_context, profiled functions,
 *    dataset items, loader batches, stages) and, from the separate traced
 *    stream, of traced calls when the session kept them
 *    (CODEPROF_CFG_TIMELINE_TRACED; "cat": "call"), on pid = the model's
 *    process, tid = the thread's OS id (both streams on the thread's
 *    track: viewers nest them by time); attributes (index, items, epoch)
 *    in "args";
 *  - "i" instant events for marks, "C" counter events for counters and
 *    RSS samples;
 *  - from the data records (cp_mdata.records): each worker's item loads
 *    as "X" on its own process (pid = the worker's pid, one track), the
 *    main process's item loads on a track "dataset items", and per loader
 *    a track with its batch waits ("wait") and the steps between them
 *    ("step"), plus a counter "<loader> wait (ms)";
 *  - "M" metadata: process_name for every pid, thread_name for every
 *    (pid, tid) used.
 *
 * Bounds: the writer adds no cap of its own; its inputs are bounded: the
 * timeline keeps the first and the last of cfg.timeline_events events,
 * its traced stream the first and the last of cfg.timeline_traced_events,
 * the data records the first and the last halves of CP_MAX_DATA_RECORDS.
 * Each stream pairs its own events per thread: an EXIT whose ENTER fell
 * in the dropped middle is skipped, and a scope or call still open at the
 * end is closed at the last event of either stream with
 * "args": {"unfinished": true}; otherData counts all of these
 * (timeline_dropped, records_dropped, unmatched_exits, unfinished_scopes;
 * for traced calls timeline_traced_dropped, traced_calls (written),
 * traced_unmatched_exits, traced_unfinished_calls).
 */
#ifndef CP_EXPORT_TRACE_H
#define CP_EXPORT_TRACE_H

#include "model/model.h"
#include "report/strbuf.h"

/* Appends model `m`'s timeline and data records as a Chrome trace JSON
 * file to `out`.  Returns 0, or -1 on OOM.  Reads `m` only. */
int cp_export_trace(const cp_model *m, cp_strbuf *out);

#endif /* CP_EXPORT_TRACE_H */
