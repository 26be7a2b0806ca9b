/*
 * codeprof.h -- public C API of libcodeprof.
 *
 * libcodeprof measures where time (and, as later modules land, memory, GPU
 * and data-loading time) goes in a process, folds the measurements into a
 * profile model, runs analysis rules over it and writes reports.  The Python
 * package `code_profiler` is a thin facade over this same library, so native
 * stages instrumented with this header land in the same report as Python
 * code.
 *
 * Conventions (every function below follows them unless its comment says
 * otherwise):
 *   - Every public name starts with `codeprof_` / `CODEPROF_`.
 *   - Functions that can fail return a `codeprof_status`; `CODEPROF_OK` is 0.
 *     Where a `codeprof_error *err` parameter exists it may be NULL; when
 *     non-NULL it receives the failing field name and a readable message.
 *   - A `codeprof_session *` argument may be NULL wherever documented as
 *     "NULL means the current session": the session most recently started
 *     in this process (see codeprof_session_current()).
 *   - Memory returned to the caller is documented as "free with X".
 *   - Thread safety is stated per function.
 *
 * Quick start:
 *
 *     codeprof_config cfg;
 *     codeprof_config_init(&cfg);
 *     codeprof_session *s = NULL;
 *     if (codeprof_session_new(&cfg, &s, NULL) != CODEPROF_OK) abort();
 *     codeprof_session_start(s);
 *     {
 *         CODEPROF_SCOPE(s, "decode_frame");    // GNU C: ends at block exit
 *         decode_frame();
 *     }
 *     codeprof_session_stop(s);
 *     codeprof_session_save(s, "report.json", CODEPROF_FORMAT_JSON, NULL);
 *     codeprof_session_free(s);
 */
#ifndef CODEPROF_CODEPROF_H
#define CODEPROF_CODEPROF_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CODEPROF_API __attribute__((visibility("default")))
#else
#define CODEPROF_API
#endif

/* ------------------------------------------------------------------------ */
/* Status codes: one table generates the enum, the names and the messages.  */
/* ------------------------------------------------------------------------ */

#define CODEPROF_STATUS_MAP(XX)                                                \
    XX(OK, "success")                                                          \
    XX(EINVAL, "invalid argument")                                             \
    XX(ENOMEM, "out of memory")                                                \
    XX(ESTATE, "operation not allowed in the session's current state")        \
    XX(ECONFIG, "invalid configuration value")                                 \
    XX(EIO, "input/output error")                                              \
    XX(ENOTSUP, "not supported on this platform or build")                     \
    XX(EFORMAT, "malformed input data")                                        \
    XX(EBUSY, "resource is busy")

typedef enum codeprof_status {
#define CODEPROF_STATUS_ENUM_(name, msg) CODEPROF_##name,
    CODEPROF_STATUS_MAP(CODEPROF_STATUS_ENUM_)
#undef CODEPROF_STATUS_ENUM_
    CODEPROF_STATUS_COUNT_
} codeprof_status;

/* "CODEPROF_EINVAL" etc.  Never NULL; unknown codes give "CODEPROF_UNKNOWN".
 * Returns a static string.  Thread-safe. */
CODEPROF_API const char *codeprof_status_name(codeprof_status st);
/* Human readable message for a status.  Never NULL; static string.
 * Thread-safe. */
CODEPROF_API const char *codeprof_status_message(codeprof_status st);

/* Optional error detail.  Filled by functions taking `codeprof_error *err`
 * when they fail (left untouched on success).  `field` names the config
 * field, file or argument at fault ("" if none); `message` is a complete
 * sentence naming what was expected. */
typedef struct codeprof_error {
    codeprof_status code;
    char field[64];
    char message[512];
} codeprof_error;

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

