/* samplesink_priv.h -- the sample sink's aggregates, shared by the sink
 * (samplesink.c, which fills them on the aggregation side) and the model
 * build (src/model/build_sample.c, which reads them under the same agg_mu).
 * Nobody else includes it. */
#ifndef CP_SAMPLESINK_PRIV_H
#define CP_SAMPLESINK_PRIV_H

#include <stdatomic.h>
#include <stdint.h>

#include "sampling/samplesink.h"

#define CP_SNODE_NONE UINT32_MAX

/* A node of a sampled tree.  Node i of thread th's tree is a root when
 * parent == CP_SNODE_NONE (site 0); site 0 below a root stands for
 * "(other stacks)" (stack id 0: past the stack table's cap). */
typedef struct cp_snode {
    uint32_t site;          /* session site id of the frame (function)   */
    uint32_t parent;        /* node index or CP_SNODE_NONE                */
    uint32_t first_child, next_sibling; /* CP_SNODE_NONE: none            */
    uint32_t depth;         /* 0 at the root                             */
    uint32_t pad_;
    uint64_t samples;       /* samples whose stack passed through here    */
    uint64_t samples_self;  /* ... innermost here                          */
    uint64_t samples_running; /* ... of a running thread (inclusive)       */
    uint64_t sampled_ns;    /* weights of `samples`                        */
    uint64_t sampled_self_ns; /* weights of `samples_self`                 */
} cp_snode;

/* One sampled OS thread. */
typedef struct cp_sthread {
    uint64_t os_tid;
    uint32_t root;          /* node index                                 */
    uint32_t pad_;
} cp_sthread;

/* One (site, line) of an innermost frame. */
typedef struct cp_sline {
    uint32_t site, line;
    uint64_t samples, sampled_ns;
} cp_sline;

/* One sample kept for the timeline (tick: the event's raw tick). */
typedef struct cp_ssample {
    uint64_t tick;
    uint64_t os_tid;
    uint32_t stack;
    uint32_t weight_ns;
    uint16_t state;
    uint16_t pad_[3];
} cp_ssample;

/* A thread that appended CP_EV_SAMPLE events (normally the sampler). */
typedef struct cp_semitter {
    uint64_t os_tid;
    uint64_t events;        /* CP_EV_SAMPLE events it appended            */
} cp_semitter;

/* An open-addressing map from 64-bit keys to 32-bit values (value 0:
 * empty slot, so values are stored + 1). */
typedef struct cp_skmap {
    uint64_t *keys;
    uint32_t *vals;
    uint32_t cap, n;
} cp_skmap;

struct cp_samplesink {
    struct cp_stacktab *tab;
    uint32_t max_nodes;     /* node cap over all sampled trees            */
    uint32_t cap_timeline;  /* cfg.max_samples                            */
    int mode, native;
    uint64_t interval_ns;

    cp_snode *nodes;
    uint32_t nnodes, cap_nodes;
    cp_skmap children;      /* (parent << 32 | site) -> node              */
    cp_skmap leaves;        /* (root << 32 | stack id) -> the node its path
                               ends at (paths not cut by the node cap)     */
    cp_sthread *threads;
    uint32_t nthreads, cap_threads;
    cp_skmap tids;          /* os_tid -> thread index                     */
    cp_sline *lines;
    uint32_t nlines, cap_lines;
    cp_skmap linemap;       /* (site << 32 | line) -> line index          */
    cp_semitter emitters[8];
    uint32_t nemitters;

    /* timeline: first half in `first`, then a ring of the latest half */
    cp_ssample *first;
    uint32_t nfirst, cap_first;
    cp_ssample *ring;
    uint32_t nring, ring_next, cap_ring;
    uint64_t timeline_dropped;

    _Atomic uint64_t samples; /* CP_EV_SAMPLE events folded               */
    uint64_t running, idle, gil;
    uint64_t dropped_nodes;   /* frames attributed to a parent: node cap  */
    uint64_t dropped_lines;   /* line rows past CP_MAX_LINES              */
    uint64_t truncated;       /* samples flagged CP_SAMPF_TRUNCATED       */
    int oom;                  /* an allocation failed while folding        */

    /* reported by the sampler (cp_samplesink_add_sampler_stats) */
    _Atomic uint64_t ticks, missed_ticks, read_errors, dropped_samples, sampler_cpu_ns;
};

/* The map (keys may be any value). */
int cp_skmap_get(const cp_skmap *m, uint64_t key, uint32_t *val);
int cp_skmap_put(cp_skmap *m, uint64_t key, uint32_t val);
void cp_skmap_free(cp_skmap *m);

#endif /* CP_SAMPLESINK_PRIV_H */
