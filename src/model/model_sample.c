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

/* PLACEHOLDER (the "samplemodel" engineer implements it): counters only. */
int cp_msamp_merge(cp_msampling *dst, const cp_msampling *src, const uint32_t *smap,
                   int32_t worker_tag, uint32_t cap_timeline) {
    (void)smap;
    (void)worker_tag;
    (void)cap_timeline;
    dst->enabled |= src->enabled;
    dst->samples += src->samples;
    dst->samples_running += src->samples_running;
    dst->samples_idle += src->samples_idle;
    dst->samples_gil += src->samples_gil;
    dst->read_errors += src->read_errors;
    dst->dropped_stacks += src->dropped_stacks;
    dst->dropped_samples += src->dropped_samples;
    dst->timeline_dropped += src->timeline_dropped + src->ntimeline;
    dst->threads += src->threads;
    dst->sampler_cpu_ns += src->sampler_cpu_ns;
    return 0;
}
