/* lineprof.h -- line-level timing of registered Python functions
 * (enable_line_profiler; docs/line-profiling.md).
 *
 * A code object registered with _core.line_profile_add() (the facade does it
 * for functions decorated with profile_function at the detailed or
 * comprehensive level) gets one CP_EV_LINE event per line started, site =
 * its tracer site (cp_py_tracer_code_site), value = the line, aux = the
 * frame's identity, and one with value 0 when the frame returns, yields or
 * unwinds (src/cpu/linesink.c folds them).  Events go to the session that
 * started with CODEPROF_CFG_LINES (one at a time); no other code pays
 * anything on 3.12+.
 *
 *   3.12+: sys.monitoring LOCAL events LINE, PY_RESUME, PY_RETURN, PY_YIELD
 *          on the registered code objects only, plus PY_UNWIND (global:
 *          it cannot be local; its callback is reached on exceptions only),
 *          with C callables on a tool id of its own (the first free of 5,
 *          4, 3: the tracer takes them from the other end), so the tracer
 *          and the line timer start and stop independently.
 *   3.11:  a C trace function in the trace slot (the tracer uses the
 *          profile slot), put on a thread only while it runs a line-timed
 *          function: the decorators call _core.line_profile_enter() /
 *          line_profile_leave() around each call and resume (nested calls
 *          counted per thread), as line_profiler does, because the
 *          interpreter's tracing mode slows every frame of a thread that
 *          has a trace function.  Frames of unregistered code the function
 *          calls get f_trace_lines = 0 at their call event.  A thread whose
 *          trace slot is taken (a user's sys.settrace, a debugger,
 *          coverage) is left alone and the session warned once
 *          ("lines_trace_taken").
 * All functions need the GIL.
 */
#ifndef CP_PY_LINEPROF_H
#define CP_PY_LINEPROF_H

#include "python/ext.h"

/* Adds _core.line_profile_add and _core.line_profile_state to `module`
 * (from the module's exec slot).  0, or -1 with an exception set. */
int cp_py_lineprof_init(PyObject *module);

/* Session.start: when the session has CODEPROF_CFG_LINES and no other
 * session times lines, arms line timing for it: the hooks are installed
 * now if a code object is registered, else at the first registration.
 * Never raises: a failure becomes a session warning. */
void cp_py_lineprof_session_start(cp_py_session *self);
/* Session.stop and dealloc: removes the hooks if `self` owns them.  Never
 * raises. */
void cp_py_lineprof_session_stop(cp_py_session *self);

/* Module teardown: hooks removed, registrations and callables released.
 * Never raises. */
void cp_py_lineprof_module_free(void);

#endif /* CP_PY_LINEPROF_H */
