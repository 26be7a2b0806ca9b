/* memhook.c -- Python allocator hooks and numpy's data allocator
 * (memhook.h; docs/memory-hooks.md).
 *
 * PyMem domains.  For each of PYMEM_DOMAIN_RAW, _MEM and _OBJ a wrapper
 * allocator is set with PyMem_SetAllocator on top of the one installed
 * before (the default, the debug hooks, tracemalloc's...).  A wrapper
 * forwards to that allocator and, while the tracker records
 * (cp_heap_active), reports the block to it.  The tracker's thread-local
 * reentrancy flag (cp_heap_hook_enter) is held across the forwarded call
 * too, so an allocation that the underlying allocator makes itself (a
 * large PyObject_Malloc served by PyMem_RawMalloc, malloc seen by the
 * native preload) is counted once, in the outermost domain.  Frees are
 * reported before they are forwarded (after it, another thread may get the
 * same address and report it first); reallocs after (the new address).
 *
 * The wrappers never read their `ctx` argument: the allocator they forward
 * to is a static copy (g_dom[].prev), and the ctx they are installed with
 * is that allocator's own.  A thread that reads PyMem's allocator struct
 * while it is being replaced (RAW runs without the GIL) may pair either
 * function with either ctx and still lands in the right place.
 *
 * Uninstall restores the previous allocator only when ours is still the
 * installed one; if another tool wrapped ours since, ours stays in its
 * chain, inert (cp_heap_active() is 0 once the session stopped), and a
 * later start reuses it instead of wrapping itself.  Whether ours is still
 * in the chain below another tool is found by a probe allocation
 * (mh_in_chain): a tool may also have dropped ours (tracemalloc started
 * before us and stopped while we ran), and then the next start installs
 * ours again.
 *
 * numpy.  Array data does not go through PyMem: numpy allocates it with
 * its data-memory handler (NEP 49; numpy >= 1.22), a PyDataMem_Handler in a
 * capsule named "mem_handler".  The handler a context uses is a context
 * variable whose default is numpy's static default handler; every thread
 * and context that did not set its own uses that one struct, and an array
 * keeps the handler it was allocated with to free its data.  So the
 * function pointers of that default handler are replaced in place (its
 * memory is numpy's writable data; checked in /proc/self/maps first) by
 * wrappers that forward to the saved originals and report CP_HEAP_NUMPY
 * with the exact size (numpy's free gets the size too).  numpy's default
 * functions call malloc/calloc/realloc/free directly (through a small
 * cache), not PyMem, so nothing is counted twice.  The handler is found
 * without numpy headers: the C-API table (capsule _ARRAY_API of
 * numpy._core._multiarray_umath, or numpy.core._multiarray_umath for numpy
 * 1.x), slot 211 (feature version, >= 1.22's) and slot 305
 * (PyDataMem_GetHandler), called in a fresh context so that it returns the
 * default handler.  The profiler never imports numpy (that would change the
 * program): a numpy imported at start() is hooked then, one imported later
 * at its import (np_import_watch).  Anything unexpected leaves numpy alone
 * with one session warning "memory_numpy_unavailable" naming why.
 */
#include "python/memhook.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "memory/gcstats.h"

/* ------------------------------------------------------------------------ */
/* PyMem domains                                                             */
/* ------------------------------------------------------------------------ */

enum { MH_RAW = 0, MH_MEM = 1, MH_OBJ = 2, MH_NDOM = 3 };

static const PyMemAllocatorDomain mh_pydomain[MH_NDOM] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                          PYMEM_DOMAIN_OBJ};
static const int mh_heapdom[MH_NDOM] = {CP_HEAP_PYRAW, CP_HEAP_PYMEM, CP_HEAP_PYOBJ};
static const char *const mh_name[MH_NDOM] = {"raw", "mem", "object"};

typedef struct mh_domain {
    PyMemAllocatorEx prev; /* what the wrapper forwards to (never cleared) */
    PyMemAllocatorEx ours; /* our wrapper as installed                     */
    int chained;           /* ours is somewhere in PyMem's chain           */
} mh_domain;

static mh_domain g_dom[MH_NDOM];

