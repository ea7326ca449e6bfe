#!/usr/bin/env bash
# multidb side by side with other servers of the same four workloads (for example the
# async reference implementations in ../shared/peers), on the same seeded PostgreSQL
# databases, in alternating rounds; per workload the median req/s, p50 and p99 of each
# server, and multidb's ratio to each peer. See docs/benchmarks.md.
#
#   bash bench/peers.sh [--rounds N] [--duration S] [--warmup S] [--concurrency N]
#                       [--binary PATH] [--only WORKLOAD,...] NAME=SERVER [NAME=SERVER ...]
#
# SERVER is a directory holding a run.sh (as ../shared/peers/*/ do) or an executable.
# Every server, multidb included, is started with BIND_ADDRESS, DATABASE_URL_1,
# DATABASE_URL_2 (with ?sslmode=disable: none of them pays for TLS on loopback),
# POOL_SIZE / DB1_POOL_SIZE / DB2_POOL_SIZE (default 4) and HTTP_WORKERS (default 2),
# and must answer GET /health with 200 once it is ready. Servers are stopped by pid.
# POST /orders adds orders: after each server's turn the orders it added are deleted,
# so every server reads the same data.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
helper=(python3 "$here/lib/bench.py")
# shellcheck source=bench/lib/server.sh
. "$here/lib/server.sh"
USERS=10000
ORDERS=100000
# create_order_keyed (POST /orders with an Idempotency-Key each) only when named by --only.
default_workloads=(get_user user_summary overview create_order)
all_workloads=("${default_workloads[@]}" create_order_keyed)

say() { echo "peers: $*" >&2; }
die() { say "$*"; exit 2; }

server_pid=""

# start_server NAME SERVER LOG: waits (up to 10 min: a peer's first start builds it)
# until /health answers 200.
start_server() {
  local name=$1 server=$2 log=$3 port
  port=$("${helper[@]}" free-port)
  base_url="http://127.0.0.1:$port"
  (
    cd "$BENCH_RUN_DIR" # a developer's ./.env must not change the settings
    export BIND_ADDRESS="127.0.0.1:$port" RUST_LOG=warn
    if [ -d "$server" ]; then exec bash "$server/run.sh"; else exec "$server" serve; fi
  ) >>"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 6000); do
    curl -fsS -o /dev/null "$base_url/health" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$log" >&2; die "$name exited during start-up (log: $log)"; }
    sleep 0.1
  done
  die "$name did not answer /health within 10 minutes (log: $log)"
}

