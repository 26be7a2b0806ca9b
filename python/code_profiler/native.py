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
"""
from __future__ import annotations

import ctypes
import os

from . import _core

__all__ = ["c_api", "get_include", "native_library_path"]


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
