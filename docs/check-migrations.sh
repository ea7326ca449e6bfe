#!/usr/bin/env bash
# Runs every shell block of docs/migrations.md as a developer would, from a scratch copy
# of the repository against throwaway databases, so that the page stays true. Fails if a
# command fails, or if regenerating the schema files changes them.
#
# Runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER, PGPASSWORD name a throwaway
# cluster): `pg_virtualenv bash docs/check-migrations.sh`. Installs the diesel CLI with
# the page's own command when it is missing.
#
# Blocks run in the page's order, in one scratch checkout, as a reader would run them;
# each starts with fresh PostgreSQL databases multidb_db1 and multidb_db2 (created
# unless the block creates them itself) and DATABASE_URL_1/2 pointing at the backend
# whose migration directory the block names (SQLite db1 and PostgreSQL db2, as the
# page's example, when it names none).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
page="$repo/docs/migrations.md"

if ! command -v diesel >/dev/null 2>&1; then
  echo "docs: installing the diesel CLI (a few minutes)"
  cargo install diesel_cli --no-default-features --features postgres-bundled,sqlite-bundled --locked --quiet
fi
# `cargo run` in the scratch copy reuses the repository's build directory.
CARGO_TARGET_DIR=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export CARGO_TARGET_DIR

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$scratch")
cd "$scratch"
git init -q && git add -A && git -c user.name=docs -c user.email=docs@localhost commit -qm page

python3 - "$page" "$scratch/blocks" <<'PY'
import os, re, sys
page, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
blocks = re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```", open(page).read(), re.S | re.M)
for n, block in enumerate(blocks):
    lines = [line.strip() for line in block.splitlines()]
    with open(os.path.join(out, f"{n:02d}.sh"), "w") as f:
        f.write("\n".join(lines) + "\n")
print(f"docs: {len(blocks)} shell blocks in {os.path.basename(page)}")
PY

url() { echo "postgres://${PGUSER}@127.0.0.1:${PGPORT}/$1"; }
for block in blocks/*.sh; do
  case $(cat "$block") in
    *"cargo install diesel_cli"*) echo "docs: $block installs the CLI (done above)"; diesel --version; continue ;;
  esac
  dropdb --if-exists -h 127.0.0.1 multidb_db1 2>/dev/null
  dropdb --if-exists -h 127.0.0.1 multidb_db2 2>/dev/null
  grep -q createdb "$block" || { createdb -h 127.0.0.1 multidb_db1; createdb -h 127.0.0.1 multidb_db2; }
  DATABASE_URL_1=data/db1.sqlite DATABASE_URL_2=$(url multidb_db2)
  grep -q migrations_db1/postgres "$block" && DATABASE_URL_1=$(url multidb_db1)
  grep -q migrations_db2/sqlite "$block" && DATABASE_URL_2=data/db2.sqlite
  export DATABASE_URL_1 DATABASE_URL_2
  echo "docs: running $block"
  bash -euo pipefail "$block" >"$block.out" 2>&1 || { cat "$block.out"; echo "docs: $block failed"; exit 1; }
done
dropdb --if-exists -h 127.0.0.1 multidb_db1 2>/dev/null
dropdb --if-exists -h 127.0.0.1 multidb_db2 2>/dev/null

if ! git diff --quiet -- src/; then
  git diff -- src/
  echo "docs: regenerating the schema files as the page says changed them"
  exit 1
fi
echo "docs: every command of docs/migrations.md ran"
