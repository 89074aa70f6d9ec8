#!/bin/bash
# luacs against the baseline server under the same load, one after the other,
# on this box. Prints both summaries, a table of the figures, and the two
# quotients luacs/baseline: server CPU per session (the figure that holds
# from one machine to another) and sessions/s (which follows the machine and
# the generator); with the generator's CPU per session and the share of a
# core it used, which says whether it capped a rate. Keeps the JSON in $OUT.
#
#   bench/loadgen/compare.sh [BUILD_DIR] [extra luacs-loadgen options...]
#
# Environment: DURATION (20), CONCURRENCY (64), WORKERS (2), PORT (17547; the
# next port is used too), OUT (/tmp/luacs-compare), PIN_SERVER / PIN_LOADGEN
# (taskset CPU lists such as 0 and 1; unset = no pinning), STORE (1: luacs
# persists every session in a fresh database $DB of the private PostgreSQL
# cluster, started with scripts/pg-private; 0: no store), DB (luacs_bench),
# POLICY (policy folder, default policies/default), WARMUP (1: before the
# measured luacs run, every device of the fleet plays one session with
# --each-device-once, so the measured run is the steady state of a known
# fleet; default 0), LUACS_INI_EXTRA (lines appended to luacs' ini; "\n"
# breaks lines), GEN_THREADS (2: the generator's threads), SOURCES (4: the
# generator's source addresses, 127.0.0.2 ...; 0: the kernel's choice).
#
# The extra options go to every load generator run, the warm-up included (so
# it plays the same fleet): --devices, --model, --events, not --sessions.
#
# With STORE=1 the session_log rows of the measured run are counted (before
# it, and after luacs stopped, which flushes its queue) and must equal the
# sessions it completed. Exit status: 0 when every load generator run passed
# and the rows check out, 1 otherwise (everything is still run and printed),
# 2 for a missing binary.
set -eu

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
esac
BUILD=${1:-build}
[ $# -gt 0 ] && shift
DURATION=${DURATION:-20}
CONCURRENCY=${CONCURRENCY:-64}
WORKERS=${WORKERS:-2}
PORT=${PORT:-17547}
OUT=${OUT:-/tmp/luacs-compare}
DB=${DB:-luacs_bench}
STORE=${STORE:-1}
WARMUP=${WARMUP:-0}
mkdir -p "$OUT"
case $DB in luacs_bench*) ;; *) echo "DB must start with luacs_bench (it is dropped)" >&2; exit 2 ;; esac

LOADGEN="$BUILD/bench/luacs-loadgen"
BASELINE="$BUILD/bench/luacs-baseline"
LUACS="$BUILD/luacs"
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/bench/lib.sh"
for b in "$LOADGEN" "$BASELINE" "$LUACS"; do
  [ -x "$b" ] || { echo "missing $b (build it first)" >&2; exit 2; }
done

FAILED=0
fail() {
  echo "FAILED: $*" >&2
  FAILED=1
}

load() {  # load NAME PORT SERVER_PID: the measured run
  echo "-- $LOADGEN --url http://127.0.0.1:$2/ --new-connection --concurrency $CONCURRENCY" \
       "--duration $DURATION $EXTRA"
  pin "${PIN_LOADGEN:-}" "$LOADGEN" --url "http://127.0.0.1:$2/" --new-connection \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --server-pid "$3" \
    --json "$OUT/$1.json" "${ARGS[@]}" || fail "$1: the load generator reported errors"
  # The server must still own its port after the run: a figure measured
  # (partly) against another process means nothing.
  owns_port "$3" "$2" || fail "$1: pid $3 no longer (alone) listens on port $2"
  local done
  done=$(sessions "$OUT/$1.json" completed 2>/dev/null || true)
  [ "${done:-0}" -gt 0 ] || fail "$1: no session completed"
}

warm_up() {  # warm_up PORT SERVER_PID: every device of the fleet once
  echo "-- warm-up: $LOADGEN --url http://127.0.0.1:$1/ --new-connection --concurrency" \
       "$CONCURRENCY --each-device-once --busy-retry 100 $EXTRA"
  pin "${PIN_LOADGEN:-}" "$LOADGEN" --url "http://127.0.0.1:$1/" --new-connection \
    --concurrency "$CONCURRENCY" --each-device-once --busy-retry 100 --server-pid "$2" \
    --json "$OUT/luacs-warmup.json" "${ARGS[@]}" || fail "warm-up: not every device got through"
}

# per_session JSON FIELD: FIELD (CPU seconds) per completed session, in us.
per_session() {
  local cpu c
  cpu=$(top "$1" "$2" 2>/dev/null || true)
  c=$(sessions "$1" completed 2>/dev/null || true)
  [ -n "$cpu" ] && [ "$cpu" != "-1" ] && [ "${c:-0}" -gt 0 ] || return 0
  awk -v cpu="$cpu" -v c="$c" 'BEGIN { printf "%.1f", cpu * 1e6 / c }'
}

