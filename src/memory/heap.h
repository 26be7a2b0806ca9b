/* heap.h -- the process-wide allocation tracker (the "ledger").
 *
 * Allocator hooks (src/python/memhook.c: PyMem raw/mem/object domains and
 * numpy's data allocator; src/memory/preload.c: the native malloc family)
 * report every allocation and free here.  The tracker decides which blocks
 * it records (mode), keeps the recorded live blocks in a bounded table keyed
 * by address (size, scaled weight, allocation stack, the memory context that
 * was open on the allocating thread), keeps per-domain counters and
 * high-water marks, and gives memory contexts (cp_heap_mark_*) their net
 * delta and their peak.  Recorded allocations and frees are also appended to
 * the current session's event stream (CP_EV_ALLOC / CP_EV_FREE through
 * cp_emit, with its reentrancy guard; in CP_HEAP_ALL only blocks of at least
 * sample_bytes, so small blocks do not crowd the scopes' events out).
 *
 * There is one tracker per process (cp_heap_* act on it).  When the native
 * preload library (libcodeprof_malloc.so) is loaded, its tracker is THE
 * tracker: the copy linked into _core finds it at first use
 * (dlsym(RTLD_DEFAULT, "codeprof_heap_ops_v1")) and forwards every call, so
 * the Python hooks and the native hooks share one ledger and one
 * thread-local "inside a hook" flag (a PyMem raw allocation is counted once,
 * in its Python domain, not again as native malloc).
 *
 * Modes: CP_HEAP_OFF (nothing recorded; hooks return at once),
 * CP_HEAP_SAMPLED (a block is recorded with probability
 * 1 - exp(-size / sample_bytes), a per-thread countdown of bytes, and
 * weighted size / probability, so sums are unbiased estimates and blocks
 * much larger than sample_bytes are always recorded at their exact size),
 * CP_HEAP_ALL (every block recorded at its size).
 *
 * Safety: every entry point may be called from any thread, with or without
 * the GIL, from inside another allocator call, during fork (atfork handlers:
 * the child abandons the parent's ledger and starts empty), and during
 * interpreter finalization.  A free of an address the ledger does not hold
 * (allocated before start, by another allocator, or not sampled) is ignored:
 * live bytes never go negative.  The tracker's own memory comes from mmap,
 * never from the hooked allocators, is bounded by its caps (dropped records
 * are counted) and is returned by cp_heap_reset.
 */
#ifndef CP_HEAP_H
#define CP_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"

typedef enum cp_heap_mode {
    CP_HEAP_OFF = 0,
    CP_HEAP_SAMPLED = 1,
    CP_HEAP_ALL = 2,
} cp_heap_mode;

/* Where a block came from.  Order is the report's order. */
typedef enum cp_heap_domain {
    CP_HEAP_PYRAW = 0,  /* PyMem_RawMalloc & co.                     */
    CP_HEAP_PYMEM = 1,  /* PyMem_Malloc & co.                        */
    CP_HEAP_PYOBJ = 2,  /* PyObject_Malloc & co. (objects)           */
    CP_HEAP_NUMPY = 3,  /* numpy array data (its data allocator)     */
    CP_HEAP_NATIVE = 4, /* malloc family / mmap (preload library)    */
    CP_HEAP_NDOMAINS = 5
} cp_heap_domain;

/* "raw", "mem", "object", "numpy", "native". */
const char *cp_heap_domain_name(int dom);

/* Stack frames, innermost first.  A Python frame is a site id (site.h;
 * process-wide or session table) and a line; a native frame (preload) is a
 * return address, resolved to a symbol at model build. */
#define CP_HEAP_MAX_DEPTH 16
typedef struct cp_heap_frame {
    uint64_t pc;   /* native: return address; Python: 0           */
    uint32_t site; /* Python: site id; native: 0                  */
    uint32_t line; /* Python: line number (0 unknown)             */
} cp_heap_frame;

/* Called on the allocating thread, inside the hook (the tracker's
 * reentrancy flag is already set, so allocations it makes are not
 * recorded), for a block being recorded: fills up to `max` frames,
 * innermost first, and returns how many.  Must not take the GIL; may read
 * the current thread's Python frames only if this thread holds it. */
typedef uint32_t (*cp_heap_stack_fn)(cp_heap_frame *out, uint32_t max);
/* What a stack callback returns for a block that is the profiler's own
 * (allocated by its Python code): the tracker does not record it. */
#define CP_HEAP_STACK_SKIP UINT32_MAX

/* A frame with this pc (and site 0) stands for "(other stacks)": the
 * blocks whose stacks came after memory_max_stacks distinct ones. */
#define CP_HEAP_PC_OTHER UINT64_MAX

