//! MySQL and MariaDB: a server, many writers at once, row locks, two-phase commit by XA;
//! no RETURNING, and DDL that commits implicitly. Everything the layer does differently on MySQL is here; the
//! rest of the layer reaches it through [`super`]'s dispatch and [`FEATURES`].
//!
//! Tested against MariaDB 10.11 (Debian 12). Session settings are MariaDB's
//! (`max_statement_time`, `idle_transaction_timeout`); MySQL 8 names them otherwise and
//! is not supported (the README lists what differs).

pub(crate) mod error;
pub(crate) mod two_phase;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{ConnectError, ConnectionOptions, Dialect, Features};
use crate::db::key_lock::{KeyLock, LockMode};
use crate::db::layer_schema::LayerMigration;

/// The layer's own tables (see `layer_schema`), in this backend's dialect.
pub(crate) const LAYER_MIGRATIONS: &[LayerMigration] = &[LayerMigration {
    version: 1,
    name: "layer_tables",
    up: include_str!("schema/001_layer_tables.sql"),
}];

pub(crate) const FEATURES: Features = Features {
    server: true,
    single_writer: false,
    // Pre-created rows locked inside the transaction (see `take_key_lock`), not GET_LOCK.
    key_locks: true,
    row_locks: true,
    // By XA (see `two_phase`).
    two_phase_commit: true,
    returning: false,
    transactional_ddl: false,
    file_database: false,
    // InnoDB: see `Features::deadlock_free_upserts`.
    deadlock_free_upserts: false,
    writable_ctes: false,
};

/// Whole seconds, at least one: what `innodb_lock_wait_timeout` and
/// `idle_transaction_timeout` take.
fn whole_seconds(duration: Duration) -> u64 {
    let partial = u64::from(duration.subsec_nanos() > 0);
    (duration.as_secs() + partial).max(1)
}

/// Opens a connection and sets the session up. Every setting the layer relies on is set
/// here, never taken from the server's defaults: READ COMMITTED (InnoDB defaults to
/// REPEATABLE READ, whose gap locks and snapshots the code does not expect), English
/// messages (errors are told by their text, see [`error`]), strict modes, and the
/// statement, lock-wait and idle-transaction timeouts. Diesel sets UTC and utf8mb4.
pub(crate) fn connect(
    target: &str,
    options: &ConnectionOptions,
) -> Result<MysqlConnection, ConnectError> {
    let mut conn = MysqlConnection::establish(target).map_err(ConnectError::Connect)?;
    conn.batch_execute(&format!(
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
         SET SESSION lc_messages = 'en_US', \
             sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', \
             max_statement_time = {:.3}, \
             innodb_lock_wait_timeout = {}, \
             idle_transaction_timeout = {}",
        options.statement_timeout.as_secs_f64(),
        whole_seconds(options.statement_timeout),
        whole_seconds(options.idle_in_transaction_timeout),
    ))
    .map_err(ConnectError::Setup)?;
    Ok(conn)
}

/// What begins a write transaction; its isolation level is the session's.
pub(crate) const BEGIN_STATEMENT: &str = "START TRANSACTION";

/// How many rows `multidb_key_locks` has (its schema creates them all).
const LOCK_SLOTS: u64 = 1 << 16;

/// The row of `multidb_key_locks` that stands for `lock`'s key: a hash of class and key
/// onto the slots. Two keys that share a slot wait for each other as if they were one
/// (one pair in 65,536); a transaction that takes two locks (an order's user, then an
/// idempotency key) can then, more rarely still, deadlock with another that took the
/// same two slots the other way round, which the server detects and answers as a
/// retryable failure.
fn slot(lock: &KeyLock) -> u64 {
    // The bits of the two 32-bit halves, then a multiplicative hash (Knuth's).
    let bits =
        (u64::from(lock.class().cast_unsigned()) << 32) | u64::from(lock.key().cast_unsigned());
    (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) & (LOCK_SLOTS - 1)
}

/// The statement that locks `lock`'s slot in the open transaction; sent in the same
/// round trip as the transaction's start when a session begins with the lock.
pub(crate) fn lock_statement(lock: &KeyLock) -> String {
    let mode = match lock.mode() {
        LockMode::Shared => "LOCK IN SHARE MODE",
        LockMode::Exclusive => "FOR UPDATE",
    };
    format!(
        "SELECT slot FROM multidb_key_locks WHERE slot = {} {mode}",
        slot(lock)
    )
}

/// A key lock is its slot's row of `multidb_key_locks`, locked by the transaction
/// (`FOR UPDATE`, or `LOCK IN SHARE MODE` for a shared one) and released with it.
/// (`GET_LOCK` would belong to the session and outlive the transaction on a pooled
/// connection.)
pub(crate) fn take_key_lock(conn: &mut MysqlConnection, lock: &KeyLock) -> QueryResult<()> {
    conn.batch_execute(&lock_statement(lock))
}

