"""Native stages in the same report as Python code.

``code_profiler._core`` contains libcodeprof and exports its public C API
(every ``codeprof_*`` function of ``codeprof/codeprof.h``; nothing else).
Native code running in the same process reaches *that* copy of the core,
and so the sessions the Python profiler started, by looking the functions
up in the already-loaded module rather than linking a second copy:

* from C: ``void *h = dlopen(native_library_path(), RTLD_NOW | RTLD_NOLOAD);``
  then ``dlsym(h, "codeprof_scope_begin")`` etc.; compile with
  ``-I`` :func:`get_include`.  A session argument of NULL means the session
  the Python profiler started last.
* from Python: ``ctypes.CDLL(native_library_path())`` (see :func:`c_api`).

A standalone C program (no Python) links ``libcodeprof`` instead.

The native heap hooks (``libcodeprof_malloc.so``, docs/native-memory.md) are
installed next to ``_core``: :func:`preload_library_path` finds them for
``codeprof exec`` and ``codeprof run --native-memory``, and
:func:`preload_active` tells whether they are loaded in this process.
"""
from __future__ import annotations

import ctypes
import os

from . import _core

__all__ = ["c_api", "get_include", "native_library_path", "preload_active",
           "preload_library_path", "PRELOAD_LIBRARY"]

#: File name of the native heap hooks library.
PRELOAD_LIBRARY = "libcodeprof_malloc.so"


def native_library_path() -> str:
    """Path of the loaded module that exports this process's C API."""
    path: str = _core.__file__  # type: ignore[assignment]
    return path


def get_include() -> str:
    """Directory to add with -I to compile against ``codeprof/codeprof.h``."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "include")
    if os.path.isdir(os.path.join(installed, "codeprof")):
        return installed
    # a source checkout
    return os.path.abspath(os.path.join(here, "..", "..", "include"))


def c_api() -> ctypes.CDLL:
    """The C API of this process's core through ctypes, with the argument
    and result types of the scope functions declared."""
    lib = ctypes.CDLL(native_library_path())
    lib.codeprof_site.restype = ctypes.c_uint32
    lib.codeprof_site.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_int]
    for name in ("codeprof_scope_begin", "codeprof_scope_end"):
        fn = getattr(lib, name)
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
    lib.codeprof_session_current.restype = ctypes.c_void_p
    lib.codeprof_session_current.argtypes = []
    return lib


def preload_library_path() -> str:
    """Absolute path of ``libcodeprof_malloc.so``: ``$CODEPROF_MALLOC_LIB``
    when set, else the copy installed next to ``_core``.  FileNotFoundError
    naming the places looked at when there is none (a build without it:
    not Linux, or a sanitizer build)."""
    env = os.environ.get("CODEPROF_MALLOC_LIB")
    if env:
        if os.path.isfile(env):
            return os.path.abspath(env)
        raise FileNotFoundError(f"CODEPROF_MALLOC_LIB names '{env}', which is not a file "
                                f"(expected the path of {PRELOAD_LIBRARY})")
    here = os.path.dirname(os.path.abspath(native_library_path()))
    path = os.path.join(here, PRELOAD_LIBRARY)
    if os.path.isfile(path):
        return path
    raise FileNotFoundError(f"{PRELOAD_LIBRARY} is not installed next to code_profiler._core "
                            f"(looked for '{path}'); this build has no native heap hooks "
                            "(they are built on Linux, outside sanitizer builds)")


def preload_active() -> bool:
    """True when the native heap hooks are loaded in this process (its
    tracker is then the one the Python session drives)."""
    try:
        return hasattr(ctypes.CDLL(None), "codeprof_heap_ops_v1")
    except OSError:
        return False
