/* tracer.c -- the deterministic Python tracer (see tracer.h).
 *
 * Hot path per Python call: one code-extra lookup (the site id cached on
 * the code object) and one cp_emit() (a TSC read and a 32-byte store into
 * the thread's buffer).  Per C call: a probe of a small open-addressing
 * table keyed by (PyMethodDef*, type).  Interning (first sight of a code
 * object or C function) takes the site table's mutex and may allocate;
 * nothing else does.
 *
 * Mechanisms (Session.tracer), chosen at start; the environment variable
 * CODEPROF_TRACER=auto|eval_frame|setprofile|sys.monitoring overrides:
 *   "eval_frame"     (3.11, opt-in) a PEP 523 frame-evaluation function
 *                    wrapping _PyEval_EvalFrameDefault: no frame objects,
 *                    no per-call tracing machinery, every thread of the
 *                    interpreter, and a generator resume/yield is an
 *                    enter/exit.  Python functions only: C functions called
 *                    from Python are not seen (their time is the caller's
 *                    self time).  Chains to a frame-evaluation function that
 *                    was installed before (e.g. a debugger's).
 *   "sys.monitoring" (auto on 3.12+) C callbacks on tool PROFILER_ID;
 *                    falls back to "setprofile" when the id is taken.
 *   "setprofile"     (auto on 3.11) the C profile hook on every thread (+
 *                    threading hook); records C functions too.  The frame
 *                    hook is faster but opt-in: it cannot see C functions
 *                    and it competes for the one frame-evaluation slot with
 *                    torch.compile (dynamo) and debuggers.
 *
 * C calls on 3.12+: the CALL event fires for every call site and the
 * callback records the callable when it is a C function.  It never returns
 * DISABLE: that would switch the call site off for every later callable,
 * so a polymorphic site (`fn(x)` called with a Python function, then with
 * `abs`) would lose its C calls.  The cost of a CALL whose callable is not
 * a C function is one callback that returns at once (two type checks).
 *
 * Coexistence.  3.12+: the tool id is the first free one of 3, 4, 5 (ids no
 * standard tool uses), then PROFILER_ID (2, cProfile's); a user's cProfile
 * therefore runs beside codeprof and both keep their data.  Profile hook
 * (3.11, or the 3.12+ fallback): there is one hook per thread, so another
 * tool that takes it (sys.setprofile, cProfile.enable) ends our tracing of
 * that thread.  An audit hook on "sys.setprofile" notes when that happens
 * (thread and time); when the other tool removes its hook, ours is put back
 * (from a pending call, on the main thread's next bytecode boundary; 3.12+
 * can only do so for the main thread) and the time noted.  Each loss and
 * return is recorded on the session when noted ("tracer_thread_lost",
 * "tracer_thread_resumed", shown in meta.warnings); at stop one
 * RuntimeWarning is issued for the run.  The threading.setprofile() hook that was set before start is
 * restored at stop.  On 3.11 thread states are walked as CPython does:
 * the runtime's head lock held while reading each list link; on 3.12+
 * every-thread changes go through PyEval_SetProfileAllThreads and checks
 * look at the calling thread only.
 *
 * Free-threaded builds (3.13t): the extension declares Py_MOD_GIL_USED and
 * the tracer refuses to start while the GIL is disabled.
 */
#include "python/tracer.h"

#include <frameobject.h>
#include <structmember.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030D0000
/* The frame-evaluation hook reads the code and globals of the frame being
 * evaluated; only the internal header defines that struct. */
#define CP_HAVE_EVAL_FRAME 1
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#if PY_VERSION_HEX < 0x030C0000
/* 3.11: the runtime's head lock (interpreters.mutex), which CPython holds
 * while it follows the thread-state list (HEAD_LOCK in Python/pystate.c). */
#include <internal/pycore_runtime.h>
#define CP_HEAD_LOCK() PyThread_acquire_lock(_PyRuntime.interpreters.mutex, WAIT_LOCK)
#define CP_HEAD_UNLOCK() PyThread_release_lock(_PyRuntime.interpreters.mutex)
#endif
#undef Py_BUILD_CORE
/* Layout of a code object's co_extra block (Objects/codeobject.c, unchanged
 * from 3.6 through 3.12): read directly on the hot path instead of calling
 * _PyCode_GetExtra, which does the same bounds check. */
typedef struct cp_code_extra_layout {
    Py_ssize_t ce_size;
    void *ce_extras[1];
} cp_code_extra_layout;
#define CP_INLINE_CO_EXTRA 1
#else
#define CP_HAVE_EVAL_FRAME 0
#define CP_INLINE_CO_EXTRA 0
#endif

#if PY_VERSION_HEX >= 0x030C0000
#define CP_HAVE_MONITORING 1
#define CP_REQUEST_EXTRA PyUnstable_Eval_RequestCodeExtraIndex
#define CP_GET_EXTRA PyUnstable_Code_GetExtra
#define CP_SET_EXTRA PyUnstable_Code_SetExtra
#else
#define CP_HAVE_MONITORING 0
#define CP_REQUEST_EXTRA _PyEval_RequestCodeExtraIndex
#define CP_GET_EXTRA _PyCode_GetExtra
#define CP_SET_EXTRA _PyCode_SetExtra
#endif

enum { TR_OFF = 0, TR_SETPROFILE = 1, TR_MONITORING = 2, TR_EVAL_FRAME = 3 };

/* Events the sys.monitoring tool uses; filled at start from
 * sys.monitoring.events (so the numbers are never hard-coded). */
enum { MON_PY_START, MON_PY_RESUME, MON_PY_THROW, MON_PY_RETURN, MON_PY_YIELD, MON_PY_UNWIND,
       MON_CALL, MON_C_RETURN, MON_C_RAISE, MON_NEVENTS };
#if CP_HAVE_MONITORING
static const char *const mon_event_names[MON_NEVENTS] = {
    "PY_START", "PY_RESUME", "PY_THROW", "PY_RETURN", "PY_YIELD",
    "PY_UNWIND", "CALL", "C_RETURN", "C_RAISE"};
#endif

/* A thread whose profile hook another tool took (profile-hook mode). */
typedef struct tr_loss {
    unsigned long thread_id;  /* threading.get_ident() of the thread      */
    uint64_t lost_ns;         /* codeprof_now_ns() when it was taken      */
    uint64_t resumed_ns;      /* when ours was put back; 0 = still lost   */
    int how;                  /* LOSS_*                                   */
} tr_loss;

#define TR_LOSSES_MAX 32

enum {
    LOSS_SEEN = 0,    /* the audit hook saw it happen                   */
    LOSS_LATE = 1,    /* a check found it after the fact                */
    LOSS_AT_START = 2 /* another tool held the thread's hook at start    */
};

/* Process-wide tracer state (one tracer per process; guarded by the GIL). */
static struct {
    cp_session *s;          /* session recorded into; NULL when off       */
    cp_py_session *owner;   /* borrowed: the tracing Session object       */
    cp_py_state *st;        /* module state whose hooks are installed     */
    int mode;               /* TR_*                                       */
    long tool_id;           /* sys.monitoring tool (TR_MONITORING)        */
    long mon_events[MON_NEVENTS];
    /* profile-hook mode */
    PyObject *prev_thread_hook; /* threading's hook before start (strong) */
    int in_own_set;         /* >0 while we change a profile hook ourselves */
    int audit_added;        /* the "sys.setprofile" audit hook is in place */
    int check_pending;      /* a check_threads pending call is queued      */
    int foreign_set_seen;   /* another tool called sys.setprofile this run */
    uint64_t start_ns;      /* codeprof_now_ns() at start                  */
    tr_loss losses[TR_LOSSES_MAX];
    size_t nlosses;
    uint64_t losses_dropped;
#if CP_HAVE_EVAL_FRAME
    /* The frame evaluator we wrap: NULL means _PyEval_EvalFrameDefault.
     * Kept after stop so that a hook chained on top of ours keeps working. */
    _PyFrameEvalFunction prev_eval;
#endif
} tracer_g;

static Py_ssize_t code_index = -1;

/* What the code extra of a code object holds (decided once per code
 * object, at its first event, and cached):
 *   0              not classified yet;
 *   id             user code: its site id (dense from 1, below CODE_LIB);
 *   CODE_LIB | id  the standard library: recorded, except when the
 *                  profiler's own code called it (directly or through
 *                  other standard-library frames);
 *   CODE_OWN       the profiler's own code (files of the code_profiler
 *                  package): never recorded, and what it calls is hidden
 *                  too (C functions, the standard library) -- except user
 *                  code, which attaches to its nearest visible ancestor;
 *   CODE_SKIP      tracer_ignore() on user code (a decorated function whose
 *                  scope is its record): not recorded; what it calls is. */
