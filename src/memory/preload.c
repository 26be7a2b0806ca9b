/* preload.c -- libcodeprof_malloc.so: the native heap hooks (preload.h,
 * docs/native-memory.md).
 *
 * Loaded with LD_PRELOAD, the library's definitions of the malloc family
 * and of mmap/munmap/mremap come first in symbol lookup, so every call a
 * program or its libraries make reaches them.  Each forwards to the next
 * definition (glibc's, found with dlsym(RTLD_NEXT)) and reports the block
 * to the heap tracker (heap.h, domain CP_HEAP_NATIVE) compiled into this
 * library.
 *
 * The hot path: when neither the tracker is recording nor an observer is
 * set, a hook only forwards.  Otherwise it takes the tracker's thread-local
 * reentrancy flag (cp_heap_hook_enter); a thread already inside a hook --
 * the Python allocator hooks of _core, the tracker itself, this library's
 * own session, the stack walker -- only forwards, so a PyMem raw block is
 * counted once (in its Python domain) and the profiler's own memory never.
 * Frees are reported before the block is released (after it, another
 * thread could get the same address and record it first); realloc is
 * reported as the free of the old block and the allocation of the new one.
 *
 * Bootstrap: the first call resolves the real functions; dlsym may itself
 * call calloc, which is then served from the static arena
 * (native_arena.h).  Arena blocks are never given to the real free.
 *
 * With CODEPROF_EXEC_OUTPUT set (codeprof exec), the constructor also
 * creates and starts a session with allocation tracking on, opens one
 * memory context named after the program, and at exit (atexit, registered
 * first so it runs after the program's own handlers) or on SIGTERM/SIGINT
 * (when the program left them at their default) stops it and saves the
 * report.  Without it (codeprof run --native-memory) the library only
 * hooks: the Python session started by _core drives the tracker.
 */
#include "memory/preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "memory/native_arena.h"
#include "memory/native_env.h"
#include "memory/native_stack.h"

#define CP_TLS_IE __attribute__((tls_model("initial-exec")))
#define CP_EXPORT __attribute__((visibility("default")))
#define CP_LIKELY(x) __builtin_expect(!!(x), 1)
#define CP_UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_fn)(size_t, size_t);
typedef void *(*valloc_fn)(size_t);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);

static struct {
    malloc_fn malloc;
    calloc_fn calloc;
    realloc_fn realloc;
    free_fn free;
    posix_memalign_fn posix_memalign;
    aligned_fn aligned_alloc;
    aligned_fn memalign;
    valloc_fn valloc;
    valloc_fn pvalloc;
    mmap_fn mmap;
    mmap_fn mmap64;
    munmap_fn munmap;
    mremap_fn mremap;
} real;

/* 0: unresolved, 1: a thread is resolving, 2: resolved. */
static atomic_int g_resolved;
static _Thread_local int t_resolving CP_TLS_IE;
/* The hook's frame record while the tracker records a block: where the
 * stack walker starts (its first frame is the hook's return address). */
static _Thread_local void *t_hook_fp CP_TLS_IE;
static _Atomic(codeprof_native_observer_v1) g_observer;

static void *next_sym(const char *name) {
    return dlsym(RTLD_NEXT, name);
}

