"""``python -m code_profiler ...`` is the ``codeprof`` command."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
