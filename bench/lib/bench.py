#!/usr/bin/env python3
"""Helpers of bench/run.sh (standard library only).

  bench.py free-port
  bench.py seed-sqlite DB1 DB2 USERS ORDERS
  bench.py parse-wrk FILE            -> "rps p50_us p99_us non2xx socket_errors"
  bench.py parse-pgbench FILE        -> "tps failed"
  bench.py trace LOGFILE PGBENCH_DIR OUT_DIR PARTS
                                     -> the statements the service sent, per workload, as
                                        pgbench scripts in OUT_DIR, compared with PGBENCH_DIR
  bench.py report RESULTS OUTFILE    -> the tables; exit 1 if any request failed
  bench.py peers-report RESULTS NAME -> bench/peers.sh's side-by-side table, ratios of NAME
"""
import os
import re
import socket
import sqlite3
import statistics
import sys

WORKLOADS = [
    ("get_user", "GET /users/{id}"),
    ("user_summary", "GET /users/{id}/summary"),
    ("overview", "GET /overview?limit=10"),
    ("create_order", "POST /orders"),
]
STACK_TITLES = {
    "postgres": "PostgreSQL: db1 and db2 are two databases of one throwaway cluster",
    "sqlite": "SQLite: db1 and db2 are two files (no pgbench ceiling)",
    "mysql": "MySQL/MariaDB: db1 and db2 are two databases of one throwaway server, no flush at commit",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


# The same rows as the PostgreSQL seed in run.sh (generate_series there).
def seed_sqlite(db1, db2, users, orders):
    users, orders = int(users), int(orders)
    base = 1767225600  # 2026-01-01 00:00:00 UTC

    def ts(seconds):
        import datetime

        return datetime.datetime.fromtimestamp(base + seconds, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S"
        )

    with sqlite3.connect(db1) as conn:
        conn.executemany(
            "INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?)",
            ((g, f"user{g}@example.com", f"User {g}", ts(g)) for g in range(1, users + 1)),
        )
    with sqlite3.connect(db2) as conn:
        conn.executemany(
            "INSERT INTO orders (id, user_id, item, quantity, amount_cents, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    g,
                    1 + g % users,
                    f"item {g}",
                    1 + (g * 7919) % 10000,
                    (g * 7919 * 104729) % 1000000000001,
                    ts(g),
                )
                for g in range(1, orders + 1)
            ),
        )
        # Each user's order totals, as the service keeps them (migrations_db2), where
        # the binary being measured has that table: builds from before it are measured
        # on the same seed.
        if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'user_order_totals'"
        ).fetchone():
            conn.execute(
                "INSERT INTO user_order_totals (user_id, order_count, total_cents)"
                " SELECT user_id, COUNT(*), SUM(amount_cents) FROM orders GROUP BY user_id"
            )
    for path in (db1, db2):
        conn = sqlite3.connect(path)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    m = re.search(r"^BENCH (.*)$", text, re.M)
    if not m:
        sys.exit(f"bench: no result line in {path}:\n{text[-2000:]}")
    fields = dict(kv.split("=", 1) for kv in m.group(1).split())
    non2xx = int(fields["non2xx"])
    # wrk's own count (non-2xx *or 3xx*); the larger of the two counts.
    own = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if own:
        non2xx = max(non2xx, int(own.group(1)))
    socket_errors = sum(int(n) for n in fields["socket_errors"].split("/"))
    print(fields["rps"], fields["p50_us"], fields["p99_us"], non2xx, socket_errors)


