/* memhook.h -- the Python side of memory measurement (issue 8).
 *
 *   memhook.c   PyMem_SetAllocator wrappers for the raw, mem and object
 *               domains, and a wrapper of numpy's default data allocator
 *               (its PyDataMem_Handler), reporting to the heap tracker
 *               (src/memory/heap.h) as CP_HEAP_PYRAW/PYMEM/PYOBJ/NUMPY.
 *   memstack.c  the tracker's stack callback: the calling thread's Python
 *               frames as (site id, line), innermost first.
 *   gchook.c    a C callable in gc.callbacks feeding src/memory/gcstats.h.
 *
 * Session.start() calls cp_py_memhooks_start() once the session runs;
 * Session.stop() and the Session's dealloc call cp_py_memhooks_stop().
 * The hooks are process-wide; the first memory-profiling session that
 * starts owns them until it stops.  Hooks that another tool wrapped in the
 * meantime (tracemalloc, a second profiler) are left in place, inert (they
 * only forward while the tracker is not recording) and reused by the next
 * start.  All functions here need the GIL.  docs/memory-hooks.md.
 */
#ifndef CP_PY_MEMHOOK_H
#define CP_PY_MEMHOOK_H

#include "memory/heap.h"
#include "python/ext.h"

/* Installs what `owner`'s config asks for (memory_mode > 0: the allocator
 * hooks, numpy's and the stack callback; CODEPROF_CFG_GC: the gc callback).
 * Problems (no numpy, an unknown numpy handler) become session warnings;
 * never raises. */
void cp_py_memhooks_start(cp_py_session *owner);
/* Removes what `owner` installed (a no-op for another session).  Never
 * raises. */
void cp_py_memhooks_stop(cp_py_session *owner);

/* _core._memhooks_state() -> dict: what is installed now (tests, docs):
 * {"raw"|"mem"|"object": "installed"|"inert"|"off", "numpy": same or
 * "waiting" (for numpy's import) or "unavailable", "numpy_reason": str|None, "gc": bool, "owner": bool,
 * "gc_counters": {"collections"|"collected"|"uncollectable"|"time_ns":
 * [gen0, gen1, gen2]} (gcstats.h, process-wide)}. */
PyObject *cp_py_memhooks_state(PyObject *mod, PyObject *unused);

/* ---- between memhook.c, memstack.c and gchook.c ---- */

/* The tracker's stack callback (memstack.c). */
uint32_t cp_py_memstack(cp_heap_frame *out, uint32_t max);
/* Once per start, with the GIL: prepares what the callback reads. */
void cp_py_memstack_ready(void);
/* The calling thread's innermost user frame (not the standard library's,
 * not the code_profiler package's) as (site id, line), read as
 * cp_py_memstack reads frames (with or without the GIL); 0 when found, -1
 * when none (or its site is not known yet without the GIL).  For the GPU
 * synchronization recorder's where-callback (gpuwhere.c). */
int cp_py_memstack_user_frame(uint32_t *site, uint32_t *line);
/* With the GIL: names (classifies and interns) the code objects of the
 * calling thread's innermost `max` frames, so a read without the GIL finds
 * them cached (the GPU operations call it at their start). */
void cp_py_memstack_name_frames(int max);

/* gchook.c: append / remove the gc.callbacks entry.  0 or -1 (no exception
 * left set: a failure is reported as a session warning by the caller). */
int cp_py_gchook_install(codeprof_session *s);
/* Imports gc once, when the extension module is executed (before any
 * tracer can see the import).  0 or -1 with an exception set. */
int cp_py_gchook_init(void);
void cp_py_gchook_uninstall(void);
int cp_py_gchook_installed(void);

#endif /* CP_PY_MEMHOOK_H */
