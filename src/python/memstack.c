/* memstack.c -- the heap tracker's stack callback (memhook.h).
 *
 * Called inside an allocator hook for each block the tracker records: it
 * reads the calling thread's Python frames, innermost first, as (site id,
 * line).  It never takes the GIL: a thread that does not hold it (a raw
 * allocation from a C thread, a thread state being created) gets no
 * frames, and so does every thread while the interpreter finalizes.
 *
 * The frames are the interpreter's own (_PyInterpreterFrame): the public
 * ways to walk a stack create frame objects, which allocates (and, on
 * 3.11, may start a garbage collection) inside an allocator.  What this
 * file reads of them is isolated in frame_* below, per version (3.11,
 * 3.12, 3.13; the layouts come from the installed internal headers, so a
 * build against another version fails to compile instead of misreading).
 *
 * Site ids are the tracer's (cp_py_tracer_code_site: cached on the code
 * object).  A code object seen for the first time is interned only when
 * the block comes from one of our Python allocator hooks (the allocator
 * has returned, so creating the name is safe there); for a block reported
 * by the native preload (malloc inside arbitrary C code, perhaps holding a
 * lock the interning takes) only cached ids are used and an unseen code
 * object gives a frame with site 0 (unknown), which the model shows as such.
 * Frames of the profiler's own code (the code_profiler package) are skipped.
 *
 * cp_py_memstack_profiler_owns() tells the Python hooks (before they report
 * a block) that the block is the profiler's own: the innermost frame that is
 * not the standard library's belongs to the code_profiler package (a report
 * being built, a memory context entered), as the tracer's hidden regions.
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

/* The thread reporting from one of our Python allocator hooks (0: none).
 * A plain word, not thread-local storage: only a thread holding the GIL
 * may intern, and one thread holds it at a time; a stale or overwritten
 * value only ever makes the callback use cached ids. */
static _Atomic unsigned long g_py_thread;

void cp_py_memstack_mark_thread(int on) {
    atomic_store_explicit(&g_py_thread, on ? (unsigned long)pthread_self() : 0ul,
                          memory_order_relaxed);
}

void cp_py_memstack_ready(void) {
    cp_py_tracer_classify_ready();
}

int cp_py_memstack_profiler_owns(void) {
    if (finalizing())
        return 0;
    PyThreadState *ts = thread_state();
    if (!holds_gil(ts))
        return 0;
    int guard = 64;
    for (struct _PyInterpreterFrame *f = frame_top(ts); f && guard-- > 0; f = f->previous) {
        PyCodeObject *co = frame_code(f);
        if (!co)
            continue;
        switch (cp_py_tracer_code_kind(co, frame_globals(f), 1)) {
        case CP_PY_CODE_USER:
            return 0;
        case CP_PY_CODE_PROFILER:
            return 1;
        default: /* the standard library (or unknown): whoever called it */
            break;
        }
    }
    return 0;
}

uint32_t cp_py_memstack(cp_heap_frame *out, uint32_t max) {
    if (!out || max == 0 || finalizing())
        return 0;
    PyThreadState *ts = thread_state();
    if (!holds_gil(ts))
        return 0;
    int may_intern =
        atomic_load_explicit(&g_py_thread, memory_order_relaxed) == (unsigned long)pthread_self();
    uint32_t n = 0;
    /* Bounded walk: a corrupt or cyclic chain cannot hold us. */
    int guard = 4096;
    for (struct _PyInterpreterFrame *f = frame_top(ts); f && n < max && guard-- > 0;
         f = f->previous) {
        PyCodeObject *co = frame_code(f);
        if (!co)
            continue;
        uint32_t site = cp_py_tracer_code_site(co, frame_globals(f), may_intern);
        if (site == CP_PY_CODE_SITE_OWN)
            continue;
        int line = frame_line(f, co);
        out[n].pc = 0;
        out[n].site = site;
        out[n].line = line > 0 ? (uint32_t)line : 0;
        n++;
    }
    return n;
}
