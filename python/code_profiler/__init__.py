"""code_profiler: a profiler for Python/PyTorch video pipelines.

The Python API of the Video-OpusClip profiling guide, as a thin facade over
libcodeprof (the C extension ``code_profiler._core``): the C core measures,
aggregates, analyses and writes reports; this package translates the
guide's calls.

    from code_profiler import ProfilerConfig, VideoOpusClipProfiler

    profiler = VideoOpusClipProfiler(create_profiler_config("detailed"))
    profiler.start_profiling()
    with profiler.profiling_context("epoch"):
        train_one_epoch()
    profiler.stop_profiling()
    print(profiler.identify_bottlenecks())

See docs/python-api.md.
"""
from . import _core
from .config import LEVELS, ProfilerConfig, create_profiler_config
from .profiler import (PerformanceProfiler, VideoOpusClipProfiler, get_current_profiler,
                       get_default_profiler, profile_class, profile_function)

__version__: str = _core.VERSION

__all__ = [
    "LEVELS",
    "PerformanceProfiler",
    "ProfilerConfig",
    "VideoOpusClipProfiler",
    "__version__",
    "create_profiler_config",
    "get_current_profiler",
    "get_default_profiler",
    "profile_class",
    "profile_function",
]
