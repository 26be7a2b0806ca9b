/* ext.h -- shared declarations of the code_profiler._core extension.
 *
 * The extension is a thin binding over libcodeprof (DESIGN.md rule 6):
 * module.c holds the module definition, its state and the one function
 * that turns a codeprof_status into a Python exception; session_obj.c and
 * scope_obj.c define the Session and Scope types; tracer.c installs the
 * deterministic Python tracer.  Internal non-static names start with cp_py_.
 */
#ifndef CP_PY_EXT_H
#define CP_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "codeprof/codeprof.h"
#include "core/session.h"

/* Per-module state (multi-phase init).  The types are heap types created
 * from specs in Py_mod_exec; the hook callables are PyCFunctions bound to
 * the module, created once and reused by every start(). */
typedef struct cp_py_state {
    PyTypeObject *session_type;
    PyTypeObject *scope_type;
    PyTypeObject *model_type;  /* _core.Model (model_obj.c)               */
    PyTypeObject *gpu_op_type; /* _core.GpuOp (gpu_obj.c)                 */
    PyObject *thread_hook;   /* threading.setprofile hook (setprofile mode)  */
    PyObject *mon_enter;     /* sys.monitoring callbacks (3.12+)             */
    PyObject *mon_exit;
    PyObject *mon_call;
    PyObject *mon_c_exit;
} cp_py_state;

/* The Session object: owns one codeprof_session. */
typedef struct cp_py_session {
    PyObject_HEAD
    codeprof_session *s;   /* NULL until __init__ succeeded          */
    cp_py_state *st;       /* borrowed; the type keeps the module alive */
} cp_py_session;

/* The Scope object: a reusable context manager for one site. */
typedef struct cp_py_scope {
    PyObject_HEAD
    cp_py_session *owner;  /* strong reference                    */
    uint32_t site;
    uint32_t flags;
} cp_py_scope;

/* Raises the Python exception for `st` and returns NULL.  The only place
 * where statuses become exceptions:
 *   ECONFIG, EINVAL, EFORMAT -> ValueError (message from err: names the field)
 *   ESTATE          -> RuntimeError
 *   EIO             -> OSError(os_errno, message, filename)
 *   ENOMEM          -> MemoryError
 *   anything else   -> RuntimeError
 * `context` (may be NULL) says what failed, e.g. "Session.stop(): the
 * session is not running"; it is used when `err` carries no message.
 * `filename` may be NULL; `os_errno` 0 means unknown (EIO is used). */
PyObject *cp_py_raise(codeprof_status st, const codeprof_error *err, const char *context,
                      int os_errno, PyObject *filename);

/* Parses a uint32 from a Python int; on failure raises ValueError or
 * TypeError naming `what` and returns -1. */
int cp_py_as_u32(PyObject *o, const char *what, uint32_t *out);

/* site(name, file=None, line=0, kind=SITE_SCOPE) for the module (s NULL:
 * the process-wide table) and for Session.site (the session's table);
 * `fname` names the caller in errors.  New reference, or NULL with an
 * exception set. */
PyObject *cp_py_intern_site(codeprof_session *s, PyObject *args, PyObject *kwargs,
                            const char *fname);

/* Type specs (session_obj.c, scope_obj.c, model_obj.c). */
extern PyType_Spec cp_py_session_spec;
extern PyType_Spec cp_py_scope_spec;
extern PyType_Spec cp_py_model_spec;
extern PyType_Spec cp_py_gpu_op_spec;

/* GPU module functions (gpu_obj.c). */
PyObject *cp_py_gpu_sync_record(PyObject *mod, PyObject *args);
PyObject *cp_py_gpu_libraries(PyObject *mod, PyObject *unused);
PyObject *cp_py_code_site(PyObject *mod, PyObject *args);

struct cp_model_ref; /* src/report/output.h */

/* Wraps a model reference (stolen, released on failure) in a _core.Model
 * (model_obj.c).  New reference, or NULL with an exception set. */
PyObject *cp_py_model_new(cp_py_state *st, struct cp_model_ref *ref);

/* 1 if `ml` is one of Model's methods (the tracer skips them). */
int cp_py_model_is_own_method(const PyMethodDef *ml);

/* Creates a Scope for `owner` (scope_obj.c).  Returns a new reference. */
PyObject *cp_py_scope_new(cp_py_session *owner, uint32_t site, uint32_t flags);

/* 1 if `ml` is one of Session's methods (the tracer skips them). */
int cp_py_is_own_method(const PyMethodDef *ml);
/* 1 while some session traces Python calls (tracer.c). */
int cp_py_tracer_busy(void);
int cp_py_scope_is_own_method(const PyMethodDef *ml);

/* Saved reports read back (reports.c): _core.render_report, save_report,
 * diff_reports (METH_VARARGS | METH_KEYWORDS). */
PyObject *cp_py_render_report(PyObject *mod, PyObject *args, PyObject *kwargs);
PyObject *cp_py_save_report(PyObject *mod, PyObject *args, PyObject *kwargs);
PyObject *cp_py_diff_reports(PyObject *mod, PyObject *args, PyObject *kwargs);

/* Returns 0 if the session is initialised, else raises RuntimeError. */
int cp_py_session_check(cp_py_session *self);

#endif /* CP_PY_EXT_H */