#define CODE_SKIP UINT32_MAX
#define CODE_OWN (UINT32_MAX - 1)
#define CODE_LIB 0x80000000u

/* ------------------------------------------------------------------------ */
/* Whose code is it: the profiler's, the standard library's, the user's     */
/* ------------------------------------------------------------------------ */

#define TR_PREFIX_MAX 4
#define TR_PREFIX_LEN 1024

/* Directory prefixes (each ending in '/'), filled once by classify_init():
 * the code_profiler package's directories, and the standard library's. */
static struct {
    int ready;
    char own[TR_PREFIX_MAX][TR_PREFIX_LEN];
    size_t nown;
    char lib[TR_PREFIX_MAX][TR_PREFIX_LEN];
    size_t nlib;
} cls_g;

/* Adds directory `dir` (a str object) to `tab` with a trailing '/'. */
static void prefix_add(char tab[][TR_PREFIX_LEN], size_t *n, PyObject *dir) {
    const char *d = (dir && PyUnicode_Check(dir)) ? PyUnicode_AsUTF8(dir) : NULL;
    if (!d) {
        PyErr_Clear();
        return;
    }
    size_t len = strlen(d);
    while (len > 1 && d[len - 1] == '/')
        len--;
    if (!len || len + 2 > TR_PREFIX_LEN || *n == TR_PREFIX_MAX)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strncmp(tab[i], d, len) == 0 && tab[i][len] == '/' && tab[i][len + 1] == '\0')
            return;
    memcpy(tab[*n], d, len);
    tab[*n][len] = '/';
    tab[*n][len + 1] = '\0';
    (*n)++;
}

/* Finds the prefixes: the code_profiler package's __path__ (sys.modules,
 * so it works while the package is still being imported) and the
 * directory of the os module (the pure-Python standard library).  Once per
 * process; never leaves an exception set.  With no package found (not
 * imported as code_profiler), nothing counts as the profiler's own. */
static void classify_init(void) {
    if (cls_g.ready)
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    PyObject *pkg = modules && PyDict_Check(modules)
                        ? PyDict_GetItemString(modules, "code_profiler") /* borrowed */
                        : NULL;
    PyObject *path = pkg ? PyObject_GetAttrString(pkg, "__path__") : NULL;
    PyObject *seq = path ? PySequence_Fast(path, "") : NULL;
    if (seq) {
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++)
            prefix_add(cls_g.own, &cls_g.nown, PySequence_Fast_GET_ITEM(seq, i));
    }
    Py_XDECREF(seq);
    Py_XDECREF(path);
    PyErr_Clear();
    PyObject *os = modules && PyDict_Check(modules) ? PyDict_GetItemString(modules, "os") : NULL;
    PyObject *osfile = os ? PyObject_GetAttrString(os, "__file__") : NULL;
    const char *f = osfile && PyUnicode_Check(osfile) ? PyUnicode_AsUTF8(osfile) : NULL;
    if (f) {
        const char *slash = strrchr(f, '/');
        if (slash && slash > f) {
            PyObject *dir = PyUnicode_FromStringAndSize(f, slash - f);
            prefix_add(cls_g.lib, &cls_g.nlib, dir);
            Py_XDECREF(dir);
        }
    }
    Py_XDECREF(osfile);
    PyErr_Clear();
    cls_g.ready = 1;
    PyErr_Restore(et, ev, etb);
}

static int has_prefix(const char *file, char tab[][TR_PREFIX_LEN], size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strncmp(file, tab[i], strlen(tab[i])) == 0)
            return 1;
    return 0;
}

/* 1 if `file` (a code object's co_filename) belongs to the profiler. */
static int file_is_own(const char *file) {
    return file && has_prefix(file, cls_g.own, cls_g.nown);
}

/* 1 if `file` is the standard library's: under its directory but not in a
 * site-packages inside it; or a frozen module ("<frozen os>"); or
 * "<string>" outside __main__ (`modname`, may be NULL): what namedtuple and
 * the like compile at run time, then shown or hidden with its caller.
 * `python -c` code ("<string>" in __main__) and other pseudo-files
 * ("<stdin>", "<ipython-input-...>") are user code. */
static int file_is_lib(const char *file, PyObject *modname) {
    if (!file)
        return 0;
    if (strncmp(file, "<frozen ", 8) == 0)
        return 1;
    if (strcmp(file, "<string>") == 0)
        return !modname || PyUnicode_CompareWithASCIIString(modname, "__main__") != 0;
    return has_prefix(file, cls_g.lib, cls_g.nlib) && !strstr(file, "/site-packages/") &&
           !strstr(file, "/dist-packages/");
}

/* ------------------------------------------------------------------------ */
/* Sites of Python code objects                                              */
/* ------------------------------------------------------------------------ */

/* Interns the site of `co` ("module.qualname", its file and first line)
 * and returns its id (0 on failure or an id that cannot be told from the
 * class bits); sets *is_lib (may be NULL) when the code is the standard
 * library's.  May leave an exception set (callers clear it). */
static uint32_t code_site_id(PyCodeObject *co, PyObject *globals, int *is_lib) {
    const char *cfile = co->co_filename ? PyUnicode_AsUTF8(co->co_filename) : NULL;
    if (!cfile)
        PyErr_Clear();
    PyObject *modname = NULL;
    if (globals && PyDict_Check(globals)) {
        modname = PyDict_GetItemString(globals, "__name__"); /* borrowed */
        if (modname && !PyUnicode_Check(modname))
            modname = NULL;
    }
    if (is_lib)
        *is_lib = file_is_lib(cfile, modname);
    PyObject *qual = co->co_qualname ? co->co_qualname : co->co_name;
    PyObject *name = modname ? PyUnicode_FromFormat("%U.%U", modname, qual) : Py_NewRef(qual);
    const char *cname = name ? PyUnicode_AsUTF8(name) : NULL;
    uint32_t id = 0;
    if (cname) {
        int line = co->co_firstlineno;
        id = codeprof_site(cname, cfile, line > 0 ? (uint32_t)line : 0, CODEPROF_SITE_PYTHON);
        if (id >= CODE_LIB)
            id = 0; /* cannot be told from the class bits: not recorded */
    }
    Py_XDECREF(name);
    return id;
}

/* Classifies `co` and, unless it is the profiler's own, interns its site;
 * `globals` (borrowed, may be NULL) gives the module name.  Caches the
 * result on the code object and returns it (a code-extra value, see
 * CODE_*).  Never leaves an exception set; returns 0 on failure. */
static uint32_t intern_code(PyCodeObject *co, PyObject *globals) {
    PyObject *exc_t, *exc_v, *exc_tb;
    PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
    uint32_t id = 0;
    const char *cfile = co->co_filename ? PyUnicode_AsUTF8(co->co_filename) : NULL;
    if (!cfile)
        PyErr_Clear();
    if (file_is_own(cfile)) {
        if (code_index >= 0 &&
            CP_SET_EXTRA((PyObject *)co, code_index, (void *)(uintptr_t)CODE_OWN) < 0)
            PyErr_Clear();
        PyErr_Restore(exc_t, exc_v, exc_tb);
        return CODE_OWN;
    }
    int is_lib = 0;
    id = code_site_id(co, globals, &is_lib);
    id |= (id && is_lib) ? CODE_LIB : 0;
    if (id && code_index >= 0 &&
        CP_SET_EXTRA((PyObject *)co, code_index, (void *)(uintptr_t)id) < 0)
        PyErr_Clear();
    PyErr_Clear();
    PyErr_Restore(exc_t, exc_v, exc_tb);
    return id;
}

/* The whole code-extra value of `co` (0 when unset).  Lock-free, no
 * allocation: safe inside an allocator hook. */
static inline uintptr_t code_extra_raw(PyCodeObject *co) {
#if CP_INLINE_CO_EXTRA
    const cp_code_extra_layout *x = (const cp_code_extra_layout *)co->co_extra;
    if (x != NULL && code_index >= 0 && code_index < x->ce_size)
        return (uintptr_t)x->ce_extras[code_index];
    return 0;
#else
    void *extra = NULL;
    if (code_index < 0 || CP_GET_EXTRA((PyObject *)co, code_index, &extra) < 0) {
        PyErr_Clear();
        return 0;
    }
    return (uintptr_t)extra;
#endif
}

