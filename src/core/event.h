/* event.h -- the fixed-size record every instrument appends.
 *
 * One event is 32 bytes.  Producers (scopes, the Python tracer, later the
 * sampler, allocator hooks, GPU and data-loading instruments) append events
 * to their thread's buffer (tbuf.h); the aggregator (src/cpu/cct.c) folds
 * them into the profile model.  Kinds not yet produced are reserved here so
 * the record never has to change shape.
 */
#ifndef CP_EVENT_H
#define CP_EVENT_H

#include <stdint.h>

typedef enum cp_event_kind {
    CP_EV_NONE = 0,
    CP_EV_ENTER = 1,   /* site entered; aux = thread CPU ns if flag CPU      */
    CP_EV_EXIT = 2,    /* site left;    aux = thread CPU ns if flag CPU      */
    CP_EV_RSS = 3,     /* value = process RSS bytes, for the top frame       */
    CP_EV_ATTR = 4,    /* flags = codeprof_attr_key, value = attribute value */
    CP_EV_MARK = 5,    /* instant event at site                               */
    CP_EV_SAMPLE = 6,  /* one thread's sampled stack, appended by the sampler
                          thread (src/sampling/sampler.c): value = stack id
                          in the session's sampled-stack table (low 32
                          bits) | weight in ns (high 32 bits: wall time
                          or CPU time since that thread's last sample),
                          aux = the sampled thread's OS tid, site = the
                          innermost frame's site (0: no frame), flags =
                          CP_SAMPF_* state and mode                     */
    CP_EV_ALLOC = 7,   /* recorded allocation: value = bytes (scaled when
                          sampled), aux = address, flags = heap domain     */
    CP_EV_FREE = 8,    /* recorded block freed: value = bytes, aux = addr,
                          flags = heap domain                               */
    CP_EV_GPU = 9,     /* reserved: GPU op (value = device ns); GPU ops are
                          recorded by src/gpu/gpu_ops.c (their device time
                          is known only when resolved, at report)      */
    CP_EV_COUNTER = 10, /* reserved: counter sample (value)                  */
    CP_EV_HEAP = 11,   /* memory figures of a CODEPROF_SCOPE_HEAP scope, emitted
                          just before its EXIT, same site; flags say which:
                          CP_HEAPF_SPAN value = heap delta, aux = heap peak;
                          CP_HEAPF_FLOOR value = live after, aux = RSS after;
                          CP_HEAPF_RSS value = RSS delta, aux = RSS peak;
                          CP_HEAPF_GC value = GC collections within.
                          (The memory sampler's RSS readings are
                          CP_EV_COUNTER events on named sites.)        */
    CP_EV_LINE = 12    /* line-level timing (src/python/lineprof.c): site =
                          the function's site, value = line number (0:
                          the frame left: closes its last line), aux =
                          the frame's identity (opaque)                */
} cp_event_kind;

/* Flags of a CP_EV_SAMPLE event. */
enum {
    CP_SAMPF_STATE_MASK = 3u,
    CP_SAMPF_RUNNING = 1u, /* the thread used CPU since its last sample        */
    CP_SAMPF_IDLE = 2u,    /* blocked: syscall, sleep, lock (no CPU used)      */
    CP_SAMPF_GIL = 3u,     /* waiting for the GIL (idle, but wants to run)     */
    CP_SAMPF_CPU_MODE = 1u << 2, /* weight is CPU time (sample_mode 1)        */
    CP_SAMPF_NATIVE = 1u << 3,   /* the stack holds native frames            */
    CP_SAMPF_TRUNCATED = 1u << 4 /* the stack was deeper than kept            */
};

enum {
    CP_HEAPF_SPAN = 1,
    CP_HEAPF_FLOOR = 2,
    CP_HEAPF_RSS = 3,
    CP_HEAPF_GC = 4,
    CP_HEAPF_ESTIMATED = 1u << 8, /* or'ed: sampled tracking, figures estimated */
};

/* Event flags. */
enum {
    CP_EVF_CPU = 1u << 0, /* aux holds thread CPU time in ns               */
    CP_EVF_RSS = 1u << 1, /* the scope asked for an RSS delta              */
    CP_EVF_ITEM = 1u << 2,     /* ENTER of a dataset item load              */
    CP_EVF_BATCH = 1u << 3,    /* ENTER of a loader batch wait              */
    CP_EVF_EXPLICIT = 1u << 4, /* ENTER of a scope-API scope (not the tracer):
                                  inside an item it is a stage             */
};

typedef struct cp_event {
    uint64_t tick;  /* cp_clock_ticks() when the event was taken */
    int64_t value;  /* kind-specific payload                     */
    uint64_t aux;   /* kind-specific payload                     */
    uint32_t site;  /* site id (site.h)                          */
    uint16_t kind;  /* cp_event_kind                             */
    uint16_t flags; /* CP_EVF_* or attribute key                 */
} cp_event;

_Static_assert(sizeof(cp_event) == 32, "cp_event must stay 32 bytes");

#endif /* CP_EVENT_H */
