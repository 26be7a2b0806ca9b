/* module.c -- code_profiler._core: module definition (multi-phase init),
 * module state, constants, the module-level functions and the one place
 * where a codeprof_status becomes a Python exception. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codeprof/version.h"
#include "core/clock.h"
#include "python/gpuwhere.h"
#include "python/memhook.h"
#include "python/ext.h"
#include "python/lineprof.h"
#include "python/pysample.h"
#include "python/tracer.h"

/* ------------------------------------------------------------------------ */
/* Status -> exception                                                       */
/* ------------------------------------------------------------------------ */

PyObject *cp_py_raise(codeprof_status st, const codeprof_error *err, const char *context,
                      int os_errno, PyObject *filename) {
    char msg[768];
    const char *detail = (err && err->message[0]) ? err->message : NULL;
    const char *field = (err && err->field[0]) ? err->field : NULL;
    if (detail && context)
        snprintf(msg, sizeof msg, "%s: %s", context, detail);
    else if (detail)
        snprintf(msg, sizeof msg, "%s", detail);
    else
        snprintf(msg, sizeof msg, "%s: %s (%s)", context ? context : "codeprof",
                 codeprof_status_message(st), codeprof_status_name(st));
    /* The detail should already name the field; make sure it does. */
    if (field && !strstr(msg, field)) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, " (field: %s)", field);
    }

    switch (st) {
    case CODEPROF_ECONFIG:
    case CODEPROF_EINVAL:
    case CODEPROF_EFORMAT:
        PyErr_SetString(PyExc_ValueError, msg);
        break;
    case CODEPROF_ENOMEM:
        PyErr_SetString(PyExc_MemoryError, msg);
        break;
    case CODEPROF_EIO: {
        PyObject *args = filename
                             ? Py_BuildValue("(isO)", os_errno ? os_errno : EIO, msg, filename)
                             : Py_BuildValue("(is)", os_errno ? os_errno : EIO, msg);
        if (args) {
            /* OSError picks the subclass (FileNotFoundError, ...) from errno. */
            PyErr_SetObject(PyExc_OSError, args);
            Py_DECREF(args);
        }
        break;
    }
    case CODEPROF_ESTATE:
    default:
        PyErr_SetString(PyExc_RuntimeError, msg);
        break;
    }
    return NULL;
}

int cp_py_as_u32(PyObject *o, const char *what, uint32_t *out) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.80s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > (long long)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be an int in [0, %u], got %R", what,
                     (unsigned)UINT32_MAX, o);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Module-level functions                                                    */
/* ------------------------------------------------------------------------ */

PyObject *cp_py_intern_site(codeprof_session *s, PyObject *args, PyObject *kwargs,
                            const char *fname) {
    static char *kwlist[] = {"name", "file", "line", "kind", NULL};
    const char *name = NULL, *file = NULL;
    PyObject *line_o = NULL, *kind_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|zOO", kwlist, &name, &file, &line_o,
                                     &kind_o))
        return NULL;
    char what[96];
    uint32_t line = 0, kind = CODEPROF_SITE_SCOPE;
    snprintf(what, sizeof what, "%s: line", fname);
    if (line_o && cp_py_as_u32(line_o, what, &line) < 0)
        return NULL;
    snprintf(what, sizeof what, "%s: kind", fname);
    if (kind_o && cp_py_as_u32(kind_o, what, &kind) < 0)
        return NULL;
    if (kind >= CODEPROF_SITE_KIND_COUNT_) {
        PyErr_Format(PyExc_ValueError, "%s: kind must be one of SITE_* in [0, %d], got %u", fname,
                     (int)CODEPROF_SITE_KIND_COUNT_ - 1, kind);
        return NULL;
    }
    uint32_t id = s ? codeprof_session_site(s, name, file, line, (codeprof_site_kind)kind)
                    : codeprof_site(name, file, line, (codeprof_site_kind)kind);
    if (id == 0)
        return cp_py_raise(CODEPROF_ENOMEM, NULL, "interning the site name failed", 0, NULL);
    return PyLong_FromUnsignedLong(id);
}

