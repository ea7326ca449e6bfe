#!/usr/bin/env bash
# Settings A/B: one binary, one workload, several environment variants, alternating,
# ROUNDS times; prints the median req/s and p99 per variant. Runs against databases you
# seeded (e.g. as bench/run.sh seeds them), named by BENCH_DB1_URL and BENCH_DB2_URL.
#   BENCH_DB1_URL=… BENCH_DB2_URL=… bench/knobs.sh BINARY WORKLOAD ROUNDS 'NAME:VAR=V …' …
# A variant's variables are exported for the server; DATABASE_URL_SUFFIX is appended to
# both database URLs (e.g. '?sslmode=disable').
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binary=$1 workload=$2 rounds=$3
shift 3
results=$(mktemp)
trap 'rm -f "$results"' EXIT
port=18999
for round in $(seq 1 "$rounds"); do
  for variant in "$@"; do
    name=${variant%%:*}
    (
      export BIND_ADDRESS="127.0.0.1:$port" RUST_LOG=warn HTTP_WORKERS=2 DATABASE_URL_SUFFIX=
      # shellcheck disable=SC2086
      [ "$name" = "$variant" ] || export ${variant#*:}
      export DATABASE_URL_1="$BENCH_DB1_URL$DATABASE_URL_SUFFIX" DATABASE_URL_2="$BENCH_DB2_URL$DATABASE_URL_SUFFIX"
      exec "$binary" serve
    ) >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
    wrk -t2 -c32 -d3s -s "$here/wrk/$workload.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
    line=$(wrk -t2 -c32 -d8s --latency -s "$here/wrk/$workload.lua" "http://127.0.0.1:$port" 2>&1 | grep '^BENCH ')
    kill "$server"; wait "$server" 2>/dev/null || true
    echo "$name $line" | tee -a "$results"
  done
done
python3 - "$results" <<'PY'
import collections, re, statistics, sys
rows = collections.defaultdict(lambda: ([], []))
for line in open(sys.argv[1]):
    name = line.split()[0]
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    rows[name][0].append(float(fields["rps"]))
    rows[name][1].append(float(fields["p99_us"]) / 1000)
    assert fields["non2xx"] == "0", line
print(f"{'variant':<16} {'req/s (median)':>15} {'p99 ms (median)':>16}")
for name, (rps, p99) in rows.items():
    print(f"{name:<16} {statistics.median(rps):>15,.0f} {statistics.median(p99):>16.2f}")
PY