/* Bits for codeprof_config.flags. */
enum codeprof_config_flag {
    /* Measure thread CPU time at named-scope boundaries (one
     * clock_gettime(CLOCK_THREAD_CPUTIME_ID) per begin/end; never on traced
     * Python calls). */
    CODEPROF_CFG_SCOPE_CPU = 1u << 0,
    /* Record per-call durations for percentiles (reservoir per node). */
    CODEPROF_CFG_PERCENTILES = 1u << 1,
    /* Keep traced Python calls on the timeline too (not only scopes,
     * items, batches and the events of other instruments), in their own
     * store bounded by timeline_traced_events. */
    CODEPROF_CFG_TIMELINE_TRACED = 1u << 2,
    /* Memory snapshots: at every memory-context exit, the live tracked
     * bytes by allocation stack (memory_mode 1 or 2; src/memory/heap.h). */
    CODEPROF_CFG_MEM_SNAPSHOTS = 1u << 3,
    /* The garbage collector is profiled (the Python extension installs a
     * gc.callbacks entry while the session runs; src/memory/gcstats.h). */
    CODEPROF_CFG_GC = 1u << 4,
    /* Statistical profiling: the sampler also reads, for each sampled
     * thread, native frames where a safe way exists (docs/sampling.md). */
    CODEPROF_CFG_SAMPLE_NATIVE = 1u << 5,
    /* Line-level timing of the functions registered for it (the facade's
     * profile_function at the detailed/comprehensive levels with
     * enable_line_profiler): CP_EV_LINE events (src/python/lineprof.c). */
    CODEPROF_CFG_LINES = 1u << 6,
    /* GPU profiling (src/gpu/): CUDA operations timed with events on the
     * current stream, resolved lazily; needs the CUDA driver. */
    CODEPROF_CFG_GPU = 1u << 7,
    /* CUDA memory per GPU operation (torch's caching allocator figures the
     * facade passes, else the driver's free/total). */
    CODEPROF_CFG_GPU_MEMORY = 1u << 8,
    /* Host synchronization points blamed on the Python line (CUPTI
     * callbacks when CUPTI loads, else the facade's documented fallback). */
    CODEPROF_CFG_GPU_SYNC = 1u << 9,
};

/* Session configuration.  Initialise with codeprof_config_init() and then
 * change fields; codeprof_config_validate() checks every field. */
