#!/usr/bin/env bash
# Before/after comparison of binaries: `bench/run.sh --quick --stack postgres` (or
# --stack sqlite) for each binary in turn, alternating, ROUNDS times; then the median per
# binary and workload of req/s, p99 and the ratio to the pgbench ceiling (measured in
# the same run; 0 on SQLite, which has none).
#   bench/compare.sh [--rounds N] [--duration S] [--stack S] NAME=BINARY [NAME=BINARY ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=3 duration=4 stack=postgres
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --stack) stack=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: bench/compare.sh [--rounds N] [--duration S] [--stack S] NAME=BINARY..." >&2; exit 2; }
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for round in $(seq 1 "$rounds"); do
  for pair in "$@"; do
    name=${pair%%=*} binary=${pair#*=}
    echo "== round $round: $name ($binary)"
    bash "$here/run.sh" --quick --stack "$stack" --warmup 1 --duration "$duration" --binary "$binary" |
      tee /dev/stderr | grep -E '^\| (GET|POST) ' | sed "s/^/$name /" >>"$rows"
  done
done 2>/dev/null
python3 - "$rows" <<'PY'
import collections, statistics, sys
data = collections.defaultdict(lambda: collections.defaultdict(list))
order = []
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    cells = [c.strip() for c in rest.strip().strip("|").split("|")]
    workload, rps, p50, p99, non2xx, ceiling, ratio = cells
    if ratio == "—":  # SQLite: no ceiling
        ratio = "0"
    if name not in order:
        order.append(name)
    def ms(value):  # "850 µs", "1.85 ms", "2.10 s" -> milliseconds
        number, unit = value.split()
        return float(number) * {"µs": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    data[(workload, name)]["rps"].append(float(rps.replace(",", "")))
    data[(workload, name)]["p99"].append(ms(p99))
    data[(workload, name)]["ratio"].append(float(ratio))
workloads = []
for workload, _ in data:
    if workload not in workloads:
        workloads.append(workload)
print(f"\nmedians of {len(next(iter(data.values()))['rps'])} alternating runs")
print(f"| {'workload':<24} | {'binary':<12} | {'req/s':>8} | {'p99 ms':>8} | {'ratio':>5} |")
print(f"|{'-'*26}|{'-'*14}|{'-'*10}|{'-'*10}|{'-'*7}|")
for workload in workloads:
    for name in order:
        d = data[(workload, name)]
        print(f"| {workload:<24} | {name:<12} | {statistics.median(d['rps']):>8,.0f} | "
              f"{statistics.median(d['p99']):>8.2f} | {statistics.median(d['ratio']):>5.2f} |")
PY
