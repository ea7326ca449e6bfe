//! Admission and sessions for work that writes to one database while using the other.
//!
//! Such work must not let one database's outage take the other down with it. Two rules
//! keep it from doing so:
//!
//! - **The referencing database's connection is taken first**, before anything of the
//!   referenced one (its admission, its SQLite write slot, its connection): when `B` is
//!   down, a request waits out `B`'s checkout timeout holding nothing of `A`. A checkout
//!   takes no database lock, so the lock order (`A`'s transaction begun first) is
//!   unchanged.
//! - **Such requests hold at most three quarters of either pool** (`Pool::admit_paired`):
//!   when `A` is down, requests waiting for `A` while holding `B`'s connections still
//!   leave the rest of `B` to requests that need only `B`, and to `/health`.

use r2d2::PooledConnection;
use tokio::sync::OwnedSemaphorePermit;

use super::connection::Manager;
use super::{blocking, Admission, Database, DbError, Pool, Session, Write};

/// A request's turn on both databases, with `B`'s connection already in hand.
pub(crate) struct Pair<A: Database, B: Database> {
    a: Pool<A>,
    b: Pool<B>,
    b_connection: Option<PooledConnection<Manager>>,
    _turns: (Admission, Admission),
    _shares: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl<A: Database, B: Database> Pair<A, B> {
    /// Waits for a turn on both databases, each up to its checkout timeout.
    pub(crate) async fn admit(a: &Pool<A>, b: &Pool<B>) -> Result<Self, DbError> {
        let (a_deadline, b_deadline) = (a.deadline(), b.deadline());
        let shares = (
            a.admit_paired(a_deadline).await?,
            b.admit_paired(b_deadline).await?,
        );
        let b_turn = b.admit_write_by(b_deadline).await?;
        let b_connection = match b.idle_connection() {
            Some(connection) => connection,
            // None idle: opening one may take up to the timeout (or fail, if `B` is
            // down), so it is done on a blocking thread, still holding nothing of `A`.
            None => {
                let pool = b.clone();
                blocking(move || pool.connection_by(b_deadline)).await?
            }
        };
        let a_turn = a.admit_write_by(a_deadline).await?;
        Ok(Self {
            a: a.clone(),
            b: b.clone(),
            b_connection: Some(b_connection),
            _turns: (a_turn, b_turn),
            _shares: shares,
        })
    }

    /// Begins a write session on each database, `A` first. The pair must outlive the
    /// sessions: it is the turn that admitted them. Blocks.
    pub(crate) fn begin(&mut self) -> Result<(Session<A>, Session<B>), DbError> {
        let b_connection = self.b_connection.take().ok_or_else(|| DbError::Other {
            database: B::NAME,
            cause: "a pair's sessions were begun twice".into(),
        })?;
        let a = self.a.begin::<Write>()?;
        let b = self.b.begin_on::<Write>(b_connection)?;
        Ok((a, b))
    }
}
