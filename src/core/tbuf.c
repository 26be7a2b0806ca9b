/* tbuf.c -- per-thread buffers: the slow path that creates one, and the
 * fold that empties one into its thread tree (tbuf.h). */
#include "core/tbuf.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/session.h"
#include "cpu/cct.h"

_Thread_local cp_tls_slot cp_tls __attribute__((tls_model("initial-exec")));
/* A process-unique token per thread: OS thread ids are reused after a
 * thread exits, tokens never are, so a new thread never inherits a dead
 * thread's open frames. */
static _Thread_local uint64_t thread_token;
static atomic_uint_fast64_t next_token = 1;
int cp_tbuf_need_fence = 1; /* until session.c proves membarrier works */

cp_tbuf *cp_tbuf_get_slow(cp_session *s) {
    uint64_t sid = atomic_load_explicit(&s->id, memory_order_acquire);
    if (!thread_token)
        thread_token = atomic_fetch_add(&next_token, 1);
    pthread_mutex_lock(&s->mu);
    cp_tbuf *b = s->bufs;
    for (; b; b = b->next)
        if (b->token == thread_token)
            break;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (b) {
            b->cap = s->cfg.buffer_events;
            b->ev = malloc((size_t)b->cap * sizeof *b->ev);
            b->tree = cp_tree_new(s->cfg.max_nodes, s->cfg.max_samples,
                                  (s->cfg.flags & CODEPROF_CFG_PERCENTILES) != 0);
            if (b->tree)
                cp_tree_set_datalog(b->tree, &s->log);
            if (!b->ev || !b->tree) {
                cp_tbuf_free(b);
                b = NULL;
            } else {
                b->s = s;
                b->os_tid = (uint64_t)syscall(SYS_gettid);
                b->token = thread_token;
                b->thread_index = s->nthreads++;
                b->next = s->bufs;
                s->bufs = b;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (b) {
        cp_tls.sid = sid;
        cp_tls.buf = b;
    }
    return b;
}

void cp_tbuf_fold(cp_tbuf *b) {
    if (b->len) {
        cp_tree_fold(b->tree, b->ev, b->len);
        b->events_total += b->len;
        b->len = 0;
    }
}

void cp_tbuf_free(cp_tbuf *b) {
    if (!b)
        return;
    free(b->ev);
    cp_tree_free(b->tree);
    free(b);
}
