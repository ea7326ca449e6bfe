//! Upgrading a deployment: databases migrated by multidb before the database layer owned
//! its tables start on this build with nothing lost and nothing applied twice. Their
//! migrations then were the application's directories as they are now plus the four
//! that created the layer's tables (the same in db1 and db2), kept as they were at
//! 6fb797b in `tests/fixtures/layer-migrations-before-2026-12/<backend>`.

use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use multidb::db::AnyConnection;
use serde_json::json;

use crate::helpers::{ChildServer, Stack, Storage};

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn connect(storage: &Storage, n: u8) -> AnyConnection {
    AnyConnection::establish(storage.raw_url(n)).expect("connect")
}

fn number(conn: &mut AnyConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Number>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

fn diesel_versions(conn: &mut AnyConnection) -> Vec<String> {
    diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
        .load::<Version>(conn)
        .unwrap()
        .into_iter()
        .map(|row| row.version)
        .collect()
}

/// The migration directory of db`n` on `backend` as it was at 6fb797b, put together in
/// `into`.
fn directory_as_before(n: u8, backend: &str, into: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for from in [
        root.join(format!("migrations_db{n}/{backend}")),
        root.join(format!(
            "tests/fixtures/layer-migrations-before-2026-12/{backend}"
        )),
    ] {
        for migration in std::fs::read_dir(&from).unwrap() {
            let migration = migration.unwrap().path();
            // Migrations written since (the order totals of 2026-12-06) were not there.
            if migration.file_name().unwrap().to_string_lossy().as_ref() >= "2026-12-02" {
                continue;
            }
            let target = into.join(migration.file_name().unwrap());
            std::fs::create_dir_all(&target).unwrap();
            for file in std::fs::read_dir(&migration).unwrap() {
                let file = file.unwrap().path();
                std::fs::copy(&file, target.join(file.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// db`n` migrated as the binary of 6fb797b migrated it (its embedded migrations were
/// these files), with rows in every table, the layer's included.
fn migrate_as_before(storage: &Storage, stack: Stack, n: u8) -> AnyConnection {
    let directory = std::env::temp_dir().join(format!(
        "multidb_migrations_before_{}_{n}_{}",
        std::process::id(),
        stack.backend(n)
    ));
    let _ = std::fs::remove_dir_all(&directory);
    directory_as_before(n, &stack.backend(n).to_string(), &directory);
    let mut conn = connect(storage, n);
    conn.run_pending_migrations(FileBasedMigrations::from_path(&directory).unwrap())
        .unwrap();
    std::fs::remove_dir_all(&directory).unwrap();
    let rows = if n == 1 {
        "INSERT INTO users (email, name, created_at) VALUES ('ada@example.com', 'Ada', '2026-12-01 10:00:00')"
    } else {
        "INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) VALUES (1, 'book', 2, 1500, '2026-12-01 10:00:00')"
    };
    for sql in [
        rows,
        "INSERT INTO multidb_instances (host, started_at_ms, lease_until_ms) VALUES ('old', 1, 2)",
        "INSERT INTO multidb_decisions (gid, outcome, redo, created_at) \
         VALUES ('multidb:1:0:old', 'commit', NULL, '2999-01-01 00:00:00')",
        "INSERT INTO multidb_idempotency_keys (owner, idempotency_key, fingerprint, status, location, body) \
         VALUES ('', 'kept', 'f', 201, '/users/1', '{}')",
        "UPDATE multidb_recovery_turn SET next_pass_ms = 4102444800000",
    ] {
        diesel::sql_query(sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn
}

fn start(storage: &Storage) -> ChildServer {
    ChildServer::start(&[
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        ("RECOVERY_INTERVAL_MS", "3600000"),
        ("RUST_LOG", "multidb=info"),
    ])
}

fn databases_migrated_before_the_layer_owned_its_tables_upgrade(stack: Stack) {
    let storage = Storage::create(stack);
    let mut conns = [1, 2].map(|n| migrate_as_before(&storage, stack, n));
    assert_eq!(diesel_versions(&mut conns[0]).len(), 6, "db1 as before");

    let upgraded = start(&storage);
    let user = upgraded.request("GET", "/users/1", None);
    assert_eq!(user.status, 200, "{}", user.text);
    assert_eq!(user.body["email"], "ada@example.com");
    let order = upgraded.request("GET", "/orders/1", None);
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.body["amount_cents"], 1500);
    let created = upgraded.request(
        "POST",
        "/orders",
        Some(json!({"user_id": 1, "item": "pen", "quantity": 1, "amount_cents": 1})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    // The order totals' migration counted the order already there; the new one was
    // added to them.
    let summary = upgraded.request("GET", "/users/1/summary", None);
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(summary.body["order_count"], 2, "{}", summary.text);
    assert_eq!(summary.body["total_cents"], 1501, "{}", summary.text);
    let applied: Vec<String> = upgraded
        .stderr_until_killed()
        .into_iter()
        .filter(|line| line.contains("applied migration"))
        .collect();
    assert_eq!(
        applied.len(),
        3,
        "the layer's schema once per database, and db2's order totals: {applied:#?}"
    );
    assert_eq!(
        applied
            .iter()
            .filter(|line| line.contains("layer 001_layer_tables"))
            .count(),
        2,
        "{applied:#?}"
    );
    assert!(applied[2].ends_with("db2: applied migration 20261206000001"));

    // Diesel's table lists the application's migrations only, each once.
    assert_eq!(
        diesel_versions(&mut conns[0]),
        ["20261124000001", "20261127000001"]
    );
    assert_eq!(
        diesel_versions(&mut conns[1]),
        ["20261124000001", "20261206000001"]
    );
    for conn in &mut conns {
        for (sql, expected) in [
            ("SELECT count(*) AS n FROM multidb_layer_migrations", 1),
            (
                "SELECT count(*) AS n FROM multidb_decisions WHERE gid = 'multidb:1:0:old'",
                1,
            ),
            (
                "SELECT count(*) AS n FROM multidb_idempotency_keys WHERE idempotency_key = 'kept'",
                1,
            ),
            ("SELECT count(*) AS n FROM multidb_recovery_turn", 1),
            (
                "SELECT next_pass_ms AS n FROM multidb_recovery_turn",
                4_102_444_800_000,
            ),
            // The old lease is kept, and ids go on after it.
            ("SELECT min(id) AS n FROM multidb_instances", 1),
        ] {
            assert_eq!(number(conn, sql), expected, "{sql}");
        }
    }
    assert!(number(&mut conns[1], "SELECT max(id) AS n FROM multidb_instances") > 1);
    assert_eq!(number(&mut conns[1], "SELECT count(*) AS n FROM orders"), 2);

    // A second start applies nothing.
    let again = start(&storage);
    assert_eq!(again.request("GET", "/orders/1", None).status, 200);
    let applied = again
        .stderr_until_killed()
        .into_iter()
        .filter(|line| line.contains("applied migration"))
        .count();
    assert_eq!(applied, 0);
    drop(conns);
    storage.remove();
}

/// `multidb migrate` on fresh databases: the layer's schema and the application's
/// migrations of both, exit 0 — and no lease taken (no row in `multidb_instances`), since
/// it serves nothing and resolves nothing. Run again, it applies nothing.
fn multidb_migrate_migrates_and_takes_no_lease(stack: Stack) {
    let storage = Storage::create(stack);
    let migrate = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_multidb"))
            .arg("migrate")
            .env("DATABASE_URL_1", storage.raw_url(1))
            .env("DATABASE_URL_2", storage.raw_url(2))
            .env("RUST_LOG", "multidb=info")
            .output()
            .expect("run multidb migrate");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr.matches("applied migration").count()
    };
    assert_eq!(
        migrate(),
        6,
        "layer + 2 application migrations in db1, layer + 2 in db2"
    );
    let mut conns = [1, 2].map(|n| connect(&storage, n));
    assert_eq!(
        diesel_versions(&mut conns[0]),
        ["20261124000001", "20261127000001"]
    );
    for conn in &mut conns {
        let layer = "SELECT count(*) AS n FROM multidb_layer_migrations";
        assert_eq!(number(conn, layer), 1);
        assert_eq!(
            number(conn, "SELECT count(*) AS n FROM multidb_instances"),
            0
        );
    }
    assert_eq!(migrate(), 0);
    drop(conns);
    storage.remove();
}

// The layer's tables moved before MySQL was a backend: there is no older MySQL schema.
mod before_the_layer {
    use super::*;
    on_both_backends!(databases_migrated_before_the_layer_owned_its_tables_upgrade);
}
on_every_backend!(multidb_migrate_migrates_and_takes_no_lease);