# The server's CPU time (clock ticks, all its threads, the ended ones too) and context
# switches (voluntary + involuntary, summed over its threads alive now).
server_usage() {
  local ticks switches
  ticks=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
  switches=$(cat /proc/"$server_pid"/task/*/status 2>/dev/null |
    awk '/^(nonvoluntary_|voluntary_)ctxt_switches:/ { n += $2 } END { print n + 0 }')
  echo "$ticks $switches"
}

# run_wrk NAME ROUND WORKLOAD PHASE SECONDS
run_wrk() {
  local name=$1 round=$2 workload=$3 phase=$4 seconds=$5 out fields before after
  out="$BENCH_RUN_DIR/wrk-$name-$round-$workload-$phase.txt"
  before=$(server_usage)
  BENCH_USERS=$USERS wrk -t "$(( BENCH_CONCURRENCY < 2 ? 1 : 2 ))" -c "$BENCH_CONCURRENCY" -d "${seconds}s" --timeout 10s --latency \
    -s "$here/wrk/$workload.lua" "$base_url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on $workload"; }
  after=$(server_usage)
  [ "$phase" = measure ] || return 0
  fields=$("${helper[@]}" parse-wrk "$out")
  echo "$name $workload $fields $seconds $before $after $(getconf CLK_TCK)" >>"$BENCH_RUN_DIR/results.txt"
  read -r rps p50 p99 non2xx socket_errors <<<"$fields"
  say "round $round $name $workload: $rps req/s, p50 $p50 µs, p99 $p99 µs, non-2xx $non2xx, socket errors $socket_errors"
  if [ "$non2xx" != 0 ] || [ "$socket_errors" != 0 ]; then
    grep -E '^NON2XX |Non-2xx|Socket errors' "$out" >&2 || true
    echo 1 >"$BENCH_RUN_DIR/failed"
  fi
}

# Inside pg_virtualenv, which exports PGHOST, PGPORT, PGUSER, PGPASSWORD.
postgres_side_by_side() {
  local base round entry name server workload
  trap stop_server EXIT
  psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench_db1" -c "CREATE DATABASE bench_db2"
  base="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}"
  export DATABASE_URL_1="$base/bench_db1?sslmode=disable" DATABASE_URL_2="$base/bench_db2?sslmode=disable"
  RUST_LOG=warn "$BENCH_BINARY" migrate
  say "seeding $USERS users and $ORDERS orders"
  psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -d bench_db1 -f "$here/lib/seed-db1.sql"
  psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -v orders=$ORDERS -d bench_db2 -f "$here/lib/seed-db2.sql"
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    for entry in "${servers[@]}"; do
      name=${entry%%=*} server=${entry#*=}
      start_server "$name" "$server" "$BENCH_RUN_DIR/server-$name.log"
      for workload in "${workloads[@]}"; do
        [ "$BENCH_WARMUP" = 0 ] || run_wrk "$name" "$round" "$workload" warmup "$BENCH_WARMUP"
        run_wrk "$name" "$round" "$workload" measure "$BENCH_DURATION"
      done
      stop_server
      psql -X -q -v ON_ERROR_STOP=1 -d bench_db2 -v orders=$ORDERS \
        -c "DELETE FROM orders WHERE id > $ORDERS" -c "VACUUM ANALYZE orders"
    done
  done
}

if [ "${1:-}" = __inside ]; then
  read -r -a servers <<<"$BENCH_SERVERS"
  read -r -a workloads <<<"$BENCH_WORKLOADS"
  set +e
  (set -e; postgres_side_by_side)
  echo $? >"$BENCH_RUN_DIR/status"
  exit 0
fi

rounds=3 duration=8 warmup=2 concurrency=32 binary="" only=""
servers=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds | --duration | --warmup | --concurrency | --binary | --only)
      [ $# -ge 2 ] || die "$1 needs a value"
      declare "${1#--}=$2"
      shift 2
      ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *=*) servers+=("$1"); shift ;;
    *) die "a server is NAME=SERVER, not $1" ;;
  esac
done
[ ${#servers[@]} -gt 0 ] || die "name at least one server to compare with (NAME=SERVER)"
for n in rounds duration concurrency; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "--$n must be a positive whole number"
done
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
workloads=("${default_workloads[@]}")
if [ -n "$only" ]; then
  IFS=, read -r -a workloads <<<"$only"
  for workload in "${workloads[@]}"; do
    [[ " ${all_workloads[*]} " == *" $workload "* ]] || die "unknown workload $workload (${all_workloads[*]})"
  done
fi

missing=()
for tool in wrk curl pg_virtualenv pgbench; do command -v $tool >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing wrk curl postgresql postgresql-common"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk curl postgresql postgresql-common >/dev/null
fi
if [ -z "$binary" ]; then
  say "cargo build --release"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  binary="${CARGO_TARGET_DIR:-$root/target}/release/multidb"
fi
[ -x "$binary" ] || die "no executable binary at $binary"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

absolute=("multidb=$binary")
for entry in "${servers[@]}"; do
  name=${entry%%=*} server=${entry#*=}
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] && [ "$name" != multidb ] || die "bad server name '$name'"
  [ -f "$server/run.sh" ] || [ -x "$server" ] || die "$server is neither a directory with run.sh nor an executable"
  absolute+=("$name=$(cd "$(dirname "$server")" && pwd)/$(basename "$server")")
done
run_dir="$here/out/peers-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
: >"$run_dir/results.txt"
export BENCH_RUN_DIR=$run_dir BENCH_BINARY=$binary BENCH_ROUNDS=$rounds BENCH_DURATION=$duration \
  BENCH_WARMUP=$warmup BENCH_CONCURRENCY=$concurrency BENCH_SERVERS="${absolute[*]}" \
  BENCH_WORKLOADS="${workloads[*]}"
export POOL_SIZE=${POOL_SIZE:-4} HTTP_WORKERS=${HTTP_WORKERS:-2}
export DB1_POOL_SIZE=${DB1_POOL_SIZE:-$POOL_SIZE} DB2_POOL_SIZE=${DB2_POOL_SIZE:-$POOL_SIZE}
say "$rounds rounds of ${workloads[*]}: ${warmup}s warm-up, ${duration}s measured, concurrency $concurrency, pools $POOL_SIZE, $HTTP_WORKERS HTTP workers; logs in $run_dir"
wait_for_pg_virtualenv
pg_virtualenv -o max_prepared_transactions=64 -o max_connections=300 bash "$0" __inside 2>&1 |
  sed -u -e "/^Creating new PostgreSQL cluster /d" -e "/^Dropping cluster /d" >&2
[ "$(cat "$run_dir/status" 2>/dev/null)" = 0 ] || die "the run failed (see above and $run_dir)"
"${helper[@]}" peers-report "$run_dir/results.txt" "multidb" | tee "$run_dir/report.md"
[ ! -e "$run_dir/failed" ] || die "some requests failed (non-2xx or socket errors): see above"
