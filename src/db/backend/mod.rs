//! The backend seam: each backend's behaviour in one module ([`postgres`], [`sqlite`],
//! [`mysql`]),
//! and here the one place that dispatches to them.
//!
//! The rest of the layer never names a vendor. It asks what a backend can do — its
//! [`Features`], as Django's `connection.features.has_*` and Rails' `supports_*?` — and
//! calls the operations below, which match on the connection's variant once each and
//! hand the concrete connection to the backend's module (Diesel needs the concrete type
//! for anything beyond its portable query builder). SQL text that only differs in
//! dialect (the clock, the catalog) comes from the backend's [`Dialect`]. The two-phase
//! verbs are a capability of their own, [`TwoPhase`], which only a backend that can
//! prepare hands out: the shared code cannot call `PREPARE` where it does not exist.
//!
//! Adding a backend: a module beside these with its `FEATURES`, its `Dialect` and
//! its operations, a variant of [`AnyConnection`] and [`Backend`], and one arm in each
//! `match` of this file and of `connection.rs` — the compiler lists every one. See
//! docs/architecture.md.

mod connection;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::fmt;
use std::time::Duration;

use diesel::mysql::MysqlConnection;
use diesel::pg::PgConnection;
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};
use diesel::result::QueryResult;
use diesel::sqlite::SqliteConnection;
use diesel::OptionalExtension;

pub use connection::{AnyConnection, ConnectionOptions, DatabaseUrl};
pub(crate) use connection::{ConnectError, Manager};

use super::error::{Cause, Class};
use super::key_lock::KeyLock;
use super::layer_schema::LayerMigration;

/// The backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
    Mysql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
            Backend::Mysql => "mysql",
        })
    }
}

/// What a backend can do, for the shared code to ask instead of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// A server reached over the network, which can be down or slow while this process
    /// runs (a file this process opens cannot be "down").
    pub server: bool,
    /// One writer at a time for the whole database, whose transaction takes the lock
    /// when it begins (so that writers queue for it in this process, see `Pool`).
    pub single_writer: bool,
    /// Locks on application keys that other transactions wait for (advisory locks).
    /// Without them, a write transaction must exclude every other writer (a
    /// `single_writer` backend): the key locks the layer takes (`KeyLock`) are then
    /// held by the write lock itself, and taking one is a no-op.
    pub key_locks: bool,
    /// Row locks (`SELECT … FOR KEY SHARE`, `FOR UPDATE`). Without them, as without key
    /// locks, only a `single_writer` backend keeps a row from changing under a writer.
    pub row_locks: bool,
    /// Two-phase commit: a transaction prepared on one connection survives it, and any
    /// connection commits or rolls it back later (see [`TwoPhase`]).
    pub two_phase_commit: bool,
    /// `INSERT … RETURNING` and `DELETE … RETURNING`.
    pub returning: bool,
    /// DDL inside a transaction, rolled back with it: a migration that fails leaves
    /// nothing behind.
    pub transactional_ddl: bool,
    /// The database is a file this process opens by path.
    pub file_database: bool,
    /// Transactions that upsert the same new key at the same time never deadlock
    /// (PostgreSQL's speculative insertion tries again when the first inserter rolls
    /// back; a single writer runs one at a time). InnoDB's duplicate-key check takes
    /// locks on which two transactions waiting for a first inserter that rolls back
    /// deadlock, so such transactions must take turns there (`KeyLock`, exclusive).
    pub deadlock_free_upserts: bool,
    /// Data-modifying statements in `WITH` clauses: several writes, and what they
    /// return, in one statement and one round trip (see `Session::write_with_ctes`).
    pub writable_ctes: bool,
}

impl Backend {
    /// Every backend, for what must hold of each (see the tests below).
    pub const ALL: [Backend; 3] = [Backend::Postgres, Backend::Sqlite, Backend::Mysql];

    pub fn features(self) -> &'static Features {
        match self {
            Backend::Postgres => &postgres::FEATURES,
            Backend::Sqlite => &sqlite::FEATURES,
            Backend::Mysql => &mysql::FEATURES,
        }
    }

    /// The backend's SQL for the clock and the catalog.
    pub(crate) fn dialect(self) -> &'static dyn Dialect {
        match self {
            Backend::Postgres => &postgres::Postgres,
            Backend::Sqlite => &sqlite::Sqlite,
            Backend::Mysql => &mysql::Mysql,
        }
    }

    /// The versions of the layer's own schema, in this backend's dialect, oldest first.
    pub(crate) fn layer_migrations(self) -> &'static [LayerMigration] {
        match self {
            Backend::Postgres => postgres::LAYER_MIGRATIONS,
            Backend::Sqlite => sqlite::LAYER_MIGRATIONS,
            Backend::Mysql => mysql::LAYER_MIGRATIONS,
        }
    }

    /// What a write session sends to begin its transaction, with `options` applied.
    pub(crate) fn begin_statement(self, options: &ConnectionOptions) -> String {
        match self {
            Backend::Postgres => postgres::begin_statement(options),
            Backend::Sqlite => sqlite::BEGIN_STATEMENT.to_owned(),
            Backend::Mysql => mysql::BEGIN_STATEMENT.to_owned(),
        }
    }
}