typedef struct codeprof_config {
    uint32_t struct_size;  /* sizeof(codeprof_config), set by init */
    uint32_t flags;        /* codeprof_config_flag bits */

    /* Events per recording buffer.  A thread appends to one buffer; a full
     * one is handed to the aggregation side and swapped for a free one
     * from the session's pool.  Range [1024, 1<<24].  Default 16384
     * (512 KiB per buffer). */
    uint32_t buffer_events;
    /* Maximum calling-context tree nodes per thread; calls in contexts past
     * the cap are attributed to their parent and counted as dropped.
     * Range [16, 1<<26].  Default 1<<20. */
    uint32_t max_nodes;
    /* Per-node duration reservoir size for percentiles (exact below it,
     * uniform reservoir sample above).  Range [1, 1<<20].  Default 10000. */
    uint32_t max_samples;

    /* Analysis thresholds (the rules in src/analysis read these).  Time
     * thresholds are in seconds, range [1e-9, 1e9] (the core compares them
     * as whole nanoseconds); the byte threshold's range is [1, 2^53].  NaN
     * and infinities are rejected. */
    double slow_function_s;        /* [1e-9, 1e9]; default 1.0   */
    double memory_intensive_bytes; /* [1, 2^53]; default 100 MiB */
    double slow_data_loading_s;    /* [1e-9, 1e9]; default 1.0   */
    double slow_preprocessing_s;   /* [1e-9, 1e9]; default 0.5   */
    double slow_gpu_op_s;          /* [1e-9, 1e9]; default 0.1   */
    /* Data-stall fraction (wait / (wait + step)) above which the loader is
     * reported as the bottleneck.  (0, 1); default 0.2. */
    double data_stall_fraction;

    /* Data-loading records (item loads, stages, batches) the main process
     * keeps one by one; past it records are aggregated per dataset, stage
     * and loader (count, sum, min, max, failures, slow loads), so memory
     * stays bounded (64 bytes a record: the default keeps ~61 MiB).  The
     * report counts them in data_loading.aggregated_records; percentiles and
     * outlier indices come from the stored records.  Range [1, 1<<32].
     * Default 1000000. */
    uint64_t max_data_records;
    /* ---- caps of the recording engine (each counted in the report's meta
     * when reached) ---- */
    /* Buffers in the session's pool, all threads together (each thread
     * holds one and hands full ones on); when none is free, events are
     * dropped and counted, never waited for.  Range [2, 1<<16].
     * Default 256 (128 MiB at the default buffer size, allocated only as
     * threads and load need them). */
    uint32_t pool_buffers;
    /* Distinct names interned by the session itself (codeprof_session_site,
     * e.g. profiling_context names); past the cap, names fold into one
     * "(other ...)" site per kind.  Range [16, 1<<20 - 16].
     * Default 1<<18. */
    uint32_t max_sites;
    /* Duration samples kept for percentiles, all nodes of all threads
     * together (each node keeps at most max_samples).  Range [0, 1<<28].
     * Default 1<<22 (32 MiB). */
    uint32_t sample_budget;
    /* Timeline events kept (explicit scopes, items, batches, marks,
     * attributes; traced calls have their own timeline_traced_events): the
     * first half and the most recent half; the middle is counted as
     * dropped.  0 keeps none of them.
     * Range [0, 1<<24].  Default 1<<18 (8 MiB). */
    uint32_t timeline_events;

    /* ---- report policy: how much of the model the JSON report and the
     * Python views show (docs/report-schema.md, "report_policy"); exports
     * (pstats, speedscope, collapsed, trace) are not bounded by it ---- */
    /* Functions listed in performance.functions: the top N by inclusive
     * time and the top N by self time.  Range [0, 1<<24].  Default 50. */
    uint32_t report_top_functions;
    /* Call-tree nodes written (not counting "other" nodes), all threads
     * together, largest inclusive time first.  Range [0, 1<<26].
     * Default 2000. */
    uint32_t report_tree_max_nodes;
    /* A call-tree node whose inclusive time is below this share of the
     * run's total tree time is folded into its parent's "other" child.
     * Range [0, 1].  Default 0.001. */
    double report_tree_min_share;

    /* Traced-call events the timeline keeps when CODEPROF_CFG_TIMELINE_TRACED
     * is set, in their own store (timeline_events bounds the explicit
     * scopes, items, batches and marks, which traced calls never push
     * out): the first half and the most recent half; the middle is counted
     * as dropped.  0 keeps none.  Range [0, 1<<24].  Default 1<<18
     * (8 MiB). */
    uint32_t timeline_traced_events;

    /* ---- memory profiling (docs/memory.md; src/memory/) ---- */
    /* Allocation tracking: 0 none (RSS and GC only), 1 sampled (about one
     * allocation recorded every memory_sample_bytes bytes, figures scaled
     * and marked as estimates), 2 every live block.  Range [0, 2].
     * Default 0. */
    uint32_t memory_mode;
    /* Python frames (or native frames) kept per allocation stack.
     * Range [1, 16].  Default 8. */
    uint32_t memory_stack_depth;
    /* Mean bytes between recorded allocations in mode 1.  Range [1, 2^40].
     * Default 262144 (256 KiB). */
    uint64_t memory_sample_bytes;
    /* Live recorded blocks kept by the allocation tracker; past it new
     * blocks are counted in meta.memory.dropped_blocks.
     * Range [1024, 1<<28].  Default 1<<22 (4M blocks, 128 MiB at most). */
    uint32_t memory_max_blocks;
    /* Distinct allocation stacks kept; past it stacks fold into one
     * "(other stacks)".  Range [16, 1<<24].  Default 1<<16. */
    uint32_t memory_max_stacks;
    /* Memory snapshots kept (CODEPROF_CFG_MEM_SNAPSHOTS): the first half
     * and the most recent half.  Range [0, 1<<16].  Default 64. */
    uint32_t memory_max_snapshots;
    /* RSS samples kept on the timeline (this process), first and most
     * recent halves.  Range [0, 1<<24].  Default 10000. */
    uint32_t memory_timeline_samples;
    /* Period of the process memory sampler (RSS of this process, RSS/PSS/
     * USS of watched workers); 0 turns it off.  Range 0 or [0.001, 3600]
     * seconds.  Default 0 (the facade sets it from sample_interval). */
    double memory_sample_interval_s;

    /* ---- statistical profiling (docs/sampling.md; src/sampling/) ---- */
    /* Period of the stack sampler; 0 turns it off.  Range 0 or
     * [0.001, 60] seconds.  Default 0 (the facade and `codeprof run
     * --sample` set it; 0.01 is the CLI's default). */
    double sample_interval_s;
    /* 0: wall clock (every thread every period, idle ones marked idle);
     * 1: CPU clock (a thread's sample weighs the CPU time it used since its
     * last sample; idle threads weigh nothing).  Range [0, 1].  Default 0. */
    uint32_t sample_mode;
    /* Distinct sampled stacks kept; past it stacks fold into one
     * "(other stacks)" and are counted.  Range [16, 1<<24].
     * Default 1<<16.  (Timestamped samples on the timeline are bounded by
     * max_samples: first and most recent halves.) */
    uint32_t sample_max_stacks;

    /* ---- GPU profiling (docs/gpu.md; src/gpu/) ---- */
    /* NVML sampling period (utilization, memory, power, temperature, SM
     * clock per device); 0 turns it off.  Range 0 or [0.001, 3600] seconds.
     * Default 0 (the facade sets it from sample_interval). */
    double gpu_sample_interval_s;
    /* GPU operations kept one by one (timeline, slowest list; the per-site
     * aggregates are exact): first half and most recent half; also bounds
     * the events awaiting resolution.  Range [0, 1<<24].  Default 65536. */
    uint32_t gpu_max_ops;
} codeprof_config;

