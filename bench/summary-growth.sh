#!/usr/bin/env bash
# How GET /users/{id}/summary grows with a user's orders: PostgreSQL (a throwaway cluster
# from pg_virtualenv), one user each with 10, 1,000, 100,000 and 1,000,000 orders (seeded
# by SQL), the release binary; for each user, wrk at concurrency 1 for --duration
# seconds, --rounds times in turn, and the median of the rounds' p50 and p99. See
# BENCHMARKS.md, "Summary growth".
#
#   bash bench/summary-growth.sh [--rounds N] [--duration S] [--binary PATH]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rounds=3 duration=5 binary=$root/target/release/multidb
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "summary-growth: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ -z "${SUMMARY_GROWTH_INSIDE:-}" ]; then
  [ -x "$binary" ] || (cd "$root" && cargo build --release --quiet)
  exec env SUMMARY_GROWTH_INSIDE=1 pg_virtualenv -o max_prepared_transactions=8 \
    bash "$0" --rounds "$rounds" --duration "$duration" --binary "$binary"
fi
createdb sg_db1
createdb sg_db2
base="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}"
export DATABASE_URL_1=$base/sg_db1 DATABASE_URL_2=$base/sg_db2 RUST_LOG=warn
"$binary" migrate 2>/dev/null
sizes=(10 1000 100000 1000000)
psql -q -v ON_ERROR_STOP=1 -d sg_db1 <<SQL
INSERT INTO users (id, email, name, created_at)
SELECT g, 'user' || g || '@example.com', 'User ' || g, TIMESTAMP '2026-01-01 00:00:00'
FROM generate_series(1, ${#sizes[@]}) AS g;
SELECT setval(pg_get_serial_sequence('users', 'id'), ${#sizes[@]}) \g /dev/null
SQL
for n in "${!sizes[@]}"; do
  psql -q -v ON_ERROR_STOP=1 -d sg_db2 <<SQL
INSERT INTO orders (user_id, item, quantity, amount_cents, created_at)
SELECT $((n + 1)), 'item ' || g, 1 + g % 100, g % 100000,
       TIMESTAMP '2026-01-01 00:00:00' + g * INTERVAL '1 second'
FROM generate_series(1::bigint, ${sizes[$n]}) AS g;
SQL
done
psql -q -v ON_ERROR_STOP=1 -d sg_db2 -f "$here/lib/seed-totals-postgres.sql"
psql -q -d sg_db2 -c 'VACUUM ANALYZE'
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_log=$(mktemp --suffix=.summary-growth.log)
BIND_ADDRESS=127.0.0.1:$port "$binary" 2>"$server_log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$server_log"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
results=$(mktemp)
for round in $(seq 1 "$rounds"); do
  for n in "${!sizes[@]}"; do
    url="http://127.0.0.1:$port/users/$((n + 1))/summary"
    curl -sf "$url" >/dev/null
    wrk -t1 -c1 -d"${duration}s" --latency "$url" |
      awk -v size="${sizes[$n]}" '/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /Requests\/sec/ { rps = $2 } END { print size, p50, p99, rps }' >>"$results"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
def ms(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)
rows = {}
for line in open(sys.argv[1]):
    size, p50, p99, rps = line.split()
    rows.setdefault(int(size), []).append((ms(p50), ms(p99), float(rps)))
print("| orders of the user | p50 ms | p99 ms | req/s (one client) |")
print("|---|---|---|---|")
for size in sorted(rows):
    p50 = statistics.median(r[0] for r in rows[size])
    p99 = statistics.median(r[1] for r in rows[size])
    rps = statistics.median(r[2] for r in rows[size])
    print(f"| {size:,} | {p50:.2f} | {p99:.2f} | {rps:,.0f} |")
PY
rm -f "$results"
