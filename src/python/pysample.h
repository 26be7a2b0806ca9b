/* pysample.h -- the stack sampler's reader for CPython (pysample.c): reads
 * every Python thread's frames without the GIL, through a fault-safe copy
 * of this process's memory, for src/sampling/sampler.c. */
#ifndef CP_PY_PYSAMPLE_H
#define CP_PY_PYSAMPLE_H

#include "python/ext.h"

/* Module exec (GIL held): registers the reader (cp_sampler_set_reader),
 * the GIL's address range, an atexit hook that stops the reader before
 * finalization, and an os.register_at_fork(after_in_child) hook that
 * re-arms samplers in fork children.  0, or -1 with an exception set. */
int cp_py_sample_init(PyObject *module);

/* Fault-safe copy of `n` bytes at `addr` in this process into `dst`:
 * 0, or -1 when any of it is unmapped (never faults).  Any thread, but
 * calls must not overlap (the pipe fallback is one pipe): the reader's
 * lock serialises them. */
int cp_py_safe_read(void *dst, const void *addr, size_t n);

#endif /* CP_PY_PYSAMPLE_H */