def parse_pgbench(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    tps = re.search(r"^tps = ([0-9.]+)", text, re.M)
    if not tps:
        sys.exit(f"bench: no tps in {path}:\n{text[-2000:]}")
    failed = re.search(r"number of failed transactions: (\d+)", text)
    print(tps.group(1), failed.group(1) if failed else 0)


# ---------------------------------------------------------------------------- trace
#
# run.sh sends one request of each workload to a server while PostgreSQL logs every
# statement (log_statement = 'all'), between marker statements run on the database
# "postgres". The values of that request are chosen so that each parameter the service
# binds can be recognised in the log: TRACE_VALUES below, kept in step with run.sh.

TRACE_USER, TRACE_QUANTITY, TRACE_AMOUNT, TRACE_ITEM = "4321", "77", "123456", "bench item"
RANDOM_VARIABLES = {
    TRACE_USER: ("user_id", "random(1, :users)"),
    TRACE_QUANTITY: ("quantity", "random(1, 10000)"),
    TRACE_AMOUNT: ("amount_cents", "random(0, 1000000000)"),
}
# Given with pgbench -D by run.sh (pgbench's \set is numeric only).
DEFINED_VARIABLES = {TRACE_ITEM: "item"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$")

PART_DESCRIPTIONS = {
    "db1_find_user": "db1 part of GET /users/{id} (all of it) and of GET /users/{id}/summary",
    "db2_user_orders": "db2 part of GET /users/{id}/summary (a seeded user has about 10 orders)",
    "db1_first_users": "db1 part of GET /overview?limit=10",
    "db2_first_orders": "db2 part of GET /overview?limit=10",
    "db1_lock_user": "db1 part of POST /orders (the service keeps this transaction open\n"
    "-- until db2 has committed; pgbench runs it on its own)",
    "db2_insert_order": "db2 part of POST /orders",
}

LOG_LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (\S*)@(\S*) (\w+):\s+(.*)$")
MARKER = re.compile(r"bench-trace (begin|end) (\w+)")
PARAM = re.compile(r"\$(\d+) = (NULL|'((?:[^']|'')*)')")


def read_events(log_path):
    """Markers and (database, statement, {n: value}) in log order."""
    events = []
    for raw in open(log_path, encoding="utf-8", errors="replace"):
        line = raw.rstrip("\n")
        m = LOG_LINE.match(line)
        if not m:
            # A continuation line of a multi-line message.
            if events and events[-1][0] == "sql" and events[-1][-1] == "statement":
                events[-1][2] += "\n" + line.lstrip("\t")
            continue
        _pid, _user, database, kind, message = m.groups()
        marker = MARKER.search(message)
        if database == "postgres":
            if marker and kind == "LOG":
                events.append(["marker", marker.group(1), marker.group(2)])
            continue
        s = re.match(r"(?:statement|execute [^:]*): (.*)$", message) if kind == "LOG" else None
        if s:
            events.append(["sql", database, s.group(1), {}, "statement"])
        elif kind == "DETAIL" and message.startswith("parameters:") and events and events[-1][0] == "sql":
            events[-1][3] = {int(n): (None if v == "NULL" else q.replace("''", "'")) for n, v, q in PARAM.findall(message)}
            events[-1][4] = "parameters"
        elif kind in ("ERROR", "FATAL", "PANIC"):
            events.append(["sql", database, f"-- {kind}: {message}", {}, "error"])
    return events


def to_pgbench(statement, params):
    """The statement with each $n replaced by a pgbench variable; the \\set lines it needs."""
    sets, names = [], {}
    for n, value in sorted(params.items()):
        if value in RANDOM_VARIABLES:
            name, expr = RANDOM_VARIABLES[value]
        elif value in DEFINED_VARIABLES:
            name, expr = DEFINED_VARIABLES[value], None
        elif value is not None and TIMESTAMP.match(value):
            name, expr = "created_at", None  # -D created_at=… (the service sends now())
        elif value is not None and re.fullmatch(r"-?\d+", value):
            name, expr = "k" + value.replace("-", "minus"), value
        else:
            raise ValueError(f"parameter ${n} = {value!r} of `{statement}` has no pgbench variable")
        names[n] = name
        if expr is not None:
            sets.append(f"\\set {name} {expr}")
    text = re.sub(r"\$(\d+)", lambda m: ":" + names[int(m.group(1))], statement)
    return text, sets


def script_body(path):
    """A pgbench script without comments and blank lines, whitespace collapsed."""
    lines = []
    for line in open(path, encoding="utf-8"):
        if line.strip() and not line.lstrip().startswith("--"):
            lines.append(" ".join(line.split()))
    return lines


def trace(log_path, pgbench_dir, out_dir, parts_spec):
    """Prints what the service sent per workload and writes one pgbench script per part
    into out_dir. Exit status 1 when a part cannot be generated (run.sh then uses the
    committed script and fails the run). Parts whose committed script differs are listed
    in out_dir/STALE."""
    parts = {}
    for item in parts_spec.split(";"):
        workload, names = item.split("=")
        parts[workload] = names.split(",")
    current, seen = None, {}
    for event in read_events(log_path):
        if event[0] == "marker":
            current = event[2] if event[1] == "begin" else None
            if current:
                seen[current] = []
        elif current:
            seen[current].append(event[1:4])
    ok, generated, stale = True, {}, []
    for workload, label in WORKLOADS:
        print(f"== {label}")
        statements = seen.get(workload)
        if statements is None:
            print("   (no trace)")
            ok = False
            continue
        for database, statement, params in statements:
            shown = ", ".join(f"${n} = {v!r}" for n, v in sorted(params.items()))
            print(f"   {database}: {statement}" + (f"   -- {shown}" if shown else ""))
        databases = {d for d, _, _ in statements}
        covered = {"bench_" + p.split("_")[0] for p in parts.get(workload, [])}
        for database in sorted(databases - covered):
            print(f"   !! statements on {database}, which no pgbench part of this workload covers")
            ok = False
        for part in parts.get(workload, []):
            database = "bench_" + part.split("_")[0]
            # Connection set-up (once per new connection, not per request).
            mine = [(s, p) for d, s, p in statements if d == database and not s.startswith("SET statement_timeout")]
            if not mine or any(s.startswith("-- ") for s, _ in mine):
                print(f"   !! {part}: no usable statements on {database}")
                ok = False
                continue
            try:
                sets, body = [], []
                for statement, params in mine:
                    text, needed = to_pgbench(statement, params)
                    sets += [x for x in needed if x not in sets]
                    body.append(text + ";")
            except ValueError as e:
                print(f"   !! {part}: {e}")
                ok = False
                continue
            script = (
                "-- " + PART_DESCRIPTIONS.get(part, part) + ".\n"
                f"-- The statements the service sends to {database.replace('bench_', '')} for one request, as PostgreSQL\n"
                "-- logged them; written by `bash bench/run.sh --update-pgbench`, checked by every\n"
                "-- PostgreSQL run of bench/run.sh. Variables: -D users, item, created_at from run.sh.\n"
                + "".join(x + "\n" for x in sets + body)
            )
            text = generated.setdefault(part, script)
            if text != script:
                print(f"   !! {part}: not the same statements as in another workload")
                ok = False
            committed = os.path.join(pgbench_dir, part + ".sql")
            with open(os.path.join(out_dir, part + ".sql"), "w", encoding="utf-8") as f:
                f.write(script)
            same = os.path.exists(committed) and script_body(committed) == script_body(
                os.path.join(out_dir, part + ".sql")
            )
            if same:
                print(f"   bench/pgbench/{part}.sql: the same statements")
            else:
                if part not in stale:
                    stale.append(part)
                print(f"   bench/pgbench/{part}.sql: DIFFERS; this run uses the traced statements:")
                for line in script_body(os.path.join(out_dir, part + ".sql")):
                    print(f"      {line}")
    with open(os.path.join(out_dir, "STALE"), "w", encoding="utf-8") as f:
        f.write("".join(p + "\n" for p in stale))
    return 0 if ok else 1


# --------------------------------------------------------------------------- report


def fmt_latency(us):
    us = float(us)
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1_000_000:.2f} s"


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def ceiling_of(tps_list):
    # Both parts run on the same PostgreSQL server (and the same CPUs): one request
    # costs the time of its db1 part plus the time of its db2 part.
    return 1.0 / sum(1.0 / t for t in tps_list)


def report(results_path, out_path):
    rows = [line.rstrip("\n").split("\t") for line in open(results_path, encoding="utf-8")]
    info = {}
    wrk, pgb, rss, samples, stale = {}, {}, {}, [], {}
    for row in rows:
        kind = row[0]
        if kind == "info":
            info[(row[1], row[2])] = row[3]
        elif kind == "wrk":
            _, stack, rnd, workload, phase, rps, p50, p99, non2xx, sock = row
            if phase == "measure":
                wrk.setdefault((stack, workload), {})[int(rnd)] = (
                    float(rps), float(p50), float(p99), int(non2xx), int(sock)
                )
            else:
                wrk.setdefault((stack, workload, "warmup"), {})[int(rnd)] = (int(non2xx), int(sock))
        elif kind == "pgbench":
            _, stack, rnd, part, tps, failed = row
            pgb.setdefault(stack, {}).setdefault(int(rnd), {})[part] = (float(tps), int(failed))
        elif kind == "rss":
            rss[row[1]] = int(row[2])
        elif kind == "non2xx":
            samples.append(row[1:])
        elif kind == "stale":
            stale.setdefault(row[1], []).append(row[2])
    g = lambda key, default="?": info.get(("run", key), default)
    parts = {}
    for item in g("parts", "").split(";"):
        if "=" in item:
            workload, names = item.split("=")
            parts[workload] = names.split(",")

    lines, failures = [], 0
    out = lines.append
    stacks = [s for s in ("postgres", "sqlite", "mysql") if any(k[0] == s for k in wrk)]
    rounds = int(g("rounds", "1"))
    for stack in stacks:
        title = STACK_TITLES[stack]
        if stack == "postgres":
            title += f" (PostgreSQL {info.get(('postgres', 'version'), '?')})"
        if stack == "mysql":
            title += f" ({info.get(('mysql', 'version'), '?')})"
        out(f"### {title}")
        out("")
        header = ["workload", "req/s", "p50", "p99", "non-2xx", "ceiling", "ratio"]
        table = []
        for workload, label in WORKLOADS:
            per_round = wrk.get((stack, workload), {})
            if not per_round:
                continue
            rps = statistics.median(v[0] for v in per_round.values())
            p50 = statistics.median(v[1] for v in per_round.values())
            p99 = statistics.median(v[2] for v in per_round.values())
            bad = sum(v[3] + v[4] for v in per_round.values())
            warm = wrk.get((stack, workload, "warmup"), {})
            bad_warm = sum(a + b for a, b in warm.values())
            failures += bad + bad_warm
            ceilings, ratios = [], []
            for rnd, measured in per_round.items():
                tps = pgb.get(stack, {}).get(rnd, {})
                names = parts.get(workload, [])
                if names and all(n in tps for n in names):
                    c = ceiling_of([tps[n][0] for n in names])
                    ceilings.append(c)
                    ratios.append(measured[0] / c)
            bad_cell = str(bad) + (f" (+{bad_warm} in warm-up)" if bad_warm else "")
            table.append([
                label,
                fmt_rate(rps),
                fmt_latency(p50),
                fmt_latency(p99),
                bad_cell,
                fmt_rate(statistics.median(ceilings)) if ceilings else "—",
                f"{statistics.median(ratios):.2f}" if ratios else "—",
            ])
        widths = [max(len(r[i]) for r in [header] + table) for i in range(len(header))]
        right = [False, True, True, True, True, True, True]

        def line(cells):
            return "| " + " | ".join(
                c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)
            ) + " |"

        out(line(header))
        out("|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|")
        for r in table:
            out(line(r))
        out("")
        if stack in rss:
            out(f"server peak RSS (VmHWM): {rss[stack] / 1024:.1f} MiB")
        if stack in pgb:
            tps_by_part = {}
            failed = 0
            for per_part in pgb[stack].values():
                for part, (tps, f) in per_part.items():
                    tps_by_part.setdefault(part, []).append(tps)
                    failed += f
            failures += failed
            tool = "pgbench -M prepared" if stack == "postgres" else "mariadb-slap"
            out(
                f"{tool} (runs of the part per second"
                + (f", median of {rounds} rounds" if rounds > 1 else "")
                + "): "
                + ", ".join(f"{p} {fmt_rate(statistics.median(v))}" for p, v in tps_by_part.items())
                + (f"; {failed} FAILED transactions" if failed else "")
            )
            if stale.get(stack):
                out(
                    "  the SQL traced in this run differs from bench/pgbench/ for "
                    + ", ".join(stale[stack])
                    + "; the ceiling used the traced SQL (--update-pgbench rewrites the scripts)"
                )
        out("")

    if "postgres" in stacks:
        for text in (
            "ceiling: pgbench -M prepared running the SQL the service sends for one request (traced",
            "from PostgreSQL's statement log at the start of the run), at the same concurrency, on",
            "the same databases. A workload that touches both databases has a db1 part and a db2",
            "part, run as two pgbench runs (tps1, tps2). Both databases share one PostgreSQL server",
            "and its CPUs, so one request costs the time of both parts:",
            "    ceiling = 1 / (1/tps1 + 1/tps2)",
            "ratio = req/s ÷ ceiling: the share of PostgreSQL's own throughput that the service",
            "delivers over HTTP. (The service keeps db1's transaction of POST /orders open while it",
            "writes db2; pgbench runs the two parts independently. The cluster is pg_virtualenv's,",
            "with fsync=off: commits wait for no disk flush, for the service and pgbench alike.)",
        ):
            out(text)
    if "mysql" in stacks:
        for text in (
            "MySQL ceiling: mariadb-slap running the statements the service sends for one request",
            "(bench/mysql/, from MariaDB's general log; user 4321's values, the text protocol, one",
            "round trip per statement where the service sends the begin and the key lock in one), at",
            "the same concurrency, on the same databases; ceiling and ratio as for PostgreSQL.",
        ):
            out(text)
    out(
        f"machine: {g('nproc')} CPUs ({g('cpu')}), shared by wrk, the service and PostgreSQL; "
        f"load average {g('load_before')} before, {g('load_after', '?')} after"
    )
    out(
        f"parameters: concurrency {g('concurrency')}, warm-up {g('warmup')} s, duration {g('duration')} s, "
        f"rounds {rounds}" + (" (medians of the per-round figures)" if rounds > 1 else "")
        + f", wrk -t {g('wrk_threads')}; server HTTP_WORKERS={g('http_workers')}, "
        f"DB1_POOL_SIZE={g('db1_pool')}, DB2_POOL_SIZE={g('db2_pool')}, RUST_LOG={g('log')}"
    )
    out(f"seed: {g('users')} users in db1, {g('orders')} orders in db2 (user_id = 1 + g % {g('users')})")
    out(f"binary: {g('binary')} ({g('revision')}); {g('date')}")
    if samples:
        out("")
        out("non-2xx responses (samples):")
        for stack, workload, sample in samples[:20]:
            out(f"  {stack} {workload}: {sample}")
    if failures:
        out("")
        out(f"FAILED: {failures} requests or transactions did not succeed (non-2xx, socket errors or pgbench failures)")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    return 1 if failures else 0