static inline uint32_t code_site_cached(PyCodeObject *co) {
#if CP_INLINE_CO_EXTRA
    const cp_code_extra_layout *x = (const cp_code_extra_layout *)co->co_extra;
    if (__builtin_expect(x != NULL && code_index < x->ce_size, 1))
        return (uint32_t)(uintptr_t)x->ce_extras[code_index];
    return 0;
#else
    void *extra = NULL;
    if (__builtin_expect(CP_GET_EXTRA((PyObject *)co, code_index, &extra) < 0, 0)) {
        PyErr_Clear();
        return 0;
    }
    return (uint32_t)(uintptr_t)extra;
#endif
}

/* ------------------------------------------------------------------------ */
/* Hidden regions: the open frames of each thread                            */
/* ------------------------------------------------------------------------ */

/* The calling thread's Python frames entered since the tracer started and
 * still open, one bit each (1 = hidden), so that what the profiler's own
 * code calls (the standard library, C functions) is hidden with it, while
 * user code it calls is recorded.  Frames deeper than TR_STACK_BITS share
 * the deepest stored bit (a standard-library frame that deep is then
 * shown or hidden as that frame is).  `gen` is tr_gen when the stack
 * was last emptied: a new tracing run starts every thread's stack afresh. */
#define TR_STACK_BITS 1024
typedef struct tr_stack {
    uint32_t gen;
    uint32_t depth;
    uint64_t bits[TR_STACK_BITS / 64];
} tr_stack;

static _Thread_local tr_stack tr_tls __attribute__((tls_model("initial-exec")));
static uint32_t tr_gen; /* bumped at every tracer start (GIL) */

static inline tr_stack *tr_stack_get(void) {
    tr_stack *k = &tr_tls;
    if (__builtin_expect(k->gen != tr_gen, 0)) {
        k->gen = tr_gen;
        k->depth = 0;
    }
    return k;
}

/* The innermost open frame is hidden (depth > 0). */
static inline int tr_top_hidden(const tr_stack *k) {
    uint32_t i = k->depth - 1;
    if (i >= TR_STACK_BITS)
        i = TR_STACK_BITS - 1;
    return (int)((k->bits[i >> 6] >> (i & 63)) & 1u);
}

static inline void tr_push(tr_stack *k, int hidden) {
    uint32_t i = k->depth;
    if (i < TR_STACK_BITS) {
        uint64_t bit = 1ull << (i & 63);
        if (hidden)
            k->bits[i >> 6] |= bit;
        else
            k->bits[i >> 6] &= ~bit;
    }
    if (k->depth != UINT32_MAX)
        k->depth++;
}

/* A Python frame of class `x` (a code-extra value, not 0) starts or
 * resumes: returns the site to record, or 0 (hidden ones are counted). */
static inline uint32_t tr_enter(cp_session *s, uint32_t x) {
    tr_stack *k = tr_stack_get();
    int hidden;
    if (__builtin_expect(x < CODE_LIB, 1))
        hidden = 0;
    else if (x == CODE_OWN)
        hidden = 1;
    else if (x == CODE_SKIP)
        hidden = 0; /* transparent: what it calls is recorded */
    else
        hidden = k->depth ? tr_top_hidden(k) : 0; /* the standard library */
    tr_push(k, hidden);
    if (hidden) {
        cp_session_count_hidden(s, 1);
        return 0;
    }
    return x == CODE_SKIP ? 0 : (x & ~CODE_LIB);
}

/* A Python frame of class `x` returns, yields or unwinds: returns the
 * site to record (the one its enter recorded), or 0. */
static inline uint32_t tr_exit(uint32_t x) {
    tr_stack *k = tr_stack_get();
    if (__builtin_expect(k->depth == 0, 0)) /* entered before the tracer started */
        return (x == CODE_OWN || x == CODE_SKIP) ? 0 : (x & ~CODE_LIB);
    int hidden = tr_top_hidden(k);
    k->depth--;
    return (hidden || x == CODE_SKIP) ? 0 : (x & ~CODE_LIB);
}

/* The class of `co` (classified now if it was not yet; 0 on failure). */
static inline uint32_t code_class(PyCodeObject *co, PyObject *globals) {
    uint32_t x = code_site_cached(co);
    return x ? x : intern_code(co, globals);
}

/* Is a C function called now from code `caller` hidden: the innermost open
 * frame is, or (none opened since the tracer started) `caller` is the
 * profiler's own code.  `caller` may be NULL. */
static inline int c_call_hidden(PyCodeObject *caller, PyObject *globals) {
    tr_stack *k = tr_stack_get();
    if (__builtin_expect(k->depth != 0, 1))
        return tr_top_hidden(k);
    return caller && code_class(caller, globals) == CODE_OWN;
}

/* ------------------------------------------------------------------------ */
/* Sites of C functions                                                      */
/* ------------------------------------------------------------------------ */

typedef struct nat_slot {
    const void *def;   /* PyMethodDef*; NULL = empty slot */
    const void *type;  /* defining/bound type, or NULL    */
    uint32_t id;       /* site id; NAT_SKIP = not recorded */
} nat_slot;

#define NAT_SKIP UINT32_MAX

static nat_slot *nat_tab;
static size_t nat_cap; /* power of two */
static size_t nat_len;

