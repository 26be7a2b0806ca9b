/* sample_session.c -- a session's statistical-profiling instruments
 * (sample_session.h).  PLACEHOLDER for the sampler part (the "sampler"
 * engineer completes it): the stack table and the sinks are created and
 * wired; no sampler thread runs yet. */
#include "sampling/sample_session.h"

#include <stdlib.h>

#include "core/session.h"
#include "cpu/linesink.h"
#include "model/model.h"
#include "sampling/samplesink.h"
#include "sampling/stacktab.h"

struct cp_samp_state {
    cp_stacktab *tab;
    cp_samplesink *sink;
    cp_linesink *lines; /* NULL unless CODEPROF_CFG_LINES */
};

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
    s->samp = st;
    return CODEPROF_OK;
}
void cp_samp_session_start(struct codeprof_session *s) { (void)s; }
void cp_samp_session_stop(struct codeprof_session *s) { (void)s; }
void cp_samp_session_reset(struct codeprof_session *s) {
    if (s->samp)
        cp_stacktab_reset(s->samp->tab);
}
void cp_samp_session_free(struct codeprof_session *s) {
    if (!s->samp)
        return;
    cp_stacktab_free(s->samp->tab);
    free(s->samp);
    s->samp = NULL;
}
void cp_samp_session_atfork_child(struct codeprof_session *s) { (void)s; }
uint64_t cp_samp_session_fingerprint(struct codeprof_session *s) {
    if (!s->samp)
        return 0;
    uint64_t fp = cp_samplesink_count(s->samp->sink) * 1000003u;
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
    if (s->samp->lines && cp_linesink_fill_model(s->samp->lines, m) != 0)
        return -1;
    cp_mlines_finish(&m->lines);
    return 0;
}
