#!/usr/bin/env bash
# A production-like multidb cluster on loopback, for tests, benchmarks and demos: two
# PostgreSQL 15 servers (db1, db2) <- one PgBouncer (transaction pooling) <- three multidb
# instances <- haproxy. See deploy/local/README.md.
#
#   deploy/local/cluster.sh up | down | status | start-instance N | stop-instance N
#                           | stop-bouncer | start-bouncer | stop-postgres N | start-postgres N
#
# Everything lives in ${MULTIDB_CLUSTER_DIR:-${TMPDIR:-/tmp}/multidb-cluster} and listens on
# 127.0.0.1 only, on ports from ${MULTIDB_CLUSTER_PORT:-18400}: haproxy +0, pg1 +1, pg2 +2,
# pgbouncer +3, instances +11..+13. Processes are found again only through the pid files of
# that directory, never by name: other PostgreSQL servers and clusters share the machine.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${MULTIDB_CLUSTER_DIR:-${TMPDIR:-/tmp}/multidb-cluster}
[[ $DIR == /* ]] || DIR=$PWD/$DIR
BASE=${MULTIDB_CLUSTER_PORT:-18400}
PGBIN=${MULTIDB_PG_BIN:-/usr/lib/postgresql/15/bin}
REQUESTED_BIN=${MULTIDB_BIN:-target/release/multidb} # relative to the repository, or absolute
[[ $REQUESTED_BIN == /* ]] || REQUESTED_BIN=$REPO_ROOT/$REQUESTED_BIN
MARKER=.multidb-cluster # `down` deletes only a directory holding this file
COMPONENTS=(pg1 pg2 pgbouncer haproxy instance1 instance2 instance3)

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
set_ports() { HAPROXY_PORT=$BASE PG1_PORT=$((BASE + 1)) PG2_PORT=$((BASE + 2)) BOUNCER_PORT=$((BASE + 3)); }
set_ports
instance_port() { echo $((BASE + 10 + $1)); }
port_of() {
  case $1 in
    haproxy) echo "$BASE" ;; pg?) echo $((BASE + ${1#pg})) ;; pgbouncer) echo "$BOUNCER_PORT" ;;
    instance?) instance_port "${1#instance}" ;;
  esac
}
db_name() { if (($1 == 1)); then echo multidb_users; else echo multidb_orders; fi; }
# PostgreSQL and PgBouncer refuse to run as root. The cd keeps them out of a working
# directory the postgres user may not enter.
as_pg() { (cd "$DIR" && runuser -u postgres -- "$@"); }

# The pid in file $1 if that process is alive and runs program $2: a pid file can outlive
# its process, and the pid be reused by another program (or be an unreaped zombie).
live_pid() {
  local pid exe
  [[ -f $1 ]] && pid=$(head -n1 "$1" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)} # the binary was rebuilt while it ran
  [[ ${exe##*/} == "$2" ]] && echo "$pid"
}
pid_of() {
  case $1 in
    pg?) live_pid "$DIR/$1/postmaster.pid" postgres ;;
    pgbouncer | haproxy) live_pid "$DIR/$1.pid" "$1" ;;
    instance?) live_pid "$DIR/$1.pid" "$(basename "$MULTIDB_BIN")" ;;
  esac
}

# A cluster that is up keeps the ports, binary and PostgreSQL it was started with.
load_env() {
  MULTIDB_BIN=$REQUESTED_BIN
  if [[ -f $DIR/cluster.env ]]; then
    # shellcheck source=/dev/null
    source "$DIR/cluster.env"
    BASE=$HAPROXY_PORT
  fi
}