static inline size_t nat_hash(const void *def, const void *type) {
    uint64_t h = ((uint64_t)(uintptr_t)def >> 3) * 0x9E3779B97F4A7C15ull;
    h ^= ((uint64_t)(uintptr_t)type >> 3) * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

static int nat_grow(void) {
    size_t ncap = nat_cap ? nat_cap * 2 : 256;
    nat_slot *nt = PyMem_RawCalloc(ncap, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < nat_cap; i++) {
        if (!nat_tab[i].def)
            continue;
        size_t j = nat_hash(nat_tab[i].def, nat_tab[i].type) & (ncap - 1);
        while (nt[j].def)
            j = (j + 1) & (ncap - 1);
        nt[j] = nat_tab[i];
    }
    PyMem_RawFree(nat_tab);
    nat_tab = nt;
    nat_cap = ncap;
    return 0;
}

/* Name of a C callable, e.g. "time.sleep", "list.append", "builtins.len". */
static PyObject *native_name(const PyMethodDef *ml, PyObject *self, PyObject *module,
                             PyTypeObject *descr_type) {
    if (descr_type)
        return PyUnicode_FromFormat("%s.%s", descr_type->tp_name, ml->ml_name);
    if (self && PyModule_Check(self)) {
        PyObject *mn = PyModule_GetNameObject(self);
        if (mn) {
            PyObject *r = PyUnicode_FromFormat("%U.%s", mn, ml->ml_name);
            Py_DECREF(mn);
            return r;
        }
        PyErr_Clear();
    } else if (self && PyType_Check(self)) {
        return PyUnicode_FromFormat("%s.%s", ((PyTypeObject *)self)->tp_name, ml->ml_name);
    } else if (self) {
        return PyUnicode_FromFormat("%s.%s", Py_TYPE(self)->tp_name, ml->ml_name);
    }
    if (module && PyUnicode_Check(module))
        return PyUnicode_FromFormat("%U.%s", module, ml->ml_name);
    return PyUnicode_FromString(ml->ml_name);
}

static int type_is_core(const PyTypeObject *tp) {
    static const char core[] = "code_profiler._core.";
    return tp && tp->tp_name && strncmp(tp->tp_name, core, sizeof core - 1) == 0;
}

/* 1 for the C extension's own callables: a Session or Scope method, a
 * function of the _core module, a method of any _core type. */
static int native_is_own(const PyMethodDef *ml, PyObject *self, PyTypeObject *descr_type) {
    if (cp_py_is_own_method(ml))
        return 1;
    if (descr_type)
        return type_is_core(descr_type);
    if (!self)
        return 0;
    if (PyModule_Check(self)) {
        const char *n = PyModule_GetName(self);
        if (!n) {
            PyErr_Clear();
            return 0;
        }
        return strcmp(n, "code_profiler._core") == 0;
    }
    return type_is_core(PyType_Check(self) ? (PyTypeObject *)self : Py_TYPE(self));
}

static uint32_t intern_native(const PyMethodDef *ml, const void *key_type, PyObject *self,
                              PyObject *module, PyTypeObject *descr_type) {
    PyObject *exc_t, *exc_v, *exc_tb;
    PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
    uint32_t id = 0;
    int own = native_is_own(ml, self, descr_type);
    if (own) {
        id = NAT_SKIP;
    } else {
        PyObject *name = native_name(ml, self, module, descr_type);
        const char *cname = name ? PyUnicode_AsUTF8(name) : NULL;
        if (cname)
            id = codeprof_site(cname, NULL, 0, CODEPROF_SITE_NATIVE);
        Py_XDECREF(name);
    }
    if (id && (2 * (nat_len + 1) <= nat_cap || nat_grow() == 0)) {
        size_t j = nat_hash(ml, key_type) & (nat_cap - 1);
        while (nat_tab[j].def)
            j = (j + 1) & (nat_cap - 1);
        nat_tab[j].def = ml;
        nat_tab[j].type = key_type;
        nat_tab[j].id = id;
        nat_len++;
    }
    PyErr_Clear();
    PyErr_Restore(exc_t, exc_v, exc_tb);
    return id;
}

/* Site of a C callable; NAT_SKIP for one of the extension's own (never
 * recorded); 0 if `callable` is not a C function. */
static inline uint32_t native_site(PyObject *callable) {
    const PyMethodDef *ml;
    const void *key_type;
    PyObject *self = NULL, *module = NULL;
    PyTypeObject *descr_type = NULL;
    if (PyCFunction_Check(callable)) {
        PyCFunctionObject *f = (PyCFunctionObject *)callable;
        ml = f->m_ml;
        self = f->m_self;
        module = f->m_module;
        key_type = !self ? NULL : PyType_Check(self) ? (const void *)self : (const void *)Py_TYPE(self);
    } else if (Py_IS_TYPE(callable, &PyMethodDescr_Type)) {
        PyMethodDescrObject *d = (PyMethodDescrObject *)callable;
        ml = d->d_method;
        descr_type = PyDescr_TYPE(d);
        key_type = descr_type;
    } else {
        return 0;
    }
    if (__builtin_expect(nat_cap != 0, 1)) {
        size_t j = nat_hash(ml, key_type) & (nat_cap - 1);
        for (;;) {
            const nat_slot *sl = &nat_tab[j];
            if (sl->def == ml && sl->type == key_type)
                return sl->id;
            if (!sl->def)
                break;
            j = (j + 1) & (nat_cap - 1);
        }
    }
    return intern_native(ml, key_type, self, module, descr_type);
}

/* ------------------------------------------------------------------------ */
/* The profile hook (3.11; fallback on 3.12+)                                */
/* ------------------------------------------------------------------------ */

/* c_call_hidden() for the profile hook: `frame` is the caller's. */
static inline int profile_c_hidden(PyFrameObject *frame) {
    tr_stack *k = tr_stack_get();
    if (__builtin_expect(k->depth != 0, 1))
        return tr_top_hidden(k);
    if (!frame)
        return 0;
    PyCodeObject *co = PyFrame_GetCode(frame);
    PyObject *g = PyFrame_GetGlobals(frame);
    if (!g)
        PyErr_Clear();
    int r = c_call_hidden(co, g);
    Py_XDECREF(g);
    Py_DECREF(co);
    return r;
}

static int profile_func(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    cp_session *s = tracer_g.s;
    if (__builtin_expect(!s, 0))
        return 0;
    uint32_t id;
    switch (what) {
    case PyTrace_CALL:
    case PyTrace_RETURN: {
        PyCodeObject *co = PyFrame_GetCode(frame);
        uint32_t x = code_site_cached(co);
        if (__builtin_expect(!x, 0)) {
            PyObject *g = PyFrame_GetGlobals(frame);
            if (!g)
                PyErr_Clear();
            x = intern_code(co, g);
            Py_XDECREF(g);
        }
        Py_DECREF(co);
        if (x && (id = what == PyTrace_CALL ? tr_enter(s, x) : tr_exit(x)))
            cp_emit(s, what == PyTrace_CALL ? CP_EV_ENTER : CP_EV_EXIT, 0, id, 0, 0);
        break;
    }
    case PyTrace_C_CALL:
    case PyTrace_C_RETURN:
    case PyTrace_C_EXCEPTION:
        if ((id = native_site(arg))) {
            int call = what == PyTrace_C_CALL;
            if (id != NAT_SKIP && !profile_c_hidden(frame))
                cp_emit(s, call ? CP_EV_ENTER : CP_EV_EXIT, 0, id, 0, 0);
            else if (call)
                cp_session_count_hidden(s, 1);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Thread states and our own changes of a thread's profile hook              */
/* ------------------------------------------------------------------------ */

#if PY_VERSION_HEX < 0x030C0000
/* The thread-state list, followed as CPython follows it: the runtime's head
 * lock is held while a link is read (never while a hook is changed, which
 * may run audit hooks).  The GIL keeps a listed thread state alive. */
#define CP_CAN_WALK 1
static PyThreadState *ts_head(void) {
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    CP_HEAD_LOCK();
    PyThreadState *t = PyInterpreterState_ThreadHead(interp);
    CP_HEAD_UNLOCK();
    return t;
}
static PyThreadState *ts_next(PyThreadState *t) {
    CP_HEAD_LOCK();
    t = PyThreadState_Next(t);
    CP_HEAD_UNLOCK();
    return t;
}
#else
/* 3.12+: the head lock is not reachable from an extension; checks look at
 * the calling thread only and every-thread changes go through the public
 * PyEval_SetProfileAllThreads, which takes it. */
#define CP_CAN_WALK 0
static PyThreadState *ts_head(void) { return PyThreadState_Get(); }
static PyThreadState *ts_next(PyThreadState *t) {
    (void)t;
    return NULL;
}
#endif

/* Sets `func` (NULL: none) as the profile function of thread `t`, marked as
 * our own change so that the audit hook ignores it.  Returns 0, -1 with an
 * exception set, or 1 when this Python cannot change another thread's hook
 * (3.12+ offers the calling thread's and all threads' only). */
static int set_thread_profile(PyThreadState *t, Py_tracefunc func) {
    int rc;
    tracer_g.in_own_set++;
#if PY_VERSION_HEX < 0x030C0000
    rc = _PyEval_SetProfile(t, func, NULL);
#else
    if (t == PyThreadState_Get()) {
        PyEval_SetProfile(func, NULL); /* reports its own failure (unraisable) */
        rc = 0;
    } else {
        rc = 1;
    }
#endif
    tracer_g.in_own_set--;
    return rc;
}

/* Profile-hook mode on every thread (3.12+: the public API). */
#if PY_VERSION_HEX >= 0x030C0000
static void set_all_threads_profile(Py_tracefunc func) {
    tracer_g.in_own_set++;
    PyEval_SetProfileAllThreads(func, NULL);
    tracer_g.in_own_set--;
}
#endif

/* 1 if `t` runs our profile function, or the threading hook of `st` that
 * installs it at the thread's first event. */
static inline int hook_is_ours(const PyThreadState *t, const cp_py_state *st) {
    return t->c_profilefunc == profile_func ||
           (st && st->thread_hook && t->c_profileobj == st->thread_hook);
}

/* Threads ours was installed on this run (thread ids; for the checks). */
static unsigned long *traced_ids;
static size_t traced_n, traced_cap;

static void traced_add(unsigned long id) {
    for (size_t i = 0; i < traced_n; i++)
        if (traced_ids[i] == id)
            return;
    if (traced_n == traced_cap) {
        size_t ncap = traced_cap ? traced_cap * 2 : 16;
        unsigned long *n = PyMem_RawRealloc(traced_ids, ncap * sizeof *n);
        if (!n)
            return; /* the check then misses this thread: no false report */
        traced_ids = n;
        traced_cap = ncap;
    }
    traced_ids[traced_n++] = id;
}

static int traced_has(unsigned long id) {
    for (size_t i = 0; i < traced_n; i++)
        if (traced_ids[i] == id)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Losing a thread to another profiler, and getting it back                  */
/* ------------------------------------------------------------------------ */

static tr_loss *open_loss(unsigned long id) {
    for (size_t i = tracer_g.nlosses; i-- > 0;)
        if (tracer_g.losses[i].thread_id == id && !tracer_g.losses[i].resumed_ns)
            return &tracer_g.losses[i];
    return NULL;
}

static double since_start_s(uint64_t ns) {
    return ns > tracer_g.start_ns ? (double)(ns - tracer_g.start_ns) / 1e9 : 0.0;
}

/* Notes that thread `id` lost our hook, and records it on `s` at once (a
 * report taken while profiling shows it). */
static void add_loss(cp_session *s, unsigned long id, int how) {
    if (tracer_g.nlosses == TR_LOSSES_MAX) {
        tracer_g.losses_dropped++;
        return;
    }
    tr_loss *l = &tracer_g.losses[tracer_g.nlosses++];
    l->thread_id = id;
    l->lost_ns = codeprof_now_ns();
    l->resumed_ns = 0;
    l->how = how;
    if (s) {
        char msg[320];
        if (how == LOSS_AT_START)
            snprintf(msg, sizeof msg,
                     "thread %lu: another profiler (sys.setprofile, e.g. cProfile) held the "
                     "Python profile hook when tracing started; that thread's calls are not "
                     "recorded until it lets go (tracer_thread_resumed)",
                     id);
        else
            snprintf(msg, sizeof msg,
                     "thread %lu: another profiler (sys.setprofile, e.g. cProfile) took the "
                     "Python profile hook %s +%.6f s after tracing started; that thread's calls "
                     "are not recorded until it lets go (tracer_thread_resumed)",
                     id, how == LOSS_LATE ? "no later than" : "at", since_start_s(l->lost_ns));
        (void)codeprof_session_warn(s, "tracer_thread_lost", msg);
    }
}

static void mark_resumed(cp_session *s, tr_loss *l) {
    l->resumed_ns = codeprof_now_ns();
    if (s) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "thread %lu: tracing resumed at +%.6f s (the other profiler let go of the "
                 "Python profile hook)",
                 l->thread_id, since_start_s(l->resumed_ns));
        (void)codeprof_session_warn(s, "tracer_thread_resumed", msg);
    }
}

/* Looks at the threads (3.12+: the calling one): a traced thread whose hook
 * another tool holds is lost (noted late if the audit hook missed it); a
 * lost thread whose hook is empty again gets ours back when `reinstall`. */
static void check_threads(const cp_py_state *st, cp_session *s, int reinstall) {
    for (PyThreadState *t = ts_head(); t; t = ts_next(t)) {
        unsigned long id = t->thread_id;
        if (hook_is_ours(t, st))
            continue;
        tr_loss *l = open_loss(id);
        if (l) {
            if (reinstall && !t->c_profilefunc && set_thread_profile(t, profile_func) == 0)
                mark_resumed(s, l);
            else if (PyErr_Occurred())
                PyErr_Clear();
        } else if (t->c_profilefunc && traced_has(id)) {
            add_loss(s, id, LOSS_LATE);
        }
    }
}

static int check_pending_cb(void *arg) {
    (void)arg;
    tracer_g.check_pending = 0;
    if (tracer_g.mode == TR_SETPROFILE)
        check_threads(tracer_g.st, tracer_g.s, 1);
    return 0;
}

static void schedule_check(void) {
    if (!tracer_g.check_pending && Py_AddPendingCall(check_pending_cb, NULL) == 0)
        tracer_g.check_pending = 1;
}

/* Audit hook: "sys.setprofile" is raised by every change of a thread's
 * profile hook (sys.setprofile, cProfile.enable/disable, C extensions),
 * before the change, on the calling thread.  Others cost one compare. */
static int audit_hook(const char *event, PyObject *args, void *data) {
    (void)args;
    (void)data;
    if (__builtin_expect(event[0] != 's', 1) || tracer_g.mode != TR_SETPROFILE ||
        tracer_g.in_own_set || strcmp(event, "sys.setprofile") != 0)
        return 0;
    tracer_g.foreign_set_seen = 1;
    PyThreadState *ts = PyThreadState_Get();
    if (hook_is_ours(ts, tracer_g.st) && !open_loss(ts->thread_id))
        add_loss(tracer_g.s, ts->thread_id, LOSS_SEEN);
    schedule_check();
    return 0;
}

/* At stop: the losses past TR_LOSSES_MAX and a replaced threading hook as
 * session warnings (each loss and return was recorded when noted), and one
 * Python RuntimeWarning for the run.  Never leaves an exception set. */
static void report_losses(cp_session *s, int threading_replaced) {
    size_t n = tracer_g.nlosses;
    char msg[160];
    if (tracer_g.losses_dropped) {
        snprintf(msg, sizeof msg, "%llu more threads lost the Python profile hook (not listed)",
                 (unsigned long long)tracer_g.losses_dropped);
        (void)codeprof_session_warn(s, "tracer_thread_lost", msg);
    }
    if (threading_replaced)
        (void)codeprof_session_warn(
            s, "tracer_threading_hook_replaced",
            "threading.setprofile() was changed by another tool while tracing: threads "
            "started after that were not traced");
    size_t total = n + (size_t)tracer_g.losses_dropped;
    if (!total && !threading_replaced)
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    int r = total ? PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                                     "codeprof: another profiler took the Python profile hook of "
                                     "%zu thread(s) while tracing (sys.setprofile, e.g. "
                                     "cProfile); their calls were not recorded meanwhile (see "
                                     "meta.warnings)",
                                     total)
                  : PyErr_WarnEx(PyExc_RuntimeWarning,
                                 "codeprof: threading.setprofile() was changed by another tool "
                                 "while tracing; threads started after that were not traced",
                                 1);
    if (r < 0)
        PyErr_WriteUnraisable(NULL);
    PyErr_Restore(et, ev, etb);
}

/* threading.setprofile() hook: a new thread calls it (as a Python-level
 * profile function) at its first event; it installs profile_func on that
 * thread and records the event it was called for. */
static PyObject *thread_hook(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    PyThreadState *ts = PyThreadState_Get();
    if (tracer_g.mode != TR_SETPROFILE) {
        if (set_thread_profile(ts, NULL) < 0)
            PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (set_thread_profile(ts, profile_func) != 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    traced_add(ts->thread_id);
    if (nargs == 3 && PyFrame_Check(args[0]) && PyUnicode_Check(args[1])) {
        static const struct {
            const char *name;
            int what;
        } map[] = {{"call", PyTrace_CALL},
                   {"return", PyTrace_RETURN},
                   {"c_call", PyTrace_C_CALL},
                   {"c_return", PyTrace_C_RETURN},
                   {"c_exception", PyTrace_C_EXCEPTION}};
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            if (PyUnicode_CompareWithASCIIString(args[1], map[i].name) == 0) {
                profile_func(NULL, (PyFrameObject *)args[0], map[i].what, args[2]);
                break;
            }
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef thread_hook_def = {
    "_codeprof_thread_hook", (PyCFunction)(void (*)(void))thread_hook, METH_FASTCALL,
    "Installs the codeprof profile hook on the calling thread (threading.setprofile)."};

/* Calls threading.<fn>(arg); returns the result (new ref) or NULL.  With
 * `import_it` 0 the module is only looked up in sys.modules (safe during
 * interpreter shutdown); if it is not there, returns None. */
static PyObject *call_threading(const char *fn, PyObject *arg, int import_it) {
    PyObject *threading;
    if (import_it) {
        threading = PyImport_ImportModule("threading");
    } else {
        PyObject *name = PyUnicode_FromString("threading");
        if (!name)
            return NULL;
        threading = PyImport_GetModule(name);
        Py_DECREF(name);
        if (!threading) {
            if (PyErr_Occurred())
                return NULL;
            Py_RETURN_NONE;
        }
    }
    if (!threading)
        return NULL;
    PyObject *r = arg ? PyObject_CallMethod(threading, fn, "O", arg)
                      : PyObject_CallMethod(threading, fn, NULL);
    Py_DECREF(threading);
    return r;
}

/* Removes our hook (and the not-yet-fired thread hook) from every thread,
 * reports what other tools did meanwhile, and gives threading back the
 * hook it had before start. */
static int setprofile_uninstall(cp_py_state *st, cp_session *s) {
    int rc = 0;
#if CP_CAN_WALK
    check_threads(st, s, 0);
#endif
    int threading_replaced = 0;
    PyObject *cur = call_threading("getprofile", NULL, 0);
    if (!cur) {
        PyErr_Clear(); /* threading gone (shutdown) or no getprofile */
    } else {
        if (cur == st->thread_hook) {
            PyObject *prev = tracer_g.prev_thread_hook ? tracer_g.prev_thread_hook : Py_None;
            PyObject *r = call_threading("setprofile", prev, 0);
            if (!r)
                rc = -1;
            Py_XDECREF(r);
        } else if (cur != Py_None && cur != tracer_g.prev_thread_hook) {
            threading_replaced = 1;
        }
        Py_DECREF(cur);
    }
    Py_CLEAR(tracer_g.prev_thread_hook);
#if PY_VERSION_HEX < 0x030C0000
    for (PyThreadState *t = ts_head(); t; t = ts_next(t)) {
        if (hook_is_ours(t, st)) {
            if (set_thread_profile(t, NULL) < 0)
                rc = -1;
        }
    }
#else
    /* Only all threads at once, or the calling thread, can be changed: all
     * at once unless another tool holds some thread's hook; then ours stays
     * on the other threads, inert (it records nothing while off).  Whether
     * one does is read (only read) with the public list getters under the
     * GIL, and only when another tool called sys.setprofile this run. */
    int foreign = 0;
    if (tracer_g.foreign_set_seen) {
        PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
        for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t && !foreign;
             t = PyThreadState_Next(t))
            foreign = t->c_profilefunc != NULL && !hook_is_ours(t, st);
    }
    if (!foreign) {
        set_all_threads_profile(NULL);
    } else {
        PyThreadState *me = PyThreadState_Get();
        if (hook_is_ours(me, st) && set_thread_profile(me, NULL) < 0)
            rc = -1;
    }
#endif
    if (s)
        report_losses(s, threading_replaced);
    traced_n = 0;
    return rc;
}

static int setprofile_install(cp_py_state *st) {
    PyThreadState *me = PyThreadState_Get();
    for (PyThreadState *t = ts_head(); t; t = ts_next(t)) {
        /* 3.11 leaves another tool's hook on other threads in place; 3.12+
         * can only set all threads at once, so it refuses like here. */
        if (t->c_profilefunc && t->c_profilefunc != profile_func &&
            (t == me || PY_VERSION_HEX >= 0x030C0000)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "Session.start(trace_python=True): another profiler is installed "
                            "with sys.setprofile() (e.g. cProfile); stop it first");
            return -1;
        }
    }
    tracer_g.nlosses = 0;
    tracer_g.losses_dropped = 0;
    tracer_g.foreign_set_seen = 0;
    tracer_g.check_pending = 0;
    traced_n = 0;
    if (!tracer_g.audit_added) {
        /* Permanent (audit hooks cannot be removed); inert while off. */
        if (PySys_AddAuditHook(audit_hook, NULL) == 0)
            tracer_g.audit_added = 1;
        else
            PyErr_Clear(); /* a losing thread is then noticed at stop */
    }
    PyObject *prev = call_threading("getprofile", NULL, 1);
    if (!prev)
        return -1;
    Py_XSETREF(tracer_g.prev_thread_hook, prev == st->thread_hook ? Py_NewRef(Py_None) : prev);
    if (prev == st->thread_hook)
        Py_DECREF(prev);
    PyObject *r = call_threading("setprofile", st->thread_hook, 1);
    if (!r) {
        Py_CLEAR(tracer_g.prev_thread_hook);
        return -1;
    }
    Py_DECREF(r);
#if PY_VERSION_HEX < 0x030C0000
    for (PyThreadState *t = ts_head(); t; t = ts_next(t)) {
        if (t->c_profilefunc && t->c_profilefunc != profile_func) {
            /* another tool's hook: leave it, and say so at stop */
            add_loss(tracer_g.s, t->thread_id, LOSS_AT_START);
            continue;
        }
        if (set_thread_profile(t, profile_func) < 0) {
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            (void)setprofile_uninstall(st, NULL);
            PyErr_Clear();
            PyErr_Restore(et, ev, etb);
            return -1;
        }
        traced_add(t->thread_id);
    }
#else
    set_all_threads_profile(profile_func);
    for (PyThreadState *t = ts_head(); t; t = ts_next(t))
        traced_add(t->thread_id);
#endif
    return 0;
}

/* ------------------------------------------------------------------------ */
/* PEP 523 frame-evaluation hook                                             */
/* ------------------------------------------------------------------------ */

#if CP_HAVE_EVAL_FRAME
static inline PyObject *eval_prev(PyThreadState *ts, struct _PyInterpreterFrame *f, int exc) {
    _PyFrameEvalFunction prev = tracer_g.prev_eval;
    return prev ? prev(ts, f, exc) : _PyEval_EvalFrameDefault(ts, f, exc);
}

static PyObject *eval_hook(PyThreadState *ts, struct _PyInterpreterFrame *f, int exc) {
    cp_session *s = tracer_g.s;
    if (__builtin_expect(!s, 0))
        return eval_prev(ts, f, exc);
    PyCodeObject *co = f->f_code;
    uint32_t x = code_site_cached(co);
    if (__builtin_expect(!x, 0)) {
        x = intern_code(co, f->f_globals);
        if (!x)
            return eval_prev(ts, f, exc);
    }
    uint32_t gen = tr_gen;
    uint32_t id = tr_enter(s, x);
    if (id)
        cp_emit(s, CP_EV_ENTER, 0, id, 0, 0);
    PyObject *r = eval_prev(ts, f, exc);
    /* The tracer may have been stopped (and the session freed) meanwhile,
     * or restarted (a fresh stack, which this frame is not on). */
    if (gen == tr_gen)
        (void)tr_exit(x);
    if (id && __builtin_expect((s = tracer_g.s) != NULL, 1))
        cp_emit(s, CP_EV_EXIT, 0, id, 0, 0);
    return r;
}

static int eval_frame_install(void) {
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    _PyFrameEvalFunction cur = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (cur != eval_hook)
        tracer_g.prev_eval = (cur == _PyEval_EvalFrameDefault) ? NULL : cur;
    _PyInterpreterState_SetEvalFrameFunc(interp, eval_hook);
    return 0;
}

static void eval_frame_uninstall(void) {
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    /* If another hook was chained on top of ours, leave it: ours passes
     * through while no session traces. */
    if (_PyInterpreterState_GetEvalFrameFunc(interp) == eval_hook)
        _PyInterpreterState_SetEvalFrameFunc(
            interp, tracer_g.prev_eval ? tracer_g.prev_eval : _PyEval_EvalFrameDefault);
}
#endif /* CP_HAVE_EVAL_FRAME */

/* ------------------------------------------------------------------------ */
/* sys.monitoring (3.12+)                                                    */
/* ------------------------------------------------------------------------ */

/* PY_START/PY_RESUME (enter) and PY_RETURN/PY_YIELD/PY_UNWIND (exit):
 * args[0] is the code object. */
static inline void mon_code_event(PyObject *const *args, Py_ssize_t nargs, uint16_t kind) {
    cp_session *s = tracer_g.s;
    if (__builtin_expect(s != NULL && nargs >= 1, 1) && PyCode_Check(args[0])) {
        PyCodeObject *co = (PyCodeObject *)args[0];
        uint32_t x = code_site_cached(co);
        if (__builtin_expect(!x, 0))
            x = intern_code(co, PyEval_GetGlobals());
        uint32_t id = !x ? 0 : kind == CP_EV_ENTER ? tr_enter(s, x) : tr_exit(x);
        if (id)
            cp_emit(s, kind, 0, id, 0, 0);
    }
}

/* The callbacks are objects of a small type whose vectorcall slot is the
 * callback itself: sys.monitoring calls them through vectorcall, so the
 * PyCFunction layer (argument-convention dispatch, recursion check) is
 * skipped on every event. */
static PyObject *mon_enter(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw) {
    (void)self;
    (void)kw;
    mon_code_event(args, PyVectorcall_NARGS(nargsf), CP_EV_ENTER);
    Py_RETURN_NONE;
}

static PyObject *mon_exit(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw) {
    (void)self;
    (void)kw;
    mon_code_event(args, PyVectorcall_NARGS(nargsf), CP_EV_EXIT);
    Py_RETURN_NONE;
}

/* c_call_hidden() for a monitoring event whose args[0] is the caller's code. */
static inline int mon_c_hidden(PyObject *caller) {
    tr_stack *k = tr_stack_get();
    if (__builtin_expect(k->depth != 0, 1))
        return tr_top_hidden(k);
    return PyCode_Check(caller) && c_call_hidden((PyCodeObject *)caller, PyEval_GetGlobals());
}

/* CALL(code, offset, callable, arg0): C functions open a site here.  Never
 * DISABLE: that would switch this call site off for every later callable,
 * C functions included (see the note at the top). */
static PyObject *mon_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw) {
    (void)self;
    (void)kw;
    cp_session *s = tracer_g.s;
    if (__builtin_expect(s != NULL && PyVectorcall_NARGS(nargsf) >= 3, 1)) {
        /* The common callee is a Python function (PY_START records it):
         * one exact type test instead of PyCFunction_Check's subtype walk. */
        if (Py_IS_TYPE(args[2], &PyFunction_Type) || Py_IS_TYPE(args[2], &PyMethod_Type))
            Py_RETURN_NONE;
        uint32_t id = native_site(args[2]);
        if (id) {
            if (id != NAT_SKIP && !mon_c_hidden(args[0]))
                cp_emit(s, CP_EV_ENTER, 0, id, 0, 0);
            else
                cp_session_count_hidden(s, 1);
        }
    }
    Py_RETURN_NONE;
}

/* C_RETURN / C_RAISE(code, offset, callable, arg0). */
static PyObject *mon_c_exit(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kw) {
    (void)self;
    (void)kw;
    cp_session *s = tracer_g.s;
    if (s && PyVectorcall_NARGS(nargsf) >= 3) {
        uint32_t id = native_site(args[2]);
        if (id && id != NAT_SKIP && !mon_c_hidden(args[0]))
            cp_emit(s, CP_EV_EXIT, 0, id, 0, 0);
    }
    Py_RETURN_NONE;
}

typedef struct mon_cb_obj {
    PyObject_HEAD
    vectorcallfunc vectorcall;
} mon_cb_obj;

static PyMemberDef mon_cb_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(mon_cb_obj, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static void mon_cb_dealloc(PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    PyObject_Free(o);
    Py_DECREF(tp);
}

static PyType_Slot mon_cb_slots[] = {
    {Py_tp_dealloc, (void *)mon_cb_dealloc},
    {Py_tp_call, (void *)PyVectorcall_Call},
    {Py_tp_members, mon_cb_members},
    {Py_tp_doc, (void *)"A sys.monitoring callback of the codeprof tracer."},
    {0, NULL},
};

static PyType_Spec mon_cb_spec = {
    .name = "code_profiler._core._MonitoringCallback",
    .basicsize = sizeof(mon_cb_obj),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = mon_cb_slots,
};

/* A callback object of type `tp` calling `fn` (new reference, or NULL). */
static PyObject *mon_cb_new(PyTypeObject *tp, vectorcallfunc fn) {
    mon_cb_obj *o = PyObject_New(mon_cb_obj, tp);
    if (o)
        o->vectorcall = fn;
    return (PyObject *)o;
}

#if CP_HAVE_MONITORING
/* sys.monitoring (new reference) without the import machinery, so that
 * it also works during interpreter shutdown. */
static PyObject *get_monitoring(void) {
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    if (!mon) {
        PyErr_SetString(PyExc_RuntimeError, "sys.monitoring is not available");
        return NULL;
    }
    return Py_NewRef(mon);
}

static PyObject *mon_callback_for(cp_py_state *st, int ev) {
    switch (ev) {
    case MON_PY_START:
    case MON_PY_RESUME:
    case MON_PY_THROW:
        return st->mon_enter;
    case MON_PY_RETURN:
    case MON_PY_YIELD:
    case MON_PY_UNWIND:
        return st->mon_exit;
    case MON_CALL:
        return st->mon_call;
    default:
        return st->mon_c_exit;
    }
}

/* Turns the tool off: no events, no callbacks, id freed.  Best effort;
 * returns -1 (exception set) if a step failed. */
static int monitoring_uninstall(void) {
    PyObject *mon = get_monitoring();
    if (!mon)
        return -1;
    int rc = 0;
    PyObject *r = PyObject_CallMethod(mon, "set_events", "li", tracer_g.tool_id, 0);
    if (!r)
        rc = -1;
    Py_XDECREF(r);
    for (int ev = 0; ev < MON_NEVENTS; ev++) {
        if (rc < 0)
            break;
        r = PyObject_CallMethod(mon, "register_callback", "llO", tracer_g.tool_id,
                                tracer_g.mon_events[ev], Py_None);
        if (!r)
            rc = -1;
        Py_XDECREF(r);
    }
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    r = PyObject_CallMethod(mon, "free_tool_id", "l", tracer_g.tool_id);
    if (!r && !et)
        PyErr_Fetch(&et, &ev, &etb);
    PyErr_Clear();
    Py_XDECREF(r);
    PyErr_Restore(et, ev, etb);
    Py_DECREF(mon);
    return (rc < 0 || PyErr_Occurred()) ? -1 : 0;
}

/* Tool ids tried, in order: 3 and 4 are used by no standard tool, 5 is
 * OPTIMIZER_ID (unused by CPython 3.12/3.13 itself); PROFILER_ID (2, the one
 * cProfile takes) comes last so that a user's cProfile can run beside us.
 * DEBUGGER_ID (0) and COVERAGE_ID (1) are never taken. */
static const long mon_tool_ids[] = {3, 4, 5, 2};

/* The first free tool id of mon_tool_ids into *id: 1 found, 0 none free,
 * -1 on error (exception set). */
static int monitoring_free_tool(PyObject *mon, long *id) {
    for (size_t i = 0; i < sizeof mon_tool_ids / sizeof mon_tool_ids[0]; i++) {
        PyObject *cur = PyObject_CallMethod(mon, "get_tool", "l", mon_tool_ids[i]);
        if (!cur)
            return -1;
        int free_id = cur == Py_None;
        Py_DECREF(cur);
        if (free_id) {
            *id = mon_tool_ids[i];
            return 1;
        }
    }
    return 0;
}

/* Returns 1 when installed, 0 when every candidate tool id is taken
 * (nothing changed, no exception), -1 on error (exception set, nothing left
 * installed). */
static int monitoring_install(cp_py_state *st) {
    PyObject *mon = get_monitoring();
    if (!mon)
        return -1;
    int ret = -1, tool_taken = 0;
    PyObject *events = NULL, *r = NULL;
    long tool_id = -1;
    int found = monitoring_free_tool(mon, &tool_id);
    if (found <= 0) {
        ret = found;
        goto done;
    }
    if (!(events = PyObject_GetAttrString(mon, "events")))
        goto done;
    long mask = 0;
    for (int ev = 0; ev < MON_NEVENTS; ev++) {
        PyObject *v = PyObject_GetAttrString(events, mon_event_names[ev]);
        if (!v)
            goto done;
        long bit = PyLong_AsLong(v);
        Py_DECREF(v);
        if (bit == -1 && PyErr_Occurred())
            goto done;
        tracer_g.mon_events[ev] = bit;
        mask |= bit;
    }
    if (!(r = PyObject_CallMethod(mon, "use_tool_id", "ls", tool_id, "codeprof"))) {
        /* Lost a race for the id: fall back like a taken id. */
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            ret = 0;
        }
        goto done;
    }
    Py_CLEAR(r);
    tool_taken = 1;
    tracer_g.tool_id = tool_id;
    for (int ev = 0; ev < MON_NEVENTS; ev++) {
        r = PyObject_CallMethod(mon, "register_callback", "llO", tool_id, tracer_g.mon_events[ev],
                                mon_callback_for(st, ev));
        if (!r)
            goto done;
        Py_CLEAR(r);
    }
    if (!(r = PyObject_CallMethod(mon, "set_events", "ll", tool_id, mask)))
        goto done;
    Py_CLEAR(r);
    ret = 1;
done:
    if (ret < 0 && tool_taken) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        (void)monitoring_uninstall();
        PyErr_Clear();
        PyErr_Restore(et, ev, etb);
    }
    Py_XDECREF(r);
    Py_XDECREF(events);
    Py_DECREF(mon);
    return ret;
}
#endif /* CP_HAVE_MONITORING */

/* ------------------------------------------------------------------------ */
/* Public (extension-internal) interface                                     */
/* ------------------------------------------------------------------------ */

int cp_py_tracer_init(PyObject *module, cp_py_state *st) {
    if (code_index < 0) {
        code_index = CP_REQUEST_EXTRA(NULL);
        if (code_index < 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "code_profiler._core: no code-object extra slot left for the tracer");
            return -1;
        }
    }
    PyObject *modname = PyModule_GetNameObject(module);
    if (!modname)
        return -1;
    st->thread_hook = PyCFunction_NewEx(&thread_hook_def, module, modname);
    Py_DECREF(modname);
    PyTypeObject *cb_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &mon_cb_spec, NULL);
    if (!cb_type)
        return -1;
    st->mon_enter = mon_cb_new(cb_type, mon_enter);
    st->mon_exit = mon_cb_new(cb_type, mon_exit);
    st->mon_call = mon_cb_new(cb_type, mon_call);
    st->mon_c_exit = mon_cb_new(cb_type, mon_c_exit);
    Py_DECREF(cb_type); /* each callback holds its (heap) type */
    if (!st->thread_hook || !st->mon_enter || !st->mon_exit || !st->mon_call || !st->mon_c_exit)
        return -1;
    return 0;
}

