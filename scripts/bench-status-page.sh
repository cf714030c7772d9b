#!/bin/sh
# The status page against a running agent with 1,000 jobs (issue 20: a page in < 200 ms of
# server time and < 1 MB). Release build; a generated config whose jobs are not due during the
# run and a state database holding RUNS finished runs per job, as scripts/bench-status.sh.
# Prints curl's time to the last byte (loopback, so server time) and the size of each page.
# Usage: scripts/bench-status-page.sh [JOBS] [RUNS] [PORT]
set -eu
JOBS=${1:-1000}
RUNS=${2:-20}
PORT=${3:-19100}
cd "$(dirname "$0")/.."
swift build -c release --product sundial >/dev/null
swift build -c release --product sundial-bench >/dev/null
BIN=.build/release
TMP=$(mktemp -d)
trap 'kill "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; rm -rf "$TMP"' EXIT
$BIN/sundial-bench gen-config "$TMP/jobs" "$JOBS" 10 --not-due
$BIN/sundial-bench seed-status "$TMP/jobs" "$TMP/state" "$RUNS"
$BIN/sundial run "$TMP/jobs" --state "$TMP/state" --log "$TMP/agent.log" --watch off --metrics-listen "127.0.0.1:$PORT" &
AGENT=$!
i=0
until curl -fs "http://127.0.0.1:$PORT/api/v1/agent" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "the agent did not answer"; exit 1; }
    sleep 0.05
done
FIRST=$(curl -fs "http://127.0.0.1:$PORT/api/v1/jobs" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
for page in / /api/v1/jobs /timeline "/jobs/$FIRST" /metrics; do
    times=""
    n=0
    while [ $n -lt 20 ]; do
        times="$times $(curl -fs -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT$page")"
        n=$((n + 1))
    done
    size=$(curl -fs "http://127.0.0.1:$PORT$page" | wc -c)
    echo "$times" | tr ' ' '\n' | grep . | sort -n | awk -v p="$page" -v s="$size" '{a[NR]=$1} END {printf "%s: %d bytes; p50 %.1f ms, p95 %.1f ms, max %.1f ms (%d requests)\n", p, s, a[int(NR*0.5)+1]*1000, a[int(NR*0.95)+1]*1000, a[NR]*1000, NR}'
done
