/* model.h -- the profile model: what aggregation produces and what the
 * analysis rules and report writers read.  Writers never touch live
 * recording state (tbuf, thread trees) nor the process-wide site table;
 * they only read a cp_model.
 *
 * A model stands alone: it owns its site table and strings (`sites`), and
 * every `site` field below is an index into it (cp_model_site), so a model
 * stays valid after the session that built it is freed.  It is built by
 * build.h (cp_model_begin / cp_model_add_tree / cp_model_finish) and is
 * immutable once finished, except for `findings`, which the rules
 * (src/analysis/rules.c) append, and cp_model_merge, which folds another
 * model into it.
 */
#ifndef CP_MODEL_H
#define CP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "model/model_gpu.h"
#include "model/model_lines.h"
#include "model/model_mem.h"
#include "model/model_sample.h"
#include "model/site_table.h"

#define CP_NONE UINT32_MAX

/* One calling-context tree node (a site reached by one call path). */
typedef struct cp_mnode {
    uint32_t site;          /* model site index; 0 for a thread's root */
    uint32_t parent;        /* node index or CP_NONE                */
    uint32_t first_child;   /* node index or CP_NONE                */
    uint32_t next_sibling;  /* node index or CP_NONE                */
    uint32_t depth;         /* 0 for a thread root                  */
    uint64_t count;         /* completed calls                      */
    uint64_t incl_ns;       /* inclusive wall time                  */
    uint64_t self_ns;       /* exclusive wall time                  */
    uint64_t cpu_ns;        /* inclusive thread CPU (if measured)   */
    uint64_t cpu_count;     /* calls whose CPU time was measured    */
    uint64_t min_ns, max_ns;
    uint64_t p50_ns, p95_ns, p99_ns; /* 0: not computed by the build (nothing reads them);
                                        a reader of a worker model file may fill them */
    uint64_t truncated;     /* calls closed at stop, not by an exit  */
    int64_t rss_delta_sum;  /* over calls that measured RSS         */
    int64_t rss_delta_max;
    uint64_t rss_count;
    /* Statistical profiling (model_sample.h): samples whose stack passed
     * through this node (inclusive), were innermost here (self), and of
     * those the thread was running (not idle / waiting for the GIL); and
     * their weights (wall or CPU ns, the estimates).  A node reached only
     * by samples has count 0, and the build sets incl_ns/self_ns to
     * sampled_ns/sampled_self_ns so every writer shows the estimate. */
    uint64_t samples, samples_self, samples_running;
    uint64_t sampled_ns, sampled_self_ns;
} cp_mnode;

/* One thread's tree: nodes[root] is its root (site 0). */
typedef struct cp_mthread {
    uint64_t os_tid;
    int32_t pid;            /* process that recorded the thread     */
    int32_t worker;         /* DataLoader worker id; -1: not a worker */
    uint32_t index;         /* registration order in the session    */
    uint32_t root;          /* node index                           */
    uint64_t events;        /* events recorded by the thread        */
    uint64_t dropped;       /* events refused (not running / caps)  */
} cp_mthread;

/* Flat per-site statistics, summed over all contexts and threads.
 * incl_ns counts only outermost activations, so recursion is not counted
 * twice. */
typedef struct cp_mfunc {
    uint32_t site;          /* model site index                     */
    uint64_t calls;
    uint64_t incl_ns;
    uint64_t self_ns;
    uint64_t cpu_ns;
    uint64_t cpu_count;
    uint64_t min_ns, max_ns;
    uint64_t p50_ns, p95_ns, p99_ns;
    int64_t rss_delta_sum;
    int64_t rss_delta_max;
    uint64_t rss_count;
    /* Statistical profiling (as cp_mnode; inclusive counted once per stack,
     * so recursion is not counted twice).  calls == 0 with samples > 0:
     * only sampled; incl_ns/self_ns hold the estimates. */
    uint64_t samples, samples_self, samples_running;
    uint64_t sampled_ns, sampled_self_ns;
} cp_mfunc;