/* Fills `cfg` with defaults.  `cfg` must not be NULL.  Thread-safe. */
CODEPROF_API void codeprof_config_init(codeprof_config *cfg);

/* Checks every field.  Returns CODEPROF_OK or CODEPROF_ECONFIG with `err`
 * naming the first bad field and the allowed range.  `cfg` NULL gives
 * CODEPROF_EINVAL.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_config_validate(const codeprof_config *cfg,
                                                      codeprof_error *err);

/* ------------------------------------------------------------------------ */
/* Sessions                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct codeprof_session codeprof_session;

/* Creates a stopped session with a copy of `cfg` (NULL: defaults).
 * On success stores a new session in *out: free with codeprof_session_free.
 * Fails with CODEPROF_ECONFIG (see `err`) or CODEPROF_ENOMEM.
 * Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_new(const codeprof_config *cfg,
                                                  codeprof_session **out,
                                                  codeprof_error *err);

/* Stops (if running) and frees the session and all its data.  NULL is a
 * no-op.  No other thread may use `s` during or after the call. */
CODEPROF_API void codeprof_session_free(codeprof_session *s);

/* Starts recording.  Data from earlier runs is kept (start/stop may be
 * repeated; codeprof_session_reset discards).  The started session becomes
 * the current session.  CODEPROF_ESTATE if already running.
 * Thread-safe with respect to recording threads. */
CODEPROF_API codeprof_status codeprof_session_start(codeprof_session *s);

/* Stops recording, waits for in-flight appends on other threads to finish
 * (never for a lock they hold) and folds every thread's buffer into the
 * model.  Scopes still open are closed at the stop time and counted as
 * truncated.  CODEPROF_ESTATE if not running.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_stop(codeprof_session *s);

/* Discards all recorded data.  CODEPROF_ESTATE while running. */
CODEPROF_API codeprof_status codeprof_session_reset(codeprof_session *s);

/* Turns the stack sampler (cfg.sample_interval_s > 0) on or off in this
 * process: off stops and joins its thread (a DataLoader worker that should
 * not sample); on starts it when the session is running (a fork child:
 * the thread does not survive fork, see docs/sampling.md).  NULL means the
 * current session.  CODEPROF_ENOTSUP when the session has no sampler
 * (interval 0), CODEPROF_EINVAL without a session.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_sampling(codeprof_session *s, int on);

/* 1 while recording, 0 otherwise (also for NULL).  Thread-safe. */
CODEPROF_API int codeprof_session_is_running(const codeprof_session *s);

/* The session most recently started and not yet freed, or NULL.
 * Thread-safe; the pointer is valid until that session is freed. */
CODEPROF_API codeprof_session *codeprof_session_current(void);

/* Tags the session's process role in reports, e.g. "main" or
 * "worker-3".  `role` is copied; NULL means "main". */
CODEPROF_API codeprof_status codeprof_session_set_role(codeprof_session *s,
                                                       const char *role);

