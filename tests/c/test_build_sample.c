/* test_build_sample.c -- sampled stacks through a real session into the
 * model (samplesink.c, build_sample.c, the build's thread list): a traced
 * and a sampled view of the same thread share nodes, sampled-only frames
 * become estimated nodes and functions, recursion counts once per stack,
 * a thread seen only by samples gets its own tree, the thread that
 * appended the samples is no thread of the model (live or exited), the
 * flat table stays sorted, m->samp and the sampled lines are filled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "analysis/rules.h"
#include "codeprof/codeprof.h"
#include "core/session.h"
#include "model/model.h"
#include "model/model_io.h"
#include "report/report.h"
#include "report/strbuf.h"
#include "sampling/sample_session.h"
#include "sampling/stacktab.h"
#include "session_fixture.h"

#define OTHER_TID 777777ull

typedef struct smp {
    codeprof_session *s;
    uint64_t tid;          /* the sampled (main) thread */
    uint64_t sampler_tid;
    uint32_t a, b, c, d;
    pthread_barrier_t go, done;
} smp;

static void emit(smp *x, uint32_t id, uint32_t inner, uint64_t tid, uint32_t w, unsigned st) {
    cp_emit(x->s, CP_EV_SAMPLE, (uint16_t)st, inner, (int64_t)((uint64_t)w << 32 | id), tid);
}

/* What the sampler thread does, with fixed stacks. */
static void *sampler(void *p) {
    smp *x = p;
    x->sampler_tid = (uint64_t)syscall(SYS_gettid);
    cp_stacktab *tab = cp_samp_session_stacktab(x->s);
    cp_sframe ba[2] = {{x->b, 21}, {x->a, 11}};
    cp_sframe cba[3] = {{x->c, 33}, {x->b, 22}, {x->a, 11}};
    cp_sframe aba[3] = {{x->a, 12}, {x->b, 23}, {x->a, 11}}; /* a recursing through b */
    cp_sframe dd[1] = {{x->d, 44}};
    uint32_t i_ba = cp_stacktab_intern(tab, ba, 2), i_cba = cp_stacktab_intern(tab, cba, 3);
    uint32_t i_aba = cp_stacktab_intern(tab, aba, 3), i_d = cp_stacktab_intern(tab, dd, 1);
    for (int k = 0; k < 2; k++)
        emit(x, i_ba, x->b, x->tid, 100, CP_SAMPF_RUNNING);
    for (int k = 0; k < 3; k++)
        emit(x, i_cba, x->c, x->tid, 200, CP_SAMPF_RUNNING);
    emit(x, i_aba, x->a, x->tid, 50, CP_SAMPF_RUNNING);
    for (int k = 0; k < 4; k++)
        emit(x, i_d, x->d, OTHER_TID, 300, CP_SAMPF_IDLE);
    pthread_barrier_wait(&x->go);   /* samples appended */
    pthread_barrier_wait(&x->done); /* the live snapshot is taken */
    return NULL;
}

static const cp_mnode *child(const cp_model *m, uint32_t p, const char *name) {
    for (uint32_t c = m->nodes[p].first_child; c != CP_NONE; c = m->nodes[c].next_sibling) {
        const cp_msite *si = cp_model_site(m, m->nodes[c].site);
        if (si && strcmp(si->name, name) == 0)
            return &m->nodes[c];
    }
    return NULL;
}

static const cp_mfunc *func(const cp_model *m, const char *name) {
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_msite *si = cp_model_site(m, m->funcs[i].site);
        if (si && strcmp(si->name, name) == 0)
            return &m->funcs[i];
    }
    return NULL;
}

static const cp_mthread *thread_of(const cp_model *m, uint64_t tid) {
    for (uint32_t i = 0; i < m->nthreads; i++)
        if (m->threads[i].os_tid == tid)
            return &m->threads[i];
    return NULL;
}