wait_until() { # seconds command...: polls every 0.2 s; false on timeout
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
listening() { ss -Hltn "( sport = :$1 )" | grep -q .; }
health_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$1/health" || true; }
haproxy_cmd() { echo "$1" | socat -t 2 - "UNIX-CONNECT:$DIR/haproxy.sock" 2>/dev/null; }
haproxy_stat() { # instance-number column: 18 = status (UP, DOWN, DRAIN, "UP 1/2"...), 5 = sessions
  haproxy_cmd "show stat" | awk -F, -v s="instance$1" -v c="$2" '$1 == "multidb" && $2 == s { print $c }'
}
fail_with_log() { # log-file message
  log "error: $2; last lines of $1:"
  tail -n 25 "$1" >&2 2>/dev/null || true
  log "the state is kept in $DIR for a look; clean up with: $0 down"
  exit 1
}

ensure_packages() {
  local missing=() cmd
  [[ -x $PGBIN/initdb ]] || missing+=(postgresql-15)
  for cmd in psql pgbouncer haproxy wrk curl socat; do
    command -v "$cmd" >/dev/null || missing+=("${cmd/psql/postgresql-client-15}")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  # Not every Debian release has PostgreSQL 15: then its default major version.
  if ! apt-cache show postgresql-15 >/dev/null 2>&1; then
    missing=("${missing[@]/postgresql-15/postgresql}")
    missing=("${missing[@]/postgresql-client-15/postgresql-client}")
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [[ -x $PGBIN/initdb ]] || PGBIN=$(find /usr/lib/postgresql -path '*/bin/initdb' | sort -V | tail -n1 | xargs -r dirname)
  [[ -n $PGBIN ]] || die "no PostgreSQL server binaries after installing"
}

write_cluster_env() { # shell-sourceable, for tests and scripts
  local u=postgres://postgres@127.0.0.1
  printf '%s=%q\n' CLUSTER_DIR "$DIR" HAPROXY_PORT "$HAPROXY_PORT" \
    HAPROXY_URL "http://127.0.0.1:$HAPROXY_PORT" HAPROXY_SOCKET "$DIR/haproxy.sock" \
    PG1_PORT "$PG1_PORT" PG2_PORT "$PG2_PORT" BOUNCER_PORT "$BOUNCER_PORT" \
    INSTANCE1_PORT $((BASE + 11)) INSTANCE2_PORT $((BASE + 12)) INSTANCE3_PORT $((BASE + 13)) \
    PG1_DATA "$DIR/pg1" PG2_DATA "$DIR/pg2" PGBIN "$PGBIN" \
    DB1_DIRECT_URL "$u:$PG1_PORT/multidb_users" DB2_DIRECT_URL "$u:$PG2_PORT/multidb_orders" \
    DB1_BOUNCER_URL "$u:$BOUNCER_PORT/multidb_users" DB2_BOUNCER_URL "$u:$BOUNCER_PORT/multidb_orders" \
    MULTIDB_BIN "$MULTIDB_BIN" >"$DIR/cluster.env"
}

start_postgres() { # n: initdb, configure, start, create the database
  local n=$1 data=$DIR/pg$1 port
  port=$(port_of "pg$n")
  # --no-sync for initdb only (the state dir is throwaway); the server runs with fsync on.
  as_pg "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$DIR/pg$n.initdb.log" 2>&1 || fail_with_log "$DIR/pg$n.initdb.log" "initdb pg$n failed"
  cat >>"$data/postgresql.conf" <<EOF
# multidb local cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
max_connections = 200
max_prepared_transactions = 64   # two-phase commit of cross-database writes
EOF
  # setsid: a Ctrl-C during `up` must not reach the postmaster (it would shut down).
  as_pg setsid "$PGBIN/pg_ctl" -D "$data" -l "$DIR/pg$n.log" -w -t 60 start >/dev/null ||
    fail_with_log "$DIR/pg$n.log" "PostgreSQL pg$n did not start"
  psql -qX -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE $(db_name "$n")" >/dev/null
}

start_pgbouncer() {
  echo '"postgres" ""' >"$DIR/pgbouncer.users"
  cat >"$DIR/pgbouncer.ini" <<EOF
[databases]
multidb_users = host=127.0.0.1 port=$PG1_PORT dbname=multidb_users
multidb_orders = host=127.0.0.1 port=$PG2_PORT dbname=multidb_orders

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir = $DIR
pidfile = $DIR/pgbouncer.pid
logfile = $DIR/pgbouncer.log
; trust still needs the user in auth_file
auth_type = trust
auth_file = $DIR/pgbouncer.users
admin_users = postgres
stats_users = postgres
pool_mode = transaction
; 3 instances x DBn_POOL_SIZE (8) client connections per database share these
default_pool_size = 20
max_client_conn = 500
; PgBouncer-side bounds: a query running 10 s, or waiting 5 s for a server connection,
; has its client connection closed
query_timeout = 10
query_wait_timeout = 5
; After a failed login to a server (it is restarting), PgBouncer refuses every client
; for this long before it tries again: 15 s by default, longer than the restart itself.
server_login_retry = 1
EOF
  launch_pgbouncer
}

launch_pgbouncer() {
  as_pg pgbouncer -d -q "$DIR/pgbouncer.ini" || fail_with_log "$DIR/pgbouncer.log" "pgbouncer did not start"
  if ! { wait_until 10 pid_of pgbouncer >/dev/null && wait_until 10 listening "$BOUNCER_PORT"; }; then
    fail_with_log "$DIR/pgbouncer.log" "pgbouncer is not listening on $BOUNCER_PORT"
  fi
}

start_haproxy() {
  cat >"$DIR/haproxy.cfg" <<EOF
global
    maxconn 4096
    stats socket $DIR/haproxy.sock mode 600 level admin
    # No syslog on the machine: the log goes to stdout (haproxy.log). Under heavy load
    # haproxy drops some lines rather than wait (DroppedLogs in "show info").
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 1s        # loopback: a refused or lost connect is known at once
    timeout client 30s
    timeout server 30s        # > the app's 5 s statement timeout and 2 s pool checkout
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 5s
    timeout check 2s          # /health answers within 2 s even when a database hangs

frontend http
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend multidb

backend multidb
    balance roundrobin
    option httpchk GET /health
    # 503 is a live instance reporting a database outage, which every instance shares:
    # it stays in rotation and answers 503 database_unavailable with Retry-After itself.
    # Taking all instances out would only replace that with haproxy's own error page. An
    # instance that is dead, hung or refusing fails the check.
    http-check expect rstatus ^(200|503)$
    # After SIGTERM an instance refuses connections at once: a refused connect never
    # reached the app and is retried on another instance (redispatch on every retry, not
    # only the last). An empty response (the instance closed a kept-alive connection as a
    # request went out on it, or died) is retried for GET/HEAD only; for POST, PATCH and
    # DELETE, which may have reached the app, haproxy closes the client's connection
    # instead, and the client retries with its Idempotency-Key. stop-instance drains the
    # instance in haproxy first, so that race does not happen in a rolling restart.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    http-request disable-l7-retry unless METH_GET
    # safe (the default): a client's first request never rides a reused connection.
    http-reuse safe
    # No "on-marked-down shutdown-sessions": an instance going down after SIGTERM is
    # finishing its requests, and cutting its sessions would fail them.
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
    server instance1 127.0.0.1:$(instance_port 1) check
    server instance2 127.0.0.1:$(instance_port 2) check
    server instance3 127.0.0.1:$(instance_port 3) check
EOF
  haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy rejects $DIR/haproxy.cfg"
  # Foreground (-db) in a session of its own rather than -D, which would lose the log.
  setsid haproxy -db -f "$DIR/haproxy.cfg" >>"$DIR/haproxy.log" 2>&1 </dev/null &
  echo $! >"$DIR/haproxy.pid"
  wait_until 10 listening "$HAPROXY_PORT" || fail_with_log "$DIR/haproxy.log" "haproxy is not listening"
}

write_instance_env() { # n: the instance's environment, kept for start-instance
  local n=$1 extra_name=MULTIDB_INSTANCE_ENV_$1 extra
  read -ra extra <<<"${!extra_name:-}"
  printf '%s\n' "DATABASE_URL_1=postgres://postgres@127.0.0.1:$BOUNCER_PORT/multidb_users" \
    "DATABASE_URL_2=postgres://postgres@127.0.0.1:$BOUNCER_PORT/multidb_orders" \
    DB1_PREPARED_STATEMENTS=false DB2_PREPARED_STATEMENTS=false \
    "BIND_ADDRESS=127.0.0.1:$(instance_port "$n")" "RUST_LOG=${RUST_LOG:-info}" RUN_MIGRATIONS=true \
    "INSTANCE_LEASE_MS=${MULTIDB_LEASE_MS:-5000}" "RECOVERY_INTERVAL_MS=${MULTIDB_RECOVERY_INTERVAL_MS:-2000}" \
    "HTTP_WORKERS=${MULTIDB_HTTP_WORKERS:-2}" "RUST_BACKTRACE=${RUST_BACKTRACE:-1}" \
    "REQUEST_TIMEOUT_MS=${MULTIDB_REQUEST_TIMEOUT_MS:-10000}" \
    "DB1_POOL_SIZE=${MULTIDB_POOL_SIZE:-8}" "DB2_POOL_SIZE=${MULTIDB_POOL_SIZE:-8}" \
    "${extra[@]}" >"$DIR/instance$n.env"
}

launch_instance() { # n [KEY=VALUE...]: starts it in the background, does not wait
  local n=$1 vars
  shift
  mapfile -t vars <"$DIR/instance$n.env"
  # Only these variables (env -i), and no .env of the caller's directory (cd): the caller's
  # shell cannot change an instance by accident. setsid and env exec in place, so $! is the
  # multidb process itself (kill -9 "$(cat instanceN.pid)" kills the instance), and in a
  # session of its own it outlives this script and its terminal.
  (cd "$DIR" && exec setsid env -i "PATH=$PATH" "${vars[@]}" "$@" "$MULTIDB_BIN" serve) \
    >>"$DIR/instance$n.log" 2>&1 </dev/null &
  echo $! >"$DIR/instance$n.pid"
}

instance_healthy() { # n: exits the script if the process died
  if ! pid_of "instance$1" >/dev/null; then
    # Just launched, the process may still be setsid or env on its way to exec the
    # binary: not healthy yet. Gone, or a zombie, it died.
    local pid state=""
    pid=$(head -n1 "$DIR/instance$1.pid" 2>/dev/null) || pid=""
    [[ -n $pid ]] && state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
    if [[ -z $state || $state == Z ]]; then
      fail_with_log "$DIR/instance$1.log" "instance$1 exited"
    fi
    return 1
  fi
  [[ $(health_code "$(instance_port "$1")") == 200 ]]
}
wait_healthy() {
  wait_until 90 instance_healthy "$1" ||
    fail_with_log "$DIR/instance$1.log" "instance$1 not healthy on port $(instance_port "$1") after 90 s"
}
haproxy_up() { [[ $(haproxy_stat "$1" 18) == UP ]]; }
wait_haproxy_up() { # rise 2 x inter 500 ms
  wait_until 15 haproxy_up "$1" ||
    fail_with_log "$DIR/haproxy.log" "haproxy does not see instance$1 UP (state: $(haproxy_stat "$1" 18))"
}

gone() { ! pid_of "$1" >/dev/null; }
stop_pid() { # component pid seconds: SIGTERM, and SIGKILL after the bounded wait
  kill -TERM "$2" 2>/dev/null || return 0
  wait_until "$3" gone "$1" && return 0
  log "$1 (pid $2) still running after $3 s: SIGKILL"
  kill -KILL "$2" 2>/dev/null || true
  wait_until 5 gone "$1" || die "$1 (pid $2) survives SIGKILL"
}

cmd_up() {
  [[ $EUID == 0 ]] || die "run as root (PostgreSQL and PgBouncer are started as the postgres user)"
  if [[ -e $DIR ]]; then
    [[ -f $DIR/$MARKER ]] || die "$DIR exists and is not a cluster state directory"
    load_env
    local c
    for c in "${COMPONENTS[@]}"; do
      gone "$c" || die "already up in $DIR ($c is running); see: $0 status | down"
    done
    log "removing what an earlier, partial up left in $DIR"
    cmd_down
    BASE=${MULTIDB_CLUSTER_PORT:-18400}
    set_ports
  fi
  local started=$SECONDS port n
  ensure_packages
  MULTIDB_BIN=$REQUESTED_BIN
  [[ -x $MULTIDB_BIN ]] || die "no multidb binary at $MULTIDB_BIN (cargo build --release, or set MULTIDB_BIN)"
  for port in "$HAPROXY_PORT" "$PG1_PORT" "$PG2_PORT" "$BOUNCER_PORT" $((BASE + 11)) $((BASE + 12)) $((BASE + 13)); do
    ! listening "$port" || die "port $port is in use (choose another MULTIDB_CLUSTER_PORT)"
  done

  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
  # The postgres user writes data directories, sockets, logs and pid files in here.
  chown postgres: "$DIR"
  chmod 755 "$DIR"
  runuser -u postgres -- test -w "$DIR" ||
    die "the postgres user cannot write $DIR (a parent directory closed to it?): set MULTIDB_CLUSTER_DIR"
  write_cluster_env

  log "starting PostgreSQL on $PG1_PORT and $PG2_PORT"
  start_postgres 1 &
  local pg1=$!
  start_postgres 2 &
  if ! { wait "$pg1" && wait $!; }; then die "PostgreSQL did not start; clean up with: $0 down"; fi
  log "starting PgBouncer on $BOUNCER_PORT"
  start_pgbouncer
  log "starting instances on $((BASE + 11)), $((BASE + 12)), $((BASE + 13))"
  for n in 1 2 3; do
    write_instance_env "$n"
    launch_instance "$n"
  done
  for n in 1 2 3; do wait_healthy "$n"; done
  # haproxy last: its servers start UP, and no check saw them refuse connections.
  log "starting haproxy on $HAPROXY_PORT"
  start_haproxy
  for n in 1 2 3; do wait_haproxy_up "$n"; done
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$HAPROXY_PORT/health" ||
    fail_with_log "$DIR/haproxy.log" "GET /health through haproxy failed"
  log "up in $((SECONDS - started)) s: http://127.0.0.1:$HAPROXY_PORT (variables: $DIR/cluster.env)"
}

cmd_down() {
  [[ -e $DIR ]] || return 0
  [[ -f $DIR/$MARKER ]] || die "$DIR is not a cluster state directory; not touching it"
  load_env
  local n pid c
  # All instances at once, each finishing its in-flight requests (actix allows 30 s).
  for n in 1 2 3; do
    if pid=$(pid_of "instance$n"); then stop_pid "instance$n" "$pid" 40 & fi
  done
  wait
  for c in haproxy pgbouncer; do
    if pid=$(pid_of "$c"); then stop_pid "$c" "$pid" 10; fi
  done
  for n in 1 2; do
    gone "pg$n" || as_pg "$PGBIN/pg_ctl" -D "$DIR/pg$n" -m fast -w -t 60 stop >/dev/null ||
      as_pg "$PGBIN/pg_ctl" -D "$DIR/pg$n" -m immediate -w -t 30 stop >/dev/null || true
  done
  for c in "${COMPONENTS[@]}"; do
    gone "$c" || die "$c (pid $(pid_of "$c")) is still running; $DIR kept"
  done
  rm -rf -- "$DIR"
}

cmd_status() { # exit 0 if every component is up (instances healthy and UP in haproxy), else 3
  local all_up=true c pid state extra
  load_env
  for c in "${COMPONENTS[@]}"; do
    extra=""
    if pid=$(pid_of "$c"); then state=up; else pid=- state=down all_up=false; fi
    if [[ $c == instance? ]]; then
      extra="health=$(health_code "$(port_of "$c")") haproxy=$(haproxy_stat "${c#instance}" 18 || true)"
      [[ $extra == "health=200 haproxy=UP" ]] || all_up=false
    fi
    printf '%-10s pid %-8s port %-6s %-5s %s\n' "$c" "$pid" "$(port_of "$c")" "$state" "$extra"
  done
  $all_up || exit 3
}

instance_arg() {
  [[ $1 =~ ^[123]$ ]] || die "usage: $0 start-instance|stop-instance 1|2|3"
  [[ -f $DIR/$MARKER ]] || die "no cluster in $DIR"
  load_env
}

# Again with the environment it had at `up`, plus MULTIDB_INSTANCE_ENV_N if set now.
cmd_start_instance() {
  instance_arg "$1"
  local n=$1 pid extra_name=MULTIDB_INSTANCE_ENV_$1 extra
  ! pid=$(pid_of "instance$n") || die "instance$n is already running (pid $pid)"
  read -ra extra <<<"${!extra_name:-}"
  launch_instance "$n" "${extra[@]}"
  wait_healthy "$n"
  haproxy_cmd "set server multidb/instance$n state ready" >/dev/null || true # undo stop-instance's drain
  wait_haproxy_up "$n"
  log "instance$n up (pid $(cat "$DIR/instance$n.pid"))"
}

# Drain it in haproxy first (no new requests; the ones under way finish), so that no request
# goes out on a connection the instance is closing; then SIGTERM, and wait for the exit.
cmd_stop_instance() {
  instance_arg "$1"
  local n=$1 pid
  pid=$(pid_of "instance$n") || return 0
  if haproxy_cmd "set server multidb/instance$n state drain" >/dev/null; then
    wait_until 10 eval "[[ \$(haproxy_stat $n 5) == 0 ]]" || log "instance$n still has sessions in haproxy"
  fi
  stop_pid "instance$n" "$pid" 40
}

# PgBouncer or a PostgreSQL server away and back, for tests of outages under load.
cmd_stop_bouncer() {
  load_env
  local pid
  if pid=$(pid_of pgbouncer); then stop_pid pgbouncer "$pid" 10; fi
}
cmd_start_bouncer() {
  load_env
  gone pgbouncer || die "pgbouncer is already running"
  launch_pgbouncer
}
postgres_arg() {
  [[ $1 =~ ^[12]$ ]] || die "usage: $0 stop-postgres|start-postgres 1|2"
  [[ -f $DIR/$MARKER ]] || die "no cluster in $DIR"
  load_env
}
cmd_stop_postgres() {
  postgres_arg "$1"
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg$1" -m fast -w -t 60 stop >/dev/null
}
cmd_start_postgres() {
  postgres_arg "$1"
  as_pg setsid "$PGBIN/pg_ctl" -D "$DIR/pg$1" -l "$DIR/pg$1.log" -w -t 60 start >/dev/null ||
    fail_with_log "$DIR/pg$1.log" "PostgreSQL pg$1 did not start"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  start-instance) cmd_start_instance "${2:-}" ;;
  stop-instance) cmd_stop_instance "${2:-}" ;;
  stop-bouncer) cmd_stop_bouncer ;;
  start-bouncer) cmd_start_bouncer ;;
  stop-postgres) cmd_stop_postgres "${2:-}" ;;
  start-postgres) cmd_start_postgres "${2:-}" ;;
  *) die "usage: $0 up | down | status | start-instance N | stop-instance N | stop-bouncer | start-bouncer | stop-postgres N | start-postgres N" ;;
esac