int cp_py_tracer_ignore_code(PyObject *code) {
    if (!PyCode_Check(code)) {
        PyErr_Format(PyExc_TypeError, "tracer_ignore(): expected a code object, got %.80s",
                     Py_TYPE(code)->tp_name);
        return -1;
    }
    classify_init();
    const char *file = ((PyCodeObject *)code)->co_filename
                           ? PyUnicode_AsUTF8(((PyCodeObject *)code)->co_filename)
                           : NULL;
    if (!file)
        PyErr_Clear();
    uintptr_t v = file_is_own(file) ? CODE_OWN : CODE_SKIP;
    return CP_SET_EXTRA(code, code_index, (void *)v);
}

/* ------------------------------------------------------------------------ */
/* Sites of code objects for allocation stacks (memstack.c)                  */
/* ------------------------------------------------------------------------ */

void cp_py_tracer_classify_ready(void) { classify_init(); }

/* A code object marked CODE_SKIP (tracer_ignore) keeps its site id for
 * allocation stacks in the upper half of its code-extra value: the lower
 * half, all the tracer reads, stays CODE_SKIP. */
#define CODE_HI_SHIFT 32

uint32_t cp_py_tracer_code_site(PyCodeObject *co, PyObject *globals, int may_intern) {
    uintptr_t raw = code_extra_raw(co);
    uint32_t x = (uint32_t)raw;
    if (x == CODE_OWN)
        return CP_PY_CODE_SITE_OWN;
    if (x != 0 && x != CODE_SKIP)
        return x & ~CODE_LIB;
#if UINTPTR_MAX > 0xFFFFFFFFu
    if (x == CODE_SKIP && (raw >> CODE_HI_SHIFT) != 0)
        return (uint32_t)(raw >> CODE_HI_SHIFT);
#endif
    if (!may_intern)
        return 0;
    if (x == 0) {
        x = intern_code(co, globals);
        if (x == CODE_OWN)
            return CP_PY_CODE_SITE_OWN;
        return x & ~CODE_LIB;
    }
    /* CODE_SKIP without a cached id: intern the site the tracer would have
     * given it, and keep it beside the mark. */
    PyObject *exc_t, *exc_v, *exc_tb;
    PyErr_Fetch(&exc_t, &exc_v, &exc_tb);
    uint32_t id = code_site_id(co, globals, NULL);
#if UINTPTR_MAX > 0xFFFFFFFFu
    if (id && code_index >= 0 &&
        CP_SET_EXTRA((PyObject *)co, code_index,
                     (void *)(((uintptr_t)id << CODE_HI_SHIFT) | (uintptr_t)CODE_SKIP)) < 0)
        PyErr_Clear();
#endif
    PyErr_Clear();
    PyErr_Restore(exc_t, exc_v, exc_tb);
    return id;
}