/* Blocks the profiler's own Python code allocates (a report built while
 * the session runs, a memory context entered) are not recorded: the stack
 * callback tells the tracker so (CP_HEAP_STACK_SKIP, memstack.c), for the
 * few blocks it records, so the fast path here does no frame walk. */

/* Is our wrapper still in a domain's chain (mh_in_chain)?  A probe
 * allocation through the installed allocator sets g_probe_hit[i] when it
 * passes through ours. */
static volatile int g_probe_on;
static volatile int g_probe_hit[3];

static inline void *mh_malloc(int i, size_t n) {
    const PyMemAllocatorEx *a = &g_dom[i].prev;
    if (__builtin_expect(g_probe_on, 0))
        g_probe_hit[i] = 1;
    if (__builtin_expect(!cp_heap_alloc_begin(), 1))
        return a->malloc(a->ctx, n);
    void *p = a->malloc(a->ctx, n);
    cp_heap_alloc_end(mh_heapdom[i], p, n);
    return p;
}

static inline void *mh_calloc(int i, size_t nelem, size_t elsize) {
    const PyMemAllocatorEx *a = &g_dom[i].prev;
    if (__builtin_expect(!cp_heap_alloc_begin(), 1))
        return a->calloc(a->ctx, nelem, elsize);
    void *p = a->calloc(a->ctx, nelem, elsize);
    /* the allocator checked nelem * elsize for overflow */
    cp_heap_alloc_end(mh_heapdom[i], p, p ? nelem * elsize : 0);
    return p;
}

static inline void *mh_realloc(int i, void *old, size_t n) {
    const PyMemAllocatorEx *a = &g_dom[i].prev;
    if (__builtin_expect(!cp_heap_alloc_begin(), 1))
        return a->realloc(a->ctx, old, n);
    void *p = a->realloc(a->ctx, old, n);
    /* on failure the old block is untouched: nothing to report */
    cp_heap_realloc_end(mh_heapdom[i], old, p, n);
    return p;
}

/* The free is reported before the block goes back (another thread may get
 * the address at once); the real free needs no hook flag: a block it
 * passes on to another of our wrappers (pymalloc's large blocks to the raw
 * domain) was already taken out of the ledger here. */
static inline void mh_free(int i, void *p) {
    const PyMemAllocatorEx *a = &g_dom[i].prev;
    cp_heap_free_hooked(mh_heapdom[i], p);
    a->free(a->ctx, p);
}

#define MH_DEFINE(SUF, I)                                                                          \
    static void *mh_malloc_##SUF(void *ctx, size_t n) {                                            \
        (void)ctx;                                                                                 \
        return mh_malloc(I, n);                                                                    \
    }                                                                                              \
    static void *mh_calloc_##SUF(void *ctx, size_t a, size_t b) {                                  \
        (void)ctx;                                                                                 \
        return mh_calloc(I, a, b);                                                                 \
    }                                                                                              \
    static void *mh_realloc_##SUF(void *ctx, void *p, size_t n) {                                  \
        (void)ctx;                                                                                 \
        return mh_realloc(I, p, n);                                                                \
    }                                                                                              \
    static void mh_free_##SUF(void *ctx, void *p) {                                                \
        (void)ctx;                                                                                 \
        mh_free(I, p);                                                                             \
    }

MH_DEFINE(raw, MH_RAW)
MH_DEFINE(mem, MH_MEM)
MH_DEFINE(obj, MH_OBJ)

static void *(*const mh_malloc_fn[MH_NDOM])(void *, size_t) = {mh_malloc_raw, mh_malloc_mem,
                                                               mh_malloc_obj};
static void *(*const mh_calloc_fn[MH_NDOM])(void *, size_t, size_t) = {mh_calloc_raw, mh_calloc_mem,
                                                                       mh_calloc_obj};
static void *(*const mh_realloc_fn[MH_NDOM])(void *, void *, size_t) = {
    mh_realloc_raw, mh_realloc_mem, mh_realloc_obj};
static void (*const mh_free_fn[MH_NDOM])(void *, void *) = {mh_free_raw, mh_free_mem, mh_free_obj};

static int mh_is_top(int i) {
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(mh_pydomain[i], &cur);
    return cur.malloc == mh_malloc_fn[i];
}

/* 1 if an allocation of domain i passes through our wrapper: ours is the
 * installed allocator or one that another tool wrapped (tracemalloc started
 * after us).  0 if a tool dropped ours from the chain (tracemalloc started
 * before us and stopped while we ran puts back what it had saved). */
