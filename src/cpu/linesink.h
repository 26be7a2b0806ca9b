/* linesink.h -- line-level timing: folds CP_EV_LINE events (event.h) of
 * the functions registered for line profiling into per (function site,
 * line) hits and time (the time from a line's start to the next line event
 * of the same frame, or the frame's end: callees included, as
 * line_profiler counts).  Registered by sample_session.c when
 * CODEPROF_CFG_LINES is set. */
#ifndef CP_LINESINK_H
#define CP_LINESINK_H

#include <stdint.h>

struct codeprof_session;
struct cp_model;
typedef struct cp_linesink cp_linesink;

/* NULL on OOM. */
cp_linesink *cp_linesink_register(struct codeprof_session *s);
uint64_t cp_linesink_count(const cp_linesink *k);
/* Fills the exact rows of m->lines (and reads source text for every row of
 * m->lines, bounded). */
int cp_linesink_fill_model(cp_linesink *k, struct cp_model *m);

#endif /* CP_LINESINK_H */
