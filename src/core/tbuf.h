/* tbuf.h -- per-thread append-only event buffers (the "record" stage).
 *
 * Each (thread, session) pair owns one cp_tbuf.  Appending takes no lock
 * and allocates nothing: the thread finds its buffer through a thread-local
 * slot, marks itself busy, checks that the session is running, writes one
 * 32-byte event and clears busy.  When the buffer is full the owning thread
 * folds it into its own calling-context tree (src/cpu/cct.c) and starts
 * over, so memory stays bounded by buffer_events per thread plus the tree.
 *
 * Stop/snapshot side (session.c): set the session state to not-running,
 * issue a process-wide barrier (membarrier(2), or a fence on every append
 * where membarrier is unavailable), then wait until no buffer is busy.
 * After that, every thread either finished its append or will see the
 * state and drop the event (counted in `dropped_paused`).
 */
#ifndef CP_TBUF_H
#define CP_TBUF_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/event.h"

struct codeprof_session;
struct cp_thread_tree; /* src/cpu/cct.h */

typedef struct cp_tbuf {
    atomic_uint busy;       /* 1 while the owner appends or folds        */
    uint32_t len;           /* events in ev[]                            */
    uint32_t cap;           /* capacity of ev[]                          */
    cp_event *ev;           /* owned                                     */
    struct cp_tbuf *next;   /* session's list of buffers                 */
    struct codeprof_session *s;   /* owning session                            */
    struct cp_thread_tree *tree; /* fold state + tree for this thread   */
    uint64_t os_tid;        /* gettid() of the owner                     */
    uint64_t token;         /* process-unique thread token (tbuf.c)      */
    uint32_t thread_index;  /* 0-based order of registration             */
    uint64_t dropped_paused;/* events refused because not running        */
    uint64_t events_total;  /* events appended over the buffer's life    */
} cp_tbuf;

/* Session states (cp_session.state). */
enum { CP_STATE_STOPPED = 0, CP_STATE_RUNNING = 1, CP_STATE_PAUSED = 2 };

/* Thread-local one-entry cache: the buffer of the last session used. */
typedef struct cp_tls_slot {
    uint64_t sid;    /* session generation id; 0 = empty */
    cp_tbuf *buf;
} cp_tls_slot;
/* initial-exec: one %fs-relative load instead of a __tls_get_addr call;
 * the slot is 16 bytes, well inside glibc's static TLS surplus for
 * dlopen'ed modules. */
extern _Thread_local cp_tls_slot cp_tls __attribute__((tls_model("initial-exec")));

/* Set at init: 1 when membarrier is unavailable and appends must fence. */
extern int cp_tbuf_need_fence;

/* Slow path: find or create this thread's buffer in `s` (takes the
 * session mutex once per thread).  Returns NULL on OOM. */
cp_tbuf *cp_tbuf_get_slow(struct codeprof_session *s);

/* Folds the owner's buffer into its tree and empties it.  Called by the
 * owner while busy, or by the stopper after all buffers went idle. */
void cp_tbuf_fold(cp_tbuf *b);

void cp_tbuf_free(cp_tbuf *b);

#endif /* CP_TBUF_H */