static void check_model(const smp *x, const cp_model *m) {
    assert_int_equal(m->nthreads, 2);
    assert_null(thread_of(m, x->sampler_tid));
    const cp_mthread *mt = thread_of(m, x->tid), *ot = thread_of(m, OTHER_TID);
    assert_non_null(mt);
    assert_non_null(ot);

    /* the traced thread: traced a > b, sampled on top */
    const cp_mnode *root = &m->nodes[mt->root];
    assert_int_equal(root->samples, 6);
    assert_int_equal(root->incl_ns, 1500); /* traced; nothing sampled-only at top */
    const cp_mnode *a = child(m, mt->root, "a");
    assert_non_null(a);
    assert_int_equal(a->count, 1);
    assert_int_equal(a->incl_ns, 1500);
    assert_int_equal(a->samples, 6);
    assert_int_equal(a->samples_running, 6);
    assert_int_equal(a->sampled_ns, 850);
    assert_int_equal(a->samples_self, 0);
    const cp_mnode *b = child(m, (uint32_t)(a - m->nodes), "b");
    assert_non_null(b);
    assert_int_equal(b->count, 1);
    assert_int_equal(b->incl_ns, 500);
    assert_int_equal(b->samples, 6);
    assert_int_equal(b->samples_self, 2);
    assert_int_equal(b->sampled_self_ns, 200);
    const cp_mnode *c = child(m, (uint32_t)(b - m->nodes), "c");
    assert_non_null(c);
    assert_int_equal(c->count, 0); /* only sampled: the estimates */
    assert_int_equal(c->samples, 3);
    assert_int_equal(c->incl_ns, 600);
    assert_int_equal(c->self_ns, 600);
    assert_int_equal(c->depth, 3);
    const cp_mnode *a2 = child(m, (uint32_t)(b - m->nodes), "a");
    assert_non_null(a2);
    assert_int_equal(a2->count, 0);
    assert_int_equal(a2->incl_ns, 50);

    /* the thread seen only by samples */
    const cp_mnode *oroot = &m->nodes[ot->root];
    assert_int_equal(oroot->incl_ns, 1200);
    assert_int_equal(oroot->samples, 4);
    const cp_mnode *d = child(m, ot->root, "d");
    assert_non_null(d);
    assert_int_equal(d->samples_running, 0);
    assert_int_equal(d->incl_ns, 1200);
    assert_int_equal(ot->worker, -1);
    assert_int_equal(ot->pid, m->pid);

    /* flat table: a's recursion counted once per stack; c, d estimated */
    const cp_mfunc *fa = func(m, "a"), *fc = func(m, "c"), *fd = func(m, "d");
    assert_non_null(fa);
    assert_int_equal(fa->calls, 1);
    assert_int_equal(fa->incl_ns, 1500);
    assert_int_equal(fa->samples, 6);
    assert_int_equal(fa->sampled_ns, 850);
    assert_int_equal(fa->samples_self, 1);
    assert_int_equal(fa->sampled_self_ns, 50);
    assert_non_null(fc);
    assert_int_equal(fc->calls, 0);
    assert_int_equal(fc->incl_ns, 600);
    assert_int_equal(fc->self_ns, 600);
    assert_non_null(fd);
    assert_int_equal(fd->calls, 0);
    assert_int_equal(fd->incl_ns, 1200);
    assert_int_equal(fd->samples, 4);
    for (uint32_t i = 1; i < m->nfuncs; i++)
        assert_true(m->funcs[i - 1].incl_ns >= m->funcs[i].incl_ns);

    /* the section */
    const cp_msampling *ms = &m->samp;
    assert_int_equal(ms->enabled, 1);
    assert_int_equal(ms->samples, 10);
    assert_int_equal(ms->samples_running, 6);
    assert_int_equal(ms->samples_idle, 4);
    assert_int_equal(ms->threads, 2);
    assert_int_equal(ms->nstacks, 5);
    assert_int_equal(ms->nframes, 9);
    assert_int_equal(ms->ntimeline, 10);
    for (uint32_t i = 1; i < ms->ntimeline; i++)
        assert_true(ms->timeline[i - 1].t_ns <= ms->timeline[i].t_ns);
    const cp_msample *t0 = &ms->timeline[0];
    assert_int_equal(t0->os_tid, x->tid);
    assert_int_equal(t0->weight_ns, 100);
    assert_int_equal(t0->worker, -1);
    const cp_mstack *st = &ms->stacks[t0->stack];
    assert_int_equal(st->n, 2);
    assert_string_equal(cp_model_site(m, ms->frames[st->first].site)->name, "b");
    assert_int_equal(ms->frames[st->first].line, 21);
    assert_string_equal(cp_model_site(m, ms->frames[st->first + 1].site)->name, "a");

    /* sampled lines */
    uint32_t nrows = 0;
    for (uint32_t i = 0; i < m->lines.n; i++) {
        const cp_mline *r = &m->lines.v[i];
        const char *nm = cp_model_site(m, r->site)->name;
        if (strcmp(nm, "c") == 0) {
            assert_int_equal(r->line, 33);
            assert_int_equal(r->samples, 3);
            assert_int_equal(r->sampled_ns, 600);
            assert_int_equal(r->hits, 0);
        }
        nrows++;
    }
    assert_int_equal(nrows, 4); /* b:21, c:33, a:12, d:44 */
}

