/* gpu_sync.h -- host synchronization points blamed on the Python line.
 *
 * With CUPTI loaded, a callback subscriber on the driver and runtime API
 * domains times the calls that block the host on the GPU (device, stream
 * and event synchronize, blocking device-to-host copies) and asks the
 * "where" callback for the calling thread's innermost user Python frame.
 * Without CUPTI, the facade's fallback (documented in docs/gpu.md) times
 * the torch calls that synchronize and reports them through
 * codeprof_gpu_sync_record.  Either way the figures are aggregated per
 * (function site, line, kind), bounded by CP_GPU_MAX_SYNC_SITES.
 */
#ifndef CP_GPU_SYNC_H
#define CP_GPU_SYNC_H

#include <stdint.h>

struct codeprof_session;
struct cp_model;
typedef struct cp_gpu_sync cp_gpu_sync;

/* The calling thread's innermost user Python frame as (site id, line);
 * returns 0 when found.  Set by the Python extension; must be safe to call
 * without the GIL (it reads only the thread's own frames). */
typedef int (*cp_gpu_where_fn)(uint32_t *site, uint32_t *line);
void cp_gpu_sync_set_where_fn(cp_gpu_where_fn fn);

cp_gpu_sync *cp_gpu_sync_new(struct codeprof_session *s);
/* Subscribes to CUPTI when it loaded (returns CP_GPU_SYNC_SRC_CUPTI), else
 * returns CP_GPU_SYNC_SRC_FALLBACK (the facade times syncs itself). */
int cp_gpu_sync_start(cp_gpu_sync *gs);
void cp_gpu_sync_stop(cp_gpu_sync *gs);
void cp_gpu_sync_reset(cp_gpu_sync *gs);
void cp_gpu_sync_free(cp_gpu_sync *gs);
void cp_gpu_sync_atfork_child(cp_gpu_sync *gs);
/* One synchronization (any thread; takes the recorder's own mutex). */
void cp_gpu_sync_record(cp_gpu_sync *gs, uint32_t kind, uint32_t site, uint32_t line,
                        uint64_t blocked_ns);
uint64_t cp_gpu_sync_fingerprint(cp_gpu_sync *gs);
/* Fills m->gpu.syncs (sites mapped into the model), m->gpu.sync_source. */
int cp_gpu_sync_fill_model(cp_gpu_sync *gs, struct cp_model *m);

/* Asks the registered where-callback for the calling thread's innermost
 * user frame; 0 when found (site 0 / line 0 and -1 otherwise, or when none
 * is registered).  What the CUPTI callback does at a sync's exit; the
 * Python test probe (_core._gpu_where_probe) calls it too. */
int cp_gpu_sync_where(uint32_t *site, uint32_t *line);

/* Uses `api` (loaded, e.g. tests/c/fake_cupti.c) instead of the loader's
 * CUPTI table; call before start.  The table must outlive the recorder. */
struct cp_cupti_api;
void cp_gpu_sync_use_api(cp_gpu_sync *gs, const struct cp_cupti_api *api);
/* Tests: the clock the CUPTI callback reads (NULL: cp_clock_mono_ns). */
void cp_gpu_sync_set_clock_for_tests(uint64_t (*now_ns)(void));
/* Why CUPTI is not the source ("" when it is). */
const char *cp_gpu_sync_reason(cp_gpu_sync *gs);
/* Callbacks turned off because their cbid is not a synchronization. */
uint64_t cp_gpu_sync_disabled_cbids(cp_gpu_sync *gs);
/* How a CUPTI function name is classified: CP_GPU_SYNC_* for a call that
 * blocks the host on the GPU, -1 for any other call. */
int cp_gpu_sync_classify(int domain, const char *function_name);

#endif /* CP_GPU_SYNC_H */
