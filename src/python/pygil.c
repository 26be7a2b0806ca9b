/* pygil.c -- the GIL structure's address (pygil.h).
 *
 * The layout is internal (pycore_interp.h / pycore_runtime.h); on 3.12+
 * those headers clash with the public ones once Python.h was included
 * without Py_BUILD_CORE, so this one file is compiled as core code: it
 * includes nothing else and exports only cp_py_gil_range. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#if PY_VERSION_HEX >= 0x030C0000
#include <internal/pycore_interp.h>
#endif

#include "python/pygil.h"

int cp_py_gil_range(uintptr_t *lo, uintptr_t *hi) {
#if PY_VERSION_HEX >= 0x030C0000
    PyInterpreterState *interp = PyInterpreterState_Main();
    struct _gil_runtime_state *gil = interp ? interp->ceval.gil : NULL;
#else
    struct _gil_runtime_state *gil = &_PyRuntime.ceval.gil;
#endif
    if (!gil)
        return -1;
    *lo = (uintptr_t)gil;
    *hi = (uintptr_t)(gil + 1);
    return 0;
}
