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

    cp_mnode *nodes;
    uint32_t nnodes;
    cp_mthread *threads;
    uint32_t nthreads;
    cp_mfunc *funcs;          /* sorted by incl_ns, descending          */
    uint32_t nfuncs;

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