static void test_sampled_and_traced_share_the_tree(void **state) {
    (void)state;
    smp x;
    memset(&x, 0, sizeof x);
    x.s = new_session();
    (void)calls;
    x.tid = (uint64_t)syscall(SYS_gettid);
    x.a = gsite("a", "sm.py", 10, CODEPROF_SITE_PYTHON);
    x.b = gsite("b", "sm.py", 20, CODEPROF_SITE_PYTHON);
    x.c = gsite("c", "sm.py", 30, CODEPROF_SITE_PYTHON);
    x.d = gsite("d", "other.py", 40, CODEPROF_SITE_PYTHON);
    assert_int_equal(codeprof_session_start(x.s), CODEPROF_OK);
    codeprof_scope_begin(x.s, x.a, 0);
    advance(1000);
    codeprof_scope_begin(x.s, x.b, 0);
    advance(500);
    codeprof_scope_end(x.s, x.b, 0);
    codeprof_scope_end(x.s, x.a, 0);

    pthread_barrier_init(&x.go, NULL, 2);
    pthread_barrier_init(&x.done, NULL, 2);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sampler, &x), 0);
    pthread_barrier_wait(&x.go);
    cp_model *m = cp_session_snapshot(x.s); /* the sampler's buffer is live */
    assert_non_null(m);
    check_model(&x, m);
    cp_model_free(m);
    pthread_barrier_wait(&x.done);
    pthread_join(th, NULL);
    m = cp_session_snapshot(x.s); /* it exited: its empty tree is not shown either */
    assert_non_null(m);
    check_model(&x, m);
    assert_int_equal(m->exited_threads, 1);
    /* the rules and the writers take a model with sampled-only nodes */
    assert_int_equal(cp_rules_run(m), 0);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_int_equal(cp_report_text(m, &sb), 0);
    char *out = cp_strbuf_detach(&sb, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"d\""));
    free(out);
    /* and a worker's model file carries the samples to its parent */
    void *buf = NULL;
    size_t len = 0;
    uint64_t cut = 0;
    assert_int_equal(cp_model_encode(m, 4, 0, &buf, &len, &cut), CP_MIO_OK);
    cp_model *wm = NULL;
    int32_t w = -1;
    assert_int_equal(cp_model_decode(buf, len, &wm, &w), CP_MIO_OK);
    free(buf);
    assert_int_equal(wm->samp.samples, 10);
    assert_int_equal(wm->samp.ntimeline, 10);
    assert_int_equal(wm->lines.n, m->lines.n);
    cp_model *parent = cp_session_snapshot(x.s);
    assert_non_null(parent);
    assert_int_equal(cp_model_merge(parent, wm, w), 0);
    assert_int_equal(parent->samp.samples, 20);
    assert_int_equal(parent->samp.ntimeline, 20);
    uint32_t tagged = 0;
    for (uint32_t i = 0; i < parent->samp.ntimeline; i++)
        tagged += parent->samp.timeline[i].worker == 4;
    assert_int_equal(tagged, 10);
    assert_int_equal(func(parent, "d")->samples, 8);
    assert_int_equal(func(parent, "d")->incl_ns, 2400);
    assert_int_equal(func(parent, "a")->samples, 12);
    cp_model_free(parent);
    cp_model_free(wm);
    cp_model_free(m);

    /* reset discards the samples */
    assert_int_equal(codeprof_session_stop(x.s), CODEPROF_OK);
    assert_int_equal(codeprof_session_reset(x.s), CODEPROF_OK);
    m = cp_session_snapshot(x.s);
    assert_non_null(m);
    assert_int_equal(m->samp.samples, 0);
    assert_int_equal(m->samp.ntimeline, 0);
    assert_int_equal(m->samp.nstacks, 1);
    for (uint32_t i = 0; i < m->nfuncs; i++)
        assert_int_equal(m->funcs[i].samples, 0);
    cp_model_free(m);
    pthread_barrier_destroy(&x.go);
    pthread_barrier_destroy(&x.done);
    codeprof_session_free(x.s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampled_and_traced_share_the_tree),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
