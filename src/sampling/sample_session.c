/* sample_session.c -- a session's statistical-profiling instruments
 * (sample_session.h): the stack table, the sample and line sinks, and the
 * sampler thread (sampler.h), which runs while the session runs when
 * cfg.sample_interval_s > 0 and sampling is on in this process
 * (codeprof_session_sampling).
 *
 * Fork: the thread does not survive fork.  The child's handler (only the
 * forking thread exists) re-makes the sampler's locks, drops its state and
 * marks it for re-arming; cp_samp_after_fork_child starts it again once
 * the child is consistent (the CPython extension calls it from
 * os.register_at_fork(after_in_child=...); a C program calls
 * codeprof_session_sampling(s, 1)).  A child turns it off with
 * codeprof_session_sampling(s, 0). */
#include "sampling/sample_session.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/session.h"
#include "cpu/linesink.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "sampling/samplesink.h"
#include "sampling/stacktab.h"

struct cp_samp_state {
    cp_stacktab *tab;
    cp_samplesink *sink;
    cp_linesink *lines; /* NULL unless CODEPROF_CFG_LINES */
    cp_sampler *sampler; /* NULL unless sample_interval_s > 0 */
    atomic_int on;       /* sampling wanted in this process    */
    atomic_int rearm;    /* fork child: start at after_fork     */
    struct codeprof_session *s;
    struct cp_samp_state *next; /* registry (re-arm after fork) */
};

/* Sessions with a sampler, for the fork child's re-arm. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cp_samp_state *reg_head;

/* reg_mu is held across fork (so the child's copy is never one a vanished
 * thread held) and re-made in the child. */
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static void reg_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void reg_parent(void) { pthread_mutex_unlock(&reg_mu); }
static void reg_child(void) { pthread_mutex_init(&reg_mu, NULL); }
static void reg_init(void) { pthread_atfork(reg_prepare, reg_parent, reg_child); }

