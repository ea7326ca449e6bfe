use std::marker::PhantomData;

use diesel::connection::TransactionManager;
use diesel::query_builder::SelectQuery;
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};
use diesel::{Connection, OptionalExtension, RunQueryDsl};
use r2d2::PooledConnection;

use super::backend::Manager;
use super::fault::Faults;
use super::key_lock::KeyLock;
use super::own_writers::{OwnWrite, OwnWriters};
use super::{AnyConnection, Backend, Database, DbError};

type Transactions = <AnyConnection as Connection>::TransactionManager;

/// `error`, met on `conn` outside a transaction; a connection it shows lost is marked
/// broken, so that the pool discards it instead of handing it out again. Nothing else
/// would: libpq can report a connection whose socket is gone as idle, and the pool then
/// gave the same dead connection to every retry. (In a transaction, the failed rollback
/// marks it.)
pub(crate) fn discard_if_lost(conn: &mut AnyConnection, error: DbError) -> DbError {
    if matches!(error, DbError::ConnectionLost { .. }) {
        Transactions::transaction_manager_status_mut(conn).set_in_error();
    }
    error
}

/// How the sessions of one pool begin: the pool's fault points, and on PostgreSQL the
/// batch that opens a transaction with the pool's timeouts.
#[derive(Debug, Clone)]
pub(crate) struct Begin {
    pub(crate) faults: Faults,
    /// What begins a write transaction (see `Backend::begin_statement`).
    pub(crate) statement: std::sync::Arc<str>,
    /// SQLite only: this process's holders of the write lock (see [`OwnWriters`]).
    pub(crate) own_writers: Option<std::sync::Arc<OwnWriters>>,
    /// The database's `AnyConnection::two_phase_scope`, for its prepared transactions.
    pub(crate) two_phase_scope: std::sync::Arc<str>,
}

impl Begin {
    /// The same, with no fault point: for the database layer's own bookkeeping.
    pub(crate) fn without_faults(&self) -> Self {
        Self {
            faults: Faults::none(),
            statement: self.statement.clone(),
            own_writers: self.own_writers.clone(),
            two_phase_scope: self.two_phase_scope.clone(),
        }
    }
}

/// What a session may do, as a type: [`Read`] or [`Write`]. Queries that write take
/// `&mut Session<D, Write>`, so a write in a read session does not compile.
pub trait Access: Send + 'static {
    /// Whether sessions of this kind begin a transaction.
    const TRANSACTION: bool;
}

/// A session that only reads: no transaction is begun, since each of its statements is
/// atomic by itself and has nothing to roll back; a BEGIN/ROLLBACK pair would double
/// the round trips of a one-statement read. (On PostgreSQL's default READ COMMITTED
/// level a transaction would not give several statements one snapshot anyway.)
pub enum Read {}

/// A session that writes, inside a transaction begun when the session is created. On
/// SQLite the transaction takes the database's write lock at once (`BEGIN IMMEDIATE`):
/// a deferred transaction that reads and then writes can fail with "database is
/// locked" at the write, which no busy timeout can fix.
pub enum Write {}

impl Access for Read {
    const TRANSACTION: bool = false;
}

impl Access for Write {
    const TRANSACTION: bool = true;
}

/// A pooled connection of database `D`, for reading or writing: the guard.
///
/// This is the Rust form of SQLAlchemy's `try: … session.commit() except: rollback()
/// finally: close()`. A [`Write`] session's transaction begins when the session is
/// created; [`commit`] consumes the session; dropping it any other way — an error
/// returned with `?`, an early return, a panic unwinding through the closure — rolls
/// back. The connection then returns to its pool clean; if it cannot be cleaned
/// (rollback failed, or the thread is panicking) the pool's manager reports it broken
/// and r2d2 discards it.
///
/// The database and the access are part of the type, so that misuse does not compile:
///
/// ```compile_fail
/// # use multidb::db::{Read, Session};
/// # use multidb::{domain::{ParseId, UserId}, db1::Db1, users};
/// fn delete_in_a_read_session(session: &mut Session<Db1, Read>) {
///     let _ = users::delete(session, UserId::new(1).unwrap()); // needs Session<Db1, Write>
/// }
/// ```
///
/// ```compile_fail
/// # use multidb::db::{Read, Session};
/// # use multidb::{domain::{ParseId, UserId}, db2::Db2, users};
/// fn users_query_on_the_orders_database(session: &mut Session<Db2, Read>) {
///     let _ = users::find(session, UserId::new(1).unwrap()); // needs Session<Db1, _>
/// }
/// ```
///
/// ```
/// # use multidb::db::{Read, Session, Write};
/// # use multidb::{domain::{ParseId, UserId}, db1::Db1, users};
/// fn the_right_sessions(read: &mut Session<Db1, Read>, write: &mut Session<Db1, Write>) {
///     let _ = users::find(read, UserId::new(1).unwrap());
///     let _ = users::delete(write, UserId::new(1).unwrap());
/// }
/// ```
///
/// [`commit`]: Session::commit
pub struct Session<D: Database, M: Access = Write> {
    conn: PooledConnection<Manager>,
    faults: Faults,
    /// Set when the transaction is a branch of a global transaction (see [`Opening`]).
    branch: Option<Branch>,
    /// Dropped after `Drop::drop` has ended the transaction (fields drop after it).
    _own_write: Option<OwnWrite>,
    _database: PhantomData<fn() -> (D, M)>,
}

