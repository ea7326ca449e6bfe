#!/usr/bin/env bash
# The isolating experiment of BENCHMARKS.md ("the price of the hand-off"): a copy of the
# actix-web + deadpool-postgres peer whose every database operation first makes the
# round trip between threads that multidb's `web::block` makes — `web::block(|| ())`,
# an empty closure on actix's blocking pool — and otherwise stays all async. Its
# requests/s against the unchanged peer's is the cost of that hand-off alone.
#   bash bench/experiments/peer-handoff.sh ../shared/peers/actix_deadpool /tmp/actix_deadpool_handoff
#   bash bench/peers.sh deadpool=../shared/peers/actix_deadpool deadpool-handoff=/tmp/actix_deadpool_handoff
set -euo pipefail
from=$1 to=$2
[ -f "$from/src/main.rs" ] || { echo "no $from/src/main.rs" >&2; exit 2; }
rm -rf "$to"
mkdir -p "$to"
cp -r "$from/Cargo.toml" "$from/Cargo.lock" "$from/run.sh" "$from/src" "$to/"
main="$to/src/main.rs"
# Reads: one hand-off per statement (as multidb's db::read); POST /orders: one for the
# whole write (as multidb's write_holding, which runs both sessions in one closure).
sed -i -e 's/let client = pool.get().await?;/handoff().await;\n    let client = pool.get().await?;/' \
  -e 's/let mut users = state.db1.get().await?;/handoff().await;\n    let mut users = state.db1.get().await?;/' "$main"
cat >>"$main" <<'RS'

/// The round trip to a blocking thread and back that multidb's `web::block` makes.
async fn handoff() {
    let _ = web::block(|| ()).await;
}
RS
# Its own build directory: the original's run.sh names a fixed one.
sed -i -e "s|^export CARGO_TARGET_DIR=.*|export CARGO_TARGET_DIR=/tmp/peer-target-$(basename "$to")|" "$to/run.sh"
grep -q "peer-target-$(basename "$to")" "$to/run.sh" || { echo "could not move the copy's build directory" >&2; exit 1; }
count=$(grep -c 'handoff().await;' "$main")
[ "$count" = 5 ] || { echo "expected 5 hand-offs in $main, made $count" >&2; exit 1; }
echo "$to: the peer with $count hand-offs"
