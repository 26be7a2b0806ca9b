/* gpu_obj.c -- _core.GpuOp: one timed CUDA operation (codeprof_gpu_op_begin/
 * end), and the module functions the GPU facade needs (gpu_sync_record,
 * gpu_libraries, code_site).
 *
 * A GpuOp is created per operation (`_core.GpuOp(session, site)`): it holds
 * the op's state between begin and end, so nested operations and operations
 * of several threads each have their own.  begin/end take the stream and the
 * caching allocator's figures as plain ints (-1: unknown) from the facade,
 * which reads them from torch only when torch has already initialised CUDA.
 * Methods are METH_FASTCALL and parse no keywords (the per-op cost is
 * measured in bench/bench_gpu_ops.c and bench/bench_gpu.py). */
#include "python/ext.h"

#include "gpu/gpu_lib.h"
#include "python/memhook.h"
#include "python/tracer.h"

typedef struct cp_py_gpu_op {
    PyObject_HEAD
    cp_py_session *owner; /* strong reference */
    codeprof_gpu_op op;
    uint32_t site;
    int open;             /* begun and not yet ended */
} cp_py_gpu_op;

static PyObject *gpu_op_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs) {
    PyObject *session = NULL;
    unsigned int site = 0;
    static char *kwlist[] = {"session", "site", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OI:GpuOp", kwlist, &session, &site))
        return NULL;
    PyObject *mod = PyType_GetModule(tp);
    cp_py_state *st = mod ? PyModule_GetState(mod) : NULL;
    if (!st || !PyObject_TypeCheck(session, st->session_type) ||
        !((cp_py_session *)session)->s) {
        PyErr_SetString(PyExc_TypeError,
                        "GpuOp(session, site): session must be an initialised _core.Session");
        return NULL;
    }
    cp_py_gpu_op *self = (cp_py_gpu_op *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    Py_INCREF(session);
    self->owner = (cp_py_session *)session;
    self->site = site;
    return (PyObject *)self;
}

static void gpu_op_dealloc(PyObject *op) {
    cp_py_gpu_op *self = (cp_py_gpu_op *)op;
    PyTypeObject *tp = Py_TYPE(op);
    Py_CLEAR(self->owner);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* -1 (or None) is "unknown"; anything else must be an int >= 0. */
static int arg_u64(PyObject *o, uint64_t *out, int *known) {
    if (o == Py_None) {
        *known = 0;
        return 0;
    }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        *known = 0;
        return 0;
    }
    *out = (uint64_t)v;
    return 0;
}

static int parse_mem(PyObject *const *args, codeprof_gpu_mem *mem) {
    int k1 = 1, k2 = 1, k3 = 1;
    memset(mem, 0, sizeof *mem);
    if (arg_u64(args[0], &mem->allocated, &k1) < 0 || arg_u64(args[1], &mem->reserved, &k2) < 0 ||
        arg_u64(args[2], &mem->max_allocated, &k3) < 0)
        return -1;
    mem->known = k1 && k2 && k3;
    return 0;
}

/* begin(stream, allocated, reserved, max_allocated) */
static PyObject *gpu_op_begin(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    cp_py_gpu_op *self = (cp_py_gpu_op *)op;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "GpuOp.begin(stream, allocated, reserved, max_allocated): 4 ints");
        return NULL;
    }
    if (self->open) {
        PyErr_SetString(PyExc_RuntimeError, "GpuOp.begin(): the operation is already open");
        return NULL;
    }
    uint64_t stream = 0;
    int known = 1;
    codeprof_gpu_mem mem;
    if (arg_u64(args[0], &stream, &known) < 0 || parse_mem(args + 1, &mem) < 0)
        return NULL;
    /* A synchronization later in these frames is blamed from a CUPTI
     * callback, usually without the GIL: name the frames now. */
    if (self->owner->s->cfg.flags & CODEPROF_CFG_GPU_SYNC)
        cp_py_memstack_name_frames(32);
    codeprof_status st = codeprof_gpu_op_begin(self->owner->s, self->site, stream,
                                               mem.known ? &mem : NULL, &self->op);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "GpuOp.begin()", 0, NULL);
    self->open = 1;
    Py_RETURN_NONE;
}

/* end(allocated, reserved, max_allocated) */
static PyObject *gpu_op_end(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    cp_py_gpu_op *self = (cp_py_gpu_op *)op;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "GpuOp.end(allocated, reserved, max_allocated): 3 ints");
        return NULL;
    }
    if (!self->open) {
        PyErr_SetString(PyExc_RuntimeError, "GpuOp.end(): the operation was not begun");
        return NULL;
    }
    codeprof_gpu_mem mem;
    if (parse_mem(args, &mem) < 0)
        return NULL;
    self->open = 0;
    codeprof_status st = codeprof_gpu_op_end(self->owner->s, &self->op, mem.known ? &mem : NULL);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "GpuOp.end()", 0, NULL);
    Py_RETURN_NONE;
}