row() {  # row NAME JSON
  local j=$2
  [ -s "$j" ] || { printf '%-9s (no figures: %s missing)\n' "$1" "$j"; return; }
  local per gper
  per=$(per_session "$j" server_cpu_s)
  gper=$(per_session "$j" loadgen_cpu_s)
  awk -v n="$1" -v r="$(top "$j" sessions_per_s)" -v c="$(sessions "$j" completed)" \
      -v ip50="$(lat "$j" inform p50)" -v ip99="$(lat "$j" inform p99)" \
      -v sp50="$(lat "$j" session p50)" -v sp99="$(lat "$j" session p99)" \
      -v per="${per:-?}" -v gper="${gper:-?}" \
      -v busy="$(sessions "$j" busy_503)" -v err="$(error "$j" total)" 'BEGIN {
    printf "%-9s %11.1f %10s %18s %19s %12s %12s %6s %7s\n", n, r, c, ip50 " / " ip99,
           sp50 " / " sp99, per, gper, busy, err
  }'
}

# The generator: GEN_THREADS event-loop threads and SOURCES source
# addresses (127.0.0.2 ...; one address caps new connections near 14,000/s:
# bench/README.md, "Inform throughput"). Options given after BUILD_DIR come
# after these and win.
GEN=(--threads "${GEN_THREADS:-2}")
[ "${SOURCES:-4}" = 0 ] || GEN+=(--source-addresses "${SOURCES:-4}")
ARGS=("${GEN[@]}" "$@")
EXTRA="${ARGS[*]}"

echo "== baseline: $BASELINE --listen 127.0.0.1:$PORT --workers $WORKERS"
start_server "$OUT/baseline.log" "$BASELINE" --listen "127.0.0.1:$PORT" --workers "$WORKERS"
trap stop_server EXIT
wait_port "$PORT"
load baseline "$PORT" "$SERVER"
stop_server

LPORT=$((PORT + 1))
luacs_ini "$OUT/luacs.ini" "$LPORT"
STORE_ARGS=()
if [ "$STORE" = 1 ]; then
  fresh_db "$DB"
  STORE_ARGS=(--store-dsn "$DSN dbname=$DB")
  echo "== store: $DSN dbname=$DB (every session persisted)"
fi
count() { psql -X "$DSN dbname=$DB" -Atc "SELECT count(*) FROM $1"; }
# The session_log rows once at least $1 are there and the count holds still
# (the write-behind queue flushed); at most ~30 s.
settled_rows() {
  local n last=-1
  for _ in $(seq 150); do
    n=$(count session_log)
    if [ "$n" -ge "$1" ] && [ "$n" = "$last" ]; then break; fi
    last=$n
    sleep 0.2
  done
  echo "$n"
}

echo "== luacs: $LUACS --config $OUT/luacs.ini (workers $WORKERS, policy ${POLICY:-policies/default}, log level warn)"
start_server "$OUT/luacs.log" "$LUACS" --config "$OUT/luacs.ini" "${STORE_ARGS[@]}"
wait_port "$LPORT"
rm -f "$OUT/luacs-warmup.json"
if [ "$WARMUP" = 1 ]; then warm_up "$LPORT" "$SERVER"; fi
ROWS_BEFORE=0
if [ "$STORE" = 1 ]; then
  expect=0
  [ -s "$OUT/luacs-warmup.json" ] && expect=$(sessions "$OUT/luacs-warmup.json" completed)
  ROWS_BEFORE=$(settled_rows "$expect")
fi
load luacs "$LPORT" "$SERVER"
stop_server

# A server's CPU per session falls as its rate rises (more events per
# epoll_wait, fuller batches), so the baseline at its own, higher rate is
# not the same load as luacs at its own. The quotient that holds is at the
# same rate: the baseline again, open loop at the rate luacs completed.
RATE_L=$(top "$OUT/luacs.json" sessions_per_s 2>/dev/null | cut -d. -f1 || true)
if [ "${SAME_RATE:-1}" = 1 ] && [ "${RATE_L:-0}" -gt 0 ]; then
  echo "== baseline at luacs' rate: $BASELINE --listen 127.0.0.1:$PORT --workers $WORKERS"
  start_server "$OUT/baseline-same-rate.log" "$BASELINE" --listen "127.0.0.1:$PORT" --workers "$WORKERS"
  wait_port "$PORT"
  echo "-- $LOADGEN --url http://127.0.0.1:$PORT/ --new-connection --rate $RATE_L" \
       "--duration $DURATION $EXTRA"
  pin "${PIN_LOADGEN:-}" "$LOADGEN" --url "http://127.0.0.1:$PORT/" --new-connection \
    --rate "$RATE_L" --duration "$DURATION" --server-pid "$SERVER" \
    --json "$OUT/baseline-same-rate.json" "${ARGS[@]}" ||
    fail "baseline at luacs' rate: the load generator reported errors"
  owns_port "$SERVER" "$PORT" || fail "baseline at luacs' rate: pid $SERVER no longer listens on $PORT"
  stop_server
