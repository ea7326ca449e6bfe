#!/usr/bin/env bash
# Throughput and latency of multidb under load, and how close it comes to what
# PostgreSQL alone can do. See docs/benchmarks.md.
#
#   bash bench/run.sh [--quick | --smoke] [--stack postgres|sqlite|mysql|both|all|LIST]
#                     [--concurrency N]
#                     [--duration S] [--warmup S] [--rounds N] [--binary PATH] [--log LEVEL]
#                     [--update-pgbench]
#
# For each stack (PostgreSQL: a throwaway cluster from pg_virtualenv holding db1 and db2;
# SQLite: two files; MySQL: a throwaway MariaDB from .ci/with-mariadb holding both) it
# seeds 10,000 users and 100,000 orders, starts the release binary, and runs every
# workload with wrk (bench/wrk/*.lua) for a fixed time after a warm-up.
# On PostgreSQL it then runs pgbench -M prepared with the SQL the service sends for each
# workload (bench/pgbench/*.sql, checked against the server's statement log at the start
# of every run): the ceiling. It prints one table per stack and writes it to bench/out/. Any non-2xx response (or socket error, or failed pgbench transaction)
# is shown and makes the exit status 1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
helper=(python3 "$here/lib/bench.py")
# shellcheck source=bench/lib/server.sh
. "$here/lib/server.sh"

