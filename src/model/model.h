/* model.h -- the profile model: what aggregation produces and what the
 * analysis rules and report writers read.  Writers never touch live
 * recording state (tbuf, thread trees); they only read a cp_model.
 *
 * A model is immutable once built (cp_model_build in model.c) except for
 * `findings`, which the rules (src/analysis/rules.c) append.
 */
#ifndef CP_MODEL_H
#define CP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"

#define CP_NONE UINT32_MAX

/* One calling-context tree node (a site reached by one call path). */
typedef struct cp_mnode {
    uint32_t site;          /* site id; 0 for a thread's root       */
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
    uint64_t p50_ns, p95_ns, p99_ns; /* over the node's reservoir */
    uint64_t truncated;     /* calls closed at stop, not by an exit  */
    int64_t rss_delta_sum;  /* over calls that measured RSS         */
    int64_t rss_delta_max;
    uint64_t rss_count;
} cp_mnode;

/* One thread's tree: nodes[root] is its root (site 0). */
typedef struct cp_mthread {
    uint64_t os_tid;
    uint32_t index;         /* registration order in the session    */
    uint32_t root;          /* node index                           */
    uint64_t events;        /* events recorded by the thread        */
    uint64_t dropped;       /* events refused (not running / caps)  */
} cp_mthread;

/* Flat per-site statistics, summed over all contexts and threads.
 * incl_ns counts only outermost activations, so recursion is not counted
 * twice. */
typedef struct cp_mfunc {
    uint32_t site;
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
} cp_finding;

/* ---- data loading (src/data/) ------------------------------------------ */

/* One dataset (a SITE_DATASET site), items merged from the main process and
 * every worker spool. */
typedef struct cp_mdataset {
    uint32_t site;
    uint64_t items;           /* item loads recorded                        */
    uint64_t failures;        /* loads whose __getitem__ raised             */
    uint64_t slow_loads;      /* loads above cfg.slow_data_loading_s        */
    uint64_t sum_ns, min_ns, max_ns, p50_ns, p95_ns, p99_ns;
    uint64_t distinct_indices;
    /* Outlier indices, slowest first: above the slow threshold, or above
     * 5x the median and at or above p99.  At most CP_MAX_BOTTLENECKS. */
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
} cp_mdata;

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
    /* caps of the recording engine (docs/ARCHITECTURE.md) */
    uint64_t dropped_full;      /* no free buffer / hand-off ring full  */
    uint64_t dropped_reentrant; /* instrument fired inside an append    */
    uint64_t dropped_nothread;  /* async-safe append, thread had no buffer */
    uint64_t dropped_samples;   /* percentile samples refused: budget    */
    uint64_t dropped_sites;     /* names folded into "(other ...)" sites */
    uint64_t oom;               /* allocations that failed in the trees  */
    uint32_t exited_threads;    /* threads that exited, merged in one tree */
    uint32_t pool_buffers;      /* event buffers allocated               */

    cp_mnode *nodes;
    uint32_t nnodes;
    cp_mthread *threads;
    uint32_t nthreads;
    cp_mfunc *funcs;          /* sorted by incl_ns, descending          */
    uint32_t nfuncs;

    cp_mdata data;            /* data loading; empty when none recorded   */

    /* Timeline (src/core/timeline.h): explicit scopes, items, batches and
     * other instruments' events, the first and the last ones kept. */
    struct cp_tl_event *timeline;
    uint32_t ntimeline;
    uint64_t timeline_dropped;

    cp_finding *findings;     /* sorted by severity, descending          */
    uint32_t nfindings;
    uint32_t cap_findings;
} cp_model;

/* Frees the model.  NULL is a no-op. */
void cp_model_free(cp_model *m);

/* Appends a finding (copied).  Returns 0, or -1 on OOM. */
int cp_model_add_finding(cp_model *m, const cp_finding *f);

/* Sorts findings by severity, descending (stable). */
void cp_model_sort_findings(cp_model *m);

#endif /* CP_MODEL_H */
