#!/usr/bin/env bash
# Sustained load: bench/run.sh on PostgreSQL with every workload run for 150 s back to
# back (10 minutes of uninterrupted load; no pgbench ceilings), while the server's
# resident memory and its open connections to PostgreSQL (the pools, seen from the OS)
# are sampled every 20 s. Steady RSS and connection counts, and figures matching a
# short bench/run.sh, mean no leak.
#   bench/soak.sh [--duration S (per workload, default 150)] [run.sh options]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
samples="$here/out/soak-samples-$(date -u +%Y%m%d-%H%M%S).txt"
mkdir -p "$here/out"

sample() {
  printf '%-8s %10s %12s %s\n' "time" "VmRSS" "connections" "(to PostgreSQL, both pools)"
  local start=$SECONDS pid rss conns
  while true; do
    pid=$(pgrep -f -- "multidb[^ /]* serve" | head -1 || true)
    if [ -n "$pid" ]; then
      rss=$(awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status" 2>/dev/null || echo "-")
      # Established TCP connections of the server process to a PostgreSQL port (54xx).
      conns=$(ss -tnp state established 2>/dev/null | grep "pid=$pid," | grep -c ':54[0-9][0-9] ' || true)
      printf '%-8s %10s %12s\n' "$((SECONDS - start))s" "$rss" "$conns"
    fi
    sleep 20
  done
}

sample >"$samples" &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
duration=150
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
bash "$here/run.sh" --stack postgres --no-ceiling --warmup 5 --duration "$duration" "${args[@]}"
kill $sampler 2>/dev/null || true
echo
echo "soak samples (every 20 s; $samples):"
cat "$samples"