/// Begins a transaction by `statement` with `then` (a backend's statement that takes a
/// key lock) in the same round trip, for backends whose Diesel connection uses the ANSI
/// transaction manager. The server's transaction may have begun before `then` failed (a
/// statement or lock-wait timeout) while Diesel's has not: it is rolled back here.
fn begin_batch<C>(conn: &mut C, statement: &str, then: Option<String>) -> QueryResult<()>
where
    C: diesel::Connection<TransactionManager = diesel::connection::AnsiTransactionManager>,
{
    let batch: std::borrow::Cow<'_, str> = match then {
        Some(then) => format!("{statement}; {then}").into(),
        None => statement.into(),
    };
    diesel::connection::AnsiTransactionManager::begin_transaction_sql(conn, &batch).inspect_err(
        |_| {
            let _ = conn.batch_execute("ROLLBACK");
        },
    )
}

/// SQL text that differs between backends only in dialect. Every time instances compare
/// is computed by the database (see `clock.rs`).
pub(crate) trait Dialect: Sync {
    /// "Now" in milliseconds since the epoch, by the server's clock.
    fn now_ms(&self) -> &'static str;
    /// "Now" as a `TIMESTAMP` in UTC, comparable with the `created_at` columns.
    fn now_timestamp(&self) -> &'static str;
    /// The `TIMESTAMP` in UTC `age` ago, to the millisecond.
    fn timestamp_ago(&self, age: Duration) -> String;
    /// The age in seconds of the oldest UTC `TIMESTAMP` in `column` of the rows selected
    /// (an aggregate; 0 when there are none).
    fn seconds_since_oldest(&self, column: &str) -> String;
    /// A query with one text parameter, the table's name, answering `present`.
    fn table_exists(&self) -> &'static str;
    /// The key the connection's last `INSERT` generated, as a `BIGINT`: how a backend
    /// without RETURNING reads back the row it inserted.
    fn last_insert_id(&self) -> &'static str;
}

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgresql(_) => Backend::Postgres,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
            AnyConnection::Mysql(_) => Backend::Mysql,
        }
    }

    /// Runs `statement`, an `INSERT` or `UPDATE` with a RETURNING clause, and loads the
    /// row it returns, where the backend has RETURNING; `None` where it has not
    /// (`Features::returning`), for the caller to run the statement without the clause
    /// and read the row back (see `Session::write_returning`). It runs on the concrete
    /// connection, and the bounds name the backends that have RETURNING, because
    /// Diesel's MultiConnection compiles a RETURNING clause only if every one of its
    /// backends has it.
    pub(crate) fn load_returning<'q, R, U>(
        &mut self,
        statement: R,
    ) -> Option<QueryResult<Option<U>>>
    where
        R: LoadQuery<'q, PgConnection, U> + LoadQuery<'q, SqliteConnection, U>,
    {
        match self {
            AnyConnection::Postgresql(pg) => Some(statement.get_result(pg).optional()),
            AnyConnection::Sqlite(sqlite) => Some(statement.get_result(sqlite).optional()),
            AnyConnection::Mysql(_) => None,
        }
    }

    /// Runs `statement`, which writes with data-modifying `WITH` clauses, and loads the
    /// row it returns, where the backend has them (`Features::writable_ctes`); `None`
    /// where it has not, for the caller to write statement by statement.
    pub(crate) fn load_with_writable_ctes<'q, R, U>(
        &mut self,
        statement: R,
    ) -> Option<QueryResult<U>>
    where
        R: LoadQuery<'q, PgConnection, U>,
    {
        match self {
            AnyConnection::Postgresql(pg) => Some(statement.get_result(pg)),
            AnyConnection::Sqlite(_) | AnyConnection::Mysql(_) => None,
        }
    }

    /// Runs an upsert, which Diesel's MultiConnection does not build (its backend has no
    /// `ON CONFLICT` clause): `on_conflict` where the backend writes
    /// `INSERT … ON CONFLICT (key) DO UPDATE`, `on_duplicate_key` where it writes
    /// `INSERT … ON DUPLICATE KEY UPDATE`. How many rows it touched, as the backend
    /// counts them (MySQL counts an update as two).
    pub(crate) fn execute_upsert<C, K>(
        &mut self,
        on_conflict: C,
        on_duplicate_key: K,
    ) -> QueryResult<usize>
    where
        C: ExecuteDsl<PgConnection> + ExecuteDsl<SqliteConnection>,
        K: ExecuteDsl<MysqlConnection>,
    {
        match self {
            AnyConnection::Postgresql(pg) => ExecuteDsl::execute(on_conflict, pg),
            AnyConnection::Sqlite(sqlite) => ExecuteDsl::execute(on_conflict, sqlite),
            AnyConnection::Mysql(mysql) => ExecuteDsl::execute(on_duplicate_key, mysql),
        }
    }

    /// Begins a transaction by `statement` (see [`Backend::begin_statement`]), taking
    /// `lock` as it begins where the backend has key locks.
    pub(crate) fn begin_transaction(
        &mut self,
        statement: &str,
        lock: Option<&KeyLock>,
    ) -> QueryResult<()> {
        match self {
            AnyConnection::Postgresql(pg) => {
                begin_batch(pg, statement, lock.map(postgres::key_lock_statement))
            }
            // No key locks: the write transaction's lock is the whole database's.
            AnyConnection::Sqlite(sqlite) => begin_batch(sqlite, statement, None),
            AnyConnection::Mysql(mysql) => {
                begin_batch(mysql, statement, lock.map(mysql::lock_statement))
            }
        }
    }

    /// Takes `lock` in the transaction open on this connection; nothing to take where a
    /// write transaction excludes every other writer already.
    pub(crate) fn take_key_lock(&mut self, lock: &KeyLock) -> QueryResult<()> {
        match self {
            AnyConnection::Postgresql(pg) => postgres::take_key_lock(pg, lock),
            AnyConnection::Sqlite(_) => Ok(()),
            AnyConnection::Mysql(mysql) => mysql::take_key_lock(mysql, lock),
        }
    }

    /// Keeps other instances' migrations out until this transaction ends.
    pub(crate) fn lock_for_migrations(&mut self) -> QueryResult<()> {
        match self {
            AnyConnection::Postgresql(pg) => postgres::lock_for_migrations(pg),
            // The write transaction's lock is the whole database's.
            AnyConnection::Sqlite(_) => Ok(()),
            // A session lock, on a connection of the migrations' own (see `migrations`).
            AnyConnection::Mysql(mysql) => mysql::lock_for_migrations(mysql),
        }
    }

    /// Checks, when a pool starts, what the layer needs of the server beyond answering.
    pub(crate) fn check_server(&mut self) -> Result<(), Cause> {
        match self {
            AnyConnection::Postgresql(pg) => postgres::check_server(pg).map_err(Into::into),
            // English is set per session (see `mysql::connect`).
            AnyConnection::Sqlite(_) | AnyConnection::Mysql(_) => Ok(()),
        }
    }

    /// The two-phase verbs, where the backend has them, for the prepared transactions
    /// of the database whose [`two_phase_scope`](Self::two_phase_scope) is `scope`.
    pub(crate) fn two_phase<'c>(&'c mut self, scope: &'c str) -> Option<TwoPhase<'c>> {
        match self {
            AnyConnection::Postgresql(pg) => Some(TwoPhase::Postgres(pg)),
            AnyConnection::Mysql(mysql) => Some(TwoPhase::Mysql(mysql, scope)),
            AnyConnection::Sqlite(_) => None,
        }
    }

    /// What tells this database's prepared transactions from other databases' on the
    /// same server, where the server lists them all together (XA: the database's name);
    /// empty where it does not (PostgreSQL lists them per database) or none are prepared.
    pub(crate) fn two_phase_scope(&mut self) -> QueryResult<String> {
        match self {
            AnyConnection::Mysql(mysql) => mysql::two_phase::scope(mysql),
            AnyConnection::Postgresql(_) | AnyConnection::Sqlite(_) => Ok(String::new()),
        }
    }
}

