/* model_mem.h -- the memory section of a model (cp_model.mem): what the
 * memory instruments measured, in model sites, ready for rules and writers.
 *
 * Filled by the build (src/model/build_mem.c: the heap tracker's totals and
 * live blocks, the memory sink's per-context figures, GC counters, the
 * process sampler's per-process series), read back from a saved report by
 * model_json.c, merged by cp_model_merge (model_mem.c), freed with the
 * model.  Every array is bounded (the caps below); what did not fit is
 * counted.  All byte figures are bytes; when `estimated` is set they are
 * scaled estimates of sampled tracking (heap.h).
 */
#ifndef CP_MODEL_MEM_H
#define CP_MODEL_MEM_H

#include <stdint.h>

#define CP_MEM_NDOMAINS 5       /* heap.h cp_heap_domain                 */
#define CP_MEM_STACK_DEPTH 16   /* frames kept per allocation stack      */
#define CP_MEM_MAX_SITES 200    /* top live allocation stacks kept       */
#define CP_MEM_MAX_LEAKS 200    /* leak groups (context, stack) kept     */
#define CP_MEM_MAX_CTXS 4096    /* memory contexts/functions kept        */
#define CP_MEM_MAX_PROCS 256    /* processes (main + workers) kept       */
#define CP_MEM_SNAP_SITES 50    /* top stacks kept per snapshot          */

/* One allocator domain (heap.h cp_heap_domain, same order). */
typedef struct cp_mmem_domain {
    uint64_t alloc_count, alloc_bytes;
    uint64_t free_count, free_bytes;
    int64_t live_bytes;
    uint64_t live_blocks;
    uint64_t peak_bytes;
} cp_mmem_domain;

/* A memory context or a memory-measured function (a scope begun with
 * CODEPROF_SCOPE_HEAP), aggregated by site over its calls. */
typedef struct cp_mmem_ctx {
    uint32_t site;            /* model site                                    */
    uint64_t count;           /* completed calls                               */
    int64_t delta_sum, delta_min, delta_max;  /* tracked heap: exit - enter    */
    uint64_t peak_max;        /* max over calls of (high-water within - enter) */
    int64_t rss_delta_sum, rss_delta_max;     /* process RSS: exit - enter     */
    uint64_t rss_peak_max;    /* max over calls of (RSS high-water within - enter) */
    /* The "floor": tracked live bytes right after each exit.  A floor that
     * keeps rising across calls (epochs) is a leak suspect. */
    int64_t floor_first, floor_last;
    uint64_t floor_rises;     /* exits whose floor was above the previous one's */
    double floor_slope;       /* least-squares growth of the floor per call (bytes) */
    /* Recorded blocks allocated inside a call that had exited and that are
     * still live when the model was built (the leak groups of this context
     * are the leaks[] entries with ctx == this index). */
    uint64_t leaked_bytes, leaked_blocks;
    uint64_t gc_collections;  /* GC collections during its calls (summed)     */
    int estimated;            /* figures are scaled estimates (sampled mode)  */
} cp_mmem_ctx;

/* An allocation stack: frames innermost first.  A frame is a model site
 * (a Python function, or a native symbol resolved at build: name = symbol
 * or "dso+0x..", file = the shared object) and a line (0 unknown). */
typedef struct cp_mmem_stack {
    uint32_t nframes;
    uint32_t site[CP_MEM_STACK_DEPTH];
    uint32_t line[CP_MEM_STACK_DEPTH];
} cp_mmem_stack;

/* Live recorded memory of one stack (and, for leaks, one context). */
typedef struct cp_mmem_group {
    uint32_t stack;           /* index into stacks                            */
    uint32_t ctx;             /* index into ctxs; CP_NONE: outside any context */
    uint64_t live_bytes, live_blocks;
} cp_mmem_group;

/* Garbage collector (gc.callbacks), per generation. */
typedef struct cp_mgc {
    int enabled;              /* callbacks were installed                     */
    uint64_t collections[3];
    uint64_t collected[3];
    uint64_t uncollectable[3];
    uint64_t time_ns[3];
    uint64_t max_pause_ns;
} cp_mgc;

/* One process's memory over the run (the sampler reads /proc/<pid>/
 * smaps_rollup at memory_sample_interval_s): the main process and each
 * DataLoader worker it was told about. */
typedef struct cp_mproc {
    int32_t pid;
    int32_t worker;           /* DataLoader worker id; -1 the main process      */
    uint32_t loader;          /* model site of the worker's loader; 0 none     */
    uint32_t nsamples;
    uint64_t t_first_ns, t_last_ns;           /* CLOCK_MONOTONIC               */
    uint64_t rss_first, rss_last, rss_max;
    uint64_t pss_first, pss_last, pss_max;
    uint64_t uss_first, uss_last, uss_max;    /* Private_Clean + Private_Dirty */
    uint64_t items;           /* items the worker loaded while sampled (0 unknown) */
    /* procmem: where the readings came from (procmem.h cp_procmem_source:
     * 1 smaps_rollup, 2 smaps summed, 3 statm: no PSS, USS = RSS - shared),
     * and whether the process had exited when the model was built. */
    int32_t source;
    int32_t exited;
} cp_mproc;

