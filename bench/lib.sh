# Shell pieces the bench scripts share (sourced, not run): starting and
# stopping the server under test, a fresh database of the private
# PostgreSQL, luacs' config, and reading the load generator's JSON.
#
# Expects REPO (the repository) and OUT (where logs and files go).

# pin CPULIST command...: run it on those CPUs (empty CPULIST: anywhere).
pin() {
  local cpus=$1
  shift
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# start_server LOG command...: in the background on PIN_SERVER's CPUs, if
# set; SERVER is then its own pid (taskset execs the command).
SERVER=
start_server() {
  local log=$1
  shift
  if [ -n "${PIN_SERVER:-}" ]; then
    taskset -c "$PIN_SERVER" "$@" 2>"$log" &
  else
    "$@" 2>"$log" &
  fi
  SERVER=$!
}

stop_server() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
  fi
}

# listen_inodes PORT: the socket inodes listening on TCP port PORT (any
# address, IPv4 and IPv6), one a line.
listen_inodes() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# owns_port PID PORT: every socket listening on PORT is PID's, and there is
# at least one. A second server that shares the port (SO_REUSEPORT) or holds
# it instead of ours fails this.
owns_port() {
  local inodes ours ino
  inodes=$(listen_inodes "$2")
  [ -n "$inodes" ] || return 1
  ours=$(for fd in /proc/"$1"/fd/*; do readlink "$fd" 2>/dev/null; done)
  for ino in $inodes; do
    grep -qxF "socket:[$ino]" <<<"$ours" || return 1
  done
}

# wait_port PORT [SECONDS]: until the server started last (SERVER) listens
# on PORT, and is alone there: a figure measured against another process
# (a server left running, a second instance) would be meaningless.
wait_port() {
  for _ in $(seq $((${2:-10} * 10))); do
    if [ -n "$(listen_inodes "$1")" ] && (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      if [ -z "$SERVER" ] || owns_port "$SERVER" "$1"; then return 0; fi
      # Our server may still be binding its other workers' sockets.
      if ! kill -0 "$SERVER" 2>/dev/null; then break; fi
      sleep 0.2
      owns_port "$SERVER" "$1" && return 0
      echo "another process listens on port $1, not (only) the server started (pid $SERVER);" \
        "stop it first (logs in $OUT)" >&2
      return 1
    fi
    [ -z "$SERVER" ] || kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$SERVER" ] && ! kill -0 "$SERVER" 2>/dev/null; then
    echo "the server (pid $SERVER) exited before listening on 127.0.0.1:$1 (logs in $OUT)" >&2
  else
    echo "nothing listens on 127.0.0.1:$1 (logs in $OUT)" >&2
  fi
  return 1
}

# fresh_db NAME: starts the private PostgreSQL and (re)creates database NAME
# (it must start with luacs_bench); sets DSN, without the dbname.
fresh_db() {
  case $1 in luacs_bench*) ;; *) echo "DB must start with luacs_bench (it is dropped)" >&2; exit 2 ;; esac
  "$REPO/scripts/pg-private" start >/dev/null
  DSN=$("$REPO/scripts/pg-private" dsn)
  "$REPO/scripts/pg-private" psql -qc "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}

# luacs_ini FILE PORT: luacs on 127.0.0.1:PORT with WORKERS workers, the
# migrations of this repository, POLICY (default policies/default; "none":
# no policy), its file server on a free port, its control socket in OUT, log
# level warn; then LUACS_INI_EXTRA ("\n" breaks lines).
luacs_ini() {
  local policy=${POLICY:-$REPO/policies/default} policy_ini=
  [ "$policy" = none ] || policy_ini="[policy]
dir = $policy"
  cat >"$1" <<INI
[cwmp]
listen = 127.0.0.1:$2
workers = ${WORKERS:-2}
[store]
sql_dir = $REPO/sql
$policy_ini
[files]
listen = 127.0.0.1:0
[nbi]
listen = 127.0.0.1:0
[control]
socket = $OUT/luacs.sock
[log]
level = warn
INI
  if [ -n "${LUACS_INI_EXTRA:-}" ]; then printf '%b\n' "$LUACS_INI_EXTRA" >>"$1"; fi
}

# Figures of a luacs-loadgen JSON (its layout: one key per line, one
# histogram per line). top FILE KEY; lat FILE inform|session p50|p99...;
# sessions FILE completed|busy_503|...; error FILE total|timeout|...
top() { sed -n "s/^  \"$2\": \([0-9.a-z]*\).*/\1/p" "$1"; }
lat() { sed -n "s/^    \"$2\": {.*\"$3\": \([0-9]*\).*/\1/p" "$1"; }
sessions() { sed -n "s/^  \"sessions\": {.*\"$2\": \([0-9]*\).*/\1/p" "$1"; }
error() { sed -n "s/^  \"errors\": {.*\"$2\": \([0-9]*\).*/\1/p" "$1"; }
