/* speedscope.c -- the speedscope export (speedscope.h). */
#include "export/speedscope.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/version.h"
#include "export/walk.h"
#include "report/jsonw.h"

typedef struct sstate {
    cp_jsonw *w;
    uint32_t *frame_of; /* model site -> frame index, UINT32_MAX: none yet */
    uint32_t *frames;   /* frame index -> model site */
    uint32_t nframes;
    uint64_t total_ns;  /* weights of the thread being written */
    uint64_t fold_ns;   /* nodes at or below it are folded (export/walk.h) */
    uint32_t other;     /* the "(other)" pseudo-site: one past the model's sites */
    int pass;           /* 0: frames and totals; 1: samples; 2: weights */
} sstate;

static uint32_t frame_index(sstate *st, uint32_t site) {
    if (st->frame_of[site] == UINT32_MAX) {
        st->frame_of[site] = st->nframes;
        st->frames[st->nframes++] = site;
    }
    return st->frame_of[site];
}

/* One sample: the path path[1..depth], then the "(other)" frame if
 * `other`, weighted `ns`. */
static void sample(sstate *st, const cp_model *m, const uint32_t *path, uint32_t depth, int other,
                   uint64_t ns) {
    if (!ns)
        return;
    if (st->pass == 0) {
        for (uint32_t d = 1; d <= depth; d++)
            frame_index(st, m->nodes[path[d]].site);
        if (other)
            frame_index(st, st->other);
        st->total_ns += ns;
    } else if (st->pass == 1) {
        cp_jsonw_begin_array(st->w);
        for (uint32_t d = 1; d <= depth; d++)
            cp_jsonw_uint(st->w, st->frame_of[m->nodes[path[d]].site]);
        if (other)
            cp_jsonw_uint(st->w, st->frame_of[st->other]);
        cp_jsonw_end_array(st->w);
    } else {
        cp_jsonw_uint(st->w, ns);
    }
}

static int on_node(const cp_model *m, const uint32_t *path, uint32_t depth, void *ctx) {
    sstate *st = ctx;
    const cp_mnode *n = &m->nodes[path[depth]];
    if (st->fold_ns && n->incl_ns <= st->fold_ns)
        return CP_WALK_SKIP; /* in its parent's "(other)" sample */
    sample(st, m, path, depth, 0, n->self_ns);
    sample(st, m, path, depth, 1, cp_export_folded_ns(m, path[depth], st->fold_ns));
    return st->w && cp_jsonw_failed(st->w) ? -1 : 0;
}

/* Every sample of thread `t` in the current pass. */
static int thread_samples(sstate *st, const cp_model *m, const cp_mthread *t) {
    if (t->root < m->nnodes) {
        uint32_t root = t->root;
        sample(st, m, &root, 0, 1, cp_export_folded_ns(m, root, st->fold_ns));
    }
    return cp_export_walk(m, t, on_node, st);
}

static void thread_name(const cp_model *m, const cp_mthread *t, char *buf, size_t n) {
    char who[80];
    if (t->worker >= 0)
        snprintf(who, sizeof who, "worker %d", (int)t->worker);
    else
        snprintf(who, sizeof who, "%s", m->role[0] ? m->role : "main");
    if (t->index == UINT32_MAX)
        snprintf(buf, n, "pid %d (%s) exited threads", (int)t->pid, who);
    else
        snprintf(buf, n, "pid %d (%s) thread %" PRIu64, (int)t->pid, who, t->os_tid);
}

int cp_export_speedscope(const cp_model *m, cp_strbuf *out) {
    return cp_export_speedscope_paths(m, out, CP_EXPORT_MAX_PATHS);
}

int cp_export_speedscope_paths(const cp_model *m, cp_strbuf *out, uint32_t max_paths) {
    sstate st;
    memset(&st, 0, sizeof st);
    st.fold_ns = cp_export_fold_threshold(m, max_paths);
    if (st.fold_ns == UINT64_MAX)
        return -1;
    uint32_t ns = (m->sites.n ? m->sites.n : 1) + 1;
    st.other = ns - 1;
    st.frame_of = malloc((size_t)ns * sizeof *st.frame_of);
    st.frames = malloc((size_t)ns * sizeof *st.frames);
    uint64_t *totals = calloc(m->nthreads ? m->nthreads : 1, sizeof *totals);
    int rc = -1;
    if (!st.frame_of || !st.frames || !totals)
        goto out;
    memset(st.frame_of, 0xff, (size_t)ns * sizeof *st.frame_of);
    /* Pass 0: the frames every sample uses, and each thread's total. */
    for (uint32_t t = 0; t < m->nthreads; t++) {
        st.total_ns = 0;
        if (thread_samples(&st, m, &m->threads[t]) != 0)
            goto out;
        totals[t] = st.total_ns;
    }
    cp_jsonw w;
    cp_jsonw_init(&w, out);
    st.w = &w;
    cp_jsonw_begin_object(&w);
    cp_jsonw_kv_s(&w, "$schema", "https://www.speedscope.app/file-format-schema.json");
    cp_jsonw_kv_s(&w, "exporter", "codeprof " CODEPROF_VERSION_STRING);
    {
        char name[96];
        snprintf(name, sizeof name, "codeprof pid %d", m->pid);
        cp_jsonw_kv_s(&w, "name", name);
    }
    cp_jsonw_kv_u(&w, "activeProfileIndex", 0);
    cp_jsonw_key(&w, "shared");
    cp_jsonw_begin_object(&w);
    cp_jsonw_key(&w, "frames");
    cp_jsonw_begin_array(&w);
    for (uint32_t i = 0; i < st.nframes; i++) {
        const cp_msite *s = st.frames[i] == st.other ? NULL : cp_model_site(m, st.frames[i]);
        cp_jsonw_begin_object(&w);
        cp_jsonw_kv_s(&w, "name", s ? s->name : st.frames[i] == st.other ? "(other)" : "?");
        if (s && s->file[0]) {
            cp_jsonw_kv_s(&w, "file", s->file);
            if (s->line)
                cp_jsonw_kv_u(&w, "line", s->line);
        }
        cp_jsonw_end_object(&w);
    }
    cp_jsonw_end_array(&w);
    cp_jsonw_end_object(&w);
    cp_jsonw_key(&w, "profiles");
    cp_jsonw_begin_array(&w);
    for (uint32_t t = 0; t < m->nthreads; t++) {
        char name[160];
        thread_name(m, &m->threads[t], name, sizeof name);
        cp_jsonw_begin_object(&w);
        cp_jsonw_kv_s(&w, "type", "sampled");
        cp_jsonw_kv_s(&w, "name", name);
        cp_jsonw_kv_s(&w, "unit", "nanoseconds");
        cp_jsonw_kv_u(&w, "startValue", 0);
        cp_jsonw_kv_u(&w, "endValue", totals[t]);
        cp_jsonw_key(&w, "samples");
        cp_jsonw_begin_array(&w);
        st.pass = 1;
        if (thread_samples(&st, m, &m->threads[t]) != 0)
            goto out;
        cp_jsonw_end_array(&w);
        cp_jsonw_key(&w, "weights");
        cp_jsonw_begin_array(&w);
        st.pass = 2;
        if (thread_samples(&st, m, &m->threads[t]) != 0)
            goto out;
        cp_jsonw_end_array(&w);
        cp_jsonw_end_object(&w);
    }
    cp_jsonw_end_array(&w);
    cp_jsonw_end_object(&w);
    rc = cp_jsonw_finish(&w) == 0 ? 0 : -1;
out:
    free(st.frame_of);
    free(st.frames);
    free(totals);
    return rc;
}
