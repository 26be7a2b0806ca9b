/* pygil.h -- where the running interpreter's GIL structure lives (pygil.c),
 * for the stack sampler's GIL-wait test (sampler.h). */
#ifndef CP_PY_PYGIL_H
#define CP_PY_PYGIL_H

#include <stdint.h>

/* The address range [*lo, *hi) of the main interpreter's GIL state.  Call
 * with the GIL held.  0, or -1 when unknown. */
int cp_py_gil_range(uintptr_t *lo, uintptr_t *hi);

#endif /* CP_PY_PYGIL_H */