static void reg_add(struct cp_samp_state *st) {
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
    st->next = reg_head;
    reg_head = st;
    pthread_mutex_unlock(&reg_mu);
}
static void reg_remove(struct cp_samp_state *st) {
    pthread_mutex_lock(&reg_mu);
    for (struct cp_samp_state **pp = &reg_head; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

codeprof_status cp_samp_session_new(struct codeprof_session *s, codeprof_error *err) {
    (void)err;
    struct cp_samp_state *st = calloc(1, sizeof *st);
    if (!st)
        return CODEPROF_ENOMEM;
    st->tab = cp_stacktab_new(s->cfg.sample_max_stacks);
    if (!st->tab) {
        free(st);
        return CODEPROF_ENOMEM;
    }
    st->sink = cp_samplesink_register(s, st->tab);
    if (!st->sink) {
        cp_stacktab_free(st->tab);
        free(st);
        return CODEPROF_ENOMEM;
    }
    if (s->cfg.flags & CODEPROF_CFG_LINES) {
        st->lines = cp_linesink_register(s);
        if (!st->lines) {
            cp_stacktab_free(st->tab);
            free(st);
            return CODEPROF_ENOMEM;
        }
    }
    if (s->cfg.sample_interval_s > 0) {
        st->sampler = cp_sampler_new(s, st->tab);
        if (!st->sampler) {
            cp_stacktab_free(st->tab);
            free(st);
            return CODEPROF_ENOMEM;
        }
    }
    st->s = s;
    atomic_store(&st->on, 1);
    if (st->sampler)
        reg_add(st);
    s->samp = st;
    return CODEPROF_OK;
}
void cp_samp_session_start(struct codeprof_session *s) {
    if (s->samp && s->samp->sampler && atomic_load(&s->samp->on)) {
        atomic_store(&s->samp->rearm, 0);
        cp_sampler_start(s->samp->sampler);
    }
}
void cp_samp_session_stop(struct codeprof_session *s) {
    if (s->samp)
        cp_sampler_stop(s->samp->sampler);
}
void cp_samp_session_reset(struct codeprof_session *s) {
    if (!s->samp)
        return;
    cp_stacktab_reset(s->samp->tab);
    cp_sampler_reset(s->samp->sampler);
}
void cp_samp_session_free(struct codeprof_session *s) {
    if (!s->samp)
        return;
    if (s->samp->sampler) {
        cp_sampler_stop(s->samp->sampler);
        reg_remove(s->samp);
        cp_sampler_free(s->samp->sampler);
    }
    cp_stacktab_free(s->samp->tab);
    free(s->samp);
    s->samp = NULL;
}
void cp_samp_session_atfork_child(struct codeprof_session *s) {
    if (!s->samp || !s->samp->sampler)
        return;
    cp_sampler_atfork_child(s->samp->sampler);
    atomic_store(&s->samp->rearm, atomic_load(&s->samp->on));
}

void cp_samp_after_fork_child(void) {
    pthread_mutex_lock(&reg_mu);
    struct cp_samp_state *todo[64];
    int n = 0;
    for (struct cp_samp_state *st = reg_head; st && n < 64; st = st->next)
        if (atomic_exchange(&st->rearm, 0))
            todo[n++] = st;
    pthread_mutex_unlock(&reg_mu);
    for (int i = 0; i < n; i++)
        codeprof_session_sampling(todo[i]->s, 1);
}

codeprof_status codeprof_session_sampling(codeprof_session *s, int on) {
    s = cp_session_resolve(s);
    if (!s)
        return CODEPROF_EINVAL;
    if (!s->samp || !s->samp->sampler)
        return CODEPROF_ENOTSUP;
    pthread_mutex_lock(&s->life_mu);
    atomic_store(&s->samp->on, on != 0);
    atomic_store(&s->samp->rearm, 0);
    int rc = 0;
    if (!on)
        cp_sampler_stop(s->samp->sampler);
    else if (atomic_load(&s->state) == CP_STATE_RUNNING)
        rc = cp_sampler_start(s->samp->sampler);
    pthread_mutex_unlock(&s->life_mu);
    return rc == 0 ? CODEPROF_OK : CODEPROF_ENOMEM;
}

int cp_samp_session_is_sampler_thread(struct codeprof_session *s, uint64_t os_tid) {
    return s && s->samp && cp_sampler_is_own_thread(s->samp->sampler, os_tid);
}

int cp_samp_session_sampling_active(struct codeprof_session *s) {
    return s && s->samp && cp_sampler_running(s->samp->sampler);
}
uint64_t cp_samp_session_fingerprint(struct codeprof_session *s) {
    if (!s->samp)
        return 0;
    uint64_t fp = cp_samplesink_count(s->samp->sink) * 1000003u;
    if (s->samp->sampler) {
        cp_sampler_stats st;
        cp_sampler_get_stats(s->samp->sampler, &st);
        fp ^= st.samples * 0x9E3779B97F4A7C15ull ^ st.ticks;
    }
    if (s->samp->lines)
        fp ^= cp_linesink_count(s->samp->lines);
    return fp;
}
struct cp_stacktab *cp_samp_session_stacktab(struct codeprof_session *s) {
    return s->samp ? s->samp->tab : NULL;
}
struct cp_samplesink *cp_samp_session_sink(struct codeprof_session *s) {
    return s->samp ? s->samp->sink : NULL;
}
int cp_samp_model_build(struct cp_model *m, struct codeprof_session *s) {
    if (!s->samp)
        return 0;
    if (cp_samplesink_fill_model(s->samp->sink, m, s) != 0)
        return -1;
    if (s->samp->sampler) {
        /* the sampler's own figures (the sink counts what it folded) */
        cp_sampler_stats st;
        cp_sampler_get_stats(s->samp->sampler, &st);
        m->samp.enabled = 1;
        m->samp.mode = st.mode;
        m->samp.native = st.native;
        m->samp.interval_ns = st.interval_ns;
        m->samp.ticks = st.ticks;
        m->samp.missed_ticks = st.missed_ticks;
        m->samp.read_errors = st.read_errors;
        m->samp.sampler_cpu_ns = st.cpu_ns;
        if (m->samp.threads < st.threads)
            m->samp.threads = st.threads;
        if (!m->samp.samples) { /* a sink that counts nothing (yet) */
            m->samp.samples = st.samples;
            m->samp.samples_running = st.running;
            m->samp.samples_idle = st.idle;
            m->samp.samples_gil = st.gil;
        }
    }
    if (s->samp->lines) {
        if (cp_linesink_fill_model(s->samp->lines, m) != 0)
            return -1;
    } else if (m->lines.n) {
        cp_mlines_finish(&m->lines);
        cp_linesink_read_text(m); /* sampled lines show their source too */
    }
    cp_mlines_finish(&m->lines);
    return 0;
}
