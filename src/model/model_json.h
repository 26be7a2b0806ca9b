/* model_json.h -- a saved JSON report (docs/report-schema.md, schema
 * version 3, or 2) read back into a finished cp_model, so every writer (text
 * summary, JSON, pstats, speedscope, collapsed, trace: cp_format_write)
 * and the diff (src/report/report_diff.h) can render a saved report.
 *
 * What the model gets from the report:
 *   - meta counters, config, warnings, python_traced, hidden_calls;
 *   - the site table: performance.sites (names and files resolved through
 *     performance.files) and the sites of performance.functions,
 *     data_loading stages, datasets and loaders;
 *   - funcs: the functions the report lists (the top ones by inclusive and
 *     by self time; sites the writer omitted are not in the model),
 *     sorted by inclusive time;
 *   - threads and nodes: each call_tree[] entry becomes a thread with a
 *     root node (site 0) and its written nodes; an "other" node becomes a
 *     node of the site "(other)" (kind scope, no file) carrying the folded
 *     children's calls and time; per-node min/max/percentiles are not in
 *     the report and read as 0;
 *   - the data section (datasets, loaders, workers, stages and figures);
 *   - the memory section (schema 3; empty for a version 2 report): mode,
 *     totals, domains, GC, the listed contexts (a context a group names
 *     but the report did not list gets an entry without calls), stacks
 *     (a frame's site is its function and file, line 0; the frame keeps
 *     its line), top allocations, leaks, processes (t_first 0, t_last the
 *     duration), snapshots (times relative to the run start, t0_ns 0);
 *     the writer's caps (CP_MEM_MAX_*) bound what is read;
 *   - findings, in the report's order, with saving_s.
 * Not in the report, so empty: the timeline and the per-function figures
 * of omitted sites.
 *
 * Errors (CODEPROF_EFORMAT unless said otherwise) fill `err` with `field`
 * set to the JSON path (truncated to fit) and a message naming the file,
 * the full path and what was expected, e.g.
 *   "report.json: performance.call_tree[0].children[3].site: expected an
 *    index into performance.sites (0..11), got 40".
 * A schema_version outside CP_MODEL_JSON_MIN_SCHEMA_VERSION..
 * CP_MODEL_JSON_SCHEMA_VERSION says whether the report is older or newer
 * than this reader.  Unknown keys are
 * ignored (the schema only adds keys within a version).
 */
#ifndef CP_MODEL_JSON_H
#define CP_MODEL_JSON_H

#include <stddef.h>

#include "codeprof/codeprof.h"
#include "model/model.h"

/* The report schema version this reader understands (the writer's), and
 * the oldest one it still reads (version 2: no memory section, read as
 * an empty one). */
#define CP_MODEL_JSON_SCHEMA_VERSION 4
#define CP_MODEL_JSON_MIN_SCHEMA_VERSION 2

/* The site name of folded "other" call-tree nodes. */
#define CP_MODEL_JSON_OTHER_NAME "(other)"

/* Reads the report in `len` bytes of `text`; `name` (may be NULL:
 * "report") names the source in error messages.  On success returns
 * CODEPROF_OK and stores a new finished model in *out (free with
 * cp_model_free).  Else *out is NULL and the status is CODEPROF_EFORMAT
 * (malformed JSON, another schema version, a field of the wrong type or
 * range), CODEPROF_ENOMEM, or CODEPROF_EINVAL (NULL arguments).  Limits:
 * those of cp_jsonr_parse (256 MiB, 1024 nesting levels).  Thread-safe. */
codeprof_status cp_model_from_json(const char *text, size_t len, const char *name, cp_model **out,
                                   codeprof_error *err);

/* Reads the file at `path` and calls cp_model_from_json with the path as
 * its name.  CODEPROF_EIO when it cannot be opened or read (the message
 * names the path and the OS error; *os_errno, if non-NULL, receives the
 * errno, else 0); CODEPROF_EFORMAT for a file over 256 MiB.  Thread-safe. */
codeprof_status cp_model_read_json_file(const char *path, cp_model **out, codeprof_error *err,
                                        int *os_errno);

#endif /* CP_MODEL_JSON_H */