static void resolve_now(void) {
    real.malloc = (malloc_fn)next_sym("malloc");
    real.calloc = (calloc_fn)next_sym("calloc");
    real.realloc = (realloc_fn)next_sym("realloc");
    real.free = (free_fn)next_sym("free");
    real.posix_memalign = (posix_memalign_fn)next_sym("posix_memalign");
    real.aligned_alloc = (aligned_fn)next_sym("aligned_alloc");
    real.memalign = (aligned_fn)next_sym("memalign");
    real.valloc = (valloc_fn)next_sym("valloc");
    real.pvalloc = (valloc_fn)next_sym("pvalloc");
    real.mmap = (mmap_fn)next_sym("mmap");
    real.mmap64 = (mmap_fn)next_sym("mmap64");
    real.munmap = (munmap_fn)next_sym("munmap");
    real.mremap = (mremap_fn)next_sym("mremap");
    if (!real.mmap64)
        real.mmap64 = real.mmap;
    if (!real.malloc || !real.calloc || !real.realloc || !real.free || !real.posix_memalign ||
        !real.memalign || !real.mmap || !real.munmap) {
        static const char msg[] =
            "codeprof: libcodeprof_malloc.so: the C library's malloc/mmap functions were not "
            "found with dlsym(RTLD_NEXT); expected a dynamically linked glibc program\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
}

/* 1 when the real functions can be called; 0 while this thread resolves
 * them (the caller serves the request from the arena). */
static int resolve(void) {
    int st = atomic_load_explicit(&g_resolved, memory_order_acquire);
    if (CP_LIKELY(st == 2))
        return 1;
    if (t_resolving)
        return 0;
    int expected = 0;
    if (atomic_compare_exchange_strong(&g_resolved, &expected, 1)) {
        t_resolving = 1;
        resolve_now();
        t_resolving = 0;
        atomic_store_explicit(&g_resolved, 2, memory_order_release);
        return 1;
    }
    while (atomic_load_explicit(&g_resolved, memory_order_acquire) != 2)
        sched_yield();
    return 1;
}

static inline int tracking(void) {
    return cp_heap_active() || atomic_load_explicit(&g_observer, memory_order_relaxed) != NULL;
}

/* Called with the reentrancy flag held. */
static void report(int op, void *old_ptr, void *new_ptr, size_t size, void *fp) {
    codeprof_native_observer_v1 obs = atomic_load_explicit(&g_observer, memory_order_acquire);
    t_hook_fp = fp;
    if (obs)
        obs(op, old_ptr, new_ptr, size);
    if (op == CODEPROF_NATIVE_FREE || op == CODEPROF_NATIVE_MUNMAP)
        cp_heap_on_free(CP_HEAP_NATIVE, old_ptr);
    else
        cp_heap_on_alloc(CP_HEAP_NATIVE, new_ptr, size);
    t_hook_fp = NULL;
}

/* The stack callback registered with the tracker when no Python walker is
 * (native_stack.h explains the choice of a frame-pointer walk). */
static uint32_t native_stack(cp_heap_frame *out, uint32_t max) {
    uintptr_t lo, hi;
    uintptr_t fp = (uintptr_t)(t_hook_fp ? t_hook_fp : __builtin_frame_address(0));
    uint64_t pcs[CP_HEAP_MAX_DEPTH];
    if (max > CP_HEAP_MAX_DEPTH)
        max = CP_HEAP_MAX_DEPTH;
    if (cp_native_stack_bounds(&lo, &hi) != 0) {
        /* No bounds: only the hook's own record, which is on this stack. */
        lo = fp;
        hi = fp + 16;
    }
    uint32_t n = cp_native_fp_walk(fp, lo, hi, pcs, max);
    for (uint32_t i = 0; i < n; i++) {
        out[i].pc = pcs[i];
        out[i].site = 0;
        out[i].line = 0;
    }
    return n;
}

/* ---- the malloc family ---- */

CP_EXPORT void *malloc(size_t size) {
    if (CP_UNLIKELY(!resolve()))
        return cp_native_arena_alloc(size, 0);
    if (!tracking() || !cp_heap_hook_enter())
        return real.malloc(size);
    void *p = real.malloc(size);
    if (p)
        report(CODEPROF_NATIVE_ALLOC, NULL, p, size, __builtin_frame_address(0));
    cp_heap_hook_leave();
    return p;
}

CP_EXPORT void *calloc(size_t n, size_t size) {
    if (CP_UNLIKELY(!resolve())) {
        if (size && n > SIZE_MAX / size)
            return NULL;
        return cp_native_arena_alloc(n * size, 0);
    }
    if (!tracking() || !cp_heap_hook_enter())
        return real.calloc(n, size);
    void *p = real.calloc(n, size);
    if (p)
        report(CODEPROF_NATIVE_ALLOC, NULL, p, n * size, __builtin_frame_address(0));
    cp_heap_hook_leave();
    return p;
}

CP_EXPORT void free(void *p) {
    if (!p || cp_native_arena_owns(p))
        return;
    if (CP_UNLIKELY(!resolve()))
        return; /* cannot happen: only the arena gave out blocks so far */
    if (!tracking() || !cp_heap_hook_enter()) {
        real.free(p);
        return;
    }
    report(CODEPROF_NATIVE_FREE, p, NULL, 0, __builtin_frame_address(0));
    real.free(p);
    cp_heap_hook_leave();
}

/* realloc of a bootstrap block: moved to the real allocator. */
static void *arena_realloc(void *p, size_t size) {
    if (size == 0)
        return NULL; /* glibc's realloc(p, 0) frees p; the arena block is dropped */
    void *q = malloc(size);
    if (q) {
        size_t old = cp_native_arena_size(p);
        memcpy(q, p, old < size ? old : size);
    }
    return q;
}

CP_EXPORT void *realloc(void *p, size_t size) {
    if (CP_UNLIKELY(!resolve())) {
        void *q = cp_native_arena_alloc(size, 0);
        if (q && p) {
            size_t old = cp_native_arena_size(p);
            memcpy(q, p, old < size ? old : size);
        }
        return q;
    }
    if (p && cp_native_arena_owns(p))
        return arena_realloc(p, size);
    if (!tracking() || !cp_heap_hook_enter())
        return real.realloc(p, size);
    void *fp = __builtin_frame_address(0);
    if (p)
        report(CODEPROF_NATIVE_FREE, p, NULL, 0, fp);
    void *q = real.realloc(p, size);
    /* q NULL with size > 0: p is still valid but no longer recorded (the
     * tracker under-counts it rather than risk a stale record). */
    if (q)
        report(CODEPROF_NATIVE_ALLOC, NULL, q, size, fp);
    cp_heap_hook_leave();
    return q;
}

CP_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

CP_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
    if (CP_UNLIKELY(!resolve())) {
        void *p = cp_native_arena_alloc(size, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    if (!tracking() || !cp_heap_hook_enter())
        return real.posix_memalign(out, align, size);
    int rc = real.posix_memalign(out, align, size);
    if (rc == 0)
        report(CODEPROF_NATIVE_ALLOC, NULL, *out, size, __builtin_frame_address(0));
    cp_heap_hook_leave();
    return rc;
}

static void *aligned_common(aligned_fn fn, size_t align, size_t size, void *fp) {
    if (!tracking() || !cp_heap_hook_enter())
        return fn(align, size);
    void *p = fn(align, size);
    if (p)
        report(CODEPROF_NATIVE_ALLOC, NULL, p, size, fp);
    cp_heap_hook_leave();
    return p;
}

CP_EXPORT void *aligned_alloc(size_t align, size_t size) {
    if (CP_UNLIKELY(!resolve()))
        return cp_native_arena_alloc(size, align);
    /* Some C libraries have no aligned_alloc: memalign has its meaning. */
    return aligned_common(real.aligned_alloc ? real.aligned_alloc : real.memalign, align, size,
                          __builtin_frame_address(0));
}

CP_EXPORT void *memalign(size_t align, size_t size) {
    if (CP_UNLIKELY(!resolve()))
        return cp_native_arena_alloc(size, align);
    return aligned_common(real.memalign, align, size, __builtin_frame_address(0));
}

static size_t page_size(void) {
    static atomic_size_t cached;
    size_t ps = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&cached, ps, memory_order_relaxed);
    }
    return ps;
}

