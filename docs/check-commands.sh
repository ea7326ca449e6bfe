#!/usr/bin/env bash
# Runs the shell blocks of README.md and of every page of docs/ as a reader would, so
# that the pages stay true (docs/migrations.md has its own runner, check-migrations.sh).
# Each page runs as one script (`set -euo pipefail`: a command that fails, or an
# example that comes out wrong and checks itself, fails the page), its blocks in order,
# in a scratch copy of the repository whose `target` is the repository's build
# directory.
#
# Conventions of the pages:
# - A line ending in `# serves until Ctrl-C` starts a server: here it runs in the
#   background, the page goes on once the server answers /health on BIND_ADDRESS
#   (127.0.0.1:8080 by default), and it is stopped (SIGTERM, by its pid) when the next
#   one starts or the page ends.
# - A block opened as ```sh ci=skip is not run; its first line must say why
#   (`# not run by CI: …`), and the reason is printed. Every other ```sh block runs.
#
# Runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER, PGPASSWORD name a throwaway cluster:
# the pages' `createdb` and `postgres:///name` URLs reach it) with MULTIDB_TEST_MYSQL_URL
# naming a throwaway MariaDB (.ci/with-mariadb; the pages' `mariadb` client reaches it
# by MYSQL_TCP_PORT): `bash .ci/with-mariadb pg_virtualenv bash docs/check-commands.sh
# [PAGE…]`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "docs: $*"; }

pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
  pages=(README.md)
  for page in "$repo"/docs/*.md; do
    [ "$(basename "$page")" = migrations.md ] || pages+=("docs/$(basename "$page")")
  done
fi
[ -n "${PGHOST:-}" ] || { say "run it inside pg_virtualenv (see its header)"; exit 1; }
[ -n "${MULTIDB_TEST_MYSQL_URL:-}" ] || { say "MULTIDB_TEST_MYSQL_URL is not set (see .ci/with-mariadb)"; exit 1; }
MYSQL_TCP_PORT=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 3306)' "$MULTIDB_TEST_MYSQL_URL")
export MYSQL_TCP_PORT

target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

# The helpers every page's script starts with.
prelude=$(cat <<'SH'
set -euo pipefail
docs_server_pid=
serve_in_background() {
  stop_server
  local address=${BIND_ADDRESS:-127.0.0.1:8080}
  if (exec 3<>"/dev/tcp/${address%:*}/${address##*:}") 2>/dev/null; then
    echo "docs: $address is taken already: cannot start \`$*\`" >&2
    return 1
  fi
  "$@" >>server.log 2>&1 &
  docs_server_pid=$!
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null "http://$address/health"; then
      return 0
    fi
    kill -0 "$docs_server_pid" 2>/dev/null || { cat server.log >&2; echo "docs: \`$*\` exited" >&2; return 1; }
    sleep 0.1
  done
  cat server.log >&2
  echo "docs: \`$*\` did not answer on $address within a minute" >&2
  return 1
}
stop_server() {
  if [ -n "$docs_server_pid" ]; then
    kill "$docs_server_pid" 2>/dev/null || true
    wait "$docs_server_pid" 2>/dev/null || true
    docs_server_pid=
  fi
}
trap stop_server EXIT
SH
)

status=0
for page in "${pages[@]}"; do
  scratch=$(mktemp -d)
  (cd "$repo" && git ls-files -z | xargs -0 cp --parents -t "$scratch")
  ln -s "$target_dir" "$scratch/target"
  script=$scratch/page.sh
  python3 - "$repo/$page" "$script" "$prelude" <<'PY'
import re, sys
page, out, prelude = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(page).read()
blocks = re.findall(r"^[ \t]*```sh([^\n]*)\n(.*?)^[ \t]*```", text, re.S | re.M)
parts, skipped = [prelude], []
for n, (info, body) in enumerate(blocks, 1):
    lines = body.rstrip("\n").split("\n")
    if "ci=skip" in info:
        why = lines[0].strip()
        if not why.startswith("# not run by CI:"):
            sys.exit(f"docs: {page}: block {n} is ci=skip without `# not run by CI: <why>` first")
        skipped.append(f"block {n}: {why[2:]}")
        continue
    script, start = [], 0
    for line in lines:
        if not (script and script[-1].rstrip().endswith("\\")):
            start = len(script)  # the first line of this command
        if re.search(r"#\s*serves until Ctrl-C\s*$", line):
            line = re.sub(r"#\s*serves until Ctrl-C\s*$", "", line).rstrip()
            script.append(line)
            # The whole command, its variables too, through env in the background.
            script[start] = "serve_in_background env " + script[start].lstrip()
            continue
        script.append(line)
    parts.append(f"echo 'docs: block {n}' >&2\n" + "\n".join(script))
open(out, "w").write("\n\n".join(parts) + "\n")
print(f"docs: {page}: {len(blocks) - len(skipped)} blocks to run, {len(skipped)} not run")
for line in skipped:
    print(f"docs:   {line}")
PY
  say "running $page"
  if (cd "$scratch" && CARGO_TARGET_DIR=$target_dir bash "$script") >"$scratch/out.log" 2>&1; then
    say "$page: every block ran"
  else
    cat "$scratch/out.log"
    say "$page FAILED (its script: $script)"
    status=1
    continue
  fi
  rm -rf "$scratch"
done
exit $status
