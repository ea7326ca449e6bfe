//! Locks on application keys (such as "the orders of user 7"), held by a write session's
//! transaction and released when it ends.

use super::{Database, DbError, Session, Write};

/// The classes (first keys) of the advisory locks the layer takes itself. A family of
/// the application's must not use one of them (nor each other's): its own unit test
/// checks its classes against this list, so that two families never share a class,
/// which would make unrelated work wait for each other.
pub const RESERVED_CLASSES: [(i32, &str); 2] = [
    (IDEMPOTENCY_CLASS, "Idempotency-Key locks (db::idempotency)"),
    (
        PROBE_CLASS,
        "the same-database probe at start-up (backend::postgres)",
    ),
];

/// "mdbk": the lock on an `Idempotency-Key` while its request runs.
pub(crate) const IDEMPOTENCY_CLASS: i32 = 0x6D64_626B;
/// "mdb2": the lock the same-database probe looks for through the other pool.
pub(crate) const PROBE_CLASS: i32 = 0x6D64_6232;

/// Whether `class` is free for a family of the application's: not one of the layer's.
pub const fn class_is_free(class: i32) -> bool {
    let mut i = 0;
    while i < RESERVED_CLASSES.len() {
        if RESERVED_CLASSES[i].0 == class {
            return false;
        }
        i += 1;
    }
    true
}

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

    /// `key` in `mode`, to be taken by a session as it begins (see [`super::holding`]
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

#[cfg(test)]
mod tests {
    use super::{class_is_free, RESERVED_CLASSES};

    #[test]
    fn the_layers_classes_are_distinct_and_reserved() {
        let mut classes: Vec<i32> = RESERVED_CLASSES.iter().map(|(class, _)| *class).collect();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes.len(), RESERVED_CLASSES.len());
        assert!(classes.iter().all(|class| !class_is_free(*class)));
        assert!(class_is_free(0x6D64_6275));
    }
}
