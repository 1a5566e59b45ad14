#!/bin/bash
# Replays the benchmark's incremental day from the snapshot benchmarks/run.py --snapshot left
# (OUT/after_full_<N>.duckdb: the full build as of the day before the last, with the last day's
# arrivals held back), with the code of another tree, and prints its wall time and node timeline.
# The page cache is dropped before the day (root only), so runs compare alike; DROP=0 keeps it,
# as the benchmark's day finds it after the full build.
#
#   [DROP=0] benchmarks/experiments/replay_day.sh TREE LABEL [prepare]
#
# TREE: a checkout (e.g. a git worktree at the commit to measure). LABEL: a directory under
# OUT/replay for the copy and its target. `prepare`: first rebuild the identity models with
# TREE's code as of the day before (not timed), for a commit whose identity tables differ from
# the snapshot's. Needs disk for one copy of the snapshot (about 21 GB at 1M customers).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$REPO/benchmarks/out}
CUSTOMERS=${CUSTOMERS:-1000000}
TREE=$(cd "$1" && pwd); LABEL=$2; PREP=${3:-}
D=$OUT/replay/$LABEL
mkdir -p "$D"; rm -f "$D"/bench_"$CUSTOMERS".duckdb*
# The views reference the catalog by the file's name, so the copy keeps it.
cp "$OUT/after_full_$CUSTOMERS.duckdb" "$D/bench_$CUSTOMERS.duckdb"
printf "version: 1\nproject_dir: %s\n" "$TREE" > "$D/bench.yml"
export PHASEGATE_DUCKDB_PATH=$D/bench_$CUSTOMERS.duckdb PHASEGATE_TARGET=duckdb DBT_TARGET_PATH=$D/target PYTHONPATH=$TREE/python
PY=$REPO/.venv/bin/python; PG=$REPO/.venv/bin/phasegate
cd "$TREE"
if [ "$PREP" = prepare ]; then
  "$PG" build --full-refresh --as-of 2026-11-19 --config "$D/bench.yml" \
    --select "int_identity_edges_normalized int_identifiers_stitched phasegate__identity_guard_report" > "$D/prepare.log" 2>&1
fi
"$PY" -c "
import os, sys
sys.path.insert(0, '$REPO/benchmarks')
import run
run.duckdb_sql(run.land_sql(), dict(os.environ))
"
if [ "${DROP:-1}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
/usr/bin/time -v "$PG" build --as-of 2026-11-20 --config "$D/bench.yml" > "$D/day.log" 2> "$D/day.time"
grep -E "Elapsed|Maximum resident" "$D/day.time"
"$PY" "$REPO/benchmarks/timeline.py" --min-seconds 0.5 "$D/target/run_results.json"
