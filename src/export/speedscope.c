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
    int pass;           /* 0: frames and totals; 1: samples; 2: weights */
} sstate;

static uint32_t frame_index(sstate *st, uint32_t site) {
    if (st->frame_of[site] == UINT32_MAX) {
        st->frame_of[site] = st->nframes;
        st->frames[st->nframes++] = site;
    }
    return st->frame_of[site];
}

static int on_node(const cp_model *m, const uint32_t *path, uint32_t depth, void *ctx) {
    sstate *st = ctx;
    const cp_mnode *n = &m->nodes[path[depth]];
    if (!n->self_ns)
        return 0;
    if (st->pass == 0) {
        for (uint32_t d = 1; d <= depth; d++)
            frame_index(st, m->nodes[path[d]].site);
        st->total_ns += n->self_ns;
        return 0;
    } else if (st->pass == 1) {
        cp_jsonw_begin_array(st->w);
        for (uint32_t d = 1; d <= depth; d++)
            cp_jsonw_uint(st->w, st->frame_of[m->nodes[path[d]].site]);
        cp_jsonw_end_array(st->w);
    } else {
        cp_jsonw_uint(st->w, n->self_ns);
    }
    return cp_jsonw_failed(st->w) ? -1 : 0;
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
    sstate st;
    memset(&st, 0, sizeof st);
    uint32_t ns = m->sites.n ? m->sites.n : 1;
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
        if (cp_export_walk(m, &m->threads[t], on_node, &st) != 0)
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
        const cp_msite *s = cp_model_site(m, st.frames[i]);
        cp_jsonw_begin_object(&w);
        cp_jsonw_kv_s(&w, "name", s ? s->name : "?");
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
        if (cp_export_walk(m, &m->threads[t], on_node, &st) != 0)
            goto out;
        cp_jsonw_end_array(&w);
        cp_jsonw_key(&w, "weights");
        cp_jsonw_begin_array(&w);
        st.pass = 2;
        if (cp_export_walk(m, &m->threads[t], on_node, &st) != 0)
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
