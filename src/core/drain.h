/* drain.h -- the aggregation side of recording: consumes what threads
 * appended and feeds it to the session's sinks (sink.h) and trees.
 *
 * Runs on the session's drain thread (which wakes every 1-10 ms, more
 * often while buffers are being handed on, and only consumes full,
 * handed-on buffers), in a snapshot or stop (which also consume the
 * published prefix of every thread's current buffer, without stopping the
 * thread), and in a worker's item flush.  All of them hold the session's
 * agg_mu; a recording thread never waits for it.
 *
 * The drain thread is the only thread the profiler adds.  It never runs
 * Python, never records, and exits at stop or free.
 */
#ifndef CP_DRAIN_H
#define CP_DRAIN_H

#include <stdint.h>

struct codeprof_session;
struct cp_tbuf;

/* Consumes thread `t`'s handed-on buffers and, if `live`, the published
 * prefix of its current buffer.  Bounded: only buffers handed on before
 * the call, and the prefix only if the owner did not hand `cur` on
 * meanwhile (then it waits for the next pass), so a consumer never chases
 * an owner that records faster than it folds.  agg_mu held.  Returns
 * events consumed. */
uint64_t cp_drain_thread(struct codeprof_session *s, struct cp_tbuf *t, int live);

/* Consumes every thread (see cp_drain_thread) and retires threads that
 * exited (their trees merged into s->exited, their memory freed).
 * agg_mu held.  Returns events consumed. */
uint64_t cp_drain_all(struct codeprof_session *s, int live);

/* Starts the drain thread of `s` in this process if it is not running.
 * Thread-safe; never called with agg_mu held. */
void cp_drain_ensure(struct codeprof_session *s);

/* Stops and joins the drain thread (life_mu held, agg_mu not held). */
void cp_drain_stop(struct codeprof_session *s);

#endif /* CP_DRAIN_H */