static int mh_in_chain(int i) {
    if (mh_is_top(i))
        return 1;
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(mh_pydomain[i], &cur);
    g_probe_hit[i] = 0;
    g_probe_on = 1;
    void *p = cur.malloc(cur.ctx, 1);
    g_probe_on = 0;
    if (p)
        cur.free(cur.ctx, p);
    return g_probe_hit[i];
}

static void mh_install(int i) {
    mh_domain *d = &g_dom[i];
    if (d->chained && mh_in_chain(i))
        return; /* still ours at the top, or wrapped by another tool: reuse */
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(mh_pydomain[i], &cur);
    d->prev = cur;
    d->ours.ctx = cur.ctx; /* see the file comment: torn reads stay harmless */
    d->ours.malloc = mh_malloc_fn[i];
    d->ours.calloc = mh_calloc_fn[i];
    d->ours.realloc = mh_realloc_fn[i];
    d->ours.free = mh_free_fn[i];
    PyMem_SetAllocator(mh_pydomain[i], &d->ours);
    d->chained = 1;
}

static void mh_uninstall(int i) {
    mh_domain *d = &g_dom[i];
    if (!d->chained)
        return;
    if (!mh_is_top(i)) {
        /* another tool wrapped ours: stay, inert; or dropped it: forget it */
        d->chained = mh_in_chain(i);
        return;
    }
    PyMem_SetAllocator(mh_pydomain[i], &d->prev);
    d->chained = 0;
}

/* ------------------------------------------------------------------------ */
/* numpy's default data allocator                                            */
/* ------------------------------------------------------------------------ */

/* NEP 49's structs, version 1 (numpy/ndarraytypes.h): declared here because
 * numpy is not a build dependency; the layout is numpy's ABI. */
typedef struct np_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} np_allocator;

typedef struct np_handler {
    char name[127];
    uint8_t version;
    np_allocator allocator;
} np_handler;

_Static_assert(offsetof(np_handler, allocator) == 128, "numpy PyDataMem_Handler layout");

#define NP_API_FEATURE_VERSION_SLOT 211         /* PyArray_GetNDArrayCFeatureVersion */
#define NP_API_GET_HANDLER_SLOT     305         /* PyDataMem_GetHandler              */
#define NP_FEATURE_1_22             0x0000000Fu /* NPY_1_22_API_VERSION              */

static struct {
    np_handler *h;     /* numpy's default handler (NULL: not found yet) */
    np_allocator prev; /* its functions before ours (never cleared)      */
    int patched;       /* ours are in h                                  */
    char reason[160];  /* why numpy is not hooked ("" when it is)        */
    int final;         /* the reason will not change (not "not found")   */
} g_np;

static void *np_malloc(void *ctx, size_t n) {
    (void)ctx;
    const np_allocator *a = &g_np.prev;
    if (__builtin_expect(!cp_heap_alloc_begin(), 1))
        return a->malloc(a->ctx, n);
    void *p = a->malloc(a->ctx, n);
    cp_heap_alloc_end(CP_HEAP_NUMPY, p, n);
    return p;
}

static void *np_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    const np_allocator *a = &g_np.prev;
    if (__builtin_expect(!cp_heap_alloc_begin(), 1))
        return a->calloc(a->ctx, nelem, elsize);
    void *p = a->calloc(a->ctx, nelem, elsize);
    cp_heap_alloc_end(CP_HEAP_NUMPY, p, p ? nelem * elsize : 0);
    return p;
}

static void *np_realloc(void *ctx, void *old, size_t n) {
    (void)ctx;
    const np_allocator *a = &g_np.prev;
    if (__builtin_expect(!cp_heap_alloc_begin(), 1))
        return a->realloc(a->ctx, old, n);
    void *p = a->realloc(a->ctx, old, n);
    cp_heap_realloc_end(CP_HEAP_NUMPY, old, p, n);
    return p;
}

/* Reported before the block goes back, as mh_free. */
static void np_free(void *ctx, void *p, size_t n) {
    (void)ctx;
    const np_allocator *a = &g_np.prev;
    cp_heap_free_hooked(CP_HEAP_NUMPY, p);
    a->free(a->ctx, p, n);
}

