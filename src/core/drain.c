/* drain.c -- the aggregation side of recording (drain.h). */
#include "core/drain.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/session.h"
#include "cpu/cct.h"
#include "sampling/sample_session.h"

/* Feeds events of `t` to its tree and every sink. */
static void consume(cp_session *s, cp_tbuf *t, const cp_event *ev, uint32_t n) {
    if (!n)
        return;
    cp_tree_fold(t->tree, ev, n);
    for (uint32_t i = 0; i < s->nsinks; i++)
        s->sinks[i].consume(s->sinks[i].ctx, t, ev, n);
    t->events_total += n;
}

/* Consumes b[b->folded, len). */
static uint64_t consume_buffer(cp_session *s, cp_tbuf *t, cp_evbuf *b) {
    uint32_t len = atomic_load_explicit(&b->len, memory_order_acquire);
    if (len <= b->folded)
        return 0;
    uint32_t n = len - b->folded;
    consume(s, t, &b->ev[b->folded], n);
    b->folded = len;
    return n;
}

uint64_t cp_drain_thread(cp_session *s, cp_tbuf *t, int live) {
    uint64_t total = 0;
    /* Bounded: only what was handed on when we started, so a consumer
     * never chases an owner that records faster than it folds. */
    uint32_t tail = atomic_load_explicit(&t->ring_tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&t->ring_head, memory_order_acquire);
    while (tail != head) {
        cp_evbuf *b = t->ring[tail % CP_TBUF_RING];
        total += consume_buffer(s, t, b);
        cp_pool_put(&s->pool, b);
        tail++;
        atomic_store_explicit(&t->ring_tail, tail, memory_order_release);
    }
    if (!live)
        return total;
    /* The owner hands a buffer on before it installs the next one, so when
     * the ring is still where we left it after reading `cur`, every event
     * before cur's first one has been consumed; otherwise the owner moved
     * on meanwhile and the rest waits for the next pass (order first). */
    cp_evbuf *c = atomic_load_explicit(&t->cur, memory_order_acquire);
    if (atomic_load_explicit(&t->ring_head, memory_order_acquire) != tail)
        return total;
    if (c)
        total += consume_buffer(s, t, c);
    return total;
}

/* Frees an exited thread's state after merging its tree (agg_mu held and
 * `t` already unlinked). */
static void retire(cp_session *s, cp_tbuf *t) {
    cp_drain_thread(s, t, 1);
    cp_tree_close_all(t->tree, cp_tree_last_tick(t->tree));
    if (!s->exited)
        s->exited = cp_session_new_tree(s);
    if (s->exited)
        cp_tree_merge(s->exited, t->tree);
    /* The stack sampler's own thread is no thread of the user's program. */
    if (!cp_samp_session_is_sampler_thread(s, t->os_tid))
        s->nexited++;
    s->exited_events += t->events_total;
    s->exited_paused += atomic_load(&t->dropped_paused);
    s->exited_full += atomic_load(&t->dropped_full);
    s->exited_reentrant += atomic_load(&t->dropped_reentrant);
    cp_evbuf *c = atomic_load(&t->cur);
    if (c)
        cp_pool_put(&s->pool, c);
    cp_tbuf_free(t);
}

uint64_t cp_drain_all(cp_session *s, int live) {
    uint64_t total = 0;
    int any_exited = 0;
    for (cp_tbuf *t = atomic_load_explicit(&s->bufs, memory_order_acquire); t; t = t->next) {
        int exited = atomic_load_explicit(&t->mark->exited, memory_order_acquire);
        any_exited |= exited;
        total += cp_drain_thread(s, t, live || exited);
    }
    /* Unlink exited threads.  trylock: a stopper may hold `mu` while it
     * waits for a thread that waits for agg_mu (a worker's flush). */
    if (any_exited && pthread_mutex_trylock(&s->mu) == 0) {
        cp_tbuf *dead = NULL;
        cp_tbuf *_Atomic *pp = &s->bufs;
        cp_tbuf *cur = atomic_load_explicit(pp, memory_order_relaxed);
        cp_tbuf *prev = NULL;
        while (cur) {
            cp_tbuf *next = cur->next;
            if (atomic_load_explicit(&cur->mark->exited, memory_order_acquire)) {
                if (prev)
                    prev->next = next;
                else
                    atomic_store_explicit(pp, next, memory_order_release);
                cur->next = dead;
                dead = cur;
            } else {
                prev = cur;
            }
            cur = next;
        }
        pthread_mutex_unlock(&s->mu);
        while (dead) {
            cp_tbuf *n = dead->next;
            retire(s, dead);
            dead = n;
        }
    }
    return total;
}