/* ------------------------------------------------------------------------ */
/* Sites and scopes                                                          */
/* ------------------------------------------------------------------------ */

/* What a site stands for; shown in reports as "kind". */
typedef enum codeprof_site_kind {
    CODEPROF_SITE_SCOPE = 0,     /* named scope (C API, profiling_context) */
    CODEPROF_SITE_PYTHON = 1,    /* Python function                        */
    CODEPROF_SITE_NATIVE = 2,    /* C function called from Python          */
    CODEPROF_SITE_FUNCTION = 3,  /* explicitly profiled function           */
    CODEPROF_SITE_DATASET = 4,   /* dataset item load                      */
    CODEPROF_SITE_LOADER = 5,    /* data-loader batch wait                 */
    CODEPROF_SITE_PREPROCESS = 6,/* preprocessing stage                    */
    CODEPROF_SITE_AUGMENT = 7,   /* augmentation stage                     */
    CODEPROF_SITE_GPU = 8,       /* GPU operation                          */
    CODEPROF_SITE_KIND_COUNT_
} codeprof_site_kind;

/* Interns a site (a named place in code) in the process-wide site table
 * and returns its id (> 0); the same (name, file, line, kind) always gives
 * the same id.  `name` must not be NULL; `file` may be NULL.  Strings are
 * copied.  Returns 0 only when out of memory or name is NULL.  Thread-safe
 * (takes a mutex; call once per site and cache the id). */
CODEPROF_API uint32_t codeprof_site(const char *name, const char *file,
                                    uint32_t line, codeprof_site_kind kind);

/* Interns a site in the session's own table: for names that come and go
 * with the session (e.g. run-time built context names), freed with it.
 * Ids are valid only for scopes of `s` and until it is freed.  Past
 * codeprof_config.max_sites distinct names, returns the kind's
 * "(other ...)" site.  Returns 0 when out of memory, or for a NULL `s` or
 * `name`.  Thread-safe. */
CODEPROF_API uint32_t codeprof_session_site(codeprof_session *s, const char *name,
                                            const char *file, uint32_t line,
                                            codeprof_site_kind kind);

/* Bits for codeprof_scope_begin's `flags`. */
enum codeprof_scope_flag {
    CODEPROF_SCOPE_CPU = 1u << 0, /* measure thread CPU time of this scope  */
    CODEPROF_SCOPE_RSS = 1u << 1, /* measure process RSS delta of this scope */
    /* The scope is one dataset item load (a SITE_DATASET site); set
     * CODEPROF_ATTR_INDEX inside it.  Scopes nested in it are its stages.
     * In a worker (codeprof_session_attach_worker) the item's records are
     * written to the worker's spool as soon as the scope ends. */
    CODEPROF_SCOPE_ITEM = 1u << 2,
    /* The scope is one wait for a batch inside a loader's next() (a
     * SITE_LOADER site); set CODEPROF_ATTR_ITEMS and CODEPROF_ATTR_EPOCH. */
    CODEPROF_SCOPE_BATCH = 1u << 3,
    /* Measure memory: the net change and the peak of the tracked heap
     * (allocation tracking, config memory_mode) and of RSS within the
     * scope, aggregated per site in the report's memory section (a memory
     * context; a memory-measured function). */
    CODEPROF_SCOPE_HEAP = 1u << 4,
};

/* Opens a scope for `site` on the calling thread.  `s` NULL means the
 * current session; when there is none or it is not running, does nothing.
 * Never allocates per call (a thread's first call allocates its buffer
 * once).  Every begin must be ended by codeprof_scope_end on the same
 * thread.  Thread-safe. */
CODEPROF_API void codeprof_scope_begin(codeprof_session *s, uint32_t site,
                                       uint32_t flags);

/* Closes the innermost scope the calling thread opened for `site`.
 * Same NULL and thread rules as codeprof_scope_begin. */
CODEPROF_API void codeprof_scope_end(codeprof_session *s, uint32_t site,
                                     uint32_t flags);

/* Records a value for the innermost open scope of the calling thread,
 * e.g. a data item's index.  `key` is one of codeprof_attr_key. */