CP_EXPORT void *valloc(size_t size) {
    if (CP_UNLIKELY(!resolve()))
        return cp_native_arena_alloc(size, 4096);
    if (!real.valloc)
        return memalign(page_size(), size);
    if (!tracking() || !cp_heap_hook_enter())
        return real.valloc(size);
    void *p = real.valloc(size);
    if (p)
        report(CODEPROF_NATIVE_ALLOC, NULL, p, size, __builtin_frame_address(0));
    cp_heap_hook_leave();
    return p;
}

CP_EXPORT void *pvalloc(size_t size) {
    size_t ps = page_size();
    size_t rounded = size + ps - 1 < size ? 0 : (size + ps - 1) & ~(ps - 1);
    if (rounded == 0)
        rounded = ps;
    if (CP_UNLIKELY(!resolve()))
        return cp_native_arena_alloc(rounded, 4096);
    if (!real.pvalloc)
        return memalign(ps, rounded);
    if (!tracking() || !cp_heap_hook_enter())
        return real.pvalloc(size);
    void *p = real.pvalloc(size);
    if (p)
        report(CODEPROF_NATIVE_ALLOC, NULL, p, rounded, __builtin_frame_address(0));
    cp_heap_hook_leave();
    return p;
}

/* ---- mappings: anonymous ones are heap (glibc's own large blocks use its
 * internal mmap and never come here) ---- */

