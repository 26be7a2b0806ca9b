/* report_diff.h -- two models compared, for the guide's "optimize and
 * re-profile" loop (`codeprof diff A B`, `_core.diff_reports`).
 *
 * What is compared, each figure with A's value, B's value and the ratio
 * B/A (absent when a side lacks the entry or A is 0):
 *   - the run: duration, calls over the listed functions, findings;
 *   - functions, matched by (name, file, line): inclusive and self time
 *     and calls; largest absolute change of inclusive time first, at most
 *     CP_DIFF_MAX_FUNCTIONS (the number left out is given);
 *   - data-loading stages, matched by (name, kind, file, line): total
 *     time, calls, mean time;
 *   - loaders, matched by name: mean wait per batch, data-stall fraction,
 *     samples/s, batches; datasets, matched by name: mean load time, p95,
 *     items, failures;
 *   - findings, matched by (rule, subject): those that appeared in B,
 *     those that disappeared, and those in both with both measured values;
 *   - memory (when either side profiled it, report_mem.h): tracked peak,
 *     RSS peak, GC collections and time; memory contexts matched by name
 *     (net delta, peak, calls; largest change of peak first, at most
 *     CP_DIFF_MAX_FUNCTIONS); allocator domains (peak, live); sampled
 *     processes matched by worker id (-1 main; USS growth first -> last,
 *     USS max, PSS max); and, when both sides hold snapshots, the last
 *     snapshot of each context present in both: live bytes by allocation
 *     stack, stacks matched by their frames (function, file, line),
 *     largest change first, at most CP_DIFF_MAX_FUNCTIONS.
 *
 * The writers read both models only; they run in O(n log n) in the
 * entries compared.  They append to `out` and return 0, or -1 when the
 * buffer ran out of memory.  `name_a` / `name_b` (may be NULL: "A", "B")
 * label the two sides.  Thread-safe for distinct buffers.
 */
#ifndef CP_REPORT_DIFF_H
#define CP_REPORT_DIFF_H

#include "model/model.h"
#include "report/strbuf.h"

#define CP_DIFF_MAX_FUNCTIONS 30

/* The comparison as a text table for terminals. */
int cp_report_diff_text(const cp_model *a, const cp_model *b, const char *name_a,
                        const char *name_b, cp_strbuf *out);

/* The comparison as JSON: {"schema": "codeprof-diff", "schema_version": 1,
 * "a", "b", "run", "functions", "functions_omitted", "stages", "loaders",
 * "datasets", "memory": {"enabled", "peak_bytes", "rss_peak_bytes",
 * "gc_collections", "gc_time_s", "contexts", "contexts_omitted", "domains",
 * "processes", "snapshots", "snapshots_omitted"}, "findings": {"appeared",
 * "disappeared", "persisting"}}; every
 * compared figure is {"a": x|null, "b": y|null, "ratio": b/a|null}
 * (docs/report-schema.md, "codeprof diff"). */
int cp_report_diff_json(const cp_model *a, const cp_model *b, const char *name_a,
                        const char *name_b, cp_strbuf *out);

/* One compared figure: side A, side B, and which sides have it.  Shared
 * with the GPU part of the diff (report_diff_gpu.c). */
typedef struct cp_diff_pair {
    double a, b;
    int has_a, has_b;
} cp_diff_pair;

struct cp_jsonw;
/* Writes `key`: {"a": x|null, "b": y|null, "ratio": b/a|null} as the next
 * member of the object `w` is writing. */
void cp_diff_json_pair(struct cp_jsonw *w, const char *key, cp_diff_pair p);

#endif /* CP_REPORT_DIFF_H */