/// How a write session's transaction begins, beyond what its pool's [`Begin`] says.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Opening<'a> {
    Plain,
    /// Taking this key lock as it begins.
    Holding(&'a KeyLock),
    /// As a branch of the global transaction `gid`, to be prepared (see
    /// `cross_commit`): XA names it at its start.
    Branch(&'a str),
}

impl<'a> From<Option<&'a KeyLock>> for Opening<'a> {
    fn from(lock: Option<&'a KeyLock>) -> Self {
        lock.map_or(Opening::Plain, Opening::Holding)
    }
}

/// The global transaction a session's transaction is a branch of.
struct Branch {
    gid: Box<str>,
    scope: std::sync::Arc<str>,
    /// Prepared and not yet finished on this connection, which may then still hold it
    /// (XA): the connection is not to be used again.
    prepared: bool,
}

impl<D: Database, M: Access> Session<D, M> {
    pub(crate) fn begin(conn: PooledConnection<Manager>, begin: &Begin) -> Result<Self, DbError> {
        Self::begin_opening(conn, begin, Opening::Plain)
    }

    /// Begins the session as `opening` says. A key lock goes in the same round trip as
    /// the transaction's begin (on PostgreSQL, with its timeouts); on SQLite a write
    /// session's `BEGIN IMMEDIATE` already excludes every other writer (see [`KeyLock`]).
    pub(crate) fn begin_opening(
        mut conn: PooledConnection<Manager>,
        begin: &Begin,
        opening: Opening<'_>,
    ) -> Result<Self, DbError> {
        let mut own_write = None;
        let mut branch = None;
        if M::TRANSACTION {
            own_write = begin.own_writers.as_ref().map(|writers| writers.enter());
            let begun = match opening {
                Opening::Plain => conn.begin_transaction(&begin.statement, None),
                Opening::Holding(lock) => conn.begin_transaction(&begin.statement, Some(lock)),
                Opening::Branch(gid) => {
                    branch = Some(Branch {
                        gid: gid.into(),
                        scope: begin.two_phase_scope.clone(),
                        prepared: false,
                    });
                    match conn.two_phase(&begin.two_phase_scope) {
                        Some(mut two_phase) => two_phase.begin(&begin.statement, gid),
                        None => return Err(cannot_prepare::<D>(gid)),
                    }
                }
            };
            begun.map_err(|e| DbError::from_diesel(D::NAME, e))?;
        }
        Ok(Self {
            conn,
            faults: begin.faults.clone(),
            branch,
            _own_write: own_write,
            _database: PhantomData,
        })
    }

    /// Runs a `SELECT` built with Diesel's query builder and loads its rows: the only
    /// door a [`Read`] session has to its connection. Anything else — an `INSERT … RETURNING`,
    /// a raw `sql_query` — is not a `SelectQuery`, and does not compile here.
    pub fn load<'q, Q, U>(&mut self, query: Q) -> Result<Vec<U>, DbError>
    where
        Q: SelectQuery + LoadQuery<'q, AnyConnection, U>,
    {
        let loaded = query.load(&mut *self.conn);
        self.checked(loaded)
    }

    /// Like [`load`](Self::load), for a `SELECT` of at most one row.
    pub fn load_optional<'q, Q, U>(&mut self, query: Q) -> Result<Option<U>, DbError>
    where
        Q: SelectQuery + LoadQuery<'q, AnyConnection, U>,
    {
        let loaded = query.get_result(&mut *self.conn).optional();
        self.checked(loaded)
    }

    /// `result` as the layer's error, the connection discarded if it was found lost
    /// (see [`discard_if_lost`]).
    fn checked<T>(&mut self, result: diesel::QueryResult<T>) -> Result<T, DbError> {
        result.map_err(|error| discard_if_lost(&mut self.conn, Self::error(error)))
    }

    pub fn backend(&self) -> Backend {
        self.conn.backend()
    }

    /// Maps a Diesel error of this session's database.
    pub fn error(diesel_error: diesel::result::Error) -> DbError {
        DbError::from_diesel(D::NAME, diesel_error)
    }

    /// Passes the named fault point `{database}.{step}` (a no-op outside tests).
    pub fn fault_point(&self, step: &str) -> Result<(), DbError> {
        self.faults.hit(D::NAME, step)
    }

