#!/usr/bin/env bash
# The planted-bottleneck check, repeated: every plant of
# examples/video_pipeline.py runs N times in a row (default 5, fresh
# processes each time), and each run's top finding must name its planted
# cause (tests/python/integration/test_planted_bottlenecks.py; CI runs each
# plant once).  Prints the machine, the load, and pytest's verdict per run.
#
#   bash bench/planted_repeat.sh [N]      (PLANT_SELECT=expr: pytest -k expr)
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
N="${1:-5}"
PY="${BENCH_PYTHON:-$ROOT/.venv/bin/python}"
echo "=== planted bottlenecks x $N ==="
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), CPUs: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
# the reports stay in $BASETEMP (pytest's default one is shared and pruned)
BASETEMP="${PLANT_BASETEMP:-$(mktemp -d /tmp/codeprof-plants.XXXXXX)}"
mkdir -p "$BASETEMP" || exit 1
LOG="$BASETEMP/pytest.log"
start=$(date +%s)
CODEPROF_PLANT_RUNS="$N" "$PY" -m pytest -q -rA -p no:cacheprovider --basetemp="$BASETEMP/t" \
    tests/python/integration/test_planted_bottlenecks.py ${PLANT_SELECT:+-k "$PLANT_SELECT"} \
    > "$LOG" 2>&1
rc=$?
grep -E "^(PASSED|FAILED|ERROR)|passed|failed" "$LOG"
echo "reports and the full log: $BASETEMP"
echo "wall: $(( $(date +%s) - start )) s, load after: $(cut -d' ' -f1-3 /proc/loadavg), exit $rc"
exit "$rc"
