"""Native code calling the public C API lands in the Python profiler's
report: the C API is exported by the loaded _core, one copy of the core."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from code_profiler import ProfilerConfig, VideoOpusClipProfiler
from code_profiler import _core
from code_profiler.native import c_api, get_include, native_library_path


def test_c_scopes_through_ctypes_land_in_the_python_report():
    prof = VideoOpusClipProfiler(ProfilerConfig(save_profiles=False))
    lib = c_api()
    site = lib.codeprof_site(b"native_decode", b"decoder.c", 12, _core.SITE_SCOPE)
    assert site > 0
    prof.start_profiling()
    with prof.profiling_context("python_stage"):
        for _ in range(3):
            lib.codeprof_scope_begin(None, site, 0)  # NULL: the current session
            lib.codeprof_scope_end(None, site, 0)
    prof.stop_profiling()
    funcs = {f["function"]: f for f in prof.get_comprehensive_report()["performance"]["functions"]}
    assert funcs["native_decode"]["calls"] == 3
    assert funcs["native_decode"]["file"] == "decoder.c"
    assert funcs["python_stage"]["calls"] == 1


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_library_compiled_against_the_header(tmp_path):
    src = tmp_path / "stage.c"
    src.write_text(textwrap.dedent("""
        #include <dlfcn.h>
        #include "codeprof/codeprof.h"
        typedef uint32_t (*site_fn)(const char *, const char *, uint32_t, codeprof_site_kind);
        typedef void (*scope_fn)(codeprof_session *, uint32_t, uint32_t);
        int run_stage(const char *core_path, int n) {
            void *h = dlopen(core_path, RTLD_NOW | RTLD_NOLOAD);
            if (!h) return -1;
            site_fn site = (site_fn)dlsym(h, "codeprof_site");
            scope_fn begin = (scope_fn)dlsym(h, "codeprof_scope_begin");
            scope_fn end = (scope_fn)dlsym(h, "codeprof_scope_end");
            if (!site || !begin || !end) return -2;
            uint32_t id = site("c_resize", __FILE__, __LINE__, CODEPROF_SITE_SCOPE);
            for (int i = 0; i < n; i++) { begin(NULL, id, 0); end(NULL, id, 0); }
            return 0;
        }
    """))
    so = tmp_path / "libstage.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-I", get_include(), str(src), "-o", str(so),
                    "-ldl"], check=True, capture_output=True)
    import ctypes
    stage = ctypes.CDLL(str(so))
    prof = VideoOpusClipProfiler(ProfilerConfig(save_profiles=False))
    prof.start_profiling()
    assert stage.run_stage(native_library_path().encode(), 5) == 0
    prof.stop_profiling()
    funcs = {f["function"]: f for f in prof.get_comprehensive_report()["performance"]["functions"]}
    assert funcs["c_resize"]["calls"] == 5