/// The name of the session lock that keeps other instances' migrations out.
const MIGRATIONS_LOCK: &str = "multidb_migrations";

/// Keeps other instances' migrations out until this connection closes: DDL commits
/// implicitly, so no transaction can hold a lock across migrations. A session lock,
/// held by a connection opened for the migrations alone and closed after them, which
/// releases it on every path. Waits up to a minute.
pub(crate) fn lock_for_migrations(conn: &mut MysqlConnection) -> QueryResult<()> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
        taken: Option<i64>,
    }
    let taken = diesel::sql_query("SELECT CAST(GET_LOCK(?, 60) AS SIGNED) AS taken")
        .bind::<Text, _>(MIGRATIONS_LOCK)
        .get_result::<Taken>(conn)?;
    if taken.taken == Some(1) {
        Ok(())
    } else {
        Err(diesel::result::Error::QueryBuilderError(
            "another instance held the migrations' lock for a minute".into(),
        ))
    }
}

#[derive(QueryableByName)]
struct Probe {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    holder: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    database: Option<String>,
}

/// Whether `a` and `b` reach the same database: a session lock of a random name taken
/// through `a` is asked for through `b`, which names `a`'s connection as its holder only
/// on the same server (whatever host names, ports or proxies the URLs name; MariaDB
/// has no server UUID to compare), and then the schemas are compared.
pub(crate) fn same_database(a: &mut MysqlConnection, b: &mut MysqlConnection) -> QueryResult<bool> {
    let name = format!("multidb_probe_{}", uuid::Uuid::new_v4().simple());
    let mine = diesel::sql_query(
        "SELECT CAST(IF(GET_LOCK(?, 0) = 1, CONNECTION_ID(), NULL) AS SIGNED) AS holder, \
         DATABASE() AS database",
    )
    .bind::<Text, _>(&name)
    .get_result::<Probe>(a)?;
    let seen = diesel::sql_query(
        "SELECT CAST(IS_USED_LOCK(?) AS SIGNED) AS holder, DATABASE() AS database",
    )
    .bind::<Text, _>(&name)
    .get_result::<Probe>(b);
    // A session lock outlives the statement: released here, whatever `b` answered.
    let released = diesel::sql_query("DO RELEASE_LOCK(?)")
        .bind::<Text, _>(&name)
        .execute(a);
    let seen = seen?;
    released?;
    Ok(mine.holder.is_some()
        && seen.holder == mine.holder
        && mine.database.is_some()
        && seen.database == mine.database)
}

/// The database's clock and catalog in MySQL's SQL. `SYSDATE(3)` is the time of the
/// call, as PostgreSQL's `clock_timestamp()` (`NOW()` is the statement's start); the
/// session's time zone is UTC.
pub(crate) struct Mysql;

impl Dialect for Mysql {
    fn now_ms(&self) -> &'static str {
        "CAST(UNIX_TIMESTAMP(SYSDATE(3)) * 1000 AS SIGNED)"
    }

    fn now_timestamp(&self) -> &'static str {
        "SYSDATE(6)"
    }

    fn timestamp_ago(&self, age: Duration) -> String {
        format!("(SYSDATE(6) - INTERVAL {} MICROSECOND)", age.as_micros())
    }

    fn seconds_since_oldest(&self, column: &str) -> String {
        format!(
            "CAST(COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN({column}), SYSDATE(6)) / 1000000.0, 0) AS DOUBLE)"
        )
    }

    fn table_exists(&self) -> &'static str {
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?) AS present"
    }

    fn last_insert_id(&self) -> &'static str {
        "CAST(LAST_INSERT_ID() AS SIGNED)"
    }
}

#[cfg(test)]
mod tests {
    use super::{slot, LOCK_SLOTS};
    use crate::db::key_lock::{KeyLocks, LockMode};

    /// Every key has a slot among those the schema creates, the same in every instance
    /// and mode, and a run of neighbouring keys (user ids) spreads over the slots.
    #[test]
    fn keys_hash_onto_the_slots_the_schema_creates() {
        let family = KeyLocks::new(0x7573_6572);
        let slots: std::collections::HashSet<u64> = (1..=10_000_i64)
            .map(|key| slot(&family.key(key, LockMode::Shared)))
            .collect();
        assert!(slots.iter().all(|slot| *slot < LOCK_SLOTS));
        assert!(slots.len() > 9_000, "{} distinct slots", slots.len());
        assert_eq!(
            slot(&family.key(42, LockMode::Shared)),
            slot(&family.key(42, LockMode::Exclusive))
        );
        assert_ne!(
            slot(&family.key(42, LockMode::Shared)),
            slot(&KeyLocks::new(0x7573_6573).key(42, LockMode::Shared))
        );
    }
}