typedef enum codeprof_attr_key {
    CODEPROF_ATTR_INDEX = 1, /* dataset index of the enclosing item scope */
    CODEPROF_ATTR_BYTES = 2, /* bytes processed by the enclosing scope    */
    CODEPROF_ATTR_ITEMS = 3, /* items (e.g. batch size) of the scope      */
    CODEPROF_ATTR_EPOCH = 4, /* epoch number of a batch scope             */
    CODEPROF_ATTR_FAILED = 5,/* the item load raised; on a batch scope:
                                next() raised (StopIteration ends an epoch)
                                and the wait is not counted as a batch    */
    CODEPROF_ATTR_CANCEL = 6,/* the enclosing item/batch scope turned out
                                not to be one (e.g. the end of a stream):
                                its time stays in the tree, no record     */
} codeprof_attr_key;
CODEPROF_API void codeprof_scope_attr(codeprof_session *s, codeprof_attr_key key,
                                      int64_t value);

/* A static source location, the cheap way to name scopes from C.  The
 * macros below declare one per use site; `id` caches the interned site. */
typedef struct codeprof_srcloc {
    const char *name;
    const char *file;
    uint32_t line;
    uint32_t id; /* 0 until first use; then the site id (atomic) */
} codeprof_srcloc;

/* Begin/end using a static source location (interned on first use). */
CODEPROF_API void codeprof_scope_begin_loc(codeprof_session *s,
                                           codeprof_srcloc *loc,
                                           uint32_t flags);
CODEPROF_API void codeprof_scope_end_loc(codeprof_session *s,
                                         codeprof_srcloc *loc, uint32_t flags);

#define CODEPROF_CAT2_(a, b) a##b
#define CODEPROF_CAT_(a, b) CODEPROF_CAT2_(a, b)

/* CODEPROF_SCOPE_BEGIN(session, "name"); ... CODEPROF_SCOPE_END(session);
 * The pair must appear in the same C block. */
#define CODEPROF_SCOPE_BEGIN(s, name_)                                         \
    static codeprof_srcloc codeprof_loc_ = {(name_), __FILE__, __LINE__, 0};   \
    codeprof_scope_begin_loc((s), &codeprof_loc_, 0)
#define CODEPROF_SCOPE_END(s) codeprof_scope_end_loc((s), &codeprof_loc_, 0)

#if defined(__GNUC__)
typedef struct codeprof_scope_guard_ {
    codeprof_session *s;
    codeprof_srcloc *loc;
} codeprof_scope_guard_;
static inline void codeprof_scope_guard_end_(codeprof_scope_guard_ *g) {
    codeprof_scope_end_loc(g->s, g->loc, 0);
}
/* GNU C: a scope that ends when the enclosing block exits (any path). */
#define CODEPROF_SCOPE(s, name_)                                               \
    static codeprof_srcloc CODEPROF_CAT_(codeprof_loc_, __LINE__) = {          \
        (name_), __FILE__, __LINE__, 0};                                       \
    __attribute__((cleanup(codeprof_scope_guard_end_)))                        \
    codeprof_scope_guard_ CODEPROF_CAT_(codeprof_guard_, __LINE__) = {         \
        (s), &CODEPROF_CAT_(codeprof_loc_, __LINE__)};                         \
    codeprof_scope_begin_loc((s), &CODEPROF_CAT_(codeprof_loc_, __LINE__), 0)
#endif

/* ------------------------------------------------------------------------ */
/* Data loading: loaders and worker processes                                */
/* ------------------------------------------------------------------------ */

/* How a data loader is configured; read by the data-loading rules. */
typedef struct codeprof_loader_desc {
    uint32_t struct_size;     /* sizeof(codeprof_loader_desc)               */
    int32_t num_workers;      /* >= 0                                       */
    int32_t batch_size;       /* >= 1, or 0 when unknown                    */
    int32_t prefetch_factor;  /* >= 0 (0: not applicable)                   */
    uint8_t pin_memory;       /* 0/1                                        */
    uint8_t persistent_workers;
    uint8_t uses_gpu;         /* batches are moved to a GPU                 */
    uint8_t iterable;         /* iterable-style dataset                     */
} codeprof_loader_desc;

/* Records the configuration of the loader whose batch scopes use `site`.
 * `desc` is copied.  CODEPROF_EINVAL for NULL or a bad struct_size.
 * Thread-safe. */
