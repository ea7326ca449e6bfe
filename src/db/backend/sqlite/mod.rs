//! SQLite: a file opened by this process, one writer at a time for the whole database,
//! no two-phase commit. Everything the layer does differently on SQLite is here; the rest
//! of the layer reaches it through [`super`]'s dispatch and [`FEATURES`].

pub(crate) mod error;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::SqliteConnection;

use super::{ConnectError, ConnectionOptions, Dialect, Features};
use crate::db::layer_schema::LayerMigration;

/// The layer's own tables (see `layer_schema`), in this backend's dialect.
pub(crate) const LAYER_MIGRATIONS: &[LayerMigration] = &[LayerMigration {
    version: 1,
    name: "layer_tables",
    up: include_str!("schema/001_layer_tables.sql"),
}];

pub(crate) const FEATURES: Features = Features {
    server: false,
    single_writer: true,
    // A write transaction holds the whole database's lock: nothing finer to take.
    key_locks: false,
    row_locks: false,
    two_phase_commit: false,
    returning: true,
    transactional_ddl: true,
    file_database: true,
    deadlock_free_upserts: true,
    writable_ctes: false,
};

pub(crate) fn connect(
    target: &str,
    options: &ConnectionOptions,
) -> Result<SqliteConnection, ConnectError> {
    let mut conn = SqliteConnection::establish(target).map_err(ConnectError::Connect)?;
    // busy_timeout first: switching to WAL needs a lock another connection may hold.
    // WAL lets readers proceed while one writer writes; foreign_keys for any future
    // in-database references; synchronous stays FULL (the default) so a commit that was
    // acknowledged survives power loss.
    let busy_ms = options.busy_timeout.as_millis();
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;"
    ))
    .map_err(ConnectError::Setup)?;
    Ok(conn)
}

/// A write transaction takes the database's write lock at once: a deferred transaction
/// that reads and then writes can fail with "database is locked" when another writer got
/// there in between, and no retry could fix it.
pub(crate) const BEGIN_STATEMENT: &str = "BEGIN IMMEDIATE";

#[derive(QueryableByName)]
struct AttachedFile {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    file: String,
}

/// The file SQLite itself opened for the main database (after `./`, `..` and symbolic
/// links are resolved); empty for an in-memory database.
fn main_file(conn: &mut SqliteConnection) -> QueryResult<String> {
    let files = diesel::sql_query("SELECT name, file FROM pragma_database_list")
        .load::<AttachedFile>(conn)?;
    Ok(files
        .into_iter()
        .find(|attached| attached.name == "main")
        .map(|attached| attached.file)
        .unwrap_or_default())
}

/// Whether `a` and `b` opened the same file, compared by device and inode so that hard
/// links count as the same file too. An in-memory database is private to its connection.
pub(crate) fn same_database(
    a: &mut SqliteConnection,
    b: &mut SqliteConnection,
) -> Result<bool, super::Cause> {
    let (a_file, b_file) = (main_file(a)?, main_file(b)?);
    if a_file.is_empty() || b_file.is_empty() {
        return Ok(false);
    }
    let identity = |file: &str| -> Result<(u64, u64), super::Cause> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(file)
            .map(|meta| (meta.dev(), meta.ino()))
            .map_err(|e| crate::db::context(format!("cannot inspect the SQLite file {file}"), e))
    };
    Ok(identity(&a_file)? == identity(&b_file)?)
}

/// The database's clock and catalog in SQLite's SQL. Timestamps are text in UTC, to the
/// millisecond, as `strftime('%Y-%m-%d %H:%M:%f')` writes them.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    fn now_ms(&self) -> &'static str {
        "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    }

    fn now_timestamp(&self) -> &'static str {
        "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    }

    fn timestamp_ago(&self, age: Duration) -> String {
        let millis = age.as_millis();
        format!(
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-{}.{:03} seconds')",
            millis / 1000,
            millis % 1000
        )
    }

    fn seconds_since_oldest(&self, column: &str) -> String {
        format!("COALESCE((julianday('now') - julianday(min({column}))) * 86400.0, 0.0)")
    }

    fn table_exists(&self) -> &'static str {
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1) AS present"
    }

    fn last_insert_id(&self) -> &'static str {
        "last_insert_rowid()"
    }
}