typedef struct cp_heap_cfg {
    cp_heap_mode mode;
    uint64_t sample_bytes;  /* SAMPLED: mean bytes between records, [1, 2^40] */
    uint32_t max_blocks;    /* live recorded blocks kept; past it, counted dropped */
    uint32_t max_stacks;    /* distinct stacks interned; past it, one "(other)" stack */
    uint32_t stack_depth;   /* frames kept per stack, [1, CP_HEAP_MAX_DEPTH]   */
    uint32_t max_snapshots; /* snapshots kept (memory_snapshots), first and last halves */
    int snapshots;          /* take a snapshot at every memory-context exit    */
} cp_heap_cfg;

/* Starts (or restarts with a new cfg) recording.  Discards a previous
 * ledger.  `stack_fn` may be NULL (no stacks).  The session calls it from
 * codeprof_session_start when cfg.memory_mode != 0 and
 * owner == the session; a second session starting while another owns the
 * tracker gets CODEPROF_EBUSY.  Thread-safe. */
codeprof_status cp_heap_start(const cp_heap_cfg *cfg, const void *owner, codeprof_error *err);
/* Stops recording new blocks and marks; the ledger stays for reports. */
void cp_heap_stop(const void *owner);
/* Discards the ledger, stacks, counters and snapshots; gives memory back. */
void cp_heap_reset(const void *owner);
/* The stack callback (the extension registers its Python stack walker). */
void cp_heap_set_stack_fn(cp_heap_stack_fn fn);
/* Nonzero while recording. */
int cp_heap_active(void);

/* ---- the hooks' entry points (hot path) ---- */
void cp_heap_on_alloc(int dom, void *ptr, size_t size);
void cp_heap_on_free(int dom, void *ptr);
/* old == NULL: an allocation; size == 0 and new == NULL: a free. */
void cp_heap_on_realloc(int dom, void *old, void *new_ptr, size_t size);
/* The thread-local reentrancy flag a hook holds while it calls the
 * underlying allocator and the tracker: returns 1 if the caller may
 * proceed (the flag was clear and is now set), 0 if this thread is already
 * inside a hook (the caller must only forward to the underlying allocator).
 * Async-signal-safe. */
int cp_heap_hook_enter(void);
void cp_heap_hook_leave(void);

/* The same, fused for allocator wrappers (one call per event on the fast
 * path):
 *   if (cp_heap_alloc_begin()) { p = real_malloc(n); cp_heap_alloc_end(dom, p, n); }
 *   else p = real_malloc(n);
 * alloc_begin is cp_heap_active() && cp_heap_hook_enter(); alloc_end
 * (realloc_end) reports a non-NULL result and leaves the hook.
 * cp_heap_free_hooked(dom, p), called BEFORE the real free, reports the
 * free of a recorded block (taking and leaving the hook flag itself); the
 * real free needs no flag. */
int cp_heap_alloc_begin(void);
void cp_heap_alloc_end(int dom, void *ptr, size_t size);
void cp_heap_realloc_end(int dom, void *old, void *new_ptr, size_t size);
void cp_heap_free_hooked(int dom, void *ptr);

/* ---- memory contexts: marks taken at a context's enter and exit ---- */
typedef struct cp_heap_mark {
    uint64_t serial;       /* process-unique, never 0 for a taken mark  */
    uint32_t site;         /* the context's site (session or process id) */
    int32_t watch;         /* watcher slot for the peak, -1: none free   */
    int64_t live_enter;    /* tracked live bytes, all domains            */
    uint64_t rss_enter;    /* process RSS at enter                       */
    uint64_t gc_enter;     /* GC collections so far (gcstats.h)          */
    struct cp_heap_mark *parent; /* the thread's enclosing open mark (tracker's) */
} cp_heap_mark;

typedef struct cp_heap_span {
    int64_t delta;        /* tracked live bytes: exit - enter            */
    uint64_t peak;        /* max tracked live bytes within - at enter (>= 0) */
    int64_t live_exit;    /* tracked live bytes after exit ("floor")     */
    int64_t rss_delta;    /* RSS exit - enter                            */
    uint64_t rss_peak;    /* max RSS seen within (sampler or the ends) - RSS at enter */
    uint64_t rss_exit;
    uint64_t gc_collections; /* GC collections (all generations) within   */
    int estimated;        /* SAMPLED mode: figures are estimates         */
} cp_heap_span;

/* Enter: takes a watcher slot so the peak within is tracked, pushes the
 * mark on this thread's stack of open contexts (blocks recorded on this
 * thread until exit are attributed to it).  Works in every mode (OFF:
 * only RSS).  exit must be called on the same thread, innermost first. */
