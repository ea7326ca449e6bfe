#!/usr/bin/env python3
"""Latency of the cross-database writes with and without the two-phase protocol.

Starts each given multidb binary in turn on fresh databases, and times sequential
`DELETE /users/{id}` (a user with one order each) and `POST /orders` requests over one
keep-alive connection. Runs alternate between the binaries; the report is the median
of the per-run medians. Standard library only.

Usage: two_phase_latency.py --binary NAME=PATH [--binary NAME=PATH ...]
                            --stack sqlite|postgres [--runs 3] [--requests 400]
PostgreSQL stacks need MULTIDB_BENCH_POSTGRES_URL (a server where databases may be
created and dropped, with max_prepared_transactions > 0).
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(admin_url, sql):
    subprocess.run(["psql", admin_url, "-q", "-c", sql], check=True, stdout=subprocess.DEVNULL)


class Databases:
    def __init__(self, stack):
        self.stack = stack
        self.names = []
        self.tmp = tempfile.mkdtemp(prefix="multidb-bench-")
        self.admin = os.environ.get("MULTIDB_BENCH_POSTGRES_URL")

    def urls(self):
        if self.stack == "sqlite":
            return [os.path.join(self.tmp, f"db{n}.sqlite") for n in (1, 2)]
        if not self.admin:
            raise SystemExit("MULTIDB_BENCH_POSTGRES_URL is required for the postgres stack")
        urls = []
        for n in (1, 2):
            name = f"multidb_bench_{uuid.uuid4().hex[:12]}_db{n}"
            psql(self.admin, f"CREATE DATABASE {name}")
            self.names.append(name)
            urls.append(self.admin.rsplit("/", 1)[0] + "/" + name)
        return urls

    def drop(self):
        for name in self.names:
            psql(self.admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        subprocess.run(["rm", "-rf", self.tmp], check=False)


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        payload = json.dumps(body) if body is not None else None
        started = time.perf_counter_ns()
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed_us = (time.perf_counter_ns() - started) / 1000
        return response.status, data, elapsed_us


def one_run(binary, stack, requests):
    databases = Databases(stack)
    url1, url2 = databases.urls()
    port = free_port()
    env = dict(os.environ, DATABASE_URL_1=url1, DATABASE_URL_2=url2,
               BIND_ADDRESS=f"127.0.0.1:{port}", RUST_LOG="warn")
    server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if Client(port).call("GET", "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        client = Client(port)
        # Setup, untimed: users with one order each.
        users = []
        for i in range(requests):
            status, data, _ = client.call("POST", "/users", {"email": f"u{i}@bench.test", "name": "U"})
            assert status == 201, data
            users.append(json.loads(data)["id"])
        orders = []
        for user in users:
            status, data, elapsed = client.call(
                "POST", "/orders", {"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1})
            assert status == 201, data
            orders.append(elapsed)
        deletes = []
        for user in users:
            status, data, elapsed = client.call("DELETE", f"/users/{user}")
            assert status == 204, data
            deletes.append(elapsed)
        return statistics.median(orders), statistics.median(deletes)
    finally:
        server.terminate()
        server.wait()
        databases.drop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", action="append", required=True, help="NAME=PATH")
    parser.add_argument("--stack", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    binaries = [b.split("=", 1) for b in args.binary]
    results = {name: {"POST /orders": [], "DELETE /users/{id}": []} for name, _ in binaries}
    for run in range(args.runs):
        for name, path in binaries:  # alternating, so drift hits both alike
            order_us, delete_us = one_run(path, args.stack, args.requests)
            results[name]["POST /orders"].append(order_us)
            results[name]["DELETE /users/{id}"].append(delete_us)
            print(f"  run {run + 1} {name:>10}: POST /orders {order_us:8.0f} us, DELETE /users {delete_us:8.0f} us",
                  flush=True)
    print(f"\nstack {args.stack}: median of {args.runs} per-run medians, {args.requests} requests each")
    print(f"{'binary':>10} {'POST /orders':>14} {'DELETE /users/{id}':>20}")
    for name, _ in binaries:
        row = results[name]
        print(f"{name:>10} {statistics.median(row['POST /orders']):>11.0f} us "
              f"{statistics.median(row['DELETE /users/{id}']):>17.0f} us")


if __name__ == "__main__":
    main()
