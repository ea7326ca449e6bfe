# Shell functions shared by bench/run.sh, bench/peers.sh and .ci/lib/server.sh (sourced,
# not run).

# Stops the server whose pid is in $server_pid: SIGTERM, up to 35 s to finish, then
# SIGKILL. Does nothing when no server runs.
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 350); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Only one pg_virtualenv can run at a time on a machine (its cluster is always named
# "regress"): waits up to 15 minutes for another one to finish. Needs `say` and `die`.
wait_for_pg_virtualenv() {
  local i
  for i in $(seq 1 180); do
    compgen -G "/etc/postgresql/*/regress" >/dev/null || return 0
    [ "$i" != 1 ] || say "another pg_virtualenv is running; waiting for it (up to 15 min)"
    sleep 5
  done
  die "a pg_virtualenv cluster (regress) is still there"
}