    fn transaction_open(&mut self) -> bool {
        // An error here means the transaction manager is in an error state: treat it as
        // open so that a rollback is attempted; the pool discards it if that fails too.
        !matches!(
            Transactions::transaction_manager_status_mut(&mut self.conn).transaction_depth(),
            Ok(None)
        )
    }
}

impl<D: Database> Session<D, Write> {
    /// The connection, for any statement. Only a write session hands it out: a read
    /// session reads through [`load`](Session::load).
    ///
    /// ```compile_fail
    /// # use multidb::db::{Read, Session};
    /// # use multidb::db1::Db1;
    /// fn write_through_a_read_session(session: &mut Session<Db1, Read>) {
    ///     let _ = session.connection(); // only Session<Db1, Write> has it
    /// }
    /// ```
    ///
    /// ```compile_fail
    /// # use multidb::db::{Read, Session};
    /// # use multidb::db1::Db1;
    /// #[derive(diesel::QueryableByName)]
    /// struct Deleted {
    ///     #[diesel(sql_type = diesel::sql_types::BigInt)]
    ///     id: i64,
    /// }
    /// fn delete_through_the_read_door(session: &mut Session<Db1, Read>) {
    ///     // Not a SELECT: a read session does not run it.
    ///     let _ = session.load::<_, Deleted>(diesel::sql_query("DELETE FROM users RETURNING id"));
    /// }
    /// ```
    pub fn connection(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Runs a statement (an `INSERT`, `UPDATE` or `DELETE` built with Diesel's query
    /// builder, or a `sql_query`): how many rows it touched. Writes have doors as reads
    /// do ([`load`](Session::load)), which give this session's errors. (A connection lost
    /// in a transaction needs no marking: its failed rollback marks it.)
    pub fn execute<Q>(&mut self, statement: Q) -> Result<usize, DbError>
    where
        Q: RunQueryDsl<AnyConnection> + ExecuteDsl<AnyConnection>,
    {
        statement.execute(&mut *self.conn).map_err(Self::error)
    }

    /// Runs a statement that yields one row (`… RETURNING`, `SELECT` of an expression).
    pub fn get_result<'q, Q, U>(&mut self, statement: Q) -> Result<U, DbError>
    where
        Q: LoadQuery<'q, AnyConnection, U>,
    {
        statement.get_result(&mut *self.conn).map_err(Self::error)
    }

    /// A write that gives back the row it wrote: `returning`, the statement with its
    /// RETURNING clause, where the backend has one (`Features::returning`); elsewhere
    /// `without`, which runs the statement without the clause and reads the row back in
    /// this transaction (after an `INSERT`, by [`last_insert_id`](Self::last_insert_id)).
    /// `None` when the statement wrote no row.
    pub fn write_returning<'q, R, U>(
        &mut self,
        returning: R,
        without: impl FnOnce(&mut Self) -> Result<Option<U>, DbError>,
    ) -> Result<Option<U>, DbError>
    where
        R: LoadQuery<'q, diesel::pg::PgConnection, U>
            + LoadQuery<'q, diesel::sqlite::SqliteConnection, U>,
    {
        match self.conn.load_returning(returning) {
            Some(loaded) => loaded.map_err(Self::error),
            None => without(self),
        }
    }

    /// A write of several statements' work that gives back one row: `with_ctes`, one
    /// statement of data-modifying `WITH` clauses, where the backend has them
    /// (`Features::writable_ctes`: one round trip); elsewhere `without`, statement by
    /// statement in this transaction.
    pub fn write_with_ctes<'q, R, U>(
        &mut self,
        with_ctes: R,
        without: impl FnOnce(&mut Self) -> Result<U, DbError>,
    ) -> Result<U, DbError>
    where
        R: LoadQuery<'q, diesel::pg::PgConnection, U>,
    {
        match self.conn.load_with_writable_ctes(with_ctes) {
            Some(loaded) => loaded.map_err(Self::error),
            None => without(self),
        }
    }

    /// Inserts a row or updates the one its key already names, in one statement: see
    /// [`AnyConnection::execute_upsert`] for the two spellings it takes. One statement
    /// rather than an `UPDATE` then an `INSERT`, which two transactions can both find
    /// missing: here the second waits for the first's row and then updates it.
    pub fn upsert<C, K>(&mut self, on_conflict: C, on_duplicate_key: K) -> Result<(), DbError>
    where
        C: ExecuteDsl<diesel::pg::PgConnection> + ExecuteDsl<diesel::sqlite::SqliteConnection>,
        K: ExecuteDsl<diesel::mysql::MysqlConnection>,
    {
        self.conn
            .execute_upsert(on_conflict, on_duplicate_key)
            .map(drop)
            .map_err(Self::error)
    }

