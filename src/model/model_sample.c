/* model_sample.c -- the model's statistical-profiling section (model_sample.h). */
#include "model/model_sample.h"

#include <stdlib.h>
#include <string.h>

void cp_msamp_free(cp_msampling *ms) {
    free(ms->frames);
    free(ms->stacks);
    free(ms->timeline);
    memset(ms, 0, sizeof *ms);
}

static int before(const cp_msample *a, const cp_msample *b) {
    if (a->t_ns != b->t_ns)
        return a->t_ns < b->t_ns;
    return a->os_tid < b->os_tid;
}

/* src's stacks are appended after dst's: src stack i becomes dst stack
 * dst->nstacks + i (src's stack 0, "(other stacks)", maps to dst's 0).  The
 * timelines are merged in time order; past cap_timeline the first half and
 * the latest half of the merged sequence are kept (what each side had
 * already dropped, and what is dropped here, is counted). */
int cp_msamp_merge(cp_msampling *dst, const cp_msampling *src, const uint32_t *smap,
                   int32_t worker_tag, uint32_t cap_timeline) {
    if ((uint64_t)dst->nframes + src->nframes > UINT32_MAX ||
        (uint64_t)dst->nstacks + src->nstacks + 1 > UINT32_MAX)
        return -1;
    cp_msframe *frames = NULL;
    cp_mstack *stacks = NULL;
    cp_msample *tl = NULL;
    if (src->nstacks == 0 && src->ntimeline == 0)
        goto counters; /* nothing to copy: dst's arrays stay as they are */
    uint32_t dst_nstacks = dst->nstacks ? dst->nstacks : 1; /* keep index 0 */
    uint32_t nstacks = dst_nstacks + src->nstacks;
    uint32_t nframes = dst->nframes + src->nframes;
    frames = malloc(((size_t)nframes + 1) * sizeof *frames);
    stacks = calloc((size_t)nstacks + 1, sizeof *stacks);
    if (!frames || !stacks)
        goto oom;
    if (dst->nframes)
        memcpy(frames, dst->frames, (size_t)dst->nframes * sizeof *frames);
    if (dst->nstacks)
        memcpy(stacks, dst->stacks, (size_t)dst->nstacks * sizeof *stacks);
    for (uint32_t i = 0; i < src->nframes; i++) {
        cp_msframe f = src->frames[i];
        f.site = smap ? smap[f.site] : f.site; /* smap covers src's sites */
        frames[dst->nframes + i] = f;
    }
    for (uint32_t i = 0; i < src->nstacks; i++) {
        cp_mstack st = src->stacks[i];
        if (i == 0 || (uint64_t)st.first + st.n > src->nframes)
            st.first = st.n = 0;
        else
            st.first += dst->nframes;
        stacks[dst_nstacks + i] = st;
    }

    /* timeline: merge two sorted runs, keep the first and the last halves */
    uint64_t total = (uint64_t)dst->ntimeline + src->ntimeline;
    uint32_t keep = total > cap_timeline ? cap_timeline : (uint32_t)total;
    uint32_t h1 = keep / 2, h2 = keep - h1;
    tl = malloc(((size_t)keep + 1) * sizeof *tl);
    if (!tl)
        goto oom;
    uint32_t i = 0, j = 0, out = 0;
    for (uint64_t r = 0; r < total; r++) {
        cp_msample x;
        int from_src = j < src->ntimeline &&
                       (i >= dst->ntimeline || before(&src->timeline[j], &dst->timeline[i]));
        if (from_src) {
            x = src->timeline[j++];
            x.stack = x.stack && x.stack < src->nstacks ? dst_nstacks + x.stack : 0;
            if (x.worker == -1 && worker_tag >= 0)
                x.worker = worker_tag;
        } else {
            x = dst->timeline[i++];
        }
        if (r < h1 || r >= total - h2)
            tl[out++] = x;
    }

    free(dst->frames);
    free(dst->stacks);
    free(dst->timeline);
    dst->frames = frames;
    dst->nframes = nframes;
    dst->stacks = stacks;
    dst->nstacks = nstacks;
    dst->timeline = tl;
    dst->ntimeline = out;
    dst->timeline_dropped += total - out;
counters:
    dst->timeline_dropped += src->timeline_dropped;
    if (!dst->enabled && src->enabled) {
        dst->mode = src->mode;
        dst->native = src->native;
        dst->interval_ns = src->interval_ns;
    }
    dst->enabled |= src->enabled;
    dst->samples += src->samples;
    dst->samples_running += src->samples_running;
    dst->samples_idle += src->samples_idle;
    dst->samples_gil += src->samples_gil;
    dst->ticks += src->ticks;
    dst->missed_ticks += src->missed_ticks;
    dst->read_errors += src->read_errors;
    dst->dropped_stacks += src->dropped_stacks;
    dst->dropped_samples += src->dropped_samples;
    dst->threads += src->threads;
    dst->sampler_cpu_ns += src->sampler_cpu_ns;
    return 0;
oom:
    free(frames);
    free(stacks);
    free(tl);
    return -1;
}
