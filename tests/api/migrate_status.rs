//! `multidb migrate status` and `multidb migrate --dry-run` through the real binary: they
//! report each database's migrations, applied and pending, and change nothing — no
//! table created (Diesel's own `applied_migrations` would create
//! `__diesel_schema_migrations`), no SQLite file.

use std::process::{Command, Output};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use multidb::db::{Pool, Write};
use multidb::db1::Db1;
use serde_json::Value;

use crate::helpers::{Backend, Stack, Storage};

fn multidb(storage: &Storage, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multidb"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL_1", storage.raw_url(1))
        .env("DATABASE_URL_2", storage.raw_url(2))
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run multidb")
}

fn stdout(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Whether db`n` has any table: on SQLite, whether its file exists at all.
fn has_tables(storage: &Storage, stack: Stack, n: u8) -> bool {
    let sql = match stack.backend(n) {
        Backend::Sqlite => return std::path::Path::new(storage.raw_url(n)).exists(),
        Backend::Postgres => {
            "SELECT COUNT(*) AS count FROM information_schema.tables WHERE table_schema = current_schema()"
        }
        Backend::Mysql => {
            "SELECT COUNT(*) AS count FROM information_schema.tables WHERE table_schema = DATABASE()"
        }
    };
    let settings = multidb::config::Settings::from_lookup(|_| None).expect("defaults");
    // Either database's type will do to count tables.
    let pool = Pool::<Db1>::connect(&storage.url(n), &settings.db1.pool).expect("connect");
    let mut session = pool.begin::<Write>().expect("session");
    let count = diesel::sql_query(sql)
        .get_result::<Count>(session.connection())
        .expect("count tables")
        .count;
    count > 0
}

fn status(storage: &Storage) -> Vec<Value> {
    let output = multidb(storage, &["migrate", "status", "--json"]);
    serde_json::from_str(&stdout(&output)).expect("a JSON array")
}

fn names(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .expect("names")
        .iter()
        .map(|name| name.as_str().expect("a name").to_owned())
        .collect()
}

fn status_and_dry_run_report_and_change_nothing(stack: Stack) {
    let storage = Storage::create(stack);
    let fresh = status(&storage);
    assert_eq!(fresh.len(), 2);
    for (database, name) in fresh.iter().zip(["db1", "db2"]) {
        assert_eq!(database["name"], name);
        for part in ["layer", "application"] {
            assert!(names(&database[part]["applied"]).is_empty(), "{database}");
            assert!(!names(&database[part]["pending"]).is_empty(), "{database}");
        }
        assert!(
            !database["url"].as_str().unwrap().contains("test-password"),
            "no password: {database}"
        );
    }
    assert!(names(&fresh[0]["application"]["pending"])
        .contains(&"2026-11-24-000001_create_users".to_owned()));

    let dry_run = stdout(&multidb(&storage, &["migrate", "--dry-run"]));
    assert!(dry_run.contains("db1: would apply"), "{dry_run}");
    assert!(dry_run.contains("db2: would apply"), "{dry_run}");
    assert!(
        dry_run.contains("2026-11-24-000001_create_orders"),
        "{dry_run}"
    );
    assert!(
        dry_run.ends_with("nothing was applied (--dry-run)\n"),
        "{dry_run}"
    );
    for n in [1, 2] {
        assert!(
            !has_tables(&storage, stack, n),
            "db{n}: looking created something"
        );
    }
    assert_eq!(status(&storage), fresh, "a status changed by a dry run");

    let human = stdout(&multidb(&storage, &["migrate", "status"]));
    assert!(
        human.contains("pending  application  2026-11-24-000001_create_users"),
        "{human}"
    );

    stdout(&multidb(&storage, &["migrate"]));
    let migrated = status(&storage);
    for database in &migrated {
        for part in ["layer", "application"] {
            assert!(names(&database[part]["pending"]).is_empty(), "{database}");
            assert!(names(&database[part]["unknown"]).is_empty(), "{database}");
        }
        assert_eq!(database["exists"], true);
    }
    assert_eq!(
        names(&migrated[1]["application"]["applied"]),
        names(&fresh[1]["application"]["pending"])
    );
    let dry_run = stdout(&multidb(&storage, &["migrate", "--dry-run"]));
    assert!(
        dry_run.starts_with("db1: nothing to apply\ndb2: nothing to apply\n"),
        "{dry_run}"
    );
    storage.remove();
}

on_every_backend!(status_and_dry_run_report_and_change_nothing);

/// A version recorded as applied that this build does not know (a newer build migrated
/// the database) is reported as such, not dropped.
#[test]
fn a_migration_of_a_newer_build_is_reported_as_unknown() {
    let stack = Stack::sqlite();
    let storage = Storage::create(stack);
    stdout(&multidb(&storage, &["migrate"]));
    storage.execute(
        2,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000001')",
    );
    let report = status(&storage);
    assert_eq!(
        names(&report[1]["application"]["unknown"]),
        ["20991231000001"]
    );
    let human = stdout(&multidb(&storage, &["migrate", "status"]));
    assert!(
        human.contains("unknown  application  20991231000001"),
        "{human}"
    );
    assert!(
        human.contains("a newer build migrated the database"),
        "{human}"
    );
    storage.remove();
}