CODEPROF_API codeprof_status codeprof_loader_describe(codeprof_session *s, uint32_t site,
                                                      const codeprof_loader_desc *desc);

/* Parent side: directory whose worker spool files (*.cpspool) are merged
 * into this session's reports.  `dir` is copied; NULL clears it.
 * Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_set_spool_dir(codeprof_session *s,
                                                            const char *dir);

/* Worker side: from now on this process's data-loading records (items,
 * their stages, batches) go to a new file "<dir>/<pid>.cpspool", written
 * through a shared mapping record by record, so a worker killed at any
 * point loses at most the item it was loading.  `worker_id` is the
 * DataLoader worker id.  Errors name the file (`err`).  Call once per
 * process; CODEPROF_ESTATE if already attached.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_attach_worker(codeprof_session *s,
                                                            const char *dir, int worker_id,
                                                            codeprof_error *err);

/* Worker side: flushes the calling thread's records, writes this worker's
 * call tree (a snapshot of the session) to "<spool dir>/<pid>.cpmodel" for
 * the parent's reports, then marks the spool complete (clean shutdown).
 * Only the first call of an attached worker writes the model.  A failed
 * write (ENOSPC, ...) leaves no file, raises no signal, still marks the
 * spool complete and returns CODEPROF_EIO (CODEPROF_ENOMEM out of memory).
 * Safe to call more than once.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_close_worker(codeprof_session *s);

/* Tells the session's memory sampler to follow process `pid` (a DataLoader
 * worker `worker` of the loader at `loader_site`, 0 if unknown): its RSS,
 * PSS and USS (/proc/<pid>/smaps_rollup) are sampled every
 * memory_sample_interval_s until it exits, and reported per process.
 * CODEPROF_ENOTSUP when the sampler is off (interval 0) or /proc is
 * missing; CODEPROF_EINVAL for pid <= 0.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_watch_process(codeprof_session *s, int pid,
                                                            int worker, uint32_t loader_site);

/* ------------------------------------------------------------------------ */
/* Reports                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum codeprof_format {
    CODEPROF_FORMAT_JSON = 0,       /* the versioned report (docs/report-schema.md)   */
    CODEPROF_FORMAT_TEXT = 1,       /* human summary: top functions and findings     */
    CODEPROF_FORMAT_PSTATS = 2,     /* cProfile's marshal format (pstats, snakeviz)  */
    CODEPROF_FORMAT_SPEEDSCOPE = 3, /* speedscope file format (JSON)                 */
    CODEPROF_FORMAT_COLLAPSED = 4,  /* collapsed stacks (flamegraph.pl, speedscope)  */
    CODEPROF_FORMAT_TRACE = 5,      /* Chrome Trace Event JSON (Perfetto, chrome://tracing) */
    CODEPROF_FORMAT_COUNT_
} codeprof_format;

/* The format's name: "json", "text", "pstats", "speedscope", "collapsed",
 * "trace"; NULL for a value out of range.  Static string. */
CODEPROF_API const char *codeprof_format_name(codeprof_format fmt);

/* The format named `name` (as codeprof_format_name spells it).
 * CODEPROF_EINVAL for NULL or an unknown name. */
CODEPROF_API codeprof_status codeprof_format_parse(const char *name, codeprof_format *fmt);

/* The format a file name asks for, by its ending: ".speedscope.json" ->
 * speedscope, ".trace.json" / ".perfetto.json" -> trace, ".json" -> json,
 * ".txt" -> text, ".prof" / ".pstats" -> pstats, ".collapsed" -> collapsed
 * (longest ending first, case-sensitive).  CODEPROF_EINVAL when the ending
 * is none of these (the caller then picks its default or asks). */
CODEPROF_API codeprof_status codeprof_format_for_path(const char *path, codeprof_format *fmt);

/* Renders the report of everything recorded so far.  If the session is
 * running it is paused for the fold (appends during the pause are counted
 * as dropped) and resumed.  Stores a new NUL-terminated string in *out
 * (and its length in *len if len is non-NULL): free with codeprof_free.
 * Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_report(codeprof_session *s,
                                                     codeprof_format fmt,
                                                     char **out, size_t *len);

/* Writes the report to `path` atomically: a temporary file in the same
 * directory, fsync, then rename, so a reader never sees a partial file and
 * a crash leaves the previous report intact.  On failure nothing recorded
 * is lost; `err` names the path and the OS error.  Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_save(codeprof_session *s,
                                                   const char *path,
                                                   codeprof_format fmt,
                                                   codeprof_error *err);

/* Frees memory returned by libcodeprof.  NULL is a no-op. */
CODEPROF_API void codeprof_free(void *p);

