/* model_sample.h -- the model's statistical-profiling section (cp_model.samp).
 *
 * Sampled stacks fold into the same calling-context trees as traced calls
 * (cp_mnode.samples*, cp_mfunc.samples*; a node reached only by samples has
 * count 0 and its incl_ns/self_ns are the estimates, see model.h); this
 * section holds what is not per node: the sampler's settings and totals, the
 * interned stacks and the bounded timeline of individual samples (for the
 * trace export).  Built by src/model/build_sample.c from the session's
 * sampling state (src/sampling/); merged by cp_msamp_merge.
 */
#ifndef CP_MODEL_SAMPLE_H
#define CP_MODEL_SAMPLE_H

#include <stdint.h>

/* One frame of a sampled stack. */
typedef struct cp_msframe {
    uint32_t site;   /* model site index (the function: name, file, first line) */
    uint32_t line;   /* line executing in that frame; 0: unknown               */
} cp_msframe;

/* A sampled stack: frames[first .. first+n), innermost first. */
typedef struct cp_mstack {
    uint32_t first;
    uint32_t n;
} cp_mstack;

/* One sample kept for the timeline (first and most recent halves of
 * cfg.max_samples), in time order. */
typedef struct cp_msample {
    uint64_t t_ns;      /* CLOCK_MONOTONIC ns (the timeline's axis)       */
    uint64_t os_tid;    /* sampled thread                                  */
    int32_t pid;        /* process                                         */
    int32_t worker;     /* DataLoader worker id; -1: main process          */
    uint32_t stack;     /* index into stacks                               */
    uint32_t weight_ns; /* wall or CPU ns this sample stands for           */
    uint16_t state;     /* CP_SAMPF_* (event.h)                            */
    uint16_t pad_;
    uint32_t pad2_;
} cp_msample;

typedef struct cp_msampling {
    int enabled;              /* a sampler ran                                */
    int mode;                 /* 0 wall clock, 1 CPU clock                     */
    int native;               /* native frames were asked for                  */
    uint64_t interval_ns;     /* configured period                             */
    uint64_t samples;         /* thread samples taken (all threads)            */
    uint64_t samples_running; /* ... of a thread that used CPU                 */
    uint64_t samples_idle;    /* ... of a blocked thread                        */
    uint64_t samples_gil;     /* ... of a thread waiting for the GIL            */
    uint64_t ticks;           /* sampler wake-ups                               */
    uint64_t missed_ticks;    /* periods the sampler overran (late wake-ups)    */
    uint64_t read_errors;     /* stacks that could not be read whole            */
    uint64_t dropped_stacks;  /* stacks folded into "(other stacks)"            */
    uint64_t dropped_samples; /* samples lost (event buffers full)              */
    uint64_t timeline_dropped;/* samples not kept on the timeline               */
    uint64_t threads;         /* distinct threads sampled                        */
    uint64_t sampler_cpu_ns;  /* CPU time of the sampler thread itself          */
    cp_msframe *frames;
    uint32_t nframes;
    cp_mstack *stacks;
    uint32_t nstacks;
    cp_msample *timeline;
    uint32_t ntimeline;
} cp_msampling;

void cp_msamp_free(cp_msampling *ms);
/* Folds src into dst (sites mapped through smap: src model index -> dst
 * model index); worker_tag replaces worker -1 of src's timeline samples
 * (pass -1 to keep).  Counters add; stacks and timeline are appended
 * (timeline kept in time order, bounded by cap_timeline).  Returns 0 or -1
 * on OOM (dst unchanged). */
int cp_msamp_merge(cp_msampling *dst, const cp_msampling *src, const uint32_t *smap,
                   int32_t worker_tag, uint32_t cap_timeline);

#endif /* CP_MODEL_SAMPLE_H */
