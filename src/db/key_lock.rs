//! Locks on application keys (such as "the orders of user 7"), held by a write session's
//! transaction and released when it ends.

use super::{Database, DbError, Session, Write};

/// How a key is locked: any number of shared holders, or one exclusive holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A family of keys, told apart from other families by `class`.
///
/// Where the backend has key locks ([`Features::key_locks`](super::Features)) a key is
/// one of them, held by the transaction (on PostgreSQL an advisory lock, see
/// `backend::postgres`). A 64-bit key is folded into 32 bits: two keys that fold alike
/// only wait for each other. Where it has none, a write session already holds the whole
/// database's write lock, which excludes every other writer, so there is nothing more to
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
        session
            .connection()
            .take_key_lock(self)
            .map_err(Session::<D>::error)
    }

    pub(crate) fn class(&self) -> i32 {
        self.class
    }

    pub(crate) fn key(&self) -> i32 {
        self.key
    }

    pub(crate) fn mode(&self) -> LockMode {
        self.mode
    }
}

fn fold(key: i64) -> i32 {
    let [a, b, c, d, ..] = (key ^ (key >> 32)).to_le_bytes();
    i32::from_le_bytes([a, b, c, d])
}
