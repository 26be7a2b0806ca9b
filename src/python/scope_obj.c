/* scope_obj.c -- Scope: a C context manager around codeprof_scope_begin/end.
 *
 * Hot path: __enter__ is METH_NOARGS and __exit__ METH_FASTCALL; neither
 * parses keywords or allocates.  The object holds a strong reference to its
 * Session, so the codeprof_session outlives every Scope. */
#include "python/ext.h"

PyObject *cp_py_scope_new(cp_py_session *owner, uint32_t site, uint32_t flags) {
    PyTypeObject *tp = owner->st->scope_type;
    cp_py_scope *self = PyObject_New(cp_py_scope, tp);
    if (!self)
        return NULL;
    /* PyObject_New took a reference to the heap type; dealloc drops it. */
    Py_INCREF(owner);
    self->owner = owner;
    self->site = site;
    self->flags = flags;
    return (PyObject *)self;
}

static void scope_dealloc(PyObject *op) {
    cp_py_scope *self = (cp_py_scope *)op;
    PyTypeObject *tp = Py_TYPE(op);
    Py_CLEAR(self->owner);
    PyObject_Free(op);
    Py_DECREF(tp);
}

static PyObject *scope_enter(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_scope *self = (cp_py_scope *)op;
    codeprof_scope_begin(self->owner->s, self->site, self->flags);
    return Py_NewRef(op);
}

static PyObject *scope_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    (void)args;
    (void)nargs;
    cp_py_scope *self = (cp_py_scope *)op;
    codeprof_scope_end(self->owner->s, self->site, self->flags);
    Py_RETURN_FALSE;
}

static PyObject *scope_get_site(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLong(((cp_py_scope *)op)->site);
}

static PyObject *scope_get_flags(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLong(((cp_py_scope *)op)->flags);
}

static PyObject *scope_repr(PyObject *op) {
    cp_py_scope *self = (cp_py_scope *)op;
    return PyUnicode_FromFormat("<code_profiler._core.Scope site=%u flags=%u>",
                                (unsigned)self->site, (unsigned)self->flags);
}

static PyMethodDef scope_methods[] = {
    {"__enter__", scope_enter, METH_NOARGS, "Open the scope on the calling thread."},
    {"__exit__", (PyCFunction)(void (*)(void))scope_exit, METH_FASTCALL,
     "Close the scope; never swallows exceptions (returns False)."},
    {NULL, NULL, 0, NULL},
};

int cp_py_scope_is_own_method(const PyMethodDef *ml) {
    return ml >= scope_methods &&
           ml < scope_methods + sizeof scope_methods / sizeof scope_methods[0];
}

static PyGetSetDef scope_getset[] = {
    {"site", scope_get_site, NULL, "The site id this scope times.", NULL},
    {"flags", scope_get_flags, NULL, "SCOPE_* flags.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot scope_slots[] = {
    {Py_tp_dealloc, scope_dealloc},
    {Py_tp_repr, scope_repr},
    {Py_tp_methods, scope_methods},
    {Py_tp_getset, scope_getset},
    {Py_tp_doc, "Context manager returned by Session.scope(); enter/exit in C."},
    {0, NULL},
};

PyType_Spec cp_py_scope_spec = {
    .name = "code_profiler._core.Scope",
    .basicsize = sizeof(cp_py_scope),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = scope_slots,
};
