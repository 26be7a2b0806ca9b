/* model_gpu.h -- the model's GPU section (cp_model.gpu).
 *
 * Filled at build (cp_gpu_model_build, src/gpu/gpu_session.c) from the GPU
 * instruments of the session: the library loader (availability and why),
 * the operation recorder (src/gpu/gpu_ops.c: CUDA events on the current
 * stream, resolved when a report is taken), the NVML sampler
 * (src/gpu/nvml_sampler.c) and the synchronization-point recorder
 * (src/gpu/gpu_sync.c).  Read by the report (src/report/report_gpu.c), the
 * rules (src/analysis/rules_gpu.c) and the trace export.  All times are ns,
 * bytes are bytes.  Merged by cp_mgpu_merge (model_gpu.c).
 */
#ifndef CP_MODEL_GPU_H
#define CP_MODEL_GPU_H

#include <stdint.h>

/* Status of one GPU library (driver, NVML, CUPTI). */
enum {
    CP_GPU_LIB_NOT_TRIED = 0,   /* GPU profiling off, or not needed            */
    CP_GPU_LIB_OK = 1,
    CP_GPU_LIB_NOT_FOUND = 2,   /* dlopen failed (reason: the loader's text)   */
    CP_GPU_LIB_TOO_OLD = 3,     /* a needed entry point or version is missing  */
    CP_GPU_LIB_INIT_FAILED = 4, /* init call returned an error                  */
    CP_GPU_LIB_NO_CONTEXT = 5,  /* driver: the program made no CUDA context    */
    CP_GPU_LIB_DISABLED = 6,    /* off in this process (a forked child ...)    */
};

typedef struct cp_mgpu_lib {
    int status;           /* CP_GPU_LIB_*                                   */
    int version;          /* driver/NVML/CUPTI version number; 0: unknown   */
    char path[256];       /* the name or path opened                        */
    char reason[256];     /* why not OK ("" when OK)                        */
} cp_mgpu_lib;

/* Where an operation's memory figures came from. */
enum { CP_GPU_MEM_NONE = 0, CP_GPU_MEM_TORCH = 1, CP_GPU_MEM_DRIVER = 2 };

/* Per site (a cuda_context name or a profile_cuda_operation function). */
typedef struct cp_mgpu_op {
    uint32_t site;            /* model site index                               */
    int mem_source;           /* CP_GPU_MEM_*                                   */
    uint64_t calls;           /* operations completed on the host               */
    uint64_t timed;           /* ... whose device time was measured              */
    uint64_t device_ns, device_min_ns, device_max_ns; /* over timed ops         */
    uint64_t host_ns, host_max_ns;                    /* over all calls         */
    uint64_t slow;            /* ops above cfg.slow_gpu_op_s (device time; host
                                 time when not timed)                            */
    uint64_t mem_count;       /* ops with memory measured                        */
    int64_t mem_delta_sum;    /* allocated after - before, summed                */
    int64_t mem_delta_max;
    uint64_t mem_peak;        /* highest allocated bytes seen within an op       */
    int64_t reserved_delta_sum;
    uint64_t reserved_peak;
    uint32_t streams;         /* distinct streams the site ran on               */
    uint32_t threads;         /* distinct host threads                          */
} cp_mgpu_op;

/* One operation kept one by one (timeline and slowest list). */
typedef struct cp_mgpu_span {
    uint64_t host_start_ns;   /* CLOCK_MONOTONIC ns (the timeline's axis)       */
    uint64_t host_end_ns;
    uint64_t device_start_ns; /* estimated device start on the same axis; 0: unknown */
    uint64_t device_ns;       /* 0 with timed == 0                              */
    uint64_t stream;          /* CUstream value (0: legacy default stream)       */
    int64_t mem_delta;
    uint64_t os_tid;
    uint32_t site;
    int32_t device;           /* CUDA device ordinal; -1: unknown               */
    int32_t pid;
    uint16_t timed;           /* device time measured                           */
    uint16_t pad_;
} cp_mgpu_span;
#define CP_GPU_MAX_SLOW 100

/* A host synchronization point: a Python line that blocked on the GPU. */
enum {
    CP_GPU_SYNC_DEVICE = 0,   /* cudaDeviceSynchronize / cuCtxSynchronize (torch.cuda.synchronize) */
    CP_GPU_SYNC_STREAM = 1,   /* stream synchronize                                              */
    CP_GPU_SYNC_EVENT = 2,    /* event synchronize                                               */
    CP_GPU_SYNC_MEMCPY = 3,   /* blocking device-to-host copy (.item(), .cpu(), .numpy())       */
    CP_GPU_SYNC_OTHER = 4,
    CP_GPU_SYNC_KINDS_ = 5
};
typedef struct cp_mgpu_sync {
    uint32_t site;            /* model site of the Python function (0: unknown)  */
    uint32_t line;            /* line in it                                      */
    uint32_t kind;            /* CP_GPU_SYNC_*                                   */
    uint32_t pad_;
    uint64_t count;
    uint64_t blocked_ns;      /* host time blocked, summed                       */
    uint64_t max_ns;
} cp_mgpu_sync;
#define CP_GPU_MAX_SYNC_SITES 4096