def peers_report(results_path, own):
    """bench/peers.sh: per workload the median req/s, p50 and p99 of every server over
    the rounds, `own`'s ratio of req/s to each other server (above 1: faster), and what
    one request cost the server: CPU time and context switches."""
    runs = {}
    for line in open(results_path, encoding="utf-8"):
        cells = line.split()
        name, workload = cells[0], cells[1]
        rps, p50, p99 = map(float, cells[2:5])
        seconds, ticks0, switches0, ticks1, switches1, hz = map(float, cells[7:13])
        requests = rps * seconds
        runs.setdefault((workload, name), []).append((
            rps, p50, p99,
            (ticks1 - ticks0) / hz * 1e6 / requests,
            (switches1 - switches0) / requests,
        ))
    names, workloads = [], []
    for workload, name in runs:
        names += [name] if name not in names else []
        workloads += [workload] if workload not in workloads else []
    rounds = min(len(v) for v in runs.values())
    med = lambda rows, i: statistics.median(r[i] for r in rows)
    print(f"medians of {rounds} alternating rounds; ratio = {own} req/s / server req/s;")
    print("CPU and switches: the server process's CPU time and context switches per request\n")
    print("| workload | server | req/s | p50 | p99 | ratio | CPU/request | switches/request |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for workload in workloads:
        own_rows = runs.get((workload, own))
        for name in names:
            rows = runs.get((workload, name))
            if not rows:
                continue
            ratio = "" if name == own or not own_rows else f"{med(own_rows, 0) / med(rows, 0):.2f}"
            print(f"| {dict(WORKLOADS).get(workload, workload)} | {name} | {fmt_rate(med(rows, 0))} | "
                  f"{fmt_latency(med(rows, 1))} | {fmt_latency(med(rows, 2))} | {ratio} | "
                  f"{med(rows, 3):.0f} µs | {med(rows, 4):.2f} |")


def main(argv):
    if not argv:
        sys.exit(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "free-port":
        free_port()
    elif cmd == "seed-sqlite":
        seed_sqlite(*args)
    elif cmd == "parse-wrk":
        parse_wrk(*args)
    elif cmd == "parse-pgbench":
        parse_pgbench(*args)
    elif cmd == "trace":
        sys.exit(trace(*args))
    elif cmd == "report":
        sys.exit(report(*args))
    elif cmd == "peers-report":
        peers_report(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