/* 1 if [p, p+len) lies in one writable mapping of this process. */
static int mem_writable(const void *p, size_t len) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    uintptr_t a = (uintptr_t)p;
    char line[512];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8] = {0};
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        if (a >= lo && a + len <= hi) {
            ok = perms[0] == 'r' && perms[1] == 'w';
            break;
        }
    }
    fclose(f);
    return ok;
}

/* Finds numpy's default handler; NULL with g_np.reason set otherwise.
 * Never leaves an exception set. */
static np_handler *np_find_default(void) {
    g_np.final = 0;
    static const char *const mods[] = {"numpy._core._multiarray_umath",
                                       "numpy.core._multiarray_umath"};
    PyObject *mod = NULL;
    for (size_t i = 0; i < 2 && !mod; i++) {
        PyObject *name = PyUnicode_FromString(mods[i]);
        mod = name ? PyImport_GetModule(name) : NULL;
        Py_XDECREF(name);
        PyErr_Clear();
    }
    if (!mod) {
        snprintf(g_np.reason, sizeof g_np.reason, "numpy is not imported");
        return NULL;
    }
    np_handler *h = NULL;
    PyObject *cap = PyObject_GetAttrString(mod, "_ARRAY_API");
    Py_DECREF(mod);
    void **api = NULL;
    if (cap && PyCapsule_CheckExact(cap))
        api = (void **)PyCapsule_GetPointer(cap, PyCapsule_GetName(cap));
    PyErr_Clear();
    if (!api) {
        snprintf(g_np.reason, sizeof g_np.reason, "numpy's C-API table (_ARRAY_API) not found");
        goto out;
    }
    unsigned int (*feature)(void) = (unsigned int (*)(void))api[NP_API_FEATURE_VERSION_SLOT];
    unsigned int fv = feature ? feature() : 0;
    if (fv < NP_FEATURE_1_22) {
        snprintf(g_np.reason, sizeof g_np.reason,
                 "numpy C-API feature version 0x%x has no data-memory handler (needs numpy >= "
                 "1.22)",
                 fv);
        g_np.final = 1;
        goto out;
    }
    PyObject *(*get_handler)(void) = (PyObject * (*)(void)) api[NP_API_GET_HANDLER_SLOT];
    /* A fresh context: the handler variable's default, numpy's own. */
    PyObject *ctx = PyContext_New();
    PyObject *hcap = NULL;
    if (ctx && PyContext_Enter(ctx) == 0) {
        hcap = get_handler ? get_handler() : NULL;
        if (PyContext_Exit(ctx) < 0)
            PyErr_Clear();
    }
    Py_XDECREF(ctx);
    PyErr_Clear();
    if (!hcap || !PyCapsule_IsValid(hcap, "mem_handler")) {
        snprintf(g_np.reason, sizeof g_np.reason,
                 "numpy's default data-memory handler (capsule \"mem_handler\") not found");
        Py_XDECREF(hcap);
        goto out;
    }
    h = (np_handler *)PyCapsule_GetPointer(hcap, "mem_handler");
    Py_DECREF(hcap); /* the default handler is a static of numpy's: h stays valid */
    if (!h || h->version != 1 || !h->allocator.malloc || !h->allocator.calloc ||
        !h->allocator.realloc || !h->allocator.free) {
        snprintf(g_np.reason, sizeof g_np.reason,
                 "numpy's data-memory handler has version %d, expected 1", h ? h->version : -1);
        g_np.final = 1;
        h = NULL;
        goto out;
    }
    if (!mem_writable(&h->allocator, sizeof h->allocator)) {
        snprintf(g_np.reason, sizeof g_np.reason,
                 "numpy's default data-memory handler is not in writable memory");
        g_np.final = 1;
        h = NULL;
    }
out:
    Py_XDECREF(cap);
    PyErr_Clear();
    return h;
}

#define NP_STORE(field, v) __atomic_store_n(&g_np.h->allocator.field, (v), __ATOMIC_RELEASE)

