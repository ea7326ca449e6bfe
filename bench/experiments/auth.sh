#!/usr/bin/env bash
# What AUTH=required costs GET /users/{id} at saturation: two servers of BINARY on the
# same seeded databases (as bench/run.sh seeds them), one with AUTH=required and a read
# key, one with AUTH=off, measured by wrk in alternating rounds; prints each round's
# BENCH line and the medians. With BASELINE (another build, e.g. the previous commit's),
# a third server of it with AUTH=required and the same key joins the rotation.
#   BENCH_DB1_URL=… BENCH_DB2_URL=… bench/experiments/auth.sh BINARY [ROUNDS] [SECONDS] [BASELINE]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") rounds=${2:-5} seconds=${3:-8}
baseline=${4:+$(cd "$(dirname "$4")" && pwd)/$(basename "$4")}
die() { echo "auth.sh: $*" >&2; exit 1; }
# shellcheck source=../../.ci/lib/server.sh
. "$here/../.ci/lib/server.sh"
token=$(DATABASE_URL_1=$BENCH_DB1_URL DATABASE_URL_2=$BENCH_DB2_URL "$binary" keys create \
  --name "bench-auth-$$" --scope read 2>/dev/null | tail -1)
logs=$(mktemp -d)
# Only start-up lines (the port is read from them), no request lines.
settings=(RUST_LOG=warn,multidb::app=info HTTP_WORKERS=2 DB1_POOL_SIZE=4 DB2_POOL_SIZE=4 RECOVERY_INTERVAL_MS=3600000)
start_multidb "$binary" "$logs/required.log" "$BENCH_DB1_URL" "$BENCH_DB2_URL" AUTH=required "${settings[@]}"
required_pid=$server_pid required_url=$base_url
start_multidb "$binary" "$logs/off.log" "$BENCH_DB1_URL" "$BENCH_DB2_URL" AUTH=off "${settings[@]}"
off_pid=$server_pid off_url=$base_url
baseline_pid=
if [ -n "$baseline" ]; then
  start_multidb "$baseline" "$logs/baseline.log" "$BENCH_DB1_URL" "$BENCH_DB2_URL" AUTH=required "${settings[@]}"
  baseline_pid=$server_pid baseline_url=$base_url
fi
stop_both() {
  server_pid=$required_pid; stop_server
  server_pid=$off_pid; stop_server
  if [ -n "$baseline_pid" ]; then server_pid=$baseline_pid; stop_server; fi
  rm -rf "$logs"
}
trap stop_both EXIT
results=$(mktemp)
for round in $(seq 1 "$rounds"); do
  wrk -t2 -c32 -d"${seconds}s" --latency -s "$here/wrk/get_user.lua" -H "Authorization: Bearer $token" \
    "$required_url" | grep '^BENCH' | sed 's/^/required /' | tee -a "$results"
  wrk -t2 -c32 -d"${seconds}s" --latency -s "$here/wrk/get_user.lua" "$off_url" |
    grep '^BENCH' | sed 's/^/off /' | tee -a "$results"
  if [ -n "$baseline_pid" ]; then
    wrk -t2 -c32 -d"${seconds}s" --latency -s "$here/wrk/get_user.lua" -H "Authorization: Bearer $token" \
      "$baseline_url" | grep '^BENCH' | sed 's/^/baseline-required /' | tee -a "$results"
  fi
done
python3 - "$results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode = line.split()[0]
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    rows.setdefault(mode, []).append(fields)
for mode, runs in rows.items():
    med = lambda key: statistics.median(float(run[key]) for run in runs)
    print(f"{mode}: median {med('rps'):,.0f} req/s, p50 {med('p50_us'):,.0f} µs, p99 {med('p99_us'):,.0f} µs, non-2xx {sum(int(r['non2xx']) for r in runs)}")
PY
rm -f "$results"