/// Whether `a` and `b` reach the same database; connections of different backends never
/// do. `a` must not be in a transaction.
pub(crate) fn same_database(a: &mut AnyConnection, b: &mut AnyConnection) -> Result<bool, Cause> {
    match (a, b) {
        (AnyConnection::Postgresql(a), AnyConnection::Postgresql(b)) => {
            Ok(postgres::same_database(a, b)?)
        }
        (AnyConnection::Sqlite(a), AnyConnection::Sqlite(b)) => sqlite::same_database(a, b),
        (AnyConnection::Mysql(a), AnyConnection::Mysql(b)) => Ok(mysql::same_database(a, b)?),
        _ => Ok(false),
    }
}

/// The class of a message Diesel reported without a kind of its own, as whichever
/// backend's module recognises it (their messages do not overlap).
pub(crate) fn class_of_message(message: &str) -> Option<Class> {
    postgres::error::class_of(message)
        .or_else(|| sqlite::error::class_of(message))
        .or_else(|| mysql::error::class_of(message))
}

/// A connection of a backend that can prepare transactions, with the two-phase verbs
/// (SQLAlchemy's `do_prepare_twophase`, `do_commit_twophase`, `do_rollback_twophase`,
/// `do_recover_twophase`).
pub(crate) enum TwoPhase<'c> {
    Postgres(&'c mut diesel::pg::PgConnection),
    Mysql(&'c mut diesel::mysql::MysqlConnection, &'c str),
}