/* Returns 1 when numpy's allocations are reported, else 0 with the reason. */
static int np_install(void) {
    if (g_np.patched && g_np.h->allocator.malloc == np_malloc)
        return 1;
    if (!g_np.h) {
        np_handler *h = np_find_default();
        if (!h)
            return 0;
        g_np.h = h;
        g_np.prev = h->allocator;
    } else if (g_np.h->allocator.malloc != g_np.prev.malloc ||
               g_np.h->allocator.free != g_np.prev.free) {
        snprintf(g_np.reason, sizeof g_np.reason,
                 "numpy's default data-memory handler was changed by another tool");
        g_np.final = 1;
        return 0;
    }
    /* The originals ignore ctx; ours ignore it too: the pointers may be
     * read by another thread one at a time, each pairing works. */
    NP_STORE(malloc, np_malloc);
    NP_STORE(calloc, np_calloc);
    NP_STORE(realloc, np_realloc);
    NP_STORE(free, np_free);
    g_np.patched = 1;
    g_np.reason[0] = '\0';
    return 1;
}

/* numpy imported after start() (or being imported: its C module not yet
 * complete): an audit hook (added once per process; audit hooks cannot be
 * removed) watches the "import" events while a session waits for numpy, and
 * hooks it at the first import that follows the loading of numpy's C module
 * (numpy imports many more modules after it).  Costs one
 * flag test per audit event otherwise. */
static int g_np_pending; /* a running session waits for numpy          */
static int g_np_audit_added;
static codeprof_session *g_np_pending_s; /* where a failure is reported     */

static int np_import_watch(const char *event, PyObject *args, void *data) {
    (void)args, (void)data;
    if (!g_np_pending || strcmp(event, "import") != 0)
        return 0;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (np_install()) {
        g_np_pending = 0;
    } else if (g_np.final) {
        g_np_pending = 0; /* numpy is there but cannot be hooked: say why, once */
        char msg[256];
        snprintf(msg, sizeof msg, "numpy array data is not tracked: %s", g_np.reason);
        if (g_np_pending_s)
            codeprof_session_warn(g_np_pending_s, "memory_numpy_unavailable", msg);
    }
    PyErr_Clear();
    PyErr_Restore(et, ev, etb);
    return 0;
}

/* Starts waiting for numpy; 0 when the watch could not be added. */
static int np_watch_imports(codeprof_session *s) {
    if (!g_np_audit_added) {
        if (PySys_AddAuditHook(np_import_watch, NULL) < 0) {
            PyErr_Clear();
            return 0;
        }
        g_np_audit_added = 1;
    }
    g_np_pending_s = s;
    g_np_pending = 1;
    return 1;
}

static void np_uninstall(void) {
    if (!g_np.patched || g_np.h->allocator.malloc != np_malloc)
        return; /* another tool replaced ours: stay in its chain, inert */
    NP_STORE(malloc, g_np.prev.malloc);
    NP_STORE(calloc, g_np.prev.calloc);
    NP_STORE(realloc, g_np.prev.realloc);
    NP_STORE(free, g_np.prev.free);
    g_np.patched = 0;
}

/* ------------------------------------------------------------------------ */
/* Session start / stop                                                      */
/* ------------------------------------------------------------------------ */

/* The sessions whose hooks these are: the allocator hooks and the gc
 * callback each belong to the first session that wanted them (a session
 * with only gc=True does not keep a later one from tracking allocations). */
static cp_py_session *g_alloc_owner, *g_gc_owner;

void cp_py_memhooks_start(cp_py_session *owner) {
    if (!owner || !owner->s)
        return;
    const codeprof_config *cfg = &owner->s->cfg;
    int want_alloc = cfg->memory_mode > 0 && !g_alloc_owner;
    int want_gc = (cfg->flags & CODEPROF_CFG_GC) != 0 && !g_gc_owner;
    if (!want_alloc && !want_gc)
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (want_alloc) {
        g_alloc_owner = owner;
        cp_py_memstack_ready();
        cp_heap_set_stack_fn(cp_py_memstack);
        for (int i = 0; i < MH_NDOM; i++)
            mh_install(i);
        if (!np_install()) {
            /* Not imported yet: hook it when it is (the warning, if it
             * never is, comes at stop).  Anything else: say why now. */
            int later = !g_np.final && np_watch_imports(owner->s);
            if (!later) {
                char msg[256];
                snprintf(msg, sizeof msg, "numpy array data is not tracked: %s", g_np.reason);
                codeprof_session_warn(owner->s, "memory_numpy_unavailable", msg);
            }
        }
    }
    if (want_gc) {
        if (cp_py_gchook_install(owner->s) == 0) {
            cp_gcstats_set_enabled(1);
            g_gc_owner = owner;
        } else {
            codeprof_session_warn(owner->s, "gc_callbacks_unavailable",
                                  "gc.callbacks could not be extended: GC is not measured");
        }
    }
    PyErr_Clear();
    PyErr_Restore(et, ev, etb);
}

