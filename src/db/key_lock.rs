//! Locks on application keys (such as "the orders of user 7"), held by a write session's
//! transaction and released when it ends.

use diesel::connection::SimpleConnection;

use super::{AnyConnection, Database, DbError, Session, Write};

/// How a key is locked: any number of shared holders, or one exclusive holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A family of keys, told apart from other families by `class`.
///
/// On PostgreSQL a key is a transaction-level advisory lock (`pg_advisory_xact_lock`),
/// so it needs no session state and works behind PgBouncer in transaction mode; it is
/// released at commit or rollback, and also when the server ends the session. A 64-bit
/// key is folded into 32 bits: two keys that fold alike only wait for each other.
///
/// On SQLite a write session already holds the whole database's write lock
/// (`BEGIN IMMEDIATE`), which excludes every other writer, so there is nothing more to
/// take. That is why locking needs a [`Write`] session.
#[derive(Debug, Clone, Copy)]
pub struct KeyLocks {
    class: i32,
}

impl KeyLocks {
    pub const fn new(class: i32) -> Self {
        Self { class }
    }

    /// `key` in `mode`, to be taken by a session as it begins (see [`super::write_holding`]
    /// and [`super::CrossCommit::write`]): on PostgreSQL in the same round trip as its
    /// `BEGIN`.
    pub fn key(&self, key: i64, mode: LockMode) -> KeyLock {
        KeyLock {
            class: self.class,
            key: fold(key),
            mode,
        }
    }
}

/// One key of a [`KeyLocks`] family, in one mode, not yet taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLock {
    class: i32,
    key: i32,
    mode: LockMode,
}

impl KeyLock {
    /// Takes the lock in a session already begun, waiting up to the statement timeout;
    /// held until the session ends.
    pub fn take<D: Database>(&self, session: &mut Session<D, Write>) -> Result<(), DbError> {
        match session.connection() {
            AnyConnection::Postgresql(pg) => pg
                .batch_execute(&self.statement())
                .map_err(Session::<D>::error),
            AnyConnection::Sqlite(_) => Ok(()),
        }
    }

    /// The PostgreSQL statement that takes it, with the numbers written out, for a
    /// batch sent with `BEGIN` (a batch takes no bind parameters).
    pub(crate) fn statement(&self) -> String {
        format!(
            "SELECT {}({}, {})",
            function(self.mode),
            self.class,
            self.key
        )
    }
}

fn function(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Shared => "pg_advisory_xact_lock_shared",
        LockMode::Exclusive => "pg_advisory_xact_lock",
    }
}

fn fold(key: i64) -> i32 {
    let [a, b, c, d, ..] = (key ^ (key >> 32)).to_le_bytes();
    i32::from_le_bytes([a, b, c, d])
}