    /// The key this session's last `INSERT` generated, as an SQL expression.
    pub fn last_insert_id(&self) -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
        diesel::dsl::sql(self.backend().dialect().last_insert_id())
    }

    /// Like [`get_result`](Self::get_result), for a statement that yields at most one
    /// row (an `UPDATE … RETURNING` of a row that may not be there).
    pub fn get_optional<'q, Q, U>(&mut self, statement: Q) -> Result<Option<U>, DbError>
    where
        Q: LoadQuery<'q, AnyConnection, U>,
    {
        statement
            .get_result(&mut *self.conn)
            .optional()
            .map_err(Self::error)
    }

    /// Commits the transaction. On failure the transaction is rolled back by `Drop`.
    /// Fault points `{database}.commit` just before and `{database}.committed` just after.
    pub fn commit(mut self) -> Result<(), DbError> {
        self.fault_point("commit")?;
        Transactions::commit_transaction(&mut self.conn).map_err(Self::error)?;
        self.fault_point("committed")
    }

    /// Like [`commit`](Self::commit), telling a failure the database answered — the
    /// transaction certainly did not commit — from one where the answer was lost and it
    /// may have.
    pub(crate) fn commit_telling(mut self) -> Result<(), CommitFailure> {
        let refused = |error| CommitFailure {
            error,
            refused: true,
        };
        self.fault_point("commit").map_err(refused)?;
        if let Err(error) = Transactions::commit_transaction(&mut self.conn) {
            let refused = super::error::answered_by_server(&error);
            return Err(CommitFailure {
                error: Self::error(error),
                refused,
            });
        }
        self.fault_point("committed")
            .map_err(|error| CommitFailure {
                error,
                refused: false,
            })
    }

    /// Phase one of two-phase commit, where the backend has it (`PREPARE TRANSACTION`). The
    /// transaction then belongs to the server, not to this connection: its locks stay
    /// held until `COMMIT PREPARED` or `ROLLBACK PREPARED` (from any connection), and the
    /// connection itself is idle again, so dropping the session rolls nothing back.
    ///
    /// The session must have begun as the branch `gid` ([`Opening::Branch`]). Until
    /// [`branch_finished`](Self::branch_finished) says the prepared transaction was
    /// finished on this connection, dropping the session discards the connection.
    pub(crate) fn prepare(&mut self, gid: &str) -> Result<(), DbError> {
        debug_assert!(gid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-'));
        let Some(branch) = self.branch.as_mut().filter(|branch| &*branch.gid == gid) else {
            return Err(DbError::Other {
                database: D::NAME,
                cause: format!("{gid}: the session did not begin as this branch").into(),
            });
        };
        let Some(mut two_phase) = self.conn.two_phase(&branch.scope) else {
            return Err(cannot_prepare::<D>(gid));
        };
        two_phase.prepare(gid).map_err(Self::error)?;
        branch.prepared = true;
        Ok(())
    }

    /// The transaction this session prepared was committed or rolled back on its
    /// connection, which is clean again.
    pub(crate) fn branch_finished(&mut self) {
        self.branch = None;
    }
}

/// `gid` on a database whose backend has no two-phase commit: it cannot be prepared
/// there, nor have been, and nothing of it can be finished.
pub(crate) fn cannot_prepare<D: Database>(gid: impl std::fmt::Display) -> DbError {
    DbError::Other {
        database: D::NAME,
        cause: format!("{gid}: this database's backend has no prepared transactions").into(),
    }
}

/// A commit that failed, and whether the database refused it (see
/// [`Session::commit_telling`]).
pub(crate) struct CommitFailure {
    pub(crate) error: DbError,
    pub(crate) refused: bool,
}

impl<D: Database, M: Access> Drop for Session<D, M> {
    fn drop(&mut self) {
        if let Some(Branch { prepared: true, .. }) = self.branch {
            // Possibly still holding the prepared transaction (XA), which whoever finishes
            // it needs the connection gone for.
            Transactions::transaction_manager_status_mut(&mut self.conn).set_in_error();
            return;
        }
        if !self.transaction_open() {
            return;
        }
        let rolled_back = match &self.branch {
            Some(branch) => match self.conn.two_phase(&branch.scope) {
                Some(mut two_phase) => two_phase.rollback(&branch.gid),
                None => Transactions::rollback_transaction(&mut self.conn),
            },
            None => Transactions::rollback_transaction(&mut self.conn),
        };
        if let Err(error) = rolled_back {
            // A branch's failed rollback leaves Diesel's manager as it was: marked here.
            Transactions::transaction_manager_status_mut(&mut self.conn).set_in_error();
            // The connection is now reported broken and r2d2 closes it instead of reusing it.
            log::warn!(
                "{}: rollback failed, discarding the connection: {error}",
                D::NAME
            );
        }
    }
}
