#!/usr/bin/env bash
# Added latency of the two-phase protocol: builds this checkout and BASE_REV (the
# service before two-phase commit) in release mode, then times both on SQLite and on a
# throwaway PostgreSQL cluster with two-phase commit enabled.
#   bench/two-phase-latency.sh [BASE_REV] [--runs N] [--requests N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base_rev=${1:-10dba25}
shift || true
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
git -C "$root" worktree add --detach --quiet "$work/base" "$base_rev"
cargo build --release --quiet --manifest-path "$work/base/Cargo.toml" --target-dir "$work/target"

binaries=(--binary "before=$work/target/release/multidb" --binary "two-phase=$root/target/release/multidb")
python3 "$root/bench/two_phase_latency.py" "${binaries[@]}" --stack sqlite "$@"
pg_virtualenv -o max_prepared_transactions=64 bash -c '
  export MULTIDB_BENCH_POSTGRES_URL="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}/postgres"
  python3 "$0" "${@}" --stack postgres' "$root/bench/two_phase_latency.py" "${binaries[@]}" "$@"
