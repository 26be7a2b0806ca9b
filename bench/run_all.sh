#!/usr/bin/env bash
# Runs the benchmarks in bench/ and prints everything (make bench runs this).
#
#   bash bench/run_all.sh            # every benchmark (about 20-25 minutes)
#   bash bench/run_all.sh engine     # only the "Core engine v2" set (RESULTS.md,
#                                    # that section; about 10 minutes):
#                                    #   bench_scope, bench_scope --callgrind,
#                                    #   bench_snapshot, and per Python
#                                    #   bench_fib.py --attribute, bench_report_gap.py,
#                                    #   bench_process.py --attribute
#
# Pythons: .venv/bin/python (3.11, torch) and .venv312/bin/python (3.12,
# no torch); a missing venv is skipped with a note.  BENCH_PYTHONS overrides
# the list (space separated).  The C benchmarks are built against a Release
# build of libcodeprof.a in $BENCH_BUILD (default build-bench/ in the tree).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
BUILD="${BENCH_BUILD:-$ROOT/build-bench}"
PYTHONS="${BENCH_PYTHONS:-$ROOT/.venv/bin/python $ROOT/.venv312/bin/python}"
SET="${1:-all}"
case "$SET" in
    all|engine) ;;
    *) echo "usage: bash bench/run_all.sh [all|engine]" >&2; exit 2 ;;
esac
status=0

echo "=== machine ==="
lscpu | head -n 15
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "=== C: building libcodeprof (Release) in $BUILD ==="
# Always (re)build: incremental, so the figures are for the current sources.
lib=""
mkdir -p "$BUILD"
if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
         -DCODEPROF_BUILD_TESTS=OFF >"$BUILD/bench-build.log" 2>&1 &&
   cmake --build "$BUILD" --target codeprof_static -j2 >>"$BUILD/bench-build.log" 2>&1; then
    lib="$(find "$BUILD" -name 'libcodeprof.a' | head -n 1)"
else
    echo "build failed; see $BUILD/bench-build.log"; status=1
fi

cbench() { # name: build bench/<name>.c against $lib into $BUILD/<name>
    [ -n "$lib" ] || { echo "$1: skipped (no libcodeprof.a)"; return 1; }
    cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude \
       "bench/$1.c" "$lib" -lpthread -ldl -lm -o "$BUILD/$1" ||
        { echo "$1: compile failed"; return 1; }
}

echo
echo "=== C: bench_scope (scope begin+end vs its clock reads) ==="
if cbench bench_scope; then
    "$BUILD/bench_scope" || status=1
    echo
    echo "=== C: bench_scope --callgrind (instructions per pair) ==="
    "$BUILD/bench_scope" --callgrind || status=1
else
    status=1
fi

echo
echo "=== C: bench_snapshot (reports taken while a thread records) ==="
if cbench bench_snapshot; then
    "$BUILD/bench_snapshot" || status=1
else
    status=1
fi

echo
echo "=== C: bench_export_trace (the 1M-event Chrome trace: size, write time) ==="
if cbench bench_export_trace; then
    "$BUILD/bench_export_trace" || status=1
else
    status=1
fi

for py in $PYTHONS; do
    if [ ! -x "$py" ]; then
        echo; echo "=== $py: not found, skipped ==="; continue
    fi
    echo
    echo "=== $py: bench_fib (tracer vs cProfile: instructions, CPU, drain thread) ==="
    "$py" bench/bench_fib.py --attribute || status=1
    echo
    echo "=== $py: bench_report_gap (reports from Python while a traced thread records) ==="
    "$py" bench/bench_report_gap.py || status=1
    echo
    echo "=== $py: bench_process (codeprof run vs python -m cProfile, whole process) ==="
    "$py" bench/bench_process.py --attribute || status=1
    [ "$SET" = engine ] && continue
    echo
    echo "=== $py: bench_tracer ==="
    "$py" bench/bench_tracer.py --repeat 5 || status=1
    echo
    echo "=== $py: bench_context ==="
    "$py" bench/bench_context.py || status=1
    echo
    echo "=== $py: bench_report ==="
    "$py" bench/bench_report.py || status=1
    echo
    echo "=== $py: bench_data (data-loading instruments vs the bare loader) ==="
    "$py" bench/bench_data.py || status=1
    echo
    echo "=== $py: bench_exports (every export of the demo's run) ==="
    if "$py" -c "import torch, cv2" 2>/dev/null; then
        "$py" bench/bench_exports.py || status=1
    else
        echo "skipped: the demo needs torch and opencv"
    fi
    if "$py" -c "import torch, cv2" 2>/dev/null; then
        echo "=== $py: bench_views (the demo: report size, view cost, codeprof run vs tracer alone) ==="
        "$py" bench/bench_views.py --runs 3 || status=1
    else
        echo "=== $py: bench_views skipped (the demo needs torch and cv2) ==="
    fi
    echo "=== $py: bench_sampling (stack sampler at 1 kHz / 10 ms beside py-spy, austin, pyinstrument) ==="
    "$py" bench/bench_sampling.py --rounds 5 || status=1
    echo "=== $py: bench_memory (memory modes beside tracemalloc(1) and memray) ==="
    "$py" bench/bench_memory.py --runs 5 || status=1
    if command -v valgrind >/dev/null 2>&1; then
        echo "=== $py: bench_memory --callgrind (instructions of the allocation-heavy loop) ==="
        "$py" bench/bench_memory.py --callgrind --scale 0.05 || status=1
    fi
done
if [ -n "$lib" ]; then
    echo
    echo "=== native: bench_native_malloc (ns per malloc+free: bare, preloaded, codeprof exec) ==="
    py0="${PYTHONS%% *}"
    if cc -O2 bench/bench_native_malloc.c -o "$BUILD/bench_native_malloc" &&
       preload="$("$py0" -c 'from code_profiler import native; print(native.preload_library_path())' 2>/dev/null)" &&
       [ -n "$preload" ]; then
        for round in 1 2 3; do
            echo "-- round $round: bare, preloaded idle, exec sampled, exec all"
            "$BUILD/bench_native_malloc"
            LD_PRELOAD="$preload" "$BUILD/bench_native_malloc"
            "$py0" -m code_profiler exec -q -o "$BUILD/bnm.json" -- "$BUILD/bench_native_malloc"
            "$py0" -m code_profiler exec -q --mode all -o "$BUILD/bnm.json" -- "$BUILD/bench_native_malloc"
        done
    else
        echo "bench_native_malloc: skipped (no compiler or no preload library)"
    fi
fi
exit $status
