/* model_obj.c -- _core.Model: a finished report model (with its findings)
 * whose views are built as Python objects straight from C, through the
 * same document description as the JSON report (report_json.c over
 * docw.h), so a view equals json.loads of the report's section without
 * rendering or parsing any JSON. */
#include "python/ext.h"
#include <math.h>
#include <stdio.h>

#include "report/docw.h"
#include "report/output.h"
#include "report/report.h"

/* ---- the Python-object backend of the document writer ------------------- */

typedef struct pyw {
    PyObject *root;    /* the finished value (new reference)            */
    PyObject **stack;  /* open containers (borrowed: parents own them)  */
    size_t n, cap;
    PyObject *key;     /* pending object key (new reference)            */
    int err;           /* a Python error is set                          */
} pyw;

/* Adds `v` (a new reference, stolen; NULL: an error is set) where the
 * document is. */
static void add_value(pyw *w, PyObject *v) {
    if (!v) {
        w->err = 1;
        return;
    }
    if (w->err) {
        Py_DECREF(v);
        return;
    }
    if (!w->n) {
        if (w->root) {
            PyErr_SetString(PyExc_RuntimeError, "Model: more than one top-level value");
            w->err = 1;
            Py_DECREF(v);
            return;
        }
        w->root = v;
        return;
    }
    PyObject *top = w->stack[w->n - 1];
    int rc;
    if (PyDict_CheckExact(top)) {
        if (!w->key) {
            PyErr_SetString(PyExc_RuntimeError, "Model: object value without a key");
            rc = -1;
        } else {
            rc = PyDict_SetItem(top, w->key, v);
            Py_CLEAR(w->key);
        }
    } else {
        rc = PyList_Append(top, v);
    }
    Py_DECREF(v);
    if (rc < 0)
        w->err = 1;
}

static void open_container(pyw *w, PyObject *c) {
    if (!c) {
        w->err = 1;
        return;
    }
    if (w->err) {
        Py_DECREF(c);
        return;
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? 2 * w->cap : 64;
        PyObject **ns = PyMem_Realloc(w->stack, ncap * sizeof *ns);
        if (!ns) {
            PyErr_NoMemory();
            w->err = 1;
            Py_DECREF(c);
            return;
        }
        w->stack = ns;
        w->cap = ncap;
    }
    Py_INCREF(c); /* borrowed on the stack once its parent holds it */
    add_value(w, c);
    if (w->err) {
        Py_DECREF(c);
        return;
    }
    w->stack[w->n++] = c;
    Py_DECREF(c);
}

static void close_container(pyw *w) {
    if (w->err)
        return;
    if (!w->n) {
        PyErr_SetString(PyExc_RuntimeError, "Model: closing more than was opened");
        w->err = 1;
        return;
    }
    w->n--;
}

static void p_begin_object(void *c) { open_container(c, PyDict_New()); }
static void p_begin_array(void *c) { open_container(c, PyList_New(0)); }
static void p_end(void *c) { close_container(c); }
static void p_key(void *c, const char *k, size_t n) {
    pyw *w = c;
    if (w->err)
        return;
    Py_CLEAR(w->key);
    w->key = PyUnicode_DecodeUTF8(k, (Py_ssize_t)n, "replace");
    if (!w->key)
        w->err = 1;
}
static void p_string(void *c, const char *s, size_t n) {
    add_value(c, PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "replace"));
}
static void p_null(void *c) { add_value(c, Py_NewRef(Py_None)); }
static void p_bool(void *c, int v) { add_value(c, PyBool_FromLong(v)); }
static void p_int(void *c, int64_t v) { add_value(c, PyLong_FromLongLong((long long)v)); }
static void p_uint(void *c, uint64_t v) {
    add_value(c, PyLong_FromUnsignedLongLong((unsigned long long)v));
}
static void p_dbl(void *c, double v) {
    /* JSON has no NaN or infinities: the JSON backend writes null */
    add_value(c, isfinite(v) ? PyFloat_FromDouble(v) : Py_NewRef(Py_None));
}
static void p_ns(void *c, uint64_t ns) {
    /* Below 2^53, ns and 1e9 are exact doubles, so the quotient is the
     * correctly rounded value of the exact decimal the JSON backend writes
     * (what json.loads reads back).  Above (Unix timestamps), the decimal
     * itself is converted, correctly rounded, as float() does. */
    if (ns < ((uint64_t)1 << 53)) {
        add_value(c, PyFloat_FromDouble((double)ns / 1e9));
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
             (unsigned long long)(ns % 1000000000u));
    double v = PyOS_string_to_double(buf, NULL, NULL);
    add_value(c, v == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(v));
}
static void p_fail(void *c) {
    pyw *w = c;
    if (!w->err && !PyErr_Occurred())
        PyErr_NoMemory();
    w->err = 1;
}
static int p_failed(const void *c) { return ((const pyw *)c)->err; }