fi
trap - EXIT

echo
echo "== results (JSON in $OUT)"
printf '%-9s %11s %10s %18s %19s %12s %12s %6s %7s\n' server sessions/s completed \
  "inform p50/p99 us" "session p50/p99 us" "CPU us/sess" "gen us/sess" 503s errors
row baseline "$OUT/baseline.json"
row luacs "$OUT/luacs.json"
S="$OUT/baseline-same-rate.json"
if [ -s "$S" ]; then row "base@rate" "$S"; fi
W="$OUT/luacs-warmup.json"
if [ -s "$W" ]; then row warm-up "$W"; fi
# core_share JSON: the generator's CPU over the run's length, in % of one
# core, and its threads.
core_share() {
  local cpu d t
  cpu=$(top "$1" loadgen_cpu_s 2>/dev/null || true)
  d=$(top "$1" elapsed_s 2>/dev/null || true)
  t=$(top "$1" threads 2>/dev/null || true)
  [ -n "$cpu" ] && [ -n "$d" ] || { echo "?"; return; }
  awk -v cpu="$cpu" -v d="$d" -v t="${t:-1}" \
    'BEGIN { share = d > 0 ? 100 * cpu / d : 0
             if (t == 1) printf "%.0f %% of its core (1 thread)", share
             else printf "%.0f %% of one core = %.0f %% of its %d threads\047 cores", share, share / t, t }'
}
LC=$(per_session "$OUT/luacs.json" server_cpu_s)
BC=$(per_session "$OUT/baseline.json" server_cpu_s)
if [ -n "$LC" ] && [ -n "$BC" ]; then
  echo "== server CPU per session: luacs $LC us, baseline $BC us," \
       "luacs/baseline $(awk -v l="$LC" -v b="$BC" 'BEGIN { printf "%.2f", l / b }')"
fi
SC=
[ -s "$S" ] && SC=$(per_session "$S" server_cpu_s)
if [ -n "$LC" ] && [ -n "$SC" ]; then
  echo "== server CPU per session at the same rate ($(top "$S" sessions_per_s)/s): luacs $LC us," \
       "baseline $SC us, luacs/baseline $(awk -v l="$LC" -v b="$SC" 'BEGIN { printf "%.2f", l / b }')"
fi
B=$(top "$OUT/baseline.json" sessions_per_s 2>/dev/null || true)
L=$(top "$OUT/luacs.json" sessions_per_s 2>/dev/null || true)
if [ -n "$B" ] && [ -n "$L" ]; then
  echo "== sessions/s: luacs $L, baseline $B, luacs/baseline $(awk "BEGIN { printf \"%.2f\", $L / $B }")"
fi
if [ -s "$OUT/baseline.json" ] && [ -s "$OUT/luacs.json" ]; then
  echo "== generator: $(per_session "$OUT/baseline.json" loadgen_cpu_s) us/session," \
       "$(core_share "$OUT/baseline.json") in the baseline run;" \
       "$(per_session "$OUT/luacs.json" loadgen_cpu_s) us/session," \
       "$(core_share "$OUT/luacs.json") in the luacs run" \
       "(a generator near 100 % of its threads' cores caps the rate it measures)"
fi
if [ -s "$W" ]; then
  echo "== warm-up (luacs, first contact of each device): $(top "$W" devices_done) of" \
       "$(top "$W" devices) devices, $(top "$W" sessions_per_s) sessions/s," \
       "drained in $(sed -n 's/^  "drain_s": \(.*\),$/\1/p' "$W") s," \
       "$(sessions "$W" busy_503) 503s, $(error "$W" total) errors"
fi
if [ "$STORE" = 1 ]; then
  ROWS_AFTER=$(count session_log)
  WRITTEN=$((ROWS_AFTER - ROWS_BEFORE))
  DONE=$(sessions "$OUT/luacs.json" completed 2>/dev/null || true)
  echo "== stored: $ROWS_AFTER session rows, $(count devices) devices"
  if [ "$WRITTEN" = "${DONE:-none}" ]; then
    echo "== persistence: $WRITTEN session_log rows written during the measured run = $DONE sessions completed: ok"
  else
    fail "persistence: $WRITTEN session_log rows written during the measured run, ${DONE:-?} sessions completed"
  fi
fi
exit "$FAILED"