static PyObject *mod_site(PyObject *mod, PyObject *args, PyObject *kwargs) {
    (void)mod;
    return cp_py_intern_site(NULL, args, kwargs, "site()");
}

static PyObject *mod_now_ns(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyLong_FromUnsignedLongLong(codeprof_now_ns());
}

static PyObject *mod_rss_bytes(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyLong_FromUnsignedLongLong(codeprof_rss_bytes());
}

static PyObject *mod_clock_source(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    cp_clock_init();
    return PyUnicode_FromString(cp_clock_source());
}

static PyObject *mod_tracer_ignore(PyObject *mod, PyObject *code) {
    (void)mod;
    if (cp_py_tracer_ignore_code(code) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_tracer_on_this_thread(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyBool_FromLong(cp_py_tracer_on_this_thread());
}

static PyObject *mod_tracer_stop(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    if (cp_py_tracer_stop_any() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_tracer_busy(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyBool_FromLong(cp_py_tracer_busy());
}

static PyObject *mod_format_for_path(PyObject *mod, PyObject *arg) {
    (void)mod;
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(arg, &b))
        return NULL;
    codeprof_format fmt;
    codeprof_status st = codeprof_format_for_path(PyBytes_AS_STRING(b), &fmt);
    Py_DECREF(b);
    if (st != CODEPROF_OK)
        Py_RETURN_NONE;
    return PyUnicode_FromString(codeprof_format_name(fmt));
}

static PyMethodDef mod_methods[] = {
    {"format_for_path", mod_format_for_path, METH_O,
     "format_for_path(path) -> str | None\n\n"
     "The report format a file name asks for by its ending ('json', 'text', 'pstats', "
     "'speedscope', 'collapsed', 'trace'), or None."},
    {"render_report", (PyCFunction)(void (*)(void))cp_py_render_report,
     METH_VARARGS | METH_KEYWORDS,
     "render_report(in_path, format='text') -> str | bytes\n\n"
     "Read a saved JSON report (schema version 2) and render it in a format: the text "
     "summary, JSON, or an export (bytes for 'pstats')."},
    {"save_report", (PyCFunction)(void (*)(void))cp_py_save_report, METH_VARARGS | METH_KEYWORDS,
     "save_report(in_path, out_path, format=None) -> str\n\n"
     "Read a saved JSON report and write it atomically to out_path in `format` (None: the one "
     "out_path's ending asks for); returns the format written."},
    {"diff_reports", (PyCFunction)(void (*)(void))cp_py_diff_reports, METH_VARARGS | METH_KEYWORDS,
     "diff_reports(a_path, b_path, format='text') -> str\n\n"
     "Compare two saved JSON reports (B against A) as text or JSON."},
    {"_memhooks_state", cp_py_memhooks_state, METH_NOARGS,
     "_memhooks_state() -> dict\n\nWhich memory hooks are installed now (tests)."},
    {"tracer_busy", mod_tracer_busy, METH_NOARGS,
     "tracer_busy() -> bool\n\nTrue while some session traces Python calls."},
    {"site", (PyCFunction)(void (*)(void))mod_site, METH_VARARGS | METH_KEYWORDS,
     "site(name, file=None, line=0, kind=SITE_SCOPE) -> int\n\n"
     "Intern a site in the process-wide table; same arguments give the same id (> 0)."},
    {"now_ns", mod_now_ns, METH_NOARGS, "now_ns() -> int\n\nMonotonic ns on the event clock."},
    {"gpu_sync_record", cp_py_gpu_sync_record, METH_VARARGS,
     "gpu_sync_record(session, kind, site, line, blocked_ns)\n\nRecord a host synchronization "
     "point measured by the facade (docs/gpu.md): kind 0 device, 1 stream, 2 event, 3 blocking "
     "copy, 4 other."},
    {"gpu_libraries", cp_py_gpu_libraries, METH_NOARGS,
     "gpu_libraries() -> dict\n\nStatus of the CUDA driver, NVML and CUPTI as loaded so far."},
    {"code_site", cp_py_code_site, METH_VARARGS,
     "code_site(code, globals=None) -> int\n\nThe site id the tracer gives a code object "
     "(0 for the profiler's own code)."},
    {"rss_bytes", mod_rss_bytes, METH_NOARGS,
     "rss_bytes() -> int\n\nResident set size of the process in bytes (0 if unknown)."},
    {"clock_source", mod_clock_source, METH_NOARGS,
     "clock_source() -> str\n\n'tsc', 'monotonic' or 'fake'."},
    {"tracer_stop", mod_tracer_stop, METH_NOARGS,
     "tracer_stop() -> None\n\n"
     "Stop the Python tracer of whichever session runs it; that session keeps recording "
     "(a forked DataLoader worker drops the tracer it inherited).  No-op when none traces."},
    {"tracer_on_this_thread", mod_tracer_on_this_thread, METH_NOARGS,
     "tracer_on_this_thread() -> bool\n\n"
     "True when the Python tracer records the calling thread's calls."},
    {"tracer_ignore", mod_tracer_ignore, METH_O,
     "tracer_ignore(code) -> None\n\n"
     "Never record calls of this code object (e.g. a decorator's wrapper) in the tracer."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------------ */
/* Module state and init                                                     */
/* ------------------------------------------------------------------------ */

static int add_int(PyObject *m, const char *name, long v) {
    return PyModule_AddIntConstant(m, name, v);
}

static int mod_exec(PyObject *m) {
    cp_py_state *st = PyModule_GetState(m);
    if (!st)
        return -1;
    cp_clock_init();
    if (cp_py_gchook_init() < 0)
        return -1;

    if (add_int(m, "SITE_SCOPE", CODEPROF_SITE_SCOPE) < 0 ||
        add_int(m, "SITE_PYTHON", CODEPROF_SITE_PYTHON) < 0 ||
        add_int(m, "SITE_NATIVE", CODEPROF_SITE_NATIVE) < 0 ||
        add_int(m, "SITE_FUNCTION", CODEPROF_SITE_FUNCTION) < 0 ||
        add_int(m, "SITE_DATASET", CODEPROF_SITE_DATASET) < 0 ||
        add_int(m, "SITE_LOADER", CODEPROF_SITE_LOADER) < 0 ||
        add_int(m, "SITE_PREPROCESS", CODEPROF_SITE_PREPROCESS) < 0 ||
        add_int(m, "SITE_AUGMENT", CODEPROF_SITE_AUGMENT) < 0 ||
        add_int(m, "SITE_GPU", CODEPROF_SITE_GPU) < 0 ||
        add_int(m, "SCOPE_CPU", CODEPROF_SCOPE_CPU) < 0 ||
        add_int(m, "SCOPE_RSS", CODEPROF_SCOPE_RSS) < 0 ||
        add_int(m, "SCOPE_HEAP", CODEPROF_SCOPE_HEAP) < 0 ||
        add_int(m, "ATTR_INDEX", CODEPROF_ATTR_INDEX) < 0 ||
        add_int(m, "ATTR_BYTES", CODEPROF_ATTR_BYTES) < 0 ||
        add_int(m, "ATTR_ITEMS", CODEPROF_ATTR_ITEMS) < 0 ||
        add_int(m, "ATTR_EPOCH", CODEPROF_ATTR_EPOCH) < 0 ||
        add_int(m, "ATTR_FAILED", CODEPROF_ATTR_FAILED) < 0 ||
        add_int(m, "ATTR_CANCEL", CODEPROF_ATTR_CANCEL) < 0 ||
        add_int(m, "SCOPE_ITEM", CODEPROF_SCOPE_ITEM) < 0 ||
        add_int(m, "SCOPE_BATCH", CODEPROF_SCOPE_BATCH) < 0 ||
        add_int(m, "REPORT_SCHEMA_VERSION", CODEPROF_REPORT_SCHEMA_VERSION) < 0 ||
        PyModule_AddStringConstant(m, "VERSION", CODEPROF_VERSION_STRING) < 0)
        return -1;

    st->session_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &cp_py_session_spec, NULL);
    if (!st->session_type)
        return -1;
    if (PyModule_AddType(m, st->session_type) < 0)
        return -1;
    st->scope_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &cp_py_scope_spec, NULL);
    if (!st->scope_type)
        return -1;
    if (PyModule_AddType(m, st->scope_type) < 0)
        return -1;
    st->model_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &cp_py_model_spec, NULL);
    if (!st->model_type)
        return -1;
    if (PyModule_AddType(m, st->model_type) < 0)
        return -1;
    st->gpu_op_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &cp_py_gpu_op_spec, NULL);
    if (!st->gpu_op_type)
        return -1;
    if (PyModule_AddType(m, st->gpu_op_type) < 0)
        return -1;
    if (cp_py_gpuwhere_init(m) < 0) /* gpuwhere.c: GPU sync points' where-callback */
        return -1;
    if (cp_py_lineprof_init(m) < 0) /* line_profile_add, line_profile_state */
        return -1;
    if (cp_py_sample_init(m) < 0) /* the stack sampler's reader (pysample.c) */
        return -1;
    return cp_py_tracer_init(m, st);
}

static int mod_traverse(PyObject *m, visitproc visit, void *arg) {
    cp_py_state *st = PyModule_GetState(m);
    if (!st)
        return 0;
    Py_VISIT(st->session_type);
    Py_VISIT(st->scope_type);
    Py_VISIT(st->model_type);
    Py_VISIT(st->gpu_op_type);
    Py_VISIT(st->thread_hook);
    Py_VISIT(st->mon_enter);
    Py_VISIT(st->mon_exit);
    Py_VISIT(st->mon_call);
    Py_VISIT(st->mon_c_exit);
    return 0;
}

static int mod_clear(PyObject *m) {
    cp_py_state *st = PyModule_GetState(m);
    if (!st)
        return 0;
    /* The hooks must be off before the callables they use go away. */
    cp_py_tracer_module_free(st);
    cp_py_lineprof_module_free();
    Py_CLEAR(st->session_type);
    Py_CLEAR(st->scope_type);
    Py_CLEAR(st->gpu_op_type);
    Py_CLEAR(st->model_type);
    Py_CLEAR(st->thread_hook);
    Py_CLEAR(st->mon_enter);
    Py_CLEAR(st->mon_exit);
    Py_CLEAR(st->mon_call);
    Py_CLEAR(st->mon_c_exit);
    return 0;
}

static void mod_free(void *m) { (void)mod_clear((PyObject *)m); }

static PyModuleDef_Slot mod_slots[] = {
    {Py_mod_exec, (void *)mod_exec},
#if PY_VERSION_HEX >= 0x030C0000
    /* The tracer and the site table are process-wide. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* The tracer's state (hooks, the C-function table, code extras) and the
     * Session objects rely on the GIL: importing us on a free-threaded build
     * turns the GIL back on (unless PYTHON_GIL=0 forces it off, and then the
     * tracer refuses to start). */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "code_profiler._core",
    .m_doc = "libcodeprof bindings: sessions, scopes, sites, reports and the Python tracer.",
    .m_size = sizeof(cp_py_state),
    .m_methods = mod_methods,
    .m_slots = mod_slots,
    .m_traverse = mod_traverse,
    .m_clear = mod_clear,
    .m_free = mod_free,
};

PyMODINIT_FUNC PyInit__core(void);
PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&mod_def); }
