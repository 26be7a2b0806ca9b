/* gpuwhere.c -- the GPU synchronization recorder's where-callback
 * (gpu_sync.h, cp_gpu_where_fn): the calling thread's innermost user
 * Python frame as (site id, line).
 *
 * It is called inside a CUPTI callback, at the exit of a call that blocked
 * the host on the GPU, usually with the GIL released around the CUDA call
 * (torch releases it around synchronize and copies).  The frame read is
 * memstack.c's (cp_py_memstack_user_frame): the thread's own frames,
 * frozen while it is in C, with the tracer's classification (standard
 * library and the code_profiler package skipped: a sync inside the
 * facade's fallback wrappers is blamed on the user's line that called
 * them) and the site ids cached on code objects.
 *
 * Registered at module init (cp_py_gpuwhere_init, one line in module.c),
 * which also adds the test-only `_core._gpu_where_probe(release_gil=False)`:
 * it calls the registered callback the way the recorder does and returns
 * (site name, file, line) of the caller, or None.
 */
#include "python/gpuwhere.h"

#include "core/site.h"
#include "gpu/gpu_sync.h"
#include "python/memhook.h"
#include "python/tracer.h"

static int where(uint32_t *site, uint32_t *line) {
    return cp_py_memstack_user_frame(site, line);
}

static PyObject *gpu_where_probe(PyObject *mod, PyObject *args, PyObject *kwargs) {
    (void)mod;
    static char *kw[] = {"release_gil", NULL};
    int release = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:_gpu_where_probe", kw, &release))
        return NULL;
    uint32_t site = 0, line = 0;
    int rc;
    if (release) {
        Py_BEGIN_ALLOW_THREADS rc = cp_gpu_sync_where(&site, &line);
        Py_END_ALLOW_THREADS
    } else {
        rc = cp_gpu_sync_where(&site, &line);
    }
    if (rc != 0)
        Py_RETURN_NONE;
    const cp_site_info *si = cp_site_get(site);
    if (!si)
        Py_RETURN_NONE;
    return Py_BuildValue("(ssI)", si->name, si->file, (unsigned)line);
}

static PyMethodDef methods[] = {
    {"_gpu_where_probe", (PyCFunction)(void (*)(void))gpu_where_probe, METH_VARARGS | METH_KEYWORDS,
     "_gpu_where_probe(release_gil=False) -> (name, file, line) | None\n\nTests: what the GPU "
     "sync recorder's where-callback answers for the calling thread."},
    {NULL, NULL, 0, NULL},
};

int cp_py_gpuwhere_init(PyObject *module) {
    cp_py_tracer_classify_ready();
    cp_gpu_sync_set_where_fn(where);
    return PyModule_AddFunctions(module, methods);
}
