#!/usr/bin/env bash
# The planted-bottleneck check, repeated: every plant of
# examples/video_pipeline.py runs N times in a row (default 5, fresh
# processes each time), and each run's top finding must name its planted
# cause (tests/python/integration/test_planted_bottlenecks.py; CI runs each
# plant once).  Prints the machine, the load, and pytest's verdict per run.
#
#   bash bench/planted_repeat.sh [N]
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
N="${1:-5}"
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
echo "=== planted bottlenecks x $N ==="
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), CPUs: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
CODEPROF_PLANT_RUNS="$N" "$PY" -m pytest -q -rA -p no:cacheprovider \
    tests/python/integration/test_planted_bottlenecks.py 2>&1 | grep -E "^(PASSED|FAILED|ERROR)|passed|failed"
rc=${PIPESTATUS[0]}
echo "wall: $(( $(date +%s) - start )) s, load after: $(cut -d' ' -f1-3 /proc/loadavg), exit $rc"
exit "$rc"