static const cp_docw_ops py_ops = {
    p_begin_object, p_end, p_begin_array, p_end, p_key, p_string, p_null,
    p_bool,         p_int, p_uint,        p_dbl, p_ns,  p_fail,   p_failed,
};

/* The document (section NULL) or one top-level section as Python objects.
 * New reference, or NULL with an exception set. */
static PyObject *build(cp_model_ref *ref, const char *section) {
    pyw w = {0};
    cp_docw d = {&py_ops, &w};
    /* the model's pruned tree, kept with it: every view of one model
     * prunes once (NULL on OOM: the writer tries itself and reports it) */
    const struct cp_pruned_tree *pt = NULL;
    if (cp_report_section_needs_tree(section)) {
        Py_BEGIN_ALLOW_THREADS
        pt = cp_model_ref_pruned(ref);
        Py_END_ALLOW_THREADS
    }
    int rc = cp_report_doc_with(cp_model_ref_get(ref), pt, &d, section);
    PyObject *out = NULL;
    if (rc == -2) {
        PyErr_Format(PyExc_ValueError,
                     "Model.report(section): must be one of 'meta', 'config', 'report_policy', "
                     "'performance', 'data_loading', 'memory', 'sampling', 'lines', 'gpu', 'findings', "
                     "'bottlenecks' or None, "
                     "got '%s'",
                     section);
    } else if (rc != 0 || w.err || w.n || !w.root) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
    } else {
        out = w.root;
        w.root = NULL;
    }
    Py_XDECREF(w.root);
    Py_XDECREF(w.key);
    PyMem_Free(w.stack);
    return out;
}

/* ---- the Model type ------------------------------------------------------ */

typedef struct cp_py_model {
    PyObject_HEAD
    cp_model_ref *ref;
} cp_py_model;

static void model_dealloc(PyObject *op) {
    cp_py_model *self = (cp_py_model *)op;
    PyTypeObject *tp = Py_TYPE(op);
    cp_model_ref_release(self->ref);
    self->ref = NULL;
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *model_report(PyObject *op, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"section", NULL};
    const char *section = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:report", kwlist, &section))
        return NULL;
    return build(((cp_py_model *)op)->ref, section);
}

static PyObject *model_get_functions(PyObject *op, void *closure) {
    (void)closure;
    const cp_model *m = cp_model_ref_get(((cp_py_model *)op)->ref);
    uint64_t n = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        n += m->funcs[i].calls > 0;
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *model_get_nodes(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLong(cp_model_ref_get(((cp_py_model *)op)->ref)->nnodes);
}

static PyMethodDef model_methods[] = {
    {"report", (PyCFunction)(void (*)(void))model_report, METH_VARARGS | METH_KEYWORDS,
     "report(section=None) -> dict | list\n\nThe report document (docs/report-schema.md) "
     "as Python objects, equal to json.loads of the JSON report; with `section`, only that "
     "top-level key's value ('meta', 'config', 'report_policy', 'performance', "
     "'data_loading', 'memory', 'findings', 'bottlenecks')."},
    {NULL, NULL, 0, NULL},
};

int cp_py_model_is_own_method(const PyMethodDef *ml) {
    return ml >= model_methods &&
           ml < model_methods + sizeof model_methods / sizeof model_methods[0];
}

static PyGetSetDef model_getset[] = {
    {"functions_profiled", model_get_functions, NULL, "Sites with at least one call.", NULL},
    {"nodes", model_get_nodes, NULL, "Call-tree nodes in the model (thread roots included).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot model_slots[] = {
    {Py_tp_dealloc, model_dealloc},
    {Py_tp_methods, model_methods},
    {Py_tp_getset, model_getset},
    {Py_tp_doc, "A finished report model with its findings (Session.model()); immutable."},
    {0, NULL},
};

PyType_Spec cp_py_model_spec = {
    .name = "code_profiler._core.Model",
    .basicsize = sizeof(cp_py_model),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = model_slots,
};

PyObject *cp_py_model_new(cp_py_state *st, cp_model_ref *ref) {
    cp_py_model *self = PyObject_New(cp_py_model, st->model_type);
    if (!self) {
        cp_model_ref_release(ref);
        return NULL;
    }
    self->ref = ref;
    return (PyObject *)self;
}
