#!/usr/bin/env bash
# Added latency of the two-phase protocol: builds BASE_REV (the service before
# two-phase commit) and NEW_REV (default: this checkout) in release mode, then times
# both on SQLite and on a throwaway PostgreSQL cluster with two-phase commit enabled.
#   bench/two-phase-latency.sh [BASE_REV [NEW_REV]] [--runs N] [--requests N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base_rev=10dba25
new_rev=
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then base_rev=$1; shift; fi
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then new_rev=$1; shift; fi
work=$(mktemp -d)
cleanup() {
  for tree in base new; do git -C "$root" worktree remove --force "$work/$tree" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

build() { # build REV NAME: a release binary of REV at $work/NAME-target
  git -C "$root" worktree add --detach --quiet "$work/$2" "$1"
  cargo build --release --quiet --manifest-path "$work/$2/Cargo.toml" --target-dir "$work/$2-target"
}
build "$base_rev" base
if [ -n "$new_rev" ]; then
  build "$new_rev" new
  new_binary="$work/new-target/release/multidb"
else
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  new_binary="$root/target/release/multidb"
fi

binaries=(--binary "before=$work/base-target/release/multidb" --binary "two-phase=$new_binary")
python3 "$root/bench/two_phase_latency.py" "${binaries[@]}" --stack sqlite "$@"
pg_virtualenv -o max_prepared_transactions=64 bash -c '
  export MULTIDB_BENCH_POSTGRES_URL="postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}/postgres"
  python3 "$0" "${@}" --stack postgres' "$root/bench/two_phase_latency.py" "${binaries[@]}" "$@"
