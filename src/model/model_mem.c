/* model_mem.c -- the model's memory section: freeing and merging
 * (model_mem.h). */
#include "model/model_mem.h"

#include <stdlib.h>
#include <string.h>

void cp_mmem_free(cp_mmem *mm) {
    free(mm->ctxs);
    free(mm->stacks);
    free(mm->sites);
    free(mm->leaks);
    free(mm->procs);
    free(mm->snaps);
    free(mm->snap_groups);
    memset(mm, 0, sizeof *mm);
}

/* PLACEHOLDER: the heap engineer writes the real merge (contexts by site,
 * stacks re-interned, groups, processes appended, GC summed). */
int cp_mmem_merge(cp_mmem *dst, const cp_mmem *src, const uint32_t *smap) {
    (void)smap;
    for (int g = 0; g < 3; g++) {
        dst->gc.collections[g] += src->gc.collections[g];
        dst->gc.collected[g] += src->gc.collected[g];
        dst->gc.uncollectable[g] += src->gc.uncollectable[g];
        dst->gc.time_ns[g] += src->gc.time_ns[g];
    }
    dst->gc.enabled |= src->gc.enabled;
    return 0;
}
