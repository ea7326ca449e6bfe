#!/usr/bin/env bash
# Runs every shell block of docs/migrations.md as a developer would, from a scratch copy
# of the repository against throwaway databases, so that the page stays true. Fails if a
# command fails, or if regenerating the schema files changes them.
#
# Runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER, PGPASSWORD name a throwaway
# cluster) and, for the MySQL blocks, with MULTIDB_TEST_MYSQL_URL naming a server where it
# may create and drop databases (.ci/with-mariadb): `bash .ci/with-mariadb pg_virtualenv
# bash docs/check-migrations.sh`. Installs the diesel CLI with the page's own command when
# it is missing.
#
# Blocks run in the page's order, in one scratch checkout, as a reader would run them;
# each starts with fresh PostgreSQL databases multidb_db1 and multidb_db2 (created
# unless the block creates them itself), MySQL ones dropped (the blocks create them),
# and DATABASE_URL_1/2 pointing at the backend whose migration directory the block names
# (SQLite db1 and PostgreSQL db2, as the page's example, when it names none). The
# `mariadb` client of a block finds the server by MYSQL_TCP_PORT.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
page="$repo/docs/migrations.md"

if ! command -v diesel >/dev/null 2>&1; then
  echo "docs: installing the diesel CLI (a few minutes)"
  cargo install diesel_cli --no-default-features --features postgres-bundled,sqlite-bundled,mysql --locked --quiet
fi
diesel --version | grep -q mysql || {
  echo "docs: the installed diesel CLI has no MySQL backend; reinstall it with the page's command"
  exit 1
}
if [ -z "${MULTIDB_TEST_MYSQL_URL:-}" ]; then
  echo "docs: MULTIDB_TEST_MYSQL_URL is not set (see .ci/with-mariadb)"
  exit 1
fi
# The server of MULTIDB_TEST_MYSQL_URL, as root on 127.0.0.1, the page's commands assume.
mysql_port=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 3306)' "$MULTIDB_TEST_MYSQL_URL")
export MYSQL_TCP_PORT=$mysql_port
mysql() { mariadb --no-defaults -h 127.0.0.1 -u root -e "$1"; }
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
mysql_url() { echo "mysql://root@127.0.0.1:${mysql_port}/$1"; }
for block in blocks/*.sh; do
  case $(cat "$block") in
    *"cargo install diesel_cli"*) echo "docs: $block installs the CLI (done above)"; diesel --version; continue ;;
  esac
  dropdb --if-exists -h 127.0.0.1 multidb_db1 2>/dev/null
  dropdb --if-exists -h 127.0.0.1 multidb_db2 2>/dev/null
  mysql "DROP DATABASE IF EXISTS multidb_db1; DROP DATABASE IF EXISTS multidb_db2"
  grep -q createdb "$block" || { createdb -h 127.0.0.1 multidb_db1; createdb -h 127.0.0.1 multidb_db2; }
  DATABASE_URL_1=data/db1.sqlite DATABASE_URL_2=$(url multidb_db2)
  grep -q migrations_db1/postgres "$block" && DATABASE_URL_1=$(url multidb_db1)
  grep -q migrations_db1/mysql "$block" && DATABASE_URL_1=$(mysql_url multidb_db1)
  grep -q migrations_db2/sqlite "$block" && DATABASE_URL_2=data/db2.sqlite
  grep -q migrations_db2/mysql "$block" && DATABASE_URL_2=$(mysql_url multidb_db2)
  export DATABASE_URL_1 DATABASE_URL_2
  echo "docs: running $block"
  bash -euo pipefail "$block" >"$block.out" 2>&1 || { cat "$block.out"; echo "docs: $block failed"; exit 1; }
done
dropdb --if-exists -h 127.0.0.1 multidb_db1 2>/dev/null
dropdb --if-exists -h 127.0.0.1 multidb_db2 2>/dev/null
mysql "DROP DATABASE IF EXISTS multidb_db1; DROP DATABASE IF EXISTS multidb_db2"

if ! git diff --quiet -- src/; then
  git diff -- src/
  echo "docs: regenerating the schema files as the page says changed them"
  exit 1
fi
echo "docs: every command of docs/migrations.md ran"
