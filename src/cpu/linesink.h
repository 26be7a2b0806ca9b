/* linesink.h -- line-level timing: folds CP_EV_LINE events (event.h) of
 * the functions registered for line profiling into per (function site,
 * line) hits and time (the time from a line's start to the next line event
 * of the same frame, or the frame's end: callees included, as
 * line_profiler counts).  Registered by sample_session.c when
 * CODEPROF_CFG_LINES is set.
 *
 * Per thread (keyed by the buffer's thread token) the sink keeps a stack of
 * open frames keyed by the event's aux (the frame's identity): a line event
 * of the top frame closes its current line and opens the new one; a line
 * event of an unknown frame pushes it (a call, or a generator resumed); an
 * event of a frame below the top first closes the frames above it (they
 * left without an end event: an exception the hook did not see); value 0
 * closes the frame.  Bounded: CP_LINESINK_MAX_ROWS (site, line) rows,
 * CP_LINESINK_MAX_DEPTH open frames per thread, CP_LINESINK_MAX_THREADS
 * threads with open frames at once (a thread with none holds no state and
 * its slot is reused); what does not fit is counted (cp_linesink_dropped,
 * reported as lines.dropped). */
#ifndef CP_LINESINK_H
#define CP_LINESINK_H

#include <stdint.h>

#include "core/event.h"

struct codeprof_session;
struct cp_model;
struct cp_tbuf;
typedef struct cp_linesink cp_linesink;

/* Flags of a CP_EV_LINE event. */
enum {
    /* The frame continues on this line without starting it anew (a
     * generator resumed mid-line): opens the frame, counts no hit. */
    CP_LINEF_RESUME = 1u
};

#define CP_LINESINK_MAX_ROWS    (1u << 16)
#define CP_LINESINK_MAX_DEPTH   512u
#define CP_LINESINK_MAX_THREADS 4096u
/* Source text: rows given text per model, bytes read per file. */
#define CP_LINESINK_MAX_TEXT_ROWS  2000u
#define CP_LINESINK_MAX_FILE_BYTES (4u << 20)

/* NULL on OOM. */
cp_linesink *cp_linesink_register(struct codeprof_session *s);
uint64_t cp_linesink_count(const cp_linesink *k);
/* Fills the exact rows of m->lines (and reads source text for every row of
 * m->lines, bounded). */
int cp_linesink_fill_model(cp_linesink *k, struct cp_model *m);

/* For tests and the sink callbacks: a sink not registered on a session
 * (free with cp_linesink_free), fed directly. */
cp_linesink *cp_linesink_new(void);
void cp_linesink_consume(cp_linesink *k, const struct cp_tbuf *t, const cp_event *ev, uint32_t n);
void cp_linesink_reset(cp_linesink *k);
void cp_linesink_free(cp_linesink *k);
/* Events, rows or frames not kept (caps, OOM). */
uint64_t cp_linesink_dropped(const cp_linesink *k);
/* Reads the source text of every row of m->lines that has none (at most
 * CP_LINESINK_MAX_TEXT_ROWS rows; errors leave text unset). Finishes
 * m->lines first. */
void cp_linesink_read_text(struct cp_model *m);

#endif /* CP_LINESINK_H */