/* An analysis result (src/analysis/rules.c). */
typedef struct cp_finding {
    char rule[48];           /* stable rule id, e.g. "CP-PERF-001" style names below */
    char category[40];       /* identify_bottlenecks key, e.g. "slow_functions"    */
    char subject[256];       /* function, context, index...                         */
    double value;            /* measured value (in `unit`)                          */
    double threshold;        /* threshold it was compared with (in `unit`)          */
    char unit[16];           /* "s", "bytes", "fraction", ...                       */
    double severity;         /* value/threshold, used to rank                       */
    char recommendation[640];/* sentence quoting the numbers                        */
    double saving_s;         /* time a fix would save, seconds (ranks findings); 0: unknown */
} cp_finding;

/* ---- data loading (src/data/) ------------------------------------------ */

/* One timed data-loading record for the trace export (src/export/trace.c):
 * an item load (in the main process or a worker) or a loader batch wait.
 * Times are CLOCK_MONOTONIC ns, the same axis in every process and the
 * model's timeline. */
typedef struct cp_mrecord {
    uint64_t t_ns;            /* start                                        */
    uint64_t dur_ns;
    int64_t index;            /* item: dataset index; batch: items it held    */
    uint32_t site;            /* model site (dataset or loader)               */
    uint32_t epoch;           /* batch: epoch; item: 0                        */
    int32_t pid;              /* process that recorded it                     */
    int32_t worker;           /* DataLoader worker id; -1: main process       */
    uint16_t type;            /* CP_MREC_ITEM or CP_MREC_BATCH                */
    uint16_t failed;          /* item: the load raised                        */
    uint32_t pad_;
} cp_mrecord;
enum { CP_MREC_ITEM = 1, CP_MREC_BATCH = 2 };
/* Records a model keeps (cp_mdata.records): the first half and the last
 * half of this many, in time order; the rest are counted in
 * records_dropped. */
#define CP_MAX_DATA_RECORDS (1u << 18)

/* One dataset (a SITE_DATASET site), items merged from the main process and
 * every worker spool. */
typedef struct cp_mdataset {
    uint32_t site;
    uint64_t items;           /* item loads recorded                        */
    uint64_t failures;        /* loads whose __getitem__ raised             */
    uint64_t slow_loads;      /* loads above cfg.slow_data_loading_s        */
    uint64_t sum_ns, min_ns, max_ns, p50_ns, p95_ns, p99_ns;
    uint64_t distinct_indices;
    /* Outlier indices, slowest first: a load above the slow threshold, or
     * above median + max(5 x 1.4826 x MAD, 4 x median) of the dataset's
     * stored loads (src/data/outliers.h).  At most CP_MAX_BOTTLENECKS. */
    int64_t *bottleneck_indices;
    uint64_t *bottleneck_ns;     /* slowest load of that index            */
    uint32_t *bottleneck_epochs; /* epochs in which the index was an outlier */
    uint32_t nbottlenecks;
    uint32_t repeat_slow;     /* outlier indices slow in >= 2 epochs        */
} cp_mdataset;
#define CP_MAX_BOTTLENECKS 50

/* The DataLoader configuration the facade describes (codeprof_loader_describe). */
typedef struct cp_mloader_desc {
    int described;
    int32_t num_workers, batch_size, prefetch_factor;
    int pin_memory, persistent_workers, uses_gpu, iterable;
} cp_mloader_desc;

/* One data loader (a SITE_LOADER site): the training loop's view. */
typedef struct cp_mloader {
    uint32_t site;
    cp_mloader_desc desc;
    uint64_t batches, items, epochs;
    uint64_t wait_ns;         /* time inside next(), summed                   */
    uint64_t step_ns;         /* time between batches within an epoch, summed */
    uint64_t steps;           /* gaps measured (batches - epochs)             */
    uint64_t first_wait_ns;   /* first batch of each epoch, summed            */
    uint64_t wait_p50_ns, wait_p95_ns, wait_max_ns;
    double stall_fraction;    /* wait / (wait + step); 0 when nothing measured */
    double samples_per_s, batches_per_s;
} cp_mloader;

