/* model_gpu.c -- the model's GPU section (model_gpu.h). */
#include "model/model_gpu.h"

#include <stdlib.h>
#include <string.h>

void cp_mgpu_free(cp_mgpu *g) {
    free(g->ops);
    free(g->slow);
    free(g->spans);
    free(g->syncs);
    free(g->devices);
    free(g->samples);
    memset(g, 0, sizeof *g);
}

/* PLACEHOLDER (the "gpureport" engineer implements it): counters only. */
int cp_mgpu_merge(cp_mgpu *dst, const cp_mgpu *src, const uint32_t *smap) {
    (void)smap;
    dst->ops_dropped += src->ops_dropped + src->nspans;
    dst->ops_unresolved += src->ops_unresolved;
    dst->ops_host_only += src->ops_host_only;
    return 0;
}
