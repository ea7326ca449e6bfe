//! Creating once per `Idempotency-Key` (README, "Safe retries").
//!
//! A key's answer is stored with the row it created, in that row's database and
//! transaction (db1 for users, db2 for orders), so a crash keeps both or neither. Every
//! request with a key takes the key's lock in db2 — both kinds of create have a db2
//! session, held to their end — before it looks for the key in either database: a
//! duplicate sent while the first is in flight waits for it and finds its answer, and a
//! key already used for a user is not used again for an order, nor the reverse.
//!
//! No cycle of waits: the key's lock is taken right after the sessions begin (after an
//! order's lock on the user's orders in db2, which nothing takes after a key's lock) and
//! before any row lock in db1. Where db1 is SQLite, `BEGIN IMMEDIATE` has already taken
//! db1's write lock, which every holder of a key's lock then holds too, so nobody waits
//! for the key while holding what its holder needs.
//!
//! The key's lock lasts as long as db2's server session. If that session ends before a
//! user's db1 commit (a failover, a terminated backend), the key is free early: a
//! duplicate then meets the uncommitted user (409 email taken, or 500 on the key's
//! primary key) instead of its replay. No second user or order is ever created: the
//! primary key and the unique email see to that.

use crate::db::idempotency::{Answer, Claim, Earlier};
use crate::db::{Database, DbError, Session};
use crate::db1::Db1;
use crate::db2::Db2;
use crate::error::AppError;

/// A create that may carry an idempotency key.
pub enum Created<T> {
    /// Created; the request had no key.
    New(T),
    /// Created, and this answer stored under the request's key.
    Stored(Answer),
    /// The stored answer of an earlier request with the same key; nothing was written.
    Replayed(Answer),
}

/// A request's key, with how its success is answered (the answer that is stored).
pub struct Once<T> {
    claim: Claim,
    answer: fn(&T) -> Result<Answer, AppError>,
}

impl<T> Once<T> {
    pub fn new(claim: Claim, answer: fn(&T) -> Result<Answer, AppError>) -> Self {
        Self { claim, answer }
    }

    /// Takes the key's lock, waiting for a request in flight with it, then looks for an
    /// earlier answer: `Some` replay, `None` to go on and create, or an error.
    /// [`AppError::IdempotencyKeyInUse`] when the request in flight outlasts the statement
    /// timeout; [`AppError::IdempotencyKeyReused`] when the key answered another request.
    pub fn earlier(
        &self,
        locking: &mut Session<Db2>,
        other: &mut Session<Db1>,
    ) -> Result<Option<Created<T>>, AppError> {
        self.claim
            .lock()
            .take(locking)
            .map_err(|error| match error {
                // The statement only waits for the lock: a timeout means the key is in use.
                DbError::Unavailable { .. } => AppError::IdempotencyKeyInUse,
                other => other.into(),
            })?;
        // A live key is stored in at most one of the databases (see the module); an
        // expired one counts as unused wherever it is. db1 is asked only if db2 knows
        // nothing.
        let mut earlier = self.claim.earlier(locking)?;
        if matches!(earlier, Earlier::Unused) {
            earlier = self.claim.earlier(other)?;
        }
        match earlier {
            Earlier::Unused => Ok(None),
            Earlier::Answered(answer) => Ok(Some(Created::Replayed(answer))),
            Earlier::OtherRequest => Err(AppError::IdempotencyKeyReused),
        }
    }

    /// Stores the answer to `created` in `session`, to commit with it.
    pub fn record<D: Database>(
        &self,
        session: &mut Session<D>,
        created: &T,
    ) -> Result<Created<T>, AppError> {
        let answer = (self.answer)(created)?;
        self.claim.record(session, &answer)?;
        Ok(Created::Stored(answer))
    }
}