/* One worker process (a spool file) or the main process (worker == -1). */
typedef struct cp_mworker {
    int32_t worker;           /* DataLoader worker id; -1 for the main process */
    int32_t pid;
    uint64_t items, failures;
    uint64_t busy_ns;         /* sum of item load times                       */
    uint64_t span_ns;         /* first item start to last item end            */
    int incomplete;           /* process did not close its spool cleanly      */
    /* Why a worker's data is incomplete (added at the end; spool_reader.c). */
    int32_t spool_errno;      /* errno that stopped the worker spooling; 0: none */
    uint64_t spool_dropped;   /* records the worker could not spool           */
    uint64_t spool_bad;       /* records the parent skipped as invalid        */
    char reason[96];          /* "" when complete                             */
} cp_mworker;

/* A stage inside items (preprocess, augment, any explicit scope), merged
 * over processes. */
typedef struct cp_mstage {
    uint32_t site;
    uint64_t calls, sum_ns, max_ns;
    double share_of_item_time; /* sum_ns / total item time of all datasets */
} cp_mstage;

typedef struct cp_mdata {
    cp_mdataset *datasets;
    uint32_t ndatasets;
    cp_mloader *loaders;
    uint32_t nloaders;
    cp_mworker *workers;
    uint32_t nworkers;
    cp_mstage *stages;        /* sorted by sum_ns, descending */
    uint32_t nstages;
    uint64_t item_ns_total;   /* all datasets, all processes */
    uint32_t cpu_count;       /* online CPUs of this machine */
    uint64_t spool_errors;    /* unreadable/corrupt spool files */
    /* The main process's data log (added at the end; datalog.c). */
    uint64_t aggregated_records; /* past cfg.max_data_records: counted, not stored */
    uint64_t records_lost_oom;   /* records the log could not keep (out of memory) */
    /* Timed item loads and batch waits for the trace export, sorted by
     * t_ns: at most CP_MAX_DATA_RECORDS, the first and the last halves
     * (added at the end; data_model.c). */
    cp_mrecord *records;
    uint32_t nrecords;
    uint64_t records_dropped;    /* records not kept (the middle of a long run) */
} cp_mdata;

/* A warning recorded on the session (codeprof_session_warn). */
typedef struct cp_mwarning {
    char code[64];
    char message[512];
    uint64_t unix_ns;
} cp_mwarning;

typedef struct cp_model {
    codeprof_config cfg;
    /* meta */
    int pid;
    char role[64];
    const char *clock_source;
    uint64_t start_unix_ns;
    uint64_t duration_ns;     /* time spent running                    */
    uint64_t events_total;
    uint64_t dropped_events;  /* refused while paused/stopped          */
    uint64_t dropped_nodes;   /* calls folded into a parent: node cap  */
    uint64_t unmatched_exits; /* exits with no open scope (ignored)    */
    uint64_t truncated;       /* scopes closed at stop                 */
    uint64_t alloc_failures;  /* allocations that failed while aggregating
                                 (thread trees, data log): data is missing */
    uint32_t merged;          /* models merged into this one (cp_model_merge) */
    int approx_percentiles;   /* some percentiles combine merged models:
                                 count-weighted means of the parts' values */

    cp_msite_table sites;     /* the model's own sites and strings      */
    /* caps of the recording engine (docs/ARCHITECTURE.md) */
    uint64_t dropped_full;      /* no free buffer / hand-off ring full  */
    uint64_t dropped_reentrant; /* instrument fired inside an append    */
    uint64_t dropped_nothread;  /* async-safe append, thread had no buffer */
    uint64_t dropped_samples;   /* percentile samples refused: budget    */
    uint64_t dropped_sites;     /* names folded into "(other ...)" sites */
    uint32_t exited_threads;    /* threads that exited, merged in one tree */
    uint32_t pool_buffers;      /* event buffers allocated               */
    int python_traced;          /* the tracer recorded Python calls into this session */
    uint64_t hidden_calls;      /* the profiler's own calls the tracer left out */

    cp_mnode *nodes;
    uint32_t nnodes;
    cp_mthread *threads;
    uint32_t nthreads;
    cp_mfunc *funcs;          /* sorted by incl_ns, descending          */
    uint32_t nfuncs;

    cp_mdata data;            /* data loading; empty when none recorded   */
    cp_mmem mem;              /* memory (model_mem.h); zero when not profiled */
    cp_msampling samp;        /* statistical profiling (model_sample.h)   */
    cp_mlines lines;          /* line-level figures (model_lines.h)       */
    cp_mgpu gpu;              /* GPU (model_gpu.h); zero when not profiled */

    /* Timeline (src/core/timeline.h): explicit scopes, items, batches and
     * other instruments' events, the first and the last ones kept.  In a
     * model, an event's `tick` holds CLOCK_MONOTONIC ns (the data records'
     * axis) and its `site` a model site index (build.c converts both). */
    struct cp_tl_event *timeline;
    uint32_t ntimeline;
    uint64_t timeline_dropped;
    /* The traced-call stream (CODEPROF_CFG_TIMELINE_TRACED): ENTER/EXIT of
     * traced Python calls, bounded separately (cfg.timeline_traced_events),
     * converted as the explicit timeline is. */
    struct cp_tl_event *timeline_traced;
    uint32_t ntimeline_traced;
    uint64_t timeline_traced_dropped;
    /* Index in timeline_traced of the first event after the dropped middle
     * (cp_timeline_seam); 0 when the stream is continuous. */
    uint32_t timeline_traced_seam;

    /* Warnings components recorded on the session (codeprof_session_warn),
     * e.g. the tracer losing a thread to another profiler. */
    struct cp_mwarning *warnings;
    uint32_t nwarnings;
    uint64_t warnings_dropped;

    cp_finding *findings;     /* sorted by saving_s, then severity, descending */
    uint32_t nfindings;
    uint32_t cap_findings;

    struct cp_model_builder *builder; /* construction state; NULL once finished */
} cp_model;

