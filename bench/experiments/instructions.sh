#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable on this noisy
# machine, where req/s and CPU time move by 10 % between runs. For each binary, the
# server runs under callgrind twice, once answering only /health and once answering
# N more requests of the workload (one client, keep-alive); the difference over N is
# what one request costs the server's threads (the database's work is not counted).
# Against databases you seeded as bench/run.sh seeds them (bench/lib/seed-db*.sql):
#   BENCH_DB1_URL=… BENCH_DB2_URL=… bench/experiments/instructions.sh WORKLOAD N NAME=BINARY…
# WORKLOAD: get_user, user_summary, overview, create_order, create_order_keyed (each
# with its own Idempotency-Key), create_user or create_user_keyed. With BENCH_TOKEN (a
# write key made by `multidb keys create` on db1) the server runs with AUTH=required and
# every request carries the token.
set -euo pipefail
workload=$1 requests=$2
shift 2
command -v valgrind >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
port=18998

# count BINARY N: total instructions of a server that answered N requests.
count() {
  local binary=$1 n=$2 pid
  (
    export BIND_ADDRESS="127.0.0.1:$port" RUST_LOG=warn HTTP_WORKERS=2 DB1_POOL_SIZE=4 DB2_POOL_SIZE=4
    export DATABASE_URL_1=$BENCH_DB1_URL DATABASE_URL_2=$BENCH_DB2_URL RECOVERY_INTERVAL_MS=3600000
    export AUTH=${BENCH_TOKEN:+required}; AUTH=${AUTH:-off}
    exec valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.%p" "$binary" serve
  ) >"$out/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do curl -fs -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  python3 - "$port" "$workload" "$n" <<'PY'
import http.client, json, os, random, sys, uuid
port, workload, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
auth = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"]} if os.environ.get("BENCH_TOKEN") else {}
gets = {"get_user": "/users/{}", "user_summary": "/users/{}/summary", "overview": "/overview?limit=10"}
conn = http.client.HTTPConnection("127.0.0.1", port)
random.seed(7)
run = uuid.uuid4().hex
for i in range(n):
    if workload in gets:
        conn.request("GET", gets[workload].format(random.randint(1, 10000)), headers=auth)
    else:
        headers = {"Content-Type": "application/json", **auth}
        if workload.endswith("_keyed"):
            headers["Idempotency-Key"] = f"bench-{run}-{i}"
        if workload.startswith("create_order"):
            body = {"user_id": random.randint(1, 10000), "item": "bench item",
                    "quantity": random.randint(1, 10000), "amount_cents": random.randint(0, 10**9)}
            conn.request("POST", "/orders", json.dumps(body), headers)
        else:
            body = {"email": f"bench-{run}-{i}@example.com", "name": "bench user"}
            conn.request("POST", "/users", json.dumps(body), headers)
    response = conn.getresponse()
    response.read()
    assert response.status in (200, 201), response.status
PY
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  grep -h '^summary:' "$out"/callgrind.* | awk '{ n += $2 } END { print n }'
  rm -f "$out"/callgrind.*
}

for pair in "$@"; do
  name=${pair%%=*} binary=${pair#*=}
  idle=$(count "$binary" 0)
  busy=$(count "$binary" "$requests")
  echo "$name $workload: $(( (busy - idle) / requests )) instructions per request ($requests requests)"
done
