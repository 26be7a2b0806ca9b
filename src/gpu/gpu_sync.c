/* gpu_sync.c -- PLACEHOLDER (the "gpusample" engineer replaces it). */
#include "gpu/gpu_sync.h"

#include <stdlib.h>

#include "model/model_gpu.h"

struct cp_gpu_sync {
    int unused;
};

void cp_gpu_sync_set_where_fn(cp_gpu_where_fn fn) { (void)fn; }
cp_gpu_sync *cp_gpu_sync_new(struct codeprof_session *s) {
    (void)s;
    return calloc(1, sizeof(cp_gpu_sync));
}
int cp_gpu_sync_start(cp_gpu_sync *gs) { (void)gs; return CP_GPU_SYNC_SRC_FALLBACK; }
void cp_gpu_sync_stop(cp_gpu_sync *gs) { (void)gs; }
void cp_gpu_sync_reset(cp_gpu_sync *gs) { (void)gs; }
void cp_gpu_sync_free(cp_gpu_sync *gs) { free(gs); }
void cp_gpu_sync_atfork_child(cp_gpu_sync *gs) { (void)gs; }
void cp_gpu_sync_record(cp_gpu_sync *gs, uint32_t kind, uint32_t site, uint32_t line,
                        uint64_t blocked_ns) {
    (void)gs;
    (void)kind;
    (void)site;
    (void)line;
    (void)blocked_ns;
}
uint64_t cp_gpu_sync_fingerprint(cp_gpu_sync *gs) { (void)gs; return 0; }
int cp_gpu_sync_fill_model(cp_gpu_sync *gs, struct cp_model *m) {
    (void)gs;
    (void)m;
    return 0;
}