impl TwoPhase<'_> {
    /// Begins, by `statement` (see [`Backend::begin_statement`]), a transaction that
    /// will be prepared as `gid`: where the backend names the global transaction when it
    /// begins (XA), under that name.
    pub(crate) fn begin(&mut self, statement: &str, gid: &str) -> QueryResult<()> {
        match self {
            TwoPhase::Postgres(pg) => begin_batch(*pg, statement, None),
            TwoPhase::Mysql(mysql, scope) => {
                begin_batch(*mysql, &mysql::two_phase::begin_statement(gid, scope), None)
            }
        }
    }

    /// Rolls back the transaction begun by [`begin`](Self::begin), not yet prepared.
    pub(crate) fn rollback(&mut self, gid: &str) -> QueryResult<()> {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        match self {
            TwoPhase::Postgres(pg) => AnsiTransactionManager::rollback_transaction(*pg),
            TwoPhase::Mysql(mysql, scope) => mysql::two_phase::rollback(mysql, gid, scope),
        }
    }

    /// Phase one: the transaction open on this connection is prepared as `gid`; it then
    /// belongs to the server, and the connection is out of its transaction. (On MySQL it
    /// stays attached to the connection until finished there or the connection ends.)
    pub(crate) fn prepare(&mut self, gid: &str) -> QueryResult<()> {
        match self {
            TwoPhase::Postgres(pg) => postgres::two_phase::prepare(pg, gid),
            TwoPhase::Mysql(mysql, scope) => mysql::two_phase::prepare(mysql, gid, scope),
        }
    }

    /// Phase two, from any connection outside a transaction: commits or rolls back the
    /// prepared `gid`; `Ok(false)` when it is no longer prepared (finished elsewhere).
    pub(crate) fn finish(&mut self, gid: &str, commit: bool) -> QueryResult<bool> {
        match self {
            TwoPhase::Postgres(pg) => postgres::two_phase::finish(pg, gid, commit),
            TwoPhase::Mysql(mysql, scope) => mysql::two_phase::finish(mysql, gid, scope, commit),
        }
    }

    /// The prepared gids that start with `prefix`: oldest first on PostgreSQL; XA lists
    /// them in no order.
    pub(crate) fn recover(&mut self, prefix: &str) -> QueryResult<Vec<String>> {
        match self {
            TwoPhase::Postgres(pg) => postgres::two_phase::recover(pg, prefix),
            TwoPhase::Mysql(mysql, scope) => mysql::two_phase::recover(mysql, prefix, scope),
        }
    }

    /// How many gids starting with `prefix` are prepared, and the oldest one's age in
    /// seconds by the server's clock.
    pub(crate) fn count(&mut self, prefix: &str) -> QueryResult<(i64, f64)> {
        match self {
            TwoPhase::Postgres(pg) => postgres::two_phase::count(pg, prefix),
            TwoPhase::Mysql(mysql, scope) => mysql::two_phase::count(mysql, prefix, scope),
        }
    }

    /// Why this server cannot prepare now although the backend can (a setting), if so.
    pub(crate) fn unavailable(&mut self) -> QueryResult<Option<String>> {
        match self {
            TwoPhase::Postgres(pg) => postgres::two_phase::unavailable(pg),
            TwoPhase::Mysql(mysql, scope) => mysql::two_phase::unavailable(mysql, scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backend;

    /// The layer's locking rests on this: a lock it cannot take is stood in for by the
    /// single writer's lock on the whole database. A backend that has neither kind of
    /// lock and many writers could not keep "no order for a missing user".
    #[test]
    fn a_backend_without_key_or_row_locks_has_a_single_writer() {
        for backend in Backend::ALL {
            let features = backend.features();
            assert!(
                features.key_locks || features.single_writer,
                "{backend}: no key locks and many writers"
            );
            assert!(
                features.row_locks || features.single_writer,
                "{backend}: no row locks and many writers"
            );
        }
    }
}