static void *mmap_common(mmap_fn fn, long sysno, void *addr, size_t len, int prot, int flags,
                         int fd, off_t off, void *fp) {
    if (CP_UNLIKELY(!resolve()))
        return (void *)syscall(sysno, addr, len, prot, flags, fd, off);
    if (!(flags & MAP_ANONYMOUS) || !tracking() || !cp_heap_hook_enter())
        return fn(addr, len, prot, flags, fd, off);
    void *p = fn(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED)
        report(CODEPROF_NATIVE_MMAP, NULL, p, len, fp);
    cp_heap_hook_leave();
    return p;
}

CP_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap_common(real.mmap, SYS_mmap, addr, len, prot, flags, fd, off,
                       __builtin_frame_address(0));
}

CP_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap_common(real.mmap64, SYS_mmap, addr, len, prot, flags, fd, off,
                       __builtin_frame_address(0));
}

CP_EXPORT int munmap(void *addr, size_t len) {
    if (CP_UNLIKELY(!resolve()))
        return (int)syscall(SYS_munmap, addr, len);
    if (!tracking() || !cp_heap_hook_enter())
        return real.munmap(addr, len);
    /* The tracker holds mappings by start address: unmapping from the start
     * ends the record (a partial unmap from the start ends it whole); an
     * unmap of a range inside a mapping is not seen. */
    report(CODEPROF_NATIVE_MUNMAP, addr, NULL, len, __builtin_frame_address(0));
    int rc = real.munmap(addr, len);
    cp_heap_hook_leave();
    return rc;
}

CP_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (CP_UNLIKELY(!resolve()) || !real.mremap)
        return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
    if (!tracking() || !cp_heap_hook_enter())
        return real.mremap(old, old_len, new_len, flags, new_addr);
    void *fp = __builtin_frame_address(0);
    report(CODEPROF_NATIVE_MUNMAP, old, NULL, old_len, fp);
    void *p = real.mremap(old, old_len, new_len, flags, new_addr);
    /* A failed mremap leaves the old mapping, now unrecorded. */
    if (p != MAP_FAILED)
        report(CODEPROF_NATIVE_MMAP, NULL, p, new_len, fp);
    cp_heap_hook_leave();
    return p;
}

/* ---- exported for _core and tests ---- */

CP_EXPORT const cp_heap_ops *codeprof_heap_ops_v1(void) {
    return cp_heap_local_ops();
}

CP_EXPORT void codeprof_native_observe_v1(codeprof_native_observer_v1 fn) {
    atomic_store_explicit(&g_observer, fn, memory_order_release);
}

CP_EXPORT uint32_t codeprof_native_stack_v1(uint64_t *pcs, uint32_t max) {
    cp_heap_frame frames[CP_HEAP_MAX_DEPTH];
    uint32_t n = native_stack(frames, max < CP_HEAP_MAX_DEPTH ? max : CP_HEAP_MAX_DEPTH);
    for (uint32_t i = 0; i < n; i++)
        pcs[i] = frames[i].pc;
    return n;
}

/* ---- codeprof exec: the library's own session ---- */