int cp_py_tracer_code_kind(PyCodeObject *co, PyObject *globals, int may_intern) {
    uint32_t x = (uint32_t)code_extra_raw(co);
    if (x == 0) {
        if (!may_intern)
            return CP_PY_CODE_UNKNOWN;
        x = intern_code(co, globals);
        if (x == 0)
            return CP_PY_CODE_UNKNOWN;
    }
    if (x == CODE_OWN)
        return CP_PY_CODE_PROFILER;
    if (x == CODE_SKIP)
        return CP_PY_CODE_USER;
    return (x & CODE_LIB) ? CP_PY_CODE_STDLIB : CP_PY_CODE_USER;
}

int cp_py_tracer_busy(void) { return tracer_g.owner != NULL; }

int cp_py_tracer_check_free(cp_py_session *owner) {
    if (!tracer_g.owner || tracer_g.owner == owner) {
        if (tracer_g.owner == owner) {
            PyErr_SetString(PyExc_RuntimeError,
                            "Session.start(trace_python=True): this session is already tracing");
            return -1;
        }
        return 0;
    }
    PyErr_Format(PyExc_RuntimeError,
                 "Session.start(trace_python=True): another session (%R) is already tracing "
                 "Python; stop it first (one tracing session per process)",
                 (PyObject *)tracer_g.owner);
    return -1;
}

