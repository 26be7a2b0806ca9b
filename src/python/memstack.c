/* memstack.c -- the heap tracker's stack callback (memhook.h).
 *
 * Called inside an allocator hook for each block the tracker records: it
 * reads the calling thread's Python frames, innermost first, as (site id,
 * line).  It never takes the GIL: a thread that released it around C work
 * gets its own (frozen) frames with the code objects' cached site ids
 * only; a thread with no Python state gets no frames, and so does every
 * thread while the interpreter finalizes.
 *
 * The frames are the interpreter's own (_PyInterpreterFrame): the public
 * ways to walk a stack create frame objects, which allocates (and, on
 * 3.11, may start a garbage collection) inside an allocator.  What this
 * file reads of them is isolated in frame_* below, per version (3.11,
 * 3.12, 3.13; the layouts come from the installed internal headers, so a
 * build against another version fails to compile instead of misreading).
 *
 * Site ids are the tracer's (cp_py_tracer_code_site: cached on the code
 * object).  A code object seen for the first time is interned when the
 * thread holds the GIL (the site table never records its own allocations,
 * so it cannot come back here holding its lock); without the GIL only
 * cached ids are used and an unseen code object gives a frame with site 0
 * (unknown), which the model build leaves out.
 * Frames of the profiler's own code (the code_profiler package) are skipped.
 *
 * A block whose innermost frame that is not the standard library's belongs
 * to the code_profiler package (a report being built, a memory context
 * entered) is the profiler's own: the callback answers CP_HEAP_STACK_SKIP
 * and the tracker does not record it, as the tracer hides those regions.
 */
#include "python/memhook.h"

#include <pthread.h>
#include <stdatomic.h>

#include "python/tracer.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "memstack.c reads the interpreter's frames of CPython 3.11 to 3.13 only"
#endif

#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE

/* ---- the version-dependent part ---- */

static inline struct _PyInterpreterFrame *frame_top(PyThreadState *ts) {
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#else
    return ts->cframe ? ts->cframe->current_frame : NULL;
#endif
}

/* The frame's code object, or NULL for a frame to skip (a C-stack shim,
 * a frame still being set up, anything but code). */
static inline PyCodeObject *frame_code(struct _PyInterpreterFrame *f) {
#if PY_VERSION_HEX >= 0x030C0000
    if (f->owner == FRAME_OWNED_BY_CSTACK)
        return NULL;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *ex = f->f_executable;
    if (!ex || !PyCode_Check(ex))
        return NULL;
    PyCodeObject *co = (PyCodeObject *)ex;
#else
    PyCodeObject *co = f->f_code;
    if (!co)
        return NULL;
#endif
    if (_PyFrame_IsIncomplete(f))
        return NULL;
    return co;
}

/* Lines by (code object, instruction): PyCode_Addr2Line walks the line
 * table from its start, so recent answers are kept in a direct-mapped table.
 * Only read and written by the thread holding the GIL (the callback checks
 * it first), so no lock.  The key includes the line table object, so a code
 * object freed and another allocated at its address (with its own table)
 * does not match.  (Interpreters with their own GIL, 3.12+, would share
 * it unlocked: at worst a wrong line, never a crash; they are not supported.) */
#define LINE_CACHE_SIZE 4096 /* power of two */
typedef struct line_entry {
    const void *code;
    const void *table;
    int lasti;
    int line;
} line_entry;
static line_entry g_lines[LINE_CACHE_SIZE];

/* The line without the cache: for a thread that does not hold the GIL
 * (PyCode_Addr2Line only reads the code object's line table). */
static inline int frame_line_uncached(struct _PyInterpreterFrame *f, PyCodeObject *co) {
    int lasti = _PyInterpreterFrame_LASTI(f);
    if (lasti < 0)
        return co->co_firstlineno;
    return PyCode_Addr2Line(co, lasti * (int)sizeof(_Py_CODEUNIT));
}

static inline int frame_line(struct _PyInterpreterFrame *f, PyCodeObject *co) {
    int lasti = _PyInterpreterFrame_LASTI(f);
    if (lasti < 0)
        return co->co_firstlineno;
    uintptr_t h = ((uintptr_t)co >> 4) ^ ((uintptr_t)lasti * 0x9E3779B1u);
    line_entry *e = &g_lines[(h ^ (h >> 13)) & (LINE_CACHE_SIZE - 1)];
    const void *table = co->co_linetable;
    if (e->code == co && e->lasti == lasti && e->table == table)
        return e->line;
    int line = PyCode_Addr2Line(co, lasti * (int)sizeof(_Py_CODEUNIT));
    e->code = co;
    e->table = table;
    e->lasti = lasti;
    e->line = line;
    return line;
}

static inline PyObject *frame_globals(struct _PyInterpreterFrame *f) {
    return f->f_globals;
}

