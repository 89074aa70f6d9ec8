#!/bin/bash
# luacs against the baseline server under the same load, one after the other,
# on this box. Prints both summaries and the ratio; keeps the JSON in $OUT.
#
#   bench/loadgen/compare.sh [BUILD_DIR] [extra luacs-loadgen options...]
#
# Environment: DURATION (20), CONCURRENCY (64), WORKERS (2), PORT (17547; the
# next port is used too), OUT (/tmp/luacs-compare), PIN_SERVER / PIN_LOADGEN
# (taskset CPU lists such as 0 and 1; unset = no pinning), STORE (1: luacs
# persists every session in a fresh database `luacs_bench` of the private
# PostgreSQL cluster, started with scripts/pg-private; 0: no store).
set -eu

BUILD=${1:-build}
[ $# -gt 0 ] && shift
DURATION=${DURATION:-20}
CONCURRENCY=${CONCURRENCY:-64}
WORKERS=${WORKERS:-2}
PORT=${PORT:-17547}
OUT=${OUT:-/tmp/luacs-compare}
mkdir -p "$OUT"

LOADGEN="$BUILD/bench/luacs-loadgen"
BASELINE="$BUILD/bench/luacs-baseline"
LUACS="$BUILD/luacs"
for b in "$LOADGEN" "$BASELINE" "$LUACS"; do
  [ -x "$b" ] || { echo "missing $b (build it first)" >&2; exit 2; }
done

pin() {  # pin CPULIST command... (empty CPULIST: no pinning)
  local cpus=$1
  shift
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

start_server() {  # start_server LOG command...; sets SERVER to the server's own pid
  local log=$1
  shift
  if [ -n "${PIN_SERVER:-}" ]; then
    taskset -c "$PIN_SERVER" "$@" 2>"$log" &  # taskset execs the command: same pid
  else
    "$@" 2>"$log" &
  fi
  SERVER=$!
}

stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

load() {  # load NAME PORT SERVER_PID
  echo "-- $LOADGEN --url http://127.0.0.1:$2/ --new-connection --concurrency $CONCURRENCY" \
       "--duration $DURATION $EXTRA"
  pin "${PIN_LOADGEN:-}" "$LOADGEN" --url "http://127.0.0.1:$2/" --new-connection \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --server-pid "$3" \
    --json "$OUT/$1.json" "${ARGS[@]}" || true
}

ARGS=("$@")
EXTRA="$*"

echo "== baseline: $BASELINE --listen 127.0.0.1:$PORT --workers $WORKERS"
start_server "$OUT/baseline.log" "$BASELINE" --listen "127.0.0.1:$PORT" --workers "$WORKERS"
trap stop_server EXIT
wait_port "$PORT"
load baseline "$PORT" "$SERVER"
stop_server

LPORT=$((PORT + 1))
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cat >"$OUT/luacs.ini" <<INI
[cwmp]
listen = 127.0.0.1:$LPORT
workers = $WORKERS
[store]
sql_dir = $REPO/sql
[policy]
dir = ${POLICY:-$REPO/policies/default}
[files]
listen = 127.0.0.1:0
[control]
socket = $OUT/luacs.sock
[log]
level = warn
INI
STORE_ARGS=()
if [ "${STORE:-1}" = 1 ]; then
  "$REPO/scripts/pg-private" start >/dev/null
  DSN=$("$REPO/scripts/pg-private" dsn)
  "$REPO/scripts/pg-private" psql -qc "DROP DATABASE IF EXISTS luacs_bench" -c "CREATE DATABASE luacs_bench" >/dev/null
  STORE_ARGS=(--store-dsn "$DSN dbname=luacs_bench")
  echo "== store: $DSN dbname=luacs_bench (every session persisted)"
fi
echo "== luacs: $LUACS --config $OUT/luacs.ini (workers $WORKERS, policy ${POLICY:-policies/default}, log level warn)"
start_server "$OUT/luacs.log" "$LUACS" --config "$OUT/luacs.ini" "${STORE_ARGS[@]}"
wait_port "$LPORT"
load luacs "$LPORT" "$SERVER"
stop_server
trap - EXIT

rate() { sed -n 's/.*"sessions_per_s": \([0-9.]*\).*/\1/p' "$1"; }
B=$(rate "$OUT/baseline.json")
L=$(rate "$OUT/luacs.json")
echo "== sessions/s: luacs $L, baseline $B, luacs/baseline $(awk "BEGIN { printf \"%.2f\", $L / $B }")"
if [ "${STORE:-1}" = 1 ]; then
  count() { psql -X "$DSN dbname=luacs_bench" -Atc "SELECT count(*) FROM $1"; }
  echo "== stored: $(count session_log) session rows, $(count devices) devices"
fi