void cp_py_memhooks_stop(cp_py_session *owner) {
    if (!owner || (owner != g_alloc_owner && owner != g_gc_owner))
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (owner == g_gc_owner) {
        cp_py_gchook_uninstall();
        g_gc_owner = NULL;
    }
    if (owner == g_alloc_owner) {
        if (g_np_pending) {
            g_np_pending = 0;
            g_np_pending_s = NULL;
            codeprof_session_warn(owner->s, "memory_numpy_unavailable",
                                  "numpy array data is not tracked: numpy was not imported "
                                  "while the session ran");
        }
        np_uninstall();
        for (int i = MH_NDOM - 1; i >= 0; i--)
            mh_uninstall(i);
        cp_heap_set_stack_fn(NULL);
        g_alloc_owner = NULL;
    }
    PyErr_Clear();
    PyErr_Restore(et, ev, etb);
}

/* ------------------------------------------------------------------------ */
/* _core._memhooks_state()                                                   */
/* ------------------------------------------------------------------------ */

static const char *dom_state(int i) {
    if (!g_dom[i].chained)
        return "off";
    return g_alloc_owner ? "installed" : "inert";
}

PyObject *cp_py_memhooks_state(PyObject *mod, PyObject *unused) {
    (void)mod, (void)unused;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (int i = 0; i < MH_NDOM; i++) {
        PyObject *v = PyUnicode_FromString(dom_state(i));
        if (!v || PyDict_SetItemString(d, mh_name[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
        PyObject *top = PyBool_FromLong(g_dom[i].chained && mh_is_top(i));
        char key[32];
        snprintf(key, sizeof key, "%s_top", mh_name[i]);
        if (PyDict_SetItemString(d, key, top) < 0) {
            Py_DECREF(top);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(top);
    }
    const char *np = g_np.patched     ? (g_alloc_owner ? "installed" : "inert")
                     : g_np_pending   ? "waiting"
                     : g_np.reason[0] ? "unavailable"
                                      : "off";
    PyObject *npv = PyUnicode_FromString(np);
    PyObject *why = g_np.reason[0] ? PyUnicode_FromString(g_np.reason) : Py_NewRef(Py_None);
    PyObject *gc = PyBool_FromLong(cp_py_gchook_installed());
    PyObject *own = PyBool_FromLong(g_alloc_owner != NULL || g_gc_owner != NULL);
    int bad = !npv || !why || PyDict_SetItemString(d, "numpy", npv) < 0 ||
              PyDict_SetItemString(d, "numpy_reason", why) < 0 ||
              PyDict_SetItemString(d, "gc", gc) < 0 || PyDict_SetItemString(d, "owner", own) < 0;
    if (!bad) {
        cp_mgc g;
        cp_gcstats_read(&g);
        PyObject *gcd = Py_BuildValue(
            "{s:[KKK],s:[KKK],s:[KKK],s:[KKK]}", "collections",
            (unsigned long long)g.collections[0], (unsigned long long)g.collections[1],
            (unsigned long long)g.collections[2], "collected", (unsigned long long)g.collected[0],
            (unsigned long long)g.collected[1], (unsigned long long)g.collected[2], "uncollectable",
            (unsigned long long)g.uncollectable[0], (unsigned long long)g.uncollectable[1],
            (unsigned long long)g.uncollectable[2], "time_ns", (unsigned long long)g.time_ns[0],
            (unsigned long long)g.time_ns[1], (unsigned long long)g.time_ns[2]);
        bad = !gcd || PyDict_SetItemString(d, "gc_counters", gcd) < 0;
        Py_XDECREF(gcd);
    }
    Py_XDECREF(npv);
    Py_XDECREF(why);
    Py_XDECREF(gc);
    Py_XDECREF(own);
    if (bad) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}