static void *drain_main(void *arg) {
    cp_session *s = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are for user threads */
    pthread_setname_np(pthread_self(), "codeprof-drain");
    long nap_ms = 1;
    uint32_t reserve = 16;
    uint64_t seen_full = 0;
    pthread_mutex_lock(&s->drain_mu);
    while (!atomic_load(&s->drain_quit)) {
        pthread_mutex_unlock(&s->drain_mu);
        pthread_mutex_lock(&s->agg_mu);
        uint64_t n = cp_drain_all(s, 0);
        if (n)
            s->drains++;
        pthread_mutex_unlock(&s->agg_mu);
        /* Keep free buffers for every thread to swap into before the next
         * pass: recording threads never allocate.  The reserve doubles
         * whenever a thread dropped events for want of one (a burst faster
         * than this thread's naps), up to the pool's cap; untouched
         * buffers are mapped pages that cost no memory until written. */
        pthread_mutex_lock(&s->mu);
        uint32_t nthreads = 0; /* live ones: exited threads need no buffer */
        uint64_t full = 0;
        for (cp_tbuf *t = atomic_load_explicit(&s->bufs, memory_order_relaxed); t; t = t->next) {
            full += atomic_load_explicit(&t->dropped_full, memory_order_relaxed);
            nthreads++;
        }
        pthread_mutex_unlock(&s->mu);
        if (full > seen_full && reserve < s->pool.nslots)
            reserve *= 2;
        seen_full = full;
        uint32_t want = 4 * nthreads + 4 > reserve ? 4 * nthreads + 4 : reserve;
        uint32_t have = cp_pool_free_count(&s->pool);
        if (have < want)
            cp_pool_grow(&s->pool, want - have);
        /* Busy: look again soon; idle: back off to 10 ms. */
        nap_ms = n ? 1 : (nap_ms * 2 > 10 ? 10 : nap_ms * 2);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += nap_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&s->drain_mu);
        if (!atomic_load(&s->drain_quit))
            pthread_cond_timedwait(&s->drain_cv, &s->drain_mu, &ts);
    }
    pthread_mutex_unlock(&s->drain_mu);
    return NULL;
}

void cp_drain_ensure(cp_session *s) {
    pthread_mutex_lock(&s->drain_mu);
    int pid = (int)getpid();
    if (s->drain_pid != pid &&
        atomic_load_explicit(&s->state, memory_order_relaxed) == CP_STATE_RUNNING) {
        atomic_store(&s->drain_quit, 0);
        if (pthread_create(&s->drain_thread, NULL, drain_main, s) == 0)
            s->drain_pid = pid;
    }
    pthread_mutex_unlock(&s->drain_mu);
}

void cp_drain_stop(cp_session *s) {
    pthread_mutex_lock(&s->drain_mu);
    int running = s->drain_pid == (int)getpid();
    pthread_t th = s->drain_thread;
    if (running) {
        atomic_store(&s->drain_quit, 1);
        pthread_cond_broadcast(&s->drain_cv);
    }
    pthread_mutex_unlock(&s->drain_mu);
    if (!running)
        return;
    pthread_join(th, NULL);
    pthread_mutex_lock(&s->drain_mu);
    if (s->drain_pid == (int)getpid() && pthread_equal(s->drain_thread, th))
        s->drain_pid = 0;
    pthread_mutex_unlock(&s->drain_mu);
}