static inline PyThreadState *thread_state(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

/* 1 when the calling thread holds the GIL with state `ts`.  3.12+: the
 * current thread state is thread-local, set only while attached (holding
 * the GIL).  3.11: it is the GIL holder's, whichever thread asks, so it must
 * also be this thread's own (PyGILState_Check alone answers 1 for every
 * thread once a subinterpreter was created). */
static inline int holds_gil(PyThreadState *ts) {
    if (!ts || !PyGILState_Check())
        return 0;
#if PY_VERSION_HEX < 0x030C0000
    return ts == PyGILState_GetThisThreadState();
#else
    return 1;
#endif
}

static inline int finalizing(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* ---- the callback ---- */

void cp_py_memstack_ready(void) {
    cp_py_tracer_classify_ready();
}

uint32_t cp_py_memstack(cp_heap_frame *out, uint32_t max) {
    if (!out || max == 0 || finalizing())
        return 0;
    PyThreadState *ts = thread_state();
    int attached = holds_gil(ts);
    if (!attached) {
        /* A thread that released the GIL around C work (torch's operators
         * do, around every allocation they make) still has its Python
         * frames, frozen until it takes the GIL back: only this thread
         * changes them, and it is here.  Read them without the caches and
         * without naming anything new (that needs the GIL). */
        ts = PyGILState_GetThisThreadState();
        if (!ts)
            return 0;
    }
    /* Naming a code object seen for the first time interns a site: safe
     * with the GIL held, because the site table holds the hook flag while
     * it holds its lock (src/core/sitetab.c), so no allocation made under
     * that lock comes back here. */
    int may_intern = attached;
    uint32_t n = 0;
    /* The block is the profiler's own when the innermost frame that is not
     * the standard library's belongs to the code_profiler package (a report
     * being built, a memory context entered): the profiler is invisible, so
     * it is not recorded.  Decided on the way down, for recorded blocks
     * only (the hooks' fast path never walks frames). */
    int decided = 0;
    /* Bounded walk: a corrupt or cyclic chain cannot hold us. */
    int guard = 4096;
    for (struct _PyInterpreterFrame *f = frame_top(ts); f && (n < max || !decided) && guard-- > 0;
         f = f->previous) {
        PyCodeObject *co = frame_code(f);
        if (!co)
            continue;
        if (!decided) {
            int kind = cp_py_tracer_code_kind(co, frame_globals(f), may_intern);
            if (kind == CP_PY_CODE_PROFILER)
                return CP_HEAP_STACK_SKIP;
            decided = kind == CP_PY_CODE_USER;
        }
        if (n >= max)
            continue;
        uint32_t site = cp_py_tracer_code_site(co, frame_globals(f), may_intern);
        if (site == CP_PY_CODE_SITE_OWN)
            continue;
        int line = attached ? frame_line(f, co) : frame_line_uncached(f, co);
        out[n].pc = 0;
        out[n].site = site;
        out[n].line = line > 0 ? (uint32_t)line : 0;
        n++;
    }
    return n;
}

int cp_py_memstack_user_frame(uint32_t *site, uint32_t *line) {
    if (!site || !line || finalizing())
        return -1;
    PyThreadState *ts = thread_state();
    int attached = holds_gil(ts);
    if (!attached && !(ts = PyGILState_GetThisThreadState()))
        return -1;
    int guard = 4096;
    for (struct _PyInterpreterFrame *f = frame_top(ts); f && guard-- > 0; f = f->previous) {
        PyCodeObject *co = frame_code(f);
        if (!co || cp_py_tracer_code_kind(co, frame_globals(f), attached) != CP_PY_CODE_USER)
            continue; /* the standard library, the profiler, not classified yet */
        uint32_t id = cp_py_tracer_code_site(co, frame_globals(f), attached);
        if (!id || id == CP_PY_CODE_SITE_OWN)
            return -1;
        int ln = attached ? frame_line(f, co) : frame_line_uncached(f, co);
        *site = id;
        *line = ln > 0 ? (uint32_t)ln : 0;
        return 0;
    }
    return -1;
}

/* Names the code objects of the calling thread's innermost frames (at most
 * `max`) so that a later read without the GIL (cp_py_memstack_user_frame
 * inside a CUPTI callback, while torch has released the GIL around a
 * synchronizing call) finds their classification and site cached.  Needs
 * the GIL; a cached code object costs one code-extra read. */
void cp_py_memstack_name_frames(int max) {
    if (finalizing())
        return;
    PyThreadState *ts = thread_state();
    if (!holds_gil(ts))
        return;
    for (struct _PyInterpreterFrame *f = frame_top(ts); f && max-- > 0; f = f->previous) {
        PyCodeObject *co = frame_code(f);
        if (co && cp_py_tracer_code_kind(co, frame_globals(f), 1) == CP_PY_CODE_USER)
            (void)cp_py_tracer_code_site(co, frame_globals(f), 1);
    }
}