/* Which mechanism to use: CODEPROF_TRACER, else the best available. */
static int choose_mode(int *mode) {
    const char *env = getenv("CODEPROF_TRACER");
    if (!env || !*env || strcmp(env, "auto") == 0) {
        /* 3.11: the profile hook (it sees C functions too, and leaves the
         * frame-evaluation slot to torch.compile and friends); the PEP 523
         * hook is opt-in. */
        *mode = CP_HAVE_MONITORING ? TR_MONITORING : TR_SETPROFILE;
        return 0;
    }
    if (strcmp(env, "setprofile") == 0) {
        *mode = TR_SETPROFILE;
        return 0;
    }
    if (CP_HAVE_MONITORING && strcmp(env, "sys.monitoring") == 0) {
        *mode = TR_MONITORING;
        return 0;
    }
    if (CP_HAVE_EVAL_FRAME && strcmp(env, "eval_frame") == 0) {
        *mode = TR_EVAL_FRAME;
        return 0;
    }
    PyErr_Format(PyExc_ValueError,
                 "environment variable CODEPROF_TRACER must be 'auto', 'setprofile'%s%s on "
                 "this Python, got '%.100s'",
                 CP_HAVE_MONITORING ? ", 'sys.monitoring'" : "",
                 CP_HAVE_EVAL_FRAME ? ", 'eval_frame'" : "", env);
    return -1;
}

