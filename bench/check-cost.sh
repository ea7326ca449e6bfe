#!/usr/bin/env bash
# What `multidb check` costs on a large pair of databases: PostgreSQL (a throwaway
# cluster from pg_virtualenv), 1,000,000 users in db1 and 10,000,000 orders in db2 by
# default, seeded as bench/run.sh seeds; then the check runs --rounds times with
# the release binary and the script prints each run's wall time, the steps of its scan
# and the plan of one step (an index-only range of orders_user_id_id_idx). See
# docs/operations.md, "Checking that the databases agree".
#
#   bash bench/check-cost.sh [--users N] [--orders N] [--rounds N] [--batch N] [--binary PATH]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
users=1000000 orders=10000000 rounds=3 batch=1000 binary=$root/target/release/multidb
while [ $# -gt 0 ]; do
  case $1 in
    --users) users=$2; shift 2 ;;
    --orders) orders=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "check-cost: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "${PGHOST:-}" ] || [ -z "${CHECK_COST_INSIDE:-}" ]; then
  [ -x "$binary" ] || (cd "$root" && cargo build --release --quiet)
  exec env CHECK_COST_INSIDE=1 pg_virtualenv -o max_prepared_transactions=8 \
    bash "$0" --users "$users" --orders "$orders" --rounds "$rounds" --batch "$batch" --binary "$binary"
fi
createdb multidb_cost_db1
createdb multidb_cost_db2
base="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}"
export DATABASE_URL_1=$base/multidb_cost_db1 DATABASE_URL_2=$base/multidb_cost_db2
"$binary" migrate 2>/dev/null
echo "check-cost: seeding $users users and $orders orders"
psql -q -v ON_ERROR_STOP=1 -d multidb_cost_db1 -v users="$users" -f "$here/lib/seed-db1.sql"
# As bench/lib/seed-db2.sql, in 64-bit arithmetic: g * 7919 passes 2^31 past 271,000 orders.
psql -q -v ON_ERROR_STOP=1 -d multidb_cost_db2 <<SQL
INSERT INTO orders (user_id, item, quantity, amount_cents, created_at)
SELECT 1 + g % $users, 'item ' || g, 1 + (g * 7919) % 10000,
       (g * 7919 * 104729) % 1000000000001,
       TIMESTAMP '2026-01-01 00:00:00' + g * INTERVAL '1 second'
FROM generate_series(1::bigint, $orders) AS g;
SQL
psql -q -v ON_ERROR_STOP=1 -d multidb_cost_db2 -f "$here/lib/seed-totals-postgres.sql"
psql -q -d multidb_cost_db2 -c 'VACUUM ANALYZE'
psql -q -d multidb_cost_db2 -At -c "SELECT 'db2: ' || pg_size_pretty(pg_database_size(current_database()))"
echo "check-cost: one step's plan"
psql -d multidb_cost_db2 -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT DISTINCT user_id FROM orders WHERE user_id > 500000 ORDER BY user_id LIMIT $batch"
for round in $(seq 1 "$rounds"); do
  start=$(date +%s.%N)
  "$binary" check --json --batch "$batch" > /tmp/check-cost.$$.json
  end=$(date +%s.%N)
  python3 - "$start" "$end" "$round" /tmp/check-cost.$$.json <<'PY'
import json, sys
start, end, round_, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
report = json.load(open(path))
orphans = report["orphan_orders"]
print(f"check-cost: round {round_}: {end - start:.2f} s wall, healthy={report['healthy']}, "
      f"{orphans['users_scanned']} users in {orphans['batches']} steps")
PY
done
rm -f /tmp/check-cost.$$.json
