/* tracer.h -- the deterministic Python tracer of code_profiler._core.
 *
 * Records every Python function call/return (and C functions called from
 * Python) of every thread as CP_EV_ENTER/CP_EV_EXIT events via cp_emit().
 *
 *   3.12+: sys.monitoring with C-implemented callbacks on the first free
 *          tool id of 3, 4, 5, 2 (so cProfile, on PROFILER_ID 2, runs
 *          beside it); when all are taken it falls back to the profile hook.
 *   3.11 (and CODEPROF_TRACER=setprofile): a C profile function
 *          (Py_tracefunc) on every existing thread state, and on threads
 *          started later through threading.setprofile() with a C hook that
 *          installs it on the new thread at its first event; records C
 *          functions called from Python too.  Another tool taking a
 *          thread's hook is noted (thread, time) and reported at stop as a
 *          session warning plus one RuntimeWarning; ours is put back when
 *          the other tool lets go.
 *   3.11, 3.12 opt-in: a PEP 523 frame-evaluation hook ("eval_frame":
 *          Python functions only).
 *   CODEPROF_TRACER=auto|eval_frame|setprofile|sys.monitoring picks one.
 *   Free-threaded builds: refuses to start while the GIL is disabled.
 *
 * The profiler is invisible: code of the code_profiler package and the
 * extension's own C callables are never recorded, nor the standard library
 * and C functions they call; user code they call is (tracer.c, "Hidden
 * regions"; docs/ARCHITECTURE.md).
 *
 * The tracer is process-wide by nature (one profile hook per thread, one
 * monitoring tool per interpreter), so one session at a time may trace; its
 * state lives in tracer.c.  Site ids are cached on code objects with the
 * code-extra API and, for C functions, in an open-addressing table keyed by
 * (PyMethodDef*, type): the hot path does no allocation and takes no lock.
 * All functions here require the GIL.
 */
#ifndef CP_PY_TRACER_H
#define CP_PY_TRACER_H

#include "python/ext.h"

/* Called once from the module's exec slot: requests the code-extra index
 * and creates the hook callables in `st` (bound to `module`).  Returns 0,
 * or -1 with an exception set. */
int cp_py_tracer_init(PyObject *module, cp_py_state *st);

/* Marks a code object as never recorded by the tracer: code of the
 * code_profiler package becomes the profiler's own (what it calls is hidden
 * too, except user code), any other code transparent (not recorded, what
 * it calls is: a decorated function whose scope is its record).  Returns
 * 0, or -1 with TypeError for a non-code object. */
int cp_py_tracer_ignore_code(PyObject *code);

/* Returns 0 if no other session traces, else raises RuntimeError naming
 * the session that does and returns -1. */
int cp_py_tracer_check_free(cp_py_session *owner);

/* Installs the tracer for `owner` (whose session must be running).
 * Returns 0, or -1 with an exception set (nothing left installed). */
int cp_py_tracer_start(cp_py_session *owner);

/* Uninstalls the tracer if `owner` is the tracing session; a no-op (0)
 * otherwise.  Always leaves the tracer off; returns -1 with an exception
 * set if some hook could not be removed cleanly. */
int cp_py_tracer_stop(cp_py_session *owner);

/* "off", "setprofile", "sys.monitoring" or "eval_frame" for `owner`. */
const char *cp_py_tracer_mode(const cp_py_session *owner);

/* Uninstalls the tracer whichever session runs it (the session keeps
 * recording without it): a forked DataLoader worker drops the tracer it
 * inherited.  0 when none traces; else as cp_py_tracer_stop. */
int cp_py_tracer_stop_any(void);

/* 1 when the tracer records the calling thread's calls (a hook of ours is
 * installed and tracing is on), else 0. */
int cp_py_tracer_on_this_thread(void);

/* Allocation stacks (memstack.c): the process-wide site id of code object
 * `co` as the tracer names it ("module.qualname"; `globals`, borrowed, may
 * be NULL, gives the module), whether or not the tracer runs, or
 * CP_PY_CODE_SITE_OWN for the profiler's own code (to be skipped).  With
 * `may_intern` 0 it only reads the id cached on the code object (no
 * allocation, no lock: safe in any allocator hook) and returns 0 for a code
 * object seen for the first time; with 1 it interns and caches it (allocates
 * Python objects and takes the site table's lock).  Needs the GIL;
 * cp_py_tracer_classify_ready() must have run once. */
#define CP_PY_CODE_SITE_OWN UINT32_MAX
uint32_t cp_py_tracer_code_site(PyCodeObject *co, PyObject *globals, int may_intern);
/* Whose code `co` is, as the tracer classifies it (same arguments and
 * rules as cp_py_tracer_code_site): CP_PY_CODE_USER (a decorated function
 * included), _STDLIB, _PROFILER (the code_profiler package), or _UNKNOWN
 * (not classified yet and `may_intern` 0, or classification failed). */
enum { CP_PY_CODE_UNKNOWN = 0, CP_PY_CODE_USER = 1, CP_PY_CODE_STDLIB = 2, CP_PY_CODE_PROFILER = 3 };
int cp_py_tracer_code_kind(PyCodeObject *co, PyObject *globals, int may_intern);
/* Finds the profiler's and the standard library's directories (once per
 * process; needs the GIL; never raises). */
void cp_py_tracer_classify_ready(void);

/* Module teardown: uninstalls the hooks of `st` if they are active.  The
 * C-function site table stays (site ids are process-wide).  Never raises. */
void cp_py_tracer_module_free(cp_py_state *st);

#endif /* CP_PY_TRACER_H */