/* Where synchronization points came from. */
enum { CP_GPU_SYNC_SRC_NONE = 0, CP_GPU_SYNC_SRC_CUPTI = 1, CP_GPU_SYNC_SRC_FALLBACK = 2 };

/* One device's NVML figures over the run. */
typedef struct cp_mgpu_device {
    int32_t index;            /* NVML index                                      */
    uint32_t pad_;
    char name[96];
    uint64_t mem_total;       /* bytes                                           */
    uint64_t samples;
    double util_mean, util_max;         /* GPU utilization, percent               */
    double mem_util_mean;               /* memory-controller utilization, percent */
    uint64_t mem_used_mean, mem_used_max;
    double power_mean_w, power_max_w;
    double temp_max_c;
    double sm_clock_mean_mhz;
    uint64_t idle_samples;    /* samples at 0 % utilization                       */
    uint64_t longest_idle_ns; /* longest run of idle samples                      */
} cp_mgpu_device;

/* One NVML reading, for the timeline (bounded: first and most recent
 * halves of cfg.max_samples). */
typedef struct cp_mgpu_sample {
    uint64_t t_ns;
    uint64_t mem_used;
    int32_t device;
    uint32_t util_pct;
    uint32_t mem_util_pct;
    uint32_t power_mw;
    uint32_t temp_c;
    uint32_t sm_mhz;
} cp_mgpu_sample;

typedef struct cp_mgpu {
    int enabled;              /* GPU profiling was asked for                     */
    int available;            /* the driver loaded and a context was in use       */
    char reason[512];         /* one sentence when not available (or partly)     */
    cp_mgpu_lib driver, nvml, cupti;
    int sync_source;          /* CP_GPU_SYNC_SRC_*                               */
    uint64_t device_mem_total;/* bytes of the device ops ran on (driver); 0: unknown */

    cp_mgpu_op *ops;          /* per site, largest device time first              */
    uint32_t nops;
    cp_mgpu_span *slow;       /* slowest ops, slowest first (CP_GPU_MAX_SLOW)     */
    uint32_t nslow;
    cp_mgpu_span *spans;      /* ops kept one by one, host start order            */
    uint32_t nspans;
    cp_mgpu_sync *syncs;      /* largest blocked time first                       */
    uint32_t nsyncs;
    cp_mgpu_device *devices;
    uint32_t ndevices;
    cp_mgpu_sample *samples;  /* time order                                       */
    uint32_t nsamples;

    /* GPU idle between operations (the ops timeline of each device): the
     * sum and the longest gap between the end of one op and the start of
     * the next, device time where known. */
    uint64_t idle_gap_ns, idle_gap_max_ns, idle_gaps;
    uint64_t busy_ns;         /* union of device intervals of timed ops           */
    uint64_t span_ns;         /* first op start to last op end                    */

    uint64_t ops_dropped;     /* ops not kept one by one (aggregates stay exact)  */
    uint64_t ops_unresolved;  /* events still pending or failed at report         */
    uint64_t ops_host_only;   /* ops timed on the host only (no context/driver)   */
    uint64_t syncs_dropped;   /* sync sites folded away (CP_GPU_MAX_SYNC_SITES)   */
    uint64_t samples_dropped; /* NVML readings not kept                           */
    uint64_t sampler_cpu_ns;  /* CPU time of the NVML sampler thread              */
} cp_mgpu;

void cp_mgpu_free(cp_mgpu *g);
/* Folds src into dst (a worker's model into the parent's; sites through
 * smap, nsmap entries: a src site outside it becomes 0):
 *  - ops by site: counts, times, memory sums exact; min/max exact; streams
 *    the larger of the two (a lower bound), threads summed; re-sorted
 *    largest time first (device time when timed, else host);
 *  - spans appended in host start order, bounded by max_ops (the first and
 *    the most recent halves; the rest counted in ops_dropped);
 *  - slow lists merged slowest first, at most CP_GPU_MAX_SLOW;
 *  - syncs summed by (site, line, kind), max exact, largest blocked time
 *    first, at most CP_GPU_MAX_SYNC_SITES (the rest counted in
 *    syncs_dropped);
 *  - devices by index: sample counts summed, means weighted by samples,
 *    maxima exact, idle samples summed, longest idle the larger;
 *  - samples merged in time order, bounded by max_samples (first and most
 *    recent halves; the rest counted in samples_dropped);
 *  - idle gaps, busy time and the drop counters summed, the longest gap
 *    and span_ns the larger; enabled/available or-ed; dst's libraries,
 *    reason and sync source kept unless dst has none.
 * Returns 0, or -1 on OOM with dst unchanged. */
int cp_mgpu_merge(cp_mgpu *dst, const cp_mgpu *src, const uint32_t *smap, uint32_t nsmap,
                  uint32_t max_ops, uint32_t max_samples);
/* The same without touching dst: *out receives the merged section (all
 * new memory; free it with cp_mgpu_free, or move it into the model), so
 * cp_model_merge can commit it with the other sections.  On OOM returns -1
 * and *out is empty. */
int cp_mgpu_merge_new(cp_mgpu *out, const cp_mgpu *dst, const cp_mgpu *src, const uint32_t *smap,
                      uint32_t nsmap, uint32_t max_ops, uint32_t max_samples);

#endif /* CP_MODEL_GPU_H */
