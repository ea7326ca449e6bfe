//! Migrations are checked, not trusted: for each database, both backends' folders hold
//! the same versions, every migration can be run, reverted and run again, and the schema
//! the migrations create is the one the hand-kept `schema.rs` declares.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use multidb::db::Database;
use multidb::db1::Db1;
use multidb::db2::Db2;

use crate::helpers::{Backend, Stack, Storage};

/// (table, column, Diesel type) — `Nullable<…>` where the column may be NULL.
type Columns = BTreeSet<(String, String, String)>;

fn versions(directory: &str) -> BTreeSet<String> {
    std::fs::read_dir(format!("{}/{directory}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{directory}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect()
}

#[test]
fn both_backends_of_each_database_have_the_same_migration_versions() {
    for database in ["migrations_db1", "migrations_db2"] {
        let sqlite = versions(&format!("{database}/sqlite"));
        let postgres = versions(&format!("{database}/postgres"));
        assert!(!sqlite.is_empty(), "{database}: no migrations");
        assert_eq!(
            sqlite, postgres,
            "{database}: the backends' versions differ"
        );
    }
}

/// The columns that the `diesel::table!` blocks of a Rust source declare.
fn declared(source: &str) -> Columns {
    let mut columns = Columns::new();
    let mut table = None;
    for line in source.lines().map(str::trim) {
        if let Some((name, _key)) = line
            .strip_suffix('{')
            .and_then(|l| l.trim().split_once(' '))
        {
            if name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !name.is_empty() {
                table = Some(name.to_owned());
                continue;
            }
        }
        if line == "}" {
            table = None;
        }
        if let (Some(table), Some((column, sql_type))) = (&table, line.split_once(" -> ")) {
            let sql_type = sql_type.trim_end_matches(',');
            columns.insert((table.clone(), column.to_owned(), sql_type.to_owned()));
        }
    }
    columns
}

#[derive(QueryableByName)]
struct CatalogColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    primary_key: bool,
}

/// A catalog type in Diesel's words, as `diesel print-schema` would spell it portably.
fn diesel_type(column: &CatalogColumn) -> String {
    let base = match column.data_type.to_ascii_lowercase().as_str() {
        // SQLite's INTEGER PRIMARY KEY is the 64-bit rowid (`sqlite_integer_primary_key_is_bigint`).
        "integer" if column.primary_key => "BigInt",
        "integer" => "Integer",
        "bigint" => "BigInt",
        "text" | "varchar" | "mediumtext" => "Text",
        "int" => "Integer",
        "datetime" => "Timestamp",
        "timestamp" | "timestamp without time zone" => "Timestamp",
        other => panic!("a column of a type schema.rs cannot hold: {other}"),
    };
    if column.nullable {
        format!("Nullable<{base}>")
    } else {
        base.to_owned()
    }
}

fn catalog_columns(columns: Vec<CatalogColumn>) -> Columns {
    columns
        .iter()
        .filter(|column| column.table_name != "__diesel_schema_migrations")
        .map(|column| {
            (
                column.table_name.clone(),
                column.column_name.clone(),
                diesel_type(column),
            )
        })
        .collect()
}

fn sqlite_schema(conn: &mut SqliteConnection) -> Columns {
    catalog_columns(
        diesel::sql_query(
            "SELECT m.name AS table_name, c.name AS column_name, c.type AS data_type, \
             c.\"notnull\" = 0 AS nullable, c.pk > 0 AS primary_key \
             FROM sqlite_master m JOIN pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .load(conn)
        .unwrap(),
    )
}

fn postgres_schema(conn: &mut PgConnection) -> Columns {
    catalog_columns(
        diesel::sql_query(
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
             c.data_type::text AS data_type, c.is_nullable = 'YES' AS nullable, \
             EXISTS (SELECT 1 FROM information_schema.key_column_usage k \
                     JOIN information_schema.table_constraints t \
                       ON t.constraint_name = k.constraint_name AND t.constraint_type = 'PRIMARY KEY' \
                     WHERE k.table_name = c.table_name AND k.column_name = c.column_name) AS primary_key \
             FROM information_schema.columns c WHERE c.table_schema = 'public'",
        )
        .load(conn)
        .unwrap(),
    )
}

fn mysql_schema(conn: &mut MysqlConnection) -> Columns {
    catalog_columns(
        diesel::sql_query(
            "SELECT table_name AS table_name, column_name AS column_name, \
             data_type AS data_type, is_nullable = 'YES' AS nullable, \
             column_key = 'PRI' AS primary_key \
             FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND table_name <> 'multidb_key_locks'",
        )
        .load(conn)
        .unwrap(),
    )
}

/// Runs every migration, reverts them all, and runs them again.
fn migrate_round_trip<C>(conn: &mut C, migrations: impl Fn() -> EmbeddedMigrations, name: &str)
where
    C: MigrationHarness<C::Backend> + Connection,
{
    let applied = conn.run_pending_migrations(migrations()).unwrap().len();
    assert!(applied > 0, "{name}: nothing applied");
    let reverted = conn.revert_all_migrations(migrations()).unwrap().len();
    assert_eq!(reverted, applied, "{name}: not every migration reverts");
    let again = conn.run_pending_migrations(migrations()).unwrap().len();
    assert_eq!(again, applied, "{name}: not every migration runs again");
}

fn the_migrations_run_revert_and_match_schema_rs(stack: Stack) {
    let storage = Storage::create(stack);
    let expected = [
        declared(include_str!("../../src/db1/schema.rs")),
        declared(include_str!("../../src/db2/schema.rs")),
    ]
    .map(|columns| {
        let mut with_decisions = declared(include_str!("../../src/db/decisions.rs"));
        with_decisions.extend(declared(include_str!("../../src/db/lease.rs")));
        with_decisions.extend(declared(include_str!(
            "../../src/db/cross_commit/recovery.rs"
        )));
        with_decisions.extend(declared(include_str!("../../src/db/idempotency.rs")));
        with_decisions.extend(declared(include_str!("../../src/db/layer_schema.rs")));
        with_decisions.extend(columns);
        with_decisions
    });
    // The parser read what it must: a column of each table, a nullable one among them.
    for (n, (table, column, sql_type)) in [
        (0, ("users", "email", "Text")),
        (1, ("orders", "quantity", "Integer")),
        (1, ("multidb_decisions", "redo", "Nullable<Text>")),
        (1, ("multidb_instances", "lease_until_ms", "BigInt")),
        (1, ("multidb_recovery_turn", "next_pass_ms", "BigInt")),
        (0, ("multidb_layer_migrations", "version", "BigInt")),
        (
            0,
            ("multidb_idempotency_keys", "location", "Nullable<Text>"),
        ),
    ] {
        let column = (table.to_owned(), column.to_owned(), sql_type.to_owned());
        assert!(
            expected[n].contains(&column),
            "{column:?} not read from the sources"
        );
    }
    let migrations = |n: u8| match n {
        1 => Db1::migrations(stack.backend(n)),
        _ => Db2::migrations(stack.backend(n)),
    };
    for n in 1..=2_u8 {
        let name = format!("db{n} on {}", stack.backend(n));
        // The application's migrations round trip on their own; the layer's tables come
        // from the layer, as the service applies them at start-up.
        let layer_schema = || apply_layer_schema(&storage, n);
        let schema = match stack.backend(n) {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(storage.raw_url(n)).unwrap();
                migrate_round_trip(&mut conn, || migrations(n), &name);
                layer_schema();
                sqlite_schema(&mut conn)
            }
            Backend::Postgres => {
                let mut conn = PgConnection::establish(storage.raw_url(n)).unwrap();
                migrate_round_trip(&mut conn, || migrations(n), &name);
                layer_schema();
                postgres_schema(&mut conn)
            }
            Backend::Mysql => {
                let mut conn = MysqlConnection::establish(storage.raw_url(n)).unwrap();
                migrate_round_trip(&mut conn, || migrations(n), &name);
                layer_schema();
                mysql_schema(&mut conn)
            }
        };
        assert_eq!(
            schema,
            expected[usize::from(n - 1)],
            "{name}: the migrations and schema.rs disagree"
        );
    }
    storage.remove();
}

on_every_backend!(the_migrations_run_revert_and_match_schema_rs);

/// The layer's own schema applied to db`n` of `storage`, as at every start of the service.
fn apply_layer_schema(storage: &Storage, n: u8) -> Vec<String> {
    let settings = multidb::config::Settings::from_lookup(|_| None).unwrap();
    let which = multidb::db::Migrations::LayerOnly;
    let url = storage.url(n);
    let applied = if n == 1 {
        multidb::db::Pool::<Db1>::connect(&url, &settings.db1.pool)
            .and_then(|pool| multidb::db::run_migrations(&pool, which))
    } else {
        multidb::db::Pool::<Db2>::connect(&url, &settings.db2.pool)
            .and_then(|pool| multidb::db::run_migrations(&pool, which))
    };
    applied.unwrap_or_else(|e| panic!("db{n}: {}", multidb::db::chain(&e)))
}