static PyObject *gpu_op_get_site(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLong(((cp_py_gpu_op *)op)->site);
}

static PyMethodDef gpu_op_methods[] = {
    {"begin", (PyCFunction)(void (*)(void))gpu_op_begin, METH_FASTCALL,
     "begin(stream, allocated, reserved, max_allocated): record the start event on `stream` "
     "(a CUstream as an int; 0 the default stream) and open the host scope; memory figures "
     "of the caching allocator in bytes, -1 when unknown."},
    {"end", (PyCFunction)(void (*)(void))gpu_op_end, METH_FASTCALL,
     "end(allocated, reserved, max_allocated): record the end event and close the scope."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef gpu_op_getset[] = {
    {"site", gpu_op_get_site, NULL, "The site id this operation is recorded on.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot gpu_op_slots[] = {
    {Py_tp_new, gpu_op_new},
    {Py_tp_dealloc, gpu_op_dealloc},
    {Py_tp_methods, gpu_op_methods},
    {Py_tp_getset, gpu_op_getset},
    {Py_tp_doc, "GpuOp(session, site): one CUDA operation timed with events on its stream "
                "(docs/gpu.md); begin() and end() on the same thread."},
    {0, NULL},
};

PyType_Spec cp_py_gpu_op_spec = {
    .name = "code_profiler._core.GpuOp",
    .basicsize = sizeof(cp_py_gpu_op),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = gpu_op_slots,
};

/* ---- module functions ---- */

/* gpu_sync_record(session, kind, site, line, blocked_ns) */
PyObject *cp_py_gpu_sync_record(PyObject *mod, PyObject *args) {
    cp_py_state *st = PyModule_GetState(mod);
    PyObject *session;
    unsigned int kind, site, line;
    unsigned long long ns;
    if (!PyArg_ParseTuple(args, "OIIIK:gpu_sync_record", &session, &kind, &site, &line, &ns))
        return NULL;
    if (!st || !PyObject_TypeCheck(session, st->session_type) ||
        !((cp_py_session *)session)->s) {
        PyErr_SetString(PyExc_TypeError, "gpu_sync_record(session, ...): session must be an "
                                         "initialised _core.Session");
        return NULL;
    }
    codeprof_status rc =
        codeprof_gpu_sync_record(((cp_py_session *)session)->s, kind, site, line, ns);
    if (rc != CODEPROF_OK)
        return cp_py_raise(rc, NULL, "gpu_sync_record(): kind must be 0..4", 0, NULL);
    Py_RETURN_NONE;
}

static const char *lib_status_name(int status) {
    switch (status) {
    case CP_GPU_LIB_OK: return "ok";
    case CP_GPU_LIB_NOT_FOUND: return "not_found";
    case CP_GPU_LIB_TOO_OLD: return "too_old";
    case CP_GPU_LIB_INIT_FAILED: return "init_failed";
    case CP_GPU_LIB_NO_CONTEXT: return "no_context";
    case CP_GPU_LIB_DISABLED: return "disabled";
    default: return "not_tried";
    }
}

static PyObject *lib_dict(const cp_mgpu_lib *l) {
    return Py_BuildValue("{s:s,s:s,s:i,s:s}", "status", lib_status_name(l->status), "path",
                         l->path, "version", l->version, "reason", l->reason);
}

/* gpu_libraries() -> {"driver": {...}, "nvml": {...}, "cupti": {...}}: what the
 * loader found so far (it loads when a session with gpu=True starts). */
PyObject *cp_py_gpu_libraries(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    const cp_gpu_libs *L = cp_gpu_lib_get();
    PyObject *d = lib_dict(&L->driver), *n = lib_dict(&L->nvml), *c = lib_dict(&L->cupti);
    PyObject *out = NULL;
    if (d && n && c)
        out = Py_BuildValue("{s:O,s:O,s:O}", "driver", d, "nvml", n, "cupti", c);
    Py_XDECREF(d);
    Py_XDECREF(n);
    Py_XDECREF(c);
    return out;
}

/* code_site(code, globals=None) -> int: the process-wide site id the tracer
 * gives a code object ("module.qualname"); 0 for the profiler's own code. */
PyObject *cp_py_code_site(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *code, *globals = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:code_site", &code, &globals))
        return NULL;
    if (!PyCode_Check(code)) {
        PyErr_Format(PyExc_TypeError, "code_site(code): expected a code object, got %s",
                     Py_TYPE(code)->tp_name);
        return NULL;
    }
    if (globals != Py_None && !PyDict_Check(globals)) {
        PyErr_SetString(PyExc_TypeError, "code_site(code, globals): globals must be a dict");
        return NULL;
    }
    cp_py_tracer_classify_ready();
    uint32_t id = cp_py_tracer_code_site((PyCodeObject *)code,
                                         globals == Py_None ? NULL : globals, 1);
    if (id == CP_PY_CODE_SITE_OWN)
        id = 0;
    return PyLong_FromUnsignedLong(id);
}
