#!/usr/bin/env bash
# The whole test suite, built once, run N times in a row (default 10) while two busy
# loops keep both cores busy: how issue #15's "passes 10 times in a row under load" is
# checked. Not part of `make test`. Usage: scripts/stress-tests.sh [N]
# Each run's output is in target/stress/run-<i>.log; the summary lines on stdout.
set -u
runs=${1:-10}
cd "$(dirname "$0")/.."
mkdir -p target/stress
export CI=true
cargo nextest run --no-run || exit 1
yes > /dev/null & hog1=$!
yes > /dev/null & hog2=$!
trap 'kill $hog1 $hog2 2>/dev/null' EXIT
failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if cargo nextest run --no-fail-fast > "target/stress/run-$i.log" 2>&1; then rc=0; else rc=$?; failed=$((failed + 1)); fi
  echo "run $i: rc=$rc $(( $(date +%s) - start ))s $(grep -E '^ *Summary' "target/stress/run-$i.log") load=$(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "$((runs - failed)) of $runs runs passed"
[ "$failed" -eq 0 ]