# Workloads, their wrk scripts (bench/wrk/<name>.lua), and the pgbench scripts
# (bench/pgbench/<part>.sql) of the SQL one request sends to each database.
#
# The ceiling of a workload is what PostgreSQL alone does with that SQL: pgbench
# -M prepared at the same concurrency. A workload with one part has ceiling = its tps.
# A workload that touches both databases has a db1 part and a db2 part, run as two
# separate pgbench runs, each at the full concurrency: tps1 and tps2. Here db1 and db2
# are two databases of one PostgreSQL server sharing the same CPUs (and the CPUs are
# shared with the service and wrk too), so one request costs the server the time of its
# db1 part plus the time of its db2 part, and
#     ceiling = 1 / (1/tps1 + 1/tps2)
# (not min(tps1, tps2), which would hold only with each database on its own machine).
# bench/lib/bench.py computes it per round; the report prints this explanation too.
workloads=(get_user user_summary overview create_order)
declare -A parts=(
  [get_user]="db1_find_user"
  [user_summary]="db1_find_user db2_user_orders"
  [overview]="db1_first_users db2_first_orders"
  [create_order]="db1_lock_user db2_insert_order"
)
declare -A labels=(
  [get_user]="GET /users/{id}"
  [user_summary]="GET /users/{id}/summary"
  [overview]="GET /overview?limit=10"
  [create_order]="POST /orders"
)
parts_spec=""
for w in "${workloads[@]}"; do parts_spec+="${parts_spec:+;}$w=$(echo "${parts[$w]}" | tr ' ' ',')"; done
# The data set: --users and --orders, passed down to each stack's run.
USERS=${BENCH_USERS:-10000}
ORDERS=${BENCH_ORDERS:-100000}

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --quick            warm-up 2 s, duration 5 s (unless given)
  --smoke            SQLite only, no warm-up, 2 s per workload: a check for CI (bench/smoke.sh)
  --no-ceiling       skip the ceiling runs, pgbench and mariadb-slap (bench/soak.sh)
  --stack S          postgres, sqlite, mysql, both (postgres and sqlite), all, or a
                     comma-separated list (default both)
  --concurrency N    wrk connections and pgbench clients (default 32)
  --duration S       measured seconds per workload and per pgbench part (default 30)
  --warmup S         warm-up seconds before each of them (default 10)
  --rounds N         run everything N times, alternating; report medians (default 1)
  --users N          users seeded in db1, ids 1..N, drawn at random by the workloads
                     (default 10000)
  --orders N         orders seeded in db2, spread over the users (default 100000)
  --binary PATH      multidb binary to run (default: cargo build --release)
  --log LEVEL        the server's RUST_LOG (default warn)
  --update-pgbench   rewrite bench/pgbench/*.sql that no longer match the SQL the service
                     sends (every PostgreSQL run traces it and uses the traced SQL)
Environment passed to the server: DB1_POOL_SIZE, DB2_POOL_SIZE and every other setting
of README.md's configuration table; HTTP_WORKERS defaults to 2 here.
EOF
}

# ---------------------------------------------------------------------------- one stack
# Runs inside the environment of one stack: the caller exported BENCH_* settings.

run_dir=${BENCH_RUN_DIR:-}
results=${run_dir:+$run_dir/results.tsv}
server_pid=""

record() { (IFS=$'\t'; echo "$*") >>"$results"; }


# start_server NAME URL1 URL2 [VAR=VALUE...]
start_server() {
  local stack=$1 port
  port=$("${helper[@]}" free-port)
  base_url="http://127.0.0.1:$port"
  # From the run directory, so that a developer's ./.env cannot change the settings.
  (
    cd "$run_dir"
    export DATABASE_URL_1=$2 DATABASE_URL_2=$3 BIND_ADDRESS="127.0.0.1:$port"
    export HTTP_WORKERS=$BENCH_HTTP_WORKERS RUST_LOG=$BENCH_LOG
    shift 3
    [ $# = 0 ] || export "$@"
    exec "$BENCH_BINARY" serve
  ) >"$run_dir/server-$stack.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$base_url/health" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      tail -20 "$run_dir/server-$stack.log" >&2
      die "the server exited during start-up (log: $run_dir/server-$stack.log)"
    fi
    sleep 0.1
  done
  die "the server did not answer /health within 30 s (log: $run_dir/server-$stack.log)"
}

# run_wrk STACK ROUND WORKLOAD PHASE SECONDS
run_wrk() {
  local stack=$1 round=$2 workload=$3 phase=$4 seconds=$5 out fields
  out="$run_dir/wrk-$stack-$round-$workload-$phase.txt"
  BENCH_USERS=$USERS wrk -t "$BENCH_WRK_THREADS" -c "$BENCH_CONCURRENCY" -d "${seconds}s" \
    --timeout 10s --latency -s "$here/wrk/$workload.lua" "$base_url" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk failed on $workload"; }
  fields=$("${helper[@]}" parse-wrk "$out")
  # shellcheck disable=SC2086
  record wrk "$stack" "$round" "$workload" "$phase" $fields
  read -r rps p50 p99 non2xx socket_errors <<<"$fields"
  say "$stack round $round ${labels[$workload]} ($phase ${seconds}s): $rps req/s, p50 ${p50} µs, p99 ${p99} µs, non-2xx $non2xx, socket errors $socket_errors"
  if [ "$non2xx" != 0 ] || [ "$socket_errors" != 0 ]; then
    say "FAILED requests in ${labels[$workload]} ($out):"
    grep -E '^NON2XX |Non-2xx|Socket errors' "$out" >&2 || true
    grep '^NON2XX ' "$out" | while IFS= read -r line; do
      record non2xx "$stack" "$workload" "${line#NON2XX }"
    done
  fi
}

# run_pgbench ROUND PART PHASE SECONDS
run_pgbench() {
  local round=$1 part=$2 phase=$3 seconds=$4 out database fields
  database="bench_${part%%_*}"
  out="$run_dir/pgbench-$round-$part-$phase.txt"
  pgbench -M prepared -n -c "$BENCH_CONCURRENCY" -j "$BENCH_WRK_THREADS" -T "$seconds" \
    -D users=$USERS -D item="bench item" -D created_at="2026-11-24 12:00:00" \
    -f "$run_dir/pgbench/$part.sql" "$database" >"$out" 2>&1 ||
    { tail -20 "$out" >&2; die "pgbench failed on $part (output: $out)"; }
  [ "$phase" = measure ] || return 0
  fields=$("${helper[@]}" parse-pgbench "$out")
  # shellcheck disable=SC2086
  record pgbench postgres "$round" "$part" $fields
  say "postgres round $round pgbench $part (${seconds}s): ${fields% *} tps, failed ${fields#* }"
}

# run_mysql_ceiling ROUND PART PHASE SECONDS: the MySQL counterpart of run_pgbench.
# mariadb-slap runs bench/mysql/<part>.sql (the statements the service sends, one per
# line, with user 4321's values) in a loop at the same concurrency, over the text
# protocol; as many times as a short calibration run says fit in SECONDS.
run_mysql_ceiling() {
  local round=$1 part=$2 phase=$3 seconds=$4 script statements out calibration runs elapsed tps
  script=$(grep -v '^--' "$here/mysql/$part.sql" | tr '\n' ' ')
  statements=$(grep -vc '^--' "$here/mysql/$part.sql")
  out="$run_dir/slap-$round-$part-$phase.txt"
  slap() {
    mariadb-slap --no-defaults --host=127.0.0.1 --port="$BENCH_MYSQL_PORT" --user=root \
      --create-schema="bench_${part%%_*}" --no-drop --concurrency="$BENCH_CONCURRENCY" \
      --iterations=1 --number-of-queries=$(($1 * statements)) --delimiter=";" \
      --query="$script" >"$out" 2>&1 || { tail -20 "$out" >&2; die "mariadb-slap failed on $part (output: $out)"; }
    awk '/Average number of seconds to run all queries/ { print $(NF - 1) }' "$out"
  }
  calibration=2000
  elapsed=$(slap "$calibration")
  runs=$(python3 -c "print(max(1000, int($calibration / max($elapsed, 0.001) * $seconds)))")
  elapsed=$(slap "$runs")
  [ "$phase" = measure ] || return 0
  tps=$(python3 -c "print($runs / max($elapsed, 0.001))")
  record pgbench mysql "$round" "$part" "$tps" 0
  say "mysql round $round mariadb-slap $part ($runs runs in ${elapsed}s): $tps runs/s"
}

run_workloads() {
  local stack=$1 round workload part
  local -A done_parts
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    for workload in "${workloads[@]}"; do
      if [ "$BENCH_WARMUP" != 0 ]; then
        run_wrk "$stack" "$round" "$workload" warmup "$BENCH_WARMUP"
      fi
      run_wrk "$stack" "$round" "$workload" measure "$BENCH_DURATION"
    done
    [ "$stack" != sqlite ] && [ "$BENCH_CEILING" = 1 ] || continue
    local ceiling=run_pgbench
    [ "$stack" = postgres ] || ceiling=run_mysql_ceiling
    done_parts=()
    for workload in "${workloads[@]}"; do
      for part in ${parts[$workload]}; do
        [ -z "${done_parts[$part]:-}" ] || continue
        done_parts[$part]=1
        if [ "$BENCH_WARMUP" != 0 ]; then
          "$ceiling" "$round" "$part" warmup "$BENCH_WARMUP"
        fi
        "$ceiling" "$round" "$part" measure "$BENCH_DURATION"
      done
    done
  done
}

finish_stack() {
  local stack=$1 hwm
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")
  record rss "$stack" "$hwm"
  stop_server
}

# The SQL of each pgbench part is taken from the service itself: a server of its own
# (recovery pass off, so nothing else runs) answers one request of each workload while
# PostgreSQL logs every statement, between marker statements on database "postgres".
# bench/lib/bench.py turns what each request sent to each database into a pgbench script
# ($run_dir/pgbench/<part>.sql), compares it with bench/pgbench/<part>.sql, and says
# which differ. The ceiling always uses the traced statements, so it is the SQL the
# binary under test sends; --update-pgbench copies them into bench/pgbench/.
# The request values must be those bench.py recognises (TRACE_* there).
trace_sql() {
  local url1=$1 url2=$2 log_file workload
  log_file=$(pg_lsclusters -h | awk -v port="$PGPORT" '$3 == port { print $7 }')
  [ -r "$log_file" ] || die "cannot find the cluster's log file"
  start_server postgres-trace "$url1" "$url2" RECOVERY_INTERVAL_MS=3600000
  sleep 1 # the pools' idle connections are opened in the background
  psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  for workload in "${workloads[@]}"; do
    psql -X -q -c "SELECT 'bench-trace begin $workload'" >/dev/null
    sleep 0.2
    case $workload in
      get_user) curl -fsS -o /dev/null "$base_url/users/4321" ;;
      user_summary) curl -fsS -o /dev/null "$base_url/users/4321/summary" ;;
      overview) curl -fsS -o /dev/null "$base_url/overview?limit=10" ;;
      create_order) curl -fsS -o /dev/null -H 'Content-Type: application/json' \
        -d '{"user_id":4321,"item":"bench item","quantity":77,"amount_cents":123456}' "$base_url/orders" ;;
    esac
    sleep 0.2
    psql -X -q -c "SELECT 'bench-trace end $workload'" >/dev/null
  done
  psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
  stop_server
  cp "$log_file" "$run_dir/postgres-trace.log"
  mkdir -p "$run_dir/pgbench"
  say "the SQL the service sends, one request per workload (log: $run_dir/postgres-trace.log):"
  if ! "${helper[@]}" trace "$run_dir/postgres-trace.log" "$here/pgbench" "$run_dir/pgbench" "$parts_spec" >"$run_dir/sql-trace.txt"; then
    cat "$run_dir/sql-trace.txt" >&2
    say "FAILED: could not turn the traced SQL into pgbench scripts; using bench/pgbench/ as it is"
    echo 1 >"$run_dir/trace.failed"
    cp "$here"/pgbench/*.sql "$run_dir/pgbench/"
    return 0
  fi
  cat "$run_dir/sql-trace.txt" >&2
  if [ -s "$run_dir/pgbench/STALE" ]; then
    if [ "$BENCH_UPDATE_PGBENCH" = 1 ]; then
      while read -r part; do cp "$run_dir/pgbench/$part.sql" "$here/pgbench/$part.sql"; done <"$run_dir/pgbench/STALE"
      say "updated bench/pgbench/: $(tr '\n' ' ' <"$run_dir/pgbench/STALE")"
    else
      while read -r part; do record stale postgres "$part"; done <"$run_dir/pgbench/STALE"
      say "bench/pgbench/ is out of date for: $(tr '\n' ' ' <"$run_dir/pgbench/STALE")(this run uses the traced SQL; --update-pgbench rewrites them)"
    fi
  fi
}

# Inside pg_virtualenv, which exports PGHOST, PGPORT, PGUSER, PGPASSWORD, PGVERSION.
postgres_stack() {
  local base url1 url2
  trap stop_server EXIT
  record info postgres version "$(psql -X -A -t -c 'SHOW server_version' | awk '{ print $1 }')"
  psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench_db1" -c "CREATE DATABASE bench_db2"
  base="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}"
  url1="$base/bench_db1" url2="$base/bench_db2"
  DATABASE_URL_1=$url1 DATABASE_URL_2=$url2 RUST_LOG=warn "$BENCH_BINARY" migrate
  say "postgres: seeding $USERS users and $ORDERS orders"
  psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -d bench_db1 -f "$here/lib/seed-db1.sql"
  psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -v orders=$ORDERS -d bench_db2 -f "$here/lib/seed-db2.sql"
  trace_sql "$url1" "$url2"
  start_server postgres "$url1" "$url2"
  run_workloads postgres
  finish_stack postgres
}

# Inside .ci/with-mariadb, which exports MULTIDB_TEST_MYSQL_URL for a throwaway server.
mysql_stack() {
  local base url1 url2 client
  trap stop_server EXIT
  base=${MULTIDB_TEST_MYSQL_URL%/*}
  BENCH_MYSQL_PORT=$(echo "$base" | sed -E 's/.*:([0-9]+)$/\1/')
  client=(mariadb --no-defaults --host=127.0.0.1 --user=root "--port=$BENCH_MYSQL_PORT")
  "${client[@]}" -e "CREATE DATABASE bench_db1; CREATE DATABASE bench_db2"
  record info mysql version "$("${client[@]}" -N -e 'SELECT VERSION()')"
  url1="$base/bench_db1" url2="$base/bench_db2"
  DATABASE_URL_1=$url1 DATABASE_URL_2=$url2 RUST_LOG=warn "$BENCH_BINARY" migrate
  say "mysql: seeding $USERS users and $ORDERS orders"
  local no_totals=()
  [ -n "$("${client[@]}" -N -e "SELECT 1 FROM information_schema.tables WHERE table_schema = 'bench_db2' AND table_name = 'user_order_totals'")" ] ||
    no_totals=(-e '/^INSERT INTO :db2.user_order_totals/,/GROUP BY user_id;$/d')
  sed "${no_totals[@]}" -e "s/:users/$USERS/g" -e "s/:orders/$ORDERS/g" -e "s/:db1/bench_db1/g" -e "s/:db2/bench_db2/g" \
    "$here/lib/seed-mysql.sql" | "${client[@]}" bench_db1 >/dev/null
  start_server mysql "$url1" "$url2"
  run_workloads mysql
  finish_stack mysql
}

sqlite_stack() {
  local dir="$run_dir/sqlite"
  trap stop_server EXIT
  mkdir -p "$dir"
  DATABASE_URL_1="$dir/db1.sqlite" DATABASE_URL_2="$dir/db2.sqlite" RUST_LOG=warn "$BENCH_BINARY" migrate
  say "sqlite: seeding $USERS users and $ORDERS orders"
  "${helper[@]}" seed-sqlite "$dir/db1.sqlite" "$dir/db2.sqlite" "$USERS" "$ORDERS"
  start_server sqlite "$dir/db1.sqlite" "$dir/db2.sqlite"
  run_workloads sqlite
  finish_stack sqlite
  rm -rf "$dir"
}

case ${1:-} in
  __mysql_stack)
    set +e
    (
      set -e
      mysql_stack
    )
    echo $? >"$run_dir/mysql.status"
    exit 0
    ;;
  __postgres_stack)
    # Never fail pg_virtualenv itself (it would dump every PostgreSQL log of the machine):
    # the outcome goes to a file.
    # (errexit is off in a tested subshell, so the status is taken with `set +e` instead.)
    set +e
    (
      set -e
      postgres_stack
    )
    echo $? >"$run_dir/postgres.status"
    exit 0
    ;;
esac

# ------------------------------------------------------------------------------- driver

mode=full stack=both concurrency=32 duration="" warmup="" rounds=1 binary="" log=warn update_pgbench=0 ceiling=${BENCH_CEILING:-1}
while [ $# -gt 0 ]; do
  opt=$1 value=""
  case $opt in
    --*=*) value=${opt#*=} opt=${opt%%=*} ;;
  esac
  case $opt in
    --stack | --concurrency | --duration | --warmup | --rounds | --binary | --log | --users | --orders)
      if [ -z "$value" ]; then
        [ $# -ge 2 ] || die "$opt needs a value"
        value=$2
        shift
      fi
      ;;
  esac
  case $opt in
    --quick) mode=quick ;;
    --smoke) mode=smoke ;;
    --stack) stack=$value ;;
    --concurrency) concurrency=$value ;;
    --duration) duration=$value ;;
    --warmup) warmup=$value ;;
    --rounds) rounds=$value ;;
    --users) USERS=$value ;;
    --orders) ORDERS=$value ;;
    --binary) binary=$value ;;
    --log) log=$value ;;
    --update-pgbench) update_pgbench=1 ;;
    --no-ceiling) ceiling=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $opt" ;;
  esac
  shift
done
case $mode in
  full) warmup=${warmup:-10} duration=${duration:-30} ;;
  quick) warmup=${warmup:-2} duration=${duration:-5} ;;
  smoke)
    warmup=${warmup:-0} duration=${duration:-2}
    [ "$stack" != postgres ] || die "--smoke runs SQLite only (no pg_virtualenv)"
    stack=sqlite
    ;;
esac
[ "$update_pgbench" = 0 ] || [ "$stack" != sqlite ] || die "--update-pgbench needs the postgres stack"
case $stack in
  both) stacks=(postgres sqlite) ;;
  all) stacks=(postgres sqlite mysql) ;;
  *)
    IFS=, read -r -a stacks <<<"$stack"
    for s in "${stacks[@]}"; do
      case $s in postgres | sqlite | mysql) ;; *) die "--stack must be postgres, sqlite, mysql, both, all or a list of them" ;; esac
    done
    ;;
esac
for n in concurrency duration rounds; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "--$n must be a positive whole number"
done
[[ $USERS =~ ^[1-9][0-9]*$ ]] || die "--users must be a positive whole number"
[[ $ORDERS =~ ^[0-9]+$ ]] || die "--orders must be a whole number"
[[ $warmup =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"

# Tools: wrk (and, for PostgreSQL, pg_virtualenv, a server and pgbench) from Debian.
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [[ " ${stacks[*]} " == *" postgres "* ]]; then
  command -v pg_virtualenv >/dev/null 2>&1 || missing+=(postgresql-common)
  # pgbench comes with the server package (postgresql-NN), like postgres itself.
  if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || ! command -v pgbench >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
fi
# The MySQL stack's ceiling: mariadb-slap (its server comes from .ci/with-mariadb).
if [[ " ${stacks[*]} " == *" mysql "* ]] && [ "$ceiling" = 1 ] && ! command -v mariadb-slap >/dev/null 2>&1; then
  missing+=(mariadb-client)
fi
if [ -z "$binary" ] && ! dpkg -s libpq-dev >/dev/null 2>&1; then
  missing+=(libpq-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

built=0
if [ -z "$binary" ]; then
  built=1
  say "cargo build --release"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  binary="${CARGO_TARGET_DIR:-$root/target}/release/multidb"
fi
[ -x "$binary" ] || die "no executable binary at $binary"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$here/out"
run_dir="$here/out/run-$stamp"
mkdir "$run_dir"
results="$run_dir/results.tsv"
: >"$results"
export BENCH_RUN_DIR=$run_dir BENCH_BINARY=$binary BENCH_CONCURRENCY=$concurrency
export BENCH_DURATION=$duration BENCH_WARMUP=$warmup BENCH_ROUNDS=$rounds BENCH_LOG=$log BENCH_CEILING=$ceiling
export BENCH_UPDATE_PGBENCH=$update_pgbench BENCH_HTTP_WORKERS=${HTTP_WORKERS:-2}
export BENCH_USERS=$USERS BENCH_ORDERS=$ORDERS
export BENCH_WRK_THREADS=$((concurrency < 2 ? concurrency : 2))

if [ "$built" = 1 ]; then
  revision="built from $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "an unknown revision")"
  if [ -n "$(git -C "$root" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    revision+=" with uncommitted changes"
  fi
else
  revision="given with --binary"
fi
record info run nproc "$(nproc)"
record info run cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
record info run load_before "$(cut -d' ' -f1-3 /proc/loadavg)"
record info run concurrency "$concurrency"
record info run users "$USERS"
record info run orders "$ORDERS"
record info run warmup "$warmup"
record info run duration "$duration"
record info run rounds "$rounds"
record info run wrk_threads "$BENCH_WRK_THREADS"
record info run http_workers "$BENCH_HTTP_WORKERS"
record info run db1_pool "${DB1_POOL_SIZE:-2 x cores (default)}"
record info run db2_pool "${DB2_POOL_SIZE:-2 x cores (default)}"
record info run log "$log"
record info run users "$USERS"
record info run orders "$ORDERS"
record info run binary "$binary"
record info run revision "$revision"
record info run date "$(date -u '+%Y-%m-%d %H:%M UTC')"
record info run parts "$parts_spec"

status=0
for s in "${stacks[@]}"; do
  say "=== $s (warm-up ${warmup}s, ${duration}s per workload, concurrency $concurrency, $rounds round(s))"
  if [ "$s" = mysql ]; then
    # No flush at commit, as pg_virtualenv's cluster runs with fsync=off: the benchmark
    # measures the service, not the disk.
    MULTIDB_MARIADB_OPTIONS="--innodb-flush-log-at-trx-commit=0 --sync-binlog=0" \
      bash "$root/.ci/with-mariadb" bash "$here/run.sh" __mysql_stack 2>&1 | grep -v "^ci: MariaDB " || true
    [ "$(cat "$run_dir/mysql.status" 2>/dev/null)" = 0 ] || status=1
    continue
  fi
  if [ "$s" = sqlite ]; then
    set +e
    (
      set -e
      sqlite_stack
    )
    [ $? = 0 ] || status=1
    set -e
    continue
  fi
  wait_for_pg_virtualenv
  pg_virtualenv -o max_prepared_transactions=64 -o max_connections=300 \
    bash "$here/run.sh" __postgres_stack 2>&1 |
    sed -u -e "/^Creating new PostgreSQL cluster /d" -e "/^Dropping cluster /d"
  [ "$(cat "$run_dir/postgres.status" 2>/dev/null)" = 0 ] || status=1
  [ ! -e "$run_dir/trace.failed" ] || status=1
done
record info run load_after "$(cut -d' ' -f1-3 /proc/loadavg)"

echo
"${helper[@]}" report "$results" "$here/out/bench-$stamp.txt" || status=1
cp "$here/out/bench-$stamp.txt" "$here/out/latest.txt"
echo
say "table written to bench/out/bench-$stamp.txt (raw outputs and server logs: bench/out/run-$stamp/)"
[ "$status" = 0 ] || say "FAILED (see above)"
exit "$status"
