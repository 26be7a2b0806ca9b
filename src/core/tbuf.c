/* tbuf.c -- a thread's recording state: the slow path that creates it,
 * the lock-free buffer swap, and thread-exit detection (tbuf.h). */
#include "core/tbuf.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/drain.h"
#include "core/session.h"
#include "cpu/cct.h"

_Thread_local cp_tls_slot cp_tls __attribute__((tls_model("initial-exec")));
/* A process-unique token per thread: OS thread ids are reused after a
 * thread exits, tokens never are, so a new thread never inherits a dead
 * thread's open frames. */
static _Thread_local uint64_t thread_token __attribute__((tls_model("initial-exec")));
static _Thread_local cp_thread_mark *thread_mark __attribute__((tls_model("initial-exec")));
static _Thread_local int in_slow __attribute__((tls_model("initial-exec")));
static _Thread_local int thread_exiting __attribute__((tls_model("initial-exec")));
static atomic_uint_fast64_t next_token = 1;
int cp_tbuf_need_fence = 1; /* until session.c proves membarrier works */

/* Free buffers the pool should hold when a thread registers: head-room
 * for a burst before the drain thread tops the pool up.  Topped up to,
 * not added per thread, so short-lived threads do not pile buffers up. */
#define SPARE_FREE 16

static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void mark_unref(cp_thread_mark *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

/* Runs on the exiting thread after its code finished: from now on it
 * records nothing, and the drain retires its buffers. */
static void on_thread_exit(void *v) {
    cp_thread_mark *m = v;
    thread_exiting = 1;
    cp_tls.sid = 0;
    cp_tls.buf = NULL;
    thread_mark = NULL;
    atomic_store_explicit(&m->exited, 1, memory_order_release);
    mark_unref(m);
}

static void key_init(void) { key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0; }

void cp_tbuf_forget_thread(void) {
    cp_tls.sid = 0;
    cp_tls.buf = NULL;
}

static cp_thread_mark *this_thread_mark(void) {
    if (thread_mark)
        return thread_mark;
    pthread_once(&key_once, key_init);
    cp_thread_mark *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    atomic_init(&m->exited, 0);
    atomic_init(&m->refs, 1); /* the thread's own reference */
    if (key_ok && pthread_setspecific(exit_key, m) != 0) {
        free(m);
        return NULL;
    }
    thread_mark = m;
    return m;
}

cp_tbuf *cp_tbuf_get_slow(cp_session *s) {
    if (in_slow || thread_exiting)
        return NULL; /* an allocation made below re-entered an instrument */
    in_slow = 1;
    uint64_t sid = atomic_load_explicit(&s->id, memory_order_acquire);
    if (!thread_token)
        thread_token = atomic_fetch_add(&next_token, 1);
    cp_thread_mark *mark = this_thread_mark();
    cp_tbuf *t = NULL;
    int created = 0;
    if (!mark)
        goto out;
    pthread_mutex_lock(&s->mu);
    for (t = atomic_load_explicit(&s->bufs, memory_order_relaxed); t; t = t->next)
        if (t->token == thread_token)
            break;
    if (!t) {
        t = calloc(1, sizeof *t);
        cp_evbuf *first = NULL;
        if (t) {
            t->tree = cp_session_new_tree(s);
            first = cp_pool_take(&s->pool);
            if (!first)
                first = cp_pool_new_buffer(&s->pool);
        }
        if (!t || !t->tree || !first) {
            if (first)
                cp_pool_put(&s->pool, first);
            if (t)
                cp_tree_free(t->tree);
            free(t);
            t = NULL;
        } else {
            uint32_t have = cp_pool_free_count(&s->pool);
            if (have < SPARE_FREE)
                cp_pool_grow(&s->pool, SPARE_FREE - have);
            atomic_init(&t->busy, 0);
            atomic_init(&t->cur, first);
            atomic_init(&t->ring_head, 0);
            atomic_init(&t->ring_tail, 0);
            t->s = s;
            t->mark = mark;
            atomic_fetch_add(&mark->refs, 1);
            t->os_tid = (uint64_t)syscall(SYS_gettid);
            t->token = thread_token;
            t->thread_index = s->nthreads++;
            t->next = atomic_load_explicit(&s->bufs, memory_order_relaxed);
            atomic_store_explicit(&s->bufs, t, memory_order_release);
            created = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (t) {
        cp_tls.sid = sid;
        cp_tls.buf = t;
    }
    /* In a forked child the drain thread does not exist yet. */
    if (created && atomic_load_explicit(&s->state, memory_order_relaxed) == CP_STATE_RUNNING)
        cp_drain_ensure(s);
out:
    in_slow = 0;
    return t;
}

cp_evbuf *cp_tbuf_swap(cp_tbuf *t) {
    cp_evbuf *old = atomic_load_explicit(&t->cur, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&t->ring_head, memory_order_relaxed);
    if (old && h - atomic_load_explicit(&t->ring_tail, memory_order_acquire) >= CP_TBUF_RING)
        return NULL; /* the aggregation side is behind: drop, don't wait */
    cp_evbuf *fresh = cp_pool_take(&t->s->pool);
    if (!fresh)
        return NULL;
    if (old) {
        t->ring[h % CP_TBUF_RING] = old;
        atomic_store_explicit(&t->ring_head, h + 1, memory_order_release);
    }
    atomic_store_explicit(&t->cur, fresh, memory_order_release);
    return fresh;
}

void cp_tbuf_free(cp_tbuf *t) {
    if (!t)
        return;
    cp_tree_free(t->tree);
    mark_unref(t->mark);
    free(t);
}
