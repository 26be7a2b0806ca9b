/* model_lines.h -- line-level figures of the model (cp_model.lines).
 *
 * Two sources fill the same table: the line profiler (exact hits and time
 * per line of the functions registered for it; src/python/lineprof.c ->
 * CP_EV_LINE events -> src/cpu/linesink.c) and the sampler (samples whose
 * innermost frame was on that line; src/sampling/).  Rows are per (function
 * site, line), sorted by site then line once finished.  Source text of a
 * line is read by the build from the file (bounded) so a saved report
 * shows it without the sources.
 */
#ifndef CP_MODEL_LINES_H
#define CP_MODEL_LINES_H

#include <stddef.h>
#include <stdint.h>

typedef struct cp_mline {
    uint32_t site;       /* model site of the function                      */
    uint32_t line;       /* line number in the site's file                  */
    uint64_t hits;       /* line profiler: times the line started            */
    uint64_t time_ns;    /* line profiler: wall time on the line, callees included */
    uint64_t samples;    /* sampler: samples innermost on this line           */
    uint64_t sampled_ns; /* sampler: their weight (estimated time)            */
    uint32_t text;       /* offset of the line's source text in `text`; CP_MLINE_NOTEXT */
    uint32_t pad_;
} cp_mline;
#define CP_MLINE_NOTEXT UINT32_MAX

/* Rows kept: past it, rows of the smallest time are dropped and counted. */
#define CP_MAX_LINES (1u << 16)

typedef struct cp_mlines {
    cp_mline *v;
    uint32_t n, cap;
    int exact;           /* the line profiler ran (hits/time are measured)    */
    uint64_t dropped;    /* rows not kept (CP_MAX_LINES)                      */
    char *text;          /* NUL-separated source lines                        */
    size_t ntext, captext;
} cp_mlines;

/* Adds figures to the (site, line) row, creating it.  Rows may be added in
 * any order and more than once; cp_mlines_finish sorts and sums them.
 * Returns 0, or -1 on OOM (counted in dropped). */
int cp_mlines_add(cp_mlines *ml, uint32_t site, uint32_t line, uint64_t hits, uint64_t time_ns,
                  uint64_t samples, uint64_t sampled_ns);
/* Sorts by (site, line) and sums duplicate rows.  Idempotent. */
void cp_mlines_finish(cp_mlines *ml);
/* Binary search in a finished table: the first row of `site`, or n. */
uint32_t cp_mlines_first(const cp_mlines *ml, uint32_t site);
/* Stores the source text of row i (copied, at most 200 bytes, no newline). */
int cp_mlines_set_text(cp_mlines *ml, uint32_t i, const char *text, size_t len);
/* The text of row i or NULL. */
const char *cp_mlines_text(const cp_mlines *ml, uint32_t i);
void cp_mlines_free(cp_mlines *ml);
/* Folds src into dst through smap (src model index -> dst index). */
int cp_mlines_merge(cp_mlines *dst, const cp_mlines *src, const uint32_t *smap);

#endif /* CP_MODEL_LINES_H */
