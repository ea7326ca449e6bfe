# shellcheck shell=bash
# Starting and stopping a throwaway multidb for the black-box checks of .ci/ (sourced,
# not run). Needs `die` from the caller. Stopping is bench/lib/server.sh's stop_server.

# shellcheck source=../../bench/lib/server.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../bench/lib/server.sh"

server_pid=""
base_url=""

# start_multidb BINARY LOG_FILE DATABASE_URL_1 DATABASE_URL_2 [VAR=VALUE...]
# Starts the binary and waits until /health answers 200; sets server_pid and base_url.
start_multidb() {
  local binary=$1 log=$2 url1=$3 url2=$4 port=""
  shift 4
  # Port 0: the kernel picks a free port and the server logs it, so two runs on one
  # machine (a developer's and CI's) never race for a port picked in advance.
  # From the log's directory, so that a developer's ./.env cannot change the settings.
  (
    cd "$(dirname "$log")" || exit 1
    # Text logs at info, whatever the caller's environment says: the port is read from them.
    export DATABASE_URL_1=$url1 DATABASE_URL_2=$url2 BIND_ADDRESS=127.0.0.1:0 RUST_LOG=info LOG_FORMAT=text
    # shellcheck disable=SC2163 # exports each VAR=VALUE given
    [ $# = 0 ] || export "$@"
    exec "$binary" serve
  ) >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      tail -20 "$log" >&2
      server_pid=""
      die "multidb exited during start-up (log above)"
    fi
    if [ -z "$port" ]; then
      port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$log" | head -1)
    fi
    if [ -n "$port" ] &&
      curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null; then
      base_url="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  tail -20 "$log" >&2
  die "multidb did not answer /health with 200 after 300 tries, 30 to 330 s (log above)"
}