/* ------------------------------------------------------------------------ */
/* Utilities                                                                */
/* ------------------------------------------------------------------------ */

/* Monotonic time in nanoseconds (same clock as the events).  Thread-safe. */
CODEPROF_API uint64_t codeprof_now_ns(void);

/* Resident set size of this process in bytes, 0 if unknown.  One read of
 * /proc/self/statm.  Thread-safe; not async-signal-safe. */
CODEPROF_API uint64_t codeprof_rss_bytes(void);


/* ------------------------------------------------------------------------ */
/* GPU operations (docs/gpu.md; src/gpu/gpu_ops.c)                          */
/* ------------------------------------------------------------------------ */

/* A CUDA operation being timed.  codeprof_gpu_op_begin records an event on
 * `stream` (a CUstream; 0 = the legacy default stream) in the CUDA context
 * current on the calling thread, opens a scope on `site` (so the operation
 * is in the call tree with its host time) and fills *op; codeprof_gpu_op_end
 * records the end event on the same stream and closes the scope.  Nothing
 * waits for the GPU: the events are resolved when a report is taken.
 * Never creates a CUDA context nor initialises CUDA: when the driver is not
 * loaded, the program made no context, GPU profiling is off
 * (CODEPROF_CFG_GPU) or this is a forked child, only host time is kept (the
 * report's gpu section says why).  Memory: pass the allocator's figures
 * (torch.cuda.memory_allocated / memory_reserved / max_memory_allocated) in
 * mem[] when known (mem_known = 1), else the core reads the driver's
 * free/total when CODEPROF_CFG_GPU_MEMORY is set. */
typedef struct codeprof_gpu_op {
    uint64_t slot;         /* internal: the op's record                       */
    uint64_t host_start;   /* internal                                        */
    uint64_t stream;
    uint32_t site;
    uint32_t flags;        /* internal                                        */
} codeprof_gpu_op;

typedef struct codeprof_gpu_mem {
    int known;             /* the caller filled the figures                   */
    uint64_t allocated;    /* bytes allocated by the caching allocator        */
    uint64_t reserved;     /* bytes reserved by it                            */
    uint64_t max_allocated;/* its high-water mark since the process began     */
} codeprof_gpu_mem;

CODEPROF_API codeprof_status codeprof_gpu_op_begin(codeprof_session *s, uint32_t site,
                                                   uint64_t stream, const codeprof_gpu_mem *mem,
                                                   codeprof_gpu_op *op);
CODEPROF_API codeprof_status codeprof_gpu_op_end(codeprof_session *s, codeprof_gpu_op *op,
                                                 const codeprof_gpu_mem *mem);
/* A host synchronization point measured outside CUPTI (the facade's
 * fallback): `kind` is CP_GPU_SYNC_* of src/model/model_gpu.h (0 device,
 * 1 stream, 2 event, 3 blocking copy, 4 other), `site`/`line` the Python
 * function and line that caused it, `blocked_ns` the host time blocked. */
CODEPROF_API codeprof_status codeprof_gpu_sync_record(codeprof_session *s, uint32_t kind,
                                                      uint32_t site, uint32_t line,
                                                      uint64_t blocked_ns);

/* Records a warning on the session: `code` is a short stable identifier
 * (e.g. "tracer_thread_lost"), `message` says what happened, to whom and
 * when.  Both are copied (truncated to 63 and 511 bytes).  The first 64 are
 * kept, later ones are counted as dropped; the report lists them in
 * meta.warnings.  CODEPROF_EINVAL for a NULL argument, CODEPROF_ENOMEM.
 * Thread-safe. */
CODEPROF_API codeprof_status codeprof_session_warn(codeprof_session *s, const char *code,
                                                   const char *message);

#ifdef __cplusplus
}
#endif
#endif /* CODEPROF_CODEPROF_H */