/* 0 when the GIL is enabled; on a free-threaded build running without it,
 * RuntimeError and -1: the tracer's state is guarded by the GIL. */
static int check_gil(void) {
#ifdef Py_GIL_DISABLED
    PyObject *fn = PySys_GetObject("_is_gil_enabled"); /* borrowed */
    if (!fn)
        return 0;
    PyObject *r = PyObject_CallNoArgs(fn);
    if (!r)
        return -1;
    int enabled = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (enabled < 0)
        return -1;
    if (!enabled) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Session.start(trace_python=True): the Python tracer needs the GIL, and "
                        "this free-threaded Python runs without it (sys._is_gil_enabled() is "
                        "False); run with PYTHON_GIL=1 or -X gil=1, or profile without the "
                        "tracer (enable_cprofile=False)");
        return -1;
    }
#endif
    return 0;
}

int cp_py_tracer_start(cp_py_session *owner) {
    if (cp_py_tracer_check_free(owner) < 0)
        return -1;
    if (check_gil() < 0)
        return -1;
    int mode;
    if (choose_mode(&mode) < 0)
        return -1;
    cp_py_state *st = owner->st;
    classify_init();
    tr_gen++;
    atomic_store_explicit(&owner->s->python_traced, 1, memory_order_relaxed);
    tracer_g.start_ns = codeprof_now_ns();
    tracer_g.s = owner->s;
    tracer_g.owner = owner;
    tracer_g.st = st;
#if CP_HAVE_EVAL_FRAME
    if (mode == TR_EVAL_FRAME) {
        tracer_g.mode = TR_EVAL_FRAME;
        if (eval_frame_install() == 0)
            return 0;
        goto fail;
    }
#endif
#if CP_HAVE_MONITORING
    if (mode == TR_MONITORING) {
        tracer_g.mode = TR_MONITORING;
        int r = monitoring_install(st);
        if (r > 0)
            return 0;
        if (r < 0)
            goto fail;
        /* tool id taken: fall back to the profile hook */
    }
#endif
    tracer_g.mode = TR_SETPROFILE;
    if (setprofile_install(st) == 0)
        return 0;
#if CP_HAVE_MONITORING || CP_HAVE_EVAL_FRAME
fail:
#endif
    tracer_g.s = NULL;
    tracer_g.owner = NULL;
    tracer_g.st = NULL;
    tracer_g.mode = TR_OFF;
    return -1;
}

int cp_py_tracer_stop(cp_py_session *owner) {
    if (!owner || tracer_g.owner != owner)
        return 0;
    int rc = 0;
    int mode = tracer_g.mode;
    cp_py_state *st = tracer_g.st;
    /* Callbacks that still fire see no session and do nothing. */
    tracer_g.s = NULL;
    tracer_g.owner = NULL;
    tracer_g.mode = TR_OFF;
    tracer_g.st = NULL;
    if (mode == TR_SETPROFILE)
        rc = setprofile_uninstall(st, owner->s);
#if CP_HAVE_EVAL_FRAME
    else if (mode == TR_EVAL_FRAME)
        eval_frame_uninstall();
#endif
#if CP_HAVE_MONITORING
    else if (mode == TR_MONITORING)
        rc = monitoring_uninstall();
#endif
    return rc;
}

const char *cp_py_tracer_mode(const cp_py_session *owner) {
    if (!owner || tracer_g.owner != owner)
        return "off";
    switch (tracer_g.mode) {
    case TR_MONITORING:
        return "sys.monitoring";
    case TR_SETPROFILE:
        return "setprofile";
    case TR_EVAL_FRAME:
        return "eval_frame";
    default:
        return "off";
    }
}

void cp_py_tracer_module_free(cp_py_state *st) {
    if (tracer_g.owner && tracer_g.st == st) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        (void)cp_py_tracer_stop(tracer_g.owner);
        PyErr_Clear();
        PyErr_Restore(et, ev, etb);
    }
}

int cp_py_tracer_stop_any(void) {
    return tracer_g.owner ? cp_py_tracer_stop(tracer_g.owner) : 0;
}

int cp_py_tracer_on_this_thread(void) {
    switch (tracer_g.mode) {
    case TR_SETPROFILE:
        return hook_is_ours(PyThreadState_Get(), tracer_g.st);
    case TR_MONITORING:
    case TR_EVAL_FRAME:
        return 1;
    default:
        return 0;
    }
}