/* What the facade saw in a DataLoader's dataset, in the parent, when its
 * workers were registered (codeprof_session_describe_dataset): the large
 * Python containers among the dataset's attributes, for the copy-on-write
 * rule CP-DATA-009. */
#define CP_MEM_MAX_DSNOTES 16
typedef struct cp_mds_note {
    uint32_t loader;          /* model site of the loader                     */
    uint32_t dataset;         /* model site of the dataset; 0 unknown          */
    uint64_t py_objects;      /* Python objects held in containers (estimate)  */
    uint64_t array_bytes;     /* bytes held in numpy arrays / tensors          */
    char text[256];           /* "self.samples: list of 2000000 str; ..."      */
} cp_mds_note;

/* A snapshot at a memory-context exit (memory_snapshots). */
typedef struct cp_msnap {
    uint32_t ctx_site;        /* model site of the context that exited        */
    uint64_t t_ns;
    int64_t live_bytes;
    uint32_t first, n;        /* its groups: snap_groups[first .. first+n)    */
} cp_msnap;

typedef struct cp_mmem {
    int mode;                 /* heap.h cp_heap_mode: 0 RSS+GC only, 1 sampled, 2 all */
    int estimated;            /* mode 1: byte figures are scaled estimates     */
    int native;               /* the native (preload) tracker was in use       */
    uint64_t sample_bytes;
    uint32_t stack_depth;
    cp_mmem_domain domains[CP_MEM_NDOMAINS];
    int64_t live_bytes;       /* tracked, all domains                          */
    uint64_t peak_bytes;      /* tracked high-water, all domains               */
    uint64_t rss_last, rss_peak; /* this process (sampler and scope ends)      */
    uint64_t machine_bytes;   /* physical memory of the machine (0 unknown)    */

    cp_mmem_ctx *ctxs;        uint32_t nctxs;
    cp_mmem_stack *stacks;    uint32_t nstacks;
    cp_mmem_group *sites;     uint32_t nsites;   /* top live stacks, bytes desc */
    cp_mmem_group *leaks;     uint32_t nleaks;   /* bytes desc                  */
    cp_mgc gc;
    cp_mproc *procs;          uint32_t nprocs;
    cp_msnap *snaps;          uint32_t nsnaps;
    cp_mmem_group *snap_groups; uint32_t nsnap_groups;

    /* CLOCK_MONOTONIC ns of the run's start (the build sets it): the
     * report writes snapshot times relative to it; 0 when unknown (a model
     * read back from a report holds relative times with t0_ns 0). */
    uint64_t t0_ns;

    /* the profiler's own memory and what its caps dropped */
    uint64_t own_bytes;
    uint64_t dropped_blocks, dropped_stacks, dropped_snapshots, dropped_marks;
    uint64_t dropped_ctxs, dropped_samples;

    /* procmem (memsampler.c): dataset descriptions of watched loaders, and
     * processes the sampler could not follow (CP_MEM_MAX_PROCS). */
    cp_mds_note dsnotes[CP_MEM_MAX_DSNOTES];
    uint32_t ndsnotes;
    uint64_t dropped_procs;
} cp_mmem;

struct cp_model;
/* Frees the arrays of `mm` and zeroes it. */
void cp_mmem_free(cp_mmem *mm);
/* Folds src's memory section into dst's (sites remapped through smap:
 * src model index -> dst model index).  Returns 0, or -1 on OOM with dst
 * unchanged. */
int cp_mmem_merge(cp_mmem *dst, const cp_mmem *src, const uint32_t *smap);
/* The frame that names allocation stack `s` of model `m` (what reports
 * print as "file:line function"): the innermost frame of the user's code
 * (a file outside the standard library and site-packages), else the
 * innermost frame with a file, else the innermost frame (reports add "via"
 * the innermost function when it is another).  UINT32_MAX when `s` is not
 * a stack of `m` or has no frames. */
uint32_t cp_mmem_stack_frame(const struct cp_model *m, uint32_t s);
/* Hash and equality of allocation stacks (frames and lines), for the
 * tables that intern them (the build, the merge). */
uint32_t cp_mmem_stack_hash(const cp_mmem_stack *s);
int cp_mmem_stack_eq(const cp_mmem_stack *a, const cp_mmem_stack *b);

#endif /* CP_MODEL_MEM_H */
