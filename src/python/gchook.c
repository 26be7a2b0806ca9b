/* gchook.c -- garbage-collector measurement through gc.callbacks
 * (memhook.h).
 *
 * A C callable is appended to gc.callbacks at start and removed (by
 * identity) at stop.  CPython calls it with ("start"|"stop", info) around
 * every collection it runs with callbacks (automatic ones and
 * gc.collect(); not the final collections of interpreter shutdown), with
 * info["generation"], and at "stop" info["collected"] and
 * info["uncollectable"], the same numbers it adds to gc.get_stats().  The
 * callable feeds src/memory/gcstats.h, which takes the times, and opens a
 * scope "gc (generation N)" of the session from "start" to "stop" (so GC
 * pauses show in the call tree and the timeline, under the code that
 * triggered them, with finalizers nested).  It creates no object: the keys
 * are interned once, at install.
 */
#include "python/memhook.h"

#include <stdio.h>

#include "memory/gcstats.h"

static PyObject *g_cb; /* the callable (strong; kept for the process) */
static PyObject *g_key_gen, *g_key_collected, *g_key_uncollectable;
static int g_installed;
/* Each collection is also a scope "gc (generation N)" of the session, so
 * GC pauses show in the call tree and the timeline where they happened. */
static codeprof_session *g_session;
static uint32_t g_site[3];
static int g_open[3]; /* a scope of ours is open for that generation */

/* info[key] as a non-negative integer, 0 when absent or not an int. */
static uint64_t info_u64(PyObject *info, PyObject *key) {
    PyObject *v = PyDict_Check(info) ? PyDict_GetItemWithError(info, key) : NULL; /* borrowed */
    if (!v || !PyLong_Check(v)) {
        PyErr_Clear();
        return 0;
    }
    long long x = PyLong_AsLongLong(v);
    if (x < 0) {
        PyErr_Clear();
        return 0;
    }
    return (uint64_t)x;
}

static PyObject *gc_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyUnicode_Check(args[0]))
        Py_RETURN_NONE;
    PyObject *phase = args[0], *info = args[1];
    uint64_t g = info_u64(info, g_key_gen);
    int gen = g <= 2 ? (int)g : -1;
    if (gen < 0)
        Py_RETURN_NONE;
    if (PyUnicode_CompareWithASCIIString(phase, "start") == 0) {
        cp_gcstats_on_start(gen);
        if (g_session && g_site[gen] && !g_open[gen]) {
            codeprof_scope_begin(g_session, g_site[gen], 0);
            g_open[gen] = 1;
        }
    } else if (PyUnicode_CompareWithASCIIString(phase, "stop") == 0) {
        if (g_open[gen]) { /* only a scope we began (not one of before install) */
            codeprof_scope_end(g_session, g_site[gen], 0);
            g_open[gen] = 0;
        }
        cp_gcstats_on_stop(gen, info_u64(info, g_key_collected),
                           info_u64(info, g_key_uncollectable));
    }
    Py_RETURN_NONE;
}

static PyMethodDef gc_callback_def = {
    "_codeprof_gc_callback", (PyCFunction)(void (*)(void))gc_callback, METH_FASTCALL,
    "code_profiler's gc.callbacks entry: counts collections per generation, the objects they "
    "collect and their time."};

/* The gc module, imported when _core is (cp_py_gchook_init): importing it
 * at start, with the tracer already on, put importlib's frames in the
 * user's call tree. */
static PyObject *g_gc_module;

int cp_py_gchook_init(void) {
    if (!g_gc_module)
        g_gc_module = PyImport_ImportModule("gc");
    return g_gc_module ? 0 : -1;
}

static PyObject *gc_callbacks_list(void) {
    PyObject *gc = g_gc_module;
    Py_XINCREF(gc);
    if (!gc)
        gc = PyImport_ImportModule("gc");
    PyObject *cbs = gc ? PyObject_GetAttrString(gc, "callbacks") : NULL;
    Py_XDECREF(gc);
    if (cbs && !PyList_Check(cbs)) {
        Py_DECREF(cbs);
        cbs = NULL;
    }
    return cbs;
}

int cp_py_gchook_install(codeprof_session *s) {
    if (g_installed)
        return 0;
    for (int gen = 0; gen < 3; gen++) {
        char name[32];
        snprintf(name, sizeof name, "gc (generation %d)", gen);
        g_site[gen] = codeprof_site(name, NULL, 0, CODEPROF_SITE_SCOPE);
        g_open[gen] = 0;
    }
    g_session = s;
    if (!g_cb) {
        g_key_gen = PyUnicode_InternFromString("generation");
        g_key_collected = PyUnicode_InternFromString("collected");
        g_key_uncollectable = PyUnicode_InternFromString("uncollectable");
        g_cb = PyCFunction_New(&gc_callback_def, NULL);
        if (!g_cb || !g_key_gen || !g_key_collected || !g_key_uncollectable) {
            Py_CLEAR(g_cb);
            PyErr_Clear();
            return -1;
        }
    }
    PyObject *cbs = gc_callbacks_list();
    int rc = cbs ? PyList_Append(cbs, g_cb) : -1;
    Py_XDECREF(cbs);
    if (rc < 0) {
        PyErr_Clear();
        return -1;
    }
    g_installed = 1;
    return 0;
}

void cp_py_gchook_uninstall(void) {
    if (!g_installed)
        return;
    g_installed = 0;
    for (int gen = 0; gen < 3; gen++) {
        if (g_open[gen]) /* stopped from a finalizer during a collection */
            codeprof_scope_end(g_session, g_site[gen], 0);
        g_open[gen] = 0;
    }
    g_session = NULL;
    PyObject *cbs = gc_callbacks_list();
    if (!cbs) {
        PyErr_Clear(); /* gc gone (shutdown): nothing calls it any more */
        return;
    }
    for (Py_ssize_t i = PyList_GET_SIZE(cbs) - 1; i >= 0; i--) {
        if (PyList_GET_ITEM(cbs, i) == g_cb) {
            if (PySequence_DelItem(cbs, i) < 0)
                PyErr_Clear();
            break;
        }
    }
    Py_DECREF(cbs);
}

int cp_py_gchook_installed(void) {
    return g_installed;
}