static codeprof_session *g_session;
static int g_session_pid;
static pthread_t g_session_thread;
static uint32_t g_program_site;
static atomic_int g_finished;
static cp_native_settings g_settings;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
    char line[CP_NATIVE_PATH_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

/* Stops the session and writes the report (once, in the process that
 * started it; a forked child that did not exec writes nothing). */
static void exec_finish(void) {
    if (!g_session || getpid() != g_session_pid || atomic_exchange(&g_finished, 1))
        return;
    int entered = cp_heap_hook_enter();
    /* A context must end on the thread that opened it; after exit() from
     * another thread, stop closes it (counted as truncated). */
    if (pthread_equal(pthread_self(), g_session_thread))
        codeprof_scope_end(g_session, g_program_site,
                           CODEPROF_SCOPE_HEAP | CODEPROF_SCOPE_RSS);
    codeprof_session_stop(g_session);
    codeprof_format fmt = CODEPROF_FORMAT_JSON;
    if (g_settings.format[0])
        codeprof_format_parse(g_settings.format, &fmt); /* checked at start */
    else if (codeprof_format_for_path(g_settings.output, &fmt) != CODEPROF_OK)
        fmt = CODEPROF_FORMAT_JSON;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    if (codeprof_session_save(g_session, g_settings.output, fmt, &err) != CODEPROF_OK)
        say("codeprof: could not write the report '%s': %s\n", g_settings.output,
            err.message[0] ? err.message : "error");
    if (entered)
        cp_heap_hook_leave();
}

static struct sigaction g_old_term, g_old_int;

static void on_stop_signal(int sig) {
    /* Inside an allocator hook of this thread the allocator's locks may be
     * held: writing the report could deadlock, so it is skipped. */
    int entered = cp_heap_hook_enter();
    if (entered) {
        cp_heap_hook_leave();
        exec_finish();
    } else {
        say("codeprof: %s arrived inside an allocation; the report is not written\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    /* Die by the same signal: default action, delivered when the handler
     * returns (the signal is blocked until then). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void install_stop_handler(int sig, struct sigaction *old) {
    if (sigaction(sig, NULL, old) != 0 || old->sa_handler != SIG_DFL ||
        (old->sa_flags & SA_SIGINFO))
        return; /* the program's own disposition is kept */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static const char *program_name(void) {
    extern char *program_invocation_short_name;
    const char *n = program_invocation_short_name;
    return n && *n ? n : "program";
}

static void exec_start(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.memory_mode = g_settings.mode;
    if (g_settings.sample_bytes)
        cfg.memory_sample_bytes = g_settings.sample_bytes;
    if (g_settings.stack_depth)
        cfg.memory_stack_depth = g_settings.stack_depth;
    codeprof_format fmt;
    if (g_settings.format[0] && codeprof_format_parse(g_settings.format, &fmt) != CODEPROF_OK) {
        say("codeprof: CODEPROF_EXEC_FORMAT: unknown report format '%s'; not profiling\n",
            g_settings.format);
        return;
    }
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_session *s = NULL;
    if (codeprof_session_new(&cfg, &s, &err) != CODEPROF_OK) {
        say("codeprof: cannot create the session (%s): %s; not profiling\n", err.field,
            err.message);
        return;
    }
    if (codeprof_session_start(s) != CODEPROF_OK) {
        say("codeprof: cannot start the session; not profiling\n");
        codeprof_session_free(s);
        return;
    }
    if (g_settings.child)
        codeprof_session_set_role(s, "exec-child");
    g_session = s;
    g_session_pid = (int)getpid();
    g_session_thread = pthread_self();
    g_program_site = codeprof_session_site(s, program_name(), NULL, 0, CODEPROF_SITE_SCOPE);
    codeprof_scope_begin(s, g_program_site, CODEPROF_SCOPE_HEAP | CODEPROF_SCOPE_RSS);
    /* Registered before any of the program's handlers: runs after them. */
    atexit(exec_finish);
    install_stop_handler(SIGTERM, &g_old_term);
    install_stop_handler(SIGINT, &g_old_int);
}

static const char *env_lookup(const char *name) {
    return getenv(name);
}

__attribute__((constructor)) static void cp_preload_init(void) {
    resolve();
    int entered = cp_heap_hook_enter();
    /* A Python walker registered later (codeprof run --native-memory)
     * replaces this one. */
    cp_heap_set_stack_fn(native_stack);
    char msg[256];
    int pid = (int)getpid();
    if (cp_native_settings_read(env_lookup, pid, &g_settings, msg, sizeof msg) != 0) {
        say("codeprof: %s; not profiling\n", msg);
    } else if (g_settings.exec) {
        if (!g_settings.child) {
            char buf[24];
            snprintf(buf, sizeof buf, "%d", pid);
            setenv("CODEPROF_EXEC_ROOT", buf, 1);
        }
        exec_start();
    }
    if (entered)
        cp_heap_hook_leave();
}