/* The site at model index `idx`, or NULL for 0 (a thread root) or an index
 * the model does not hold.  The pointer and its strings live as long as
 * the model. */
const cp_msite *cp_model_site(const cp_model *m, uint32_t idx);

/* Adds (or finds) a site in the model's own table; strings are copied.
 * Returns its index, or 0 on OOM. */
uint32_t cp_model_intern_site(cp_model *m, const char *name, const char *file, uint32_t line,
                              uint16_t kind);

/* Folds `src` into `dst` (src is not changed):
 *  - sites are re-interned by (name, file, line, kind);
 *  - src's threads and their trees are appended; a thread keeps its pid,
 *    and one with worker == -1 gets `worker_tag` (pass -1 to keep it);
 *  - the flat per-site table is merged by site: calls, times, CPU, RSS sum,
 *    min/max exact; p50/p95/p99 of a site present on both sides become the
 *    count-weighted mean of the two (approximate: the true value lies
 *    between them) and dst->approx_percentiles is set;
 *  - meta counters are summed, start is the earlier one, duration the
 *    longer one, `merged` counts src and what had been merged into it;
 *  - the data section: datasets merged by site (counts, sums, min/max
 *    exact; percentiles approximate as above; outlier indices merged,
 *    slowest first, at most CP_MAX_BOTTLENECKS; distinct_indices is the
 *    larger of the two, a lower bound), loaders merged by site (sums exact,
 *    rates and stall fraction recomputed, wait percentiles approximate),
 *    workers appended, stages summed by site, shares recomputed;
 *  - findings of dst are dropped (they described dst alone; run the rules
 *    again).
 * Returns 0, or -1 on OOM; then dst is unchanged except that sites of src
 * may have been added to its table (unreferenced).  Both models must be
 * finished. */
int cp_model_merge(cp_model *dst, const cp_model *src, int32_t worker_tag);

/* Frees the model (finished or not).  NULL is a no-op. */
void cp_model_free(cp_model *m);

/* Frees construction state (build.c); used by cp_model_free. */
void cp_model_builder_free(struct cp_model_builder *b);

/* Appends a finding (copied).  Returns 0, or -1 on OOM. */
int cp_model_add_finding(cp_model *m, const cp_finding *f);

/* Recomputes a loader's stall fraction and rates from its sums. */
void cp_mloader_derive(cp_mloader *L);

/* Sorts findings by saving_s (the time a fix would save), then severity,
 * descending (stable). */
void cp_model_sort_findings(cp_model *m);

#endif /* CP_MODEL_H */