void cp_heap_mark_enter(cp_heap_mark *m, uint32_t site);
void cp_heap_mark_exit(cp_heap_mark *m, cp_heap_span *out);
/* The RSS sampler reports each RSS reading, so open marks see RSS peaks. */
void cp_heap_watch_rss(uint64_t rss);

/* ---- reading (aggregation side; the model build) ---- */
typedef struct cp_heap_domain_totals {
    uint64_t alloc_count, alloc_bytes; /* recorded (SAMPLED: scaled estimates) */
    uint64_t free_count, free_bytes;
    int64_t live_bytes;
    uint64_t live_blocks;
    uint64_t peak_bytes;
} cp_heap_domain_totals;

typedef struct cp_heap_totals {
    cp_heap_mode mode;
    uint64_t sample_bytes;
    uint32_t stack_depth;
    int native;                 /* the preload library's tracker is in use */
    cp_heap_domain_totals dom[CP_HEAP_NDOMAINS];
    int64_t live_bytes;         /* all domains                              */
    uint64_t peak_bytes;        /* all domains, high-water mark             */
    uint64_t own_bytes;         /* the tracker's own mapped memory          */
    uint64_t dropped_blocks;    /* recorded blocks the table could not hold */
    uint64_t dropped_stacks;    /* stacks folded into "(other)"             */
    uint64_t dropped_snapshots;
    uint64_t dropped_marks;     /* contexts with no free watcher slot       */
} cp_heap_totals;

void cp_heap_get_totals(cp_heap_totals *out);

/* Live recorded blocks grouped by (stack, context site): calls `fn` once
 * per group, largest live bytes NOT guaranteed first (the caller ranks).
 * `ctx_open` tells whether the context that allocated the group is still
 * open (0: the context exited, so the group is a leak candidate).  The
 * stack's frames are valid during the call only. */
typedef void (*cp_heap_group_fn)(void *arg, const cp_heap_frame *frames, uint32_t nframes,
                                 uint32_t ctx_site, int ctx_open, uint64_t live_bytes,
                                 uint64_t live_blocks);
void cp_heap_foreach_live(cp_heap_group_fn fn, void *arg);

/* Snapshots (cfg.snapshots): one per memory-context exit, the top groups
 * by live bytes at that moment.  Calls fn for snapshot i in order. */
typedef struct cp_heap_snapshot_info {
    uint32_t ctx_site;
    uint64_t t_ns;        /* CLOCK_MONOTONIC */
    int64_t live_bytes;   /* all domains */
    uint32_t ngroups;
} cp_heap_snapshot_info;
uint32_t cp_heap_snapshot_count(void);
int cp_heap_snapshot_get(uint32_t i, cp_heap_snapshot_info *info, cp_heap_group_fn fn, void *arg);

/* ---- one tracker per process: the preload library's wins ----
 * Every function above dispatches through a table.  heap.c fills a table
 * with its own implementation (cp_heap_local_ops); at first use it looks
 * up dlsym(RTLD_DEFAULT, "codeprof_heap_ops_v1") and, when that symbol
 * exists (src/memory/preload.c defines it, as a function returning
 * cp_heap_local_ops() of the preload's copy) and returns a table other
 * than its own with the same version and size, forwards every call to it.
 * _core is loaded RTLD_LOCAL, so only the preload's symbol is visible. */
#define CP_HEAP_OPS_VERSION 1
typedef struct cp_heap_ops {
    uint32_t version; /* CP_HEAP_OPS_VERSION */
    uint32_t size;    /* sizeof(cp_heap_ops) */
    codeprof_status (*start)(const cp_heap_cfg *, const void *, codeprof_error *);
    void (*stop)(const void *);
    void (*reset)(const void *);
    void (*set_stack_fn)(cp_heap_stack_fn);
    int (*active)(void);
    void (*on_alloc)(int, void *, size_t);
    void (*on_free)(int, void *);
    void (*on_realloc)(int, void *, void *, size_t);
    int (*hook_enter)(void);
    void (*hook_leave)(void);
    void (*mark_enter)(cp_heap_mark *, uint32_t);
    void (*mark_exit)(cp_heap_mark *, cp_heap_span *);
    void (*watch_rss)(uint64_t);
    void (*get_totals)(cp_heap_totals *);
    void (*foreach_live)(cp_heap_group_fn, void *);
    uint32_t (*snapshot_count)(void);
    int (*snapshot_get)(uint32_t, cp_heap_snapshot_info *, cp_heap_group_fn, void *);
} cp_heap_ops;

const cp_heap_ops *cp_heap_local_ops(void);
typedef const cp_heap_ops *(*cp_heap_ops_fn)(void); /* type of codeprof_heap_ops_v1 */

#endif /* CP_HEAP_H */
