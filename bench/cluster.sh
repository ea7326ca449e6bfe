#!/usr/bin/env bash
# Throughput of the four benchmark workloads in the local cluster (deploy/local/cluster.sh),
# in four set-ups, in alternating rounds, reporting medians:
#
#   direct-cached   one instance straight to the two PostgreSQL servers, prepared
#                   statements on (the default)
#   direct-uncached the same with DB1/DB2_PREPARED_STATEMENTS=false
#   bouncer         one instance through PgBouncer (transaction mode), statements uncached
#                   (cached statements do not work through PgBouncer 1.18)
#   cluster         haproxy in front of the cluster's three instances, through PgBouncer
#
# Every set-up runs on the same machine as the databases, PgBouncer, haproxy and wrk:
# the figures compare set-ups with each other, not with a deployment on several hosts.
#
#   bash bench/cluster.sh [--rounds N] [--duration S] [--warmup S] [--concurrency N] [--binary PATH]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
rounds=3 duration=10 warmup=3 concurrency=32 binary=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--duration S] [--warmup S] [--concurrency N] [--binary PATH]" >&2; exit 2 ;;
  esac
done
say() { echo "bench/cluster: $*" >&2; }

if [ -z "$binary" ]; then
  (cd "$repo" && cargo build --release --quiet)
  binary=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/multidb
fi
export MULTIDB_CLUSTER_DIR=${MULTIDB_CLUSTER_DIR:-${TMPDIR:-/tmp}/multidb-bench-cluster}
export MULTIDB_CLUSTER_PORT=${MULTIDB_CLUSTER_PORT:-18800}
export MULTIDB_BIN=$binary RUST_LOG=warn
cluster="$repo/deploy/local/cluster.sh"
out=$(mktemp -d "${TMPDIR:-/tmp}/multidb-bench-cluster-out.XXXXXX")
single_pid=""
cleanup() {
  [ -n "$single_pid" ] && kill "$single_pid" 2>/dev/null && wait "$single_pid" 2>/dev/null
  bash "$cluster" down || true
}
trap cleanup EXIT

bash "$cluster" up
# shellcheck source=/dev/null
source "$MULTIDB_CLUSTER_DIR/cluster.env"

say "seeding 10,000 users and 100,000 orders"
psql -X -q -v ON_ERROR_STOP=1 "$DB1_DIRECT_URL" <<'SQL'
INSERT INTO users (id, email, name, created_at)
SELECT g, 'user' || g || '@example.com', 'User ' || g, TIMESTAMP '2026-01-01' + g * INTERVAL '1 second'
FROM generate_series(1, 10000) AS g;
SELECT setval(pg_get_serial_sequence('users', 'id'), 10000) \g /dev/null
VACUUM ANALYZE;
SQL
psql -X -q -v ON_ERROR_STOP=1 "$DB2_DIRECT_URL" <<'SQL'
INSERT INTO orders (user_id, item, quantity, amount_cents, created_at)
SELECT 1 + g % 10000, 'item ' || g, 1 + (g * 7919) % 10000, (g::bigint * 7919 * 104729) % 1000000000001,
       TIMESTAMP '2026-01-01' + g * INTERVAL '1 second'
FROM generate_series(1, 100000) AS g;
SQL
psql -X -q -v ON_ERROR_STOP=1 "$DB2_DIRECT_URL" -f "$here/lib/seed-totals-postgres.sql"
psql -X -q "$DB2_DIRECT_URL" -c 'VACUUM ANALYZE'

single_port=$((MULTIDB_CLUSTER_PORT + 20))
# start_single URL1 URL2 PREPARED: one more instance, like the cluster's, on its own port.
start_single() {
  (cd "$MULTIDB_CLUSTER_DIR" && exec env -i "PATH=$PATH" DATABASE_URL_1="$1" DATABASE_URL_2="$2" \
    DB1_PREPARED_STATEMENTS="$3" DB2_PREPARED_STATEMENTS="$3" BIND_ADDRESS="127.0.0.1:$single_port" \
    HTTP_WORKERS=2 DB1_POOL_SIZE=8 DB2_POOL_SIZE=8 RUN_MIGRATIONS=false RUST_LOG=warn \
    "$MULTIDB_BIN" serve) >>"$out/single.log" 2>&1 &
  single_pid=$!
  for _ in $(seq 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$single_port/health" && return 0
    sleep 0.1
  done
  say "the single instance did not start"; tail "$out/single.log" >&2; exit 1
}
stop_single() { kill "$single_pid"; wait "$single_pid" 2>/dev/null || true; single_pid=""; }

# run SETUP ROUND WORKLOAD URL: one wrk run, its figures appended to results.tsv.
run() {
  local file="$out/$1-$2-$3.txt"
  if [ "$warmup" != 0 ]; then
    BENCH_USERS=10000 wrk -t 2 -c "$concurrency" -d "${warmup}s" --timeout 10s -s "$here/wrk/$3.lua" "$4" >/dev/null 2>&1
  fi
  BENCH_USERS=10000 wrk -t 2 -c "$concurrency" -d "${duration}s" --timeout 10s --latency \
    -s "$here/wrk/$3.lua" "$4" >"$file" 2>&1 || { cat "$file" >&2; exit 1; }
  read -r rps p50 p99 non2xx errors <<<"$(python3 "$here/lib/bench.py" parse-wrk "$file")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$rps" "$p50" "$p99" "$non2xx" "$errors" >>"$out/results.tsv"
  say "$1 round $2 $3: $rps req/s, p99 $p99 µs, non-2xx $non2xx, socket errors $errors"
}

workloads=(get_user user_summary overview create_order)
for round in $(seq "$rounds"); do
  for setup in direct-cached direct-uncached bouncer cluster; do
    case $setup in
      direct-cached) start_single "$DB1_DIRECT_URL" "$DB2_DIRECT_URL" true ;;
      direct-uncached) start_single "$DB1_DIRECT_URL" "$DB2_DIRECT_URL" false ;;
      bouncer) start_single "$DB1_BOUNCER_URL" "$DB2_BOUNCER_URL" false ;;
    esac
    url="http://127.0.0.1:$single_port"
    [ "$setup" = cluster ] && url=$HAPROXY_URL
    for workload in "${workloads[@]}"; do run "$setup" "$round" "$workload" "$url"; done
    [ -n "$single_pid" ] && stop_single
  done
done

python3 - "$out/results.tsv" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
setups = ["direct-cached", "direct-uncached", "bouncer", "cluster"]
workloads = ["get_user", "user_summary", "overview", "create_order"]
def median(setup, workload, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == setup and r[2] == workload)
bad = [r for r in rows if r[6] != "0" or r[7] != "0"]
print("| workload | " + " | ".join(setups) + " | uncached/cached | bouncer/direct-uncached | cluster/bouncer |")
print("|---|" + "---|" * (len(setups) + 3))
for w in workloads:
    rps = {s: median(s, w, 3) for s in setups}
    p99 = {s: median(s, w, 5) / 1000 for s in setups}
    cells = [f"{rps[s]:,.0f} (p99 {p99[s]:.1f} ms)" for s in setups]
    ratios = [rps["direct-uncached"] / rps["direct-cached"], rps["bouncer"] / rps["direct-uncached"], rps["cluster"] / rps["bouncer"]]
    print(f"| {w} | " + " | ".join(cells) + " | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
print(f"\nrequests/s, medians of {len({r[1] for r in rows})} alternating rounds; failed runs: {len(bad)}")
sys.exit(1 if bad else 0)
PY
