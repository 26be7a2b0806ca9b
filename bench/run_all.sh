#!/usr/bin/env bash
# Runs every benchmark in bench/ and prints everything.
#
#   bash bench/run_all.sh            # from the repository root
#
# Pythons: .venv/bin/python (3.11, torch) and .venv312/bin/python (3.12,
# no torch); a missing venv is skipped with a note.  BENCH_PYTHONS overrides
# the list (space separated).  The C benchmark is built against a Release
# build of libcodeprof.a in $BENCH_BUILD (default /tmp/codeprof-bench-build).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
BUILD="${BENCH_BUILD:-/tmp/codeprof-bench-build}"
PYTHONS="${BENCH_PYTHONS:-$ROOT/.venv/bin/python $ROOT/.venv312/bin/python}"
status=0

echo "=== machine ==="
lscpu | head -n 15
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

echo
echo "=== C: bench_scope (scope begin+end pair) ==="
# Always (re)build: incremental, so the figure is for the current sources.
lib=""
echo "building libcodeprof (Release) in $BUILD ..."
if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
         -DCODEPROF_BUILD_TESTS=OFF >"$BUILD.log" 2>&1 &&
   cmake --build "$BUILD" --target codeprof_static -j2 >>"$BUILD.log" 2>&1; then
    lib="$(find "$BUILD" -name 'libcodeprof.a' | head -n 1)"
else
    echo "build failed; see $BUILD.log"
fi
if [ -n "$lib" ]; then
    if cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude \
          bench/bench_scope.c "$lib" -lpthread -ldl -lm -o "$BUILD/bench_scope"; then
        "$BUILD/bench_scope" || status=1
    else
        echo "bench_scope: compile failed"; status=1
    fi
else
    echo "bench_scope: skipped (no libcodeprof.a)"; status=1
fi

for py in $PYTHONS; do
    if [ ! -x "$py" ]; then
        echo; echo "=== $py: not found, skipped ==="; continue
    fi
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
done
exit $status
