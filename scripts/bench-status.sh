#!/bin/sh
# `sundial status` against a running agent with 1,000 jobs (issue 7: answer in < 50 ms).
# Release build; a generated config whose jobs are not due during the run, and a state database
# holding 50 finished runs per job (so every job has a last outcome to look up).
# Usage: scripts/bench-status.sh [JOBS] [RUNS]
set -eu
JOBS=${1:-1000}
RUNS=${2:-50}
cd "$(dirname "$0")/.."
swift build -c release --product sundial >/dev/null
swift build -c release --product sundial-bench >/dev/null
BIN=.build/release
TMP=$(mktemp -d)
trap 'kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; rm -rf "$TMP"' EXIT
$BIN/sundial-bench gen-config "$TMP/jobs" "$JOBS" 10 --not-due
$BIN/sundial-bench seed-status "$TMP/jobs" "$TMP/state" "$RUNS"
$BIN/sundial run "$TMP/jobs" --state "$TMP/state" --log "$TMP/agent.log" --watch off &
AGENT=$!
i=0
until $BIN/sundial status --state "$TMP/state" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "the agent did not answer"; exit 1; }
    sleep 0.05
done
# The round trip alone (request, answer, decoding), then the whole command as a user runs it.
$BIN/sundial-bench status-client "$TMP/state/sundial.sock" 200
for format in text json; do
    times=""
    n=0
    while [ $n -lt 50 ]; do
        t0=$(date +%s%N)
        $BIN/sundial status --state "$TMP/state" --format $format >/dev/null
        t1=$(date +%s%N)
        times="$times $(( (t1 - t0) / 1000 ))"
        n=$((n + 1))
    done
    echo "$times" | tr ' ' '\n' | grep . | sort -n | awk -v f=$format '{a[NR]=$1} END {printf "sundial status --format %s (whole command, %d runs): p50 %.1f ms, p95 %.1f ms, max %.1f ms\n", f, NR, a[int(NR*0.5)+1]/1000, a[int(NR*0.95)+1]/1000, a[NR]/1000}'
done
$BIN/sundial status --state "$TMP/state" | head -3
