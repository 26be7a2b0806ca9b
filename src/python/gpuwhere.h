/* gpuwhere.h -- the GPU synchronization recorder's where-callback
 * (gpuwhere.c): registered at module init. */
#ifndef CP_PY_GPUWHERE_H
#define CP_PY_GPUWHERE_H

#include <Python.h>

/* Registers the where-callback (cp_gpu_sync_set_where_fn) and adds the
 * test-only _core._gpu_where_probe to `module`.  0, or -1 with an
 * exception set.  With the GIL. */
int cp_py_gpuwhere_init(PyObject *module);

#endif /* CP_PY_GPUWHERE_H */
