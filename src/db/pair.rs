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
use super::{blocking, Admission, Backend, Database, DbError, Pool, Session, Write};

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

    /// Begins a write session on each database. The pair must outlive the sessions: it
    /// is the turn that admitted them. Blocks.
    ///
    /// On PostgreSQL `B`'s session begins first: its `BEGIN` takes no lock, so the lock
    /// order is unchanged, and it proves `B`'s connection alive before anything of `A` is
    /// taken. A dead one is reported as [`DbError::ConnectionLost`] at once, for
    /// [`run`] to start over with a new turn, instead of checking out another connection
    /// of `B` here while holding `A`'s turn (after `B`'s server restarted or went away,
    /// every idle connection of `B` is dead). On SQLite, whose write sessions take the
    /// database's lock at `BEGIN`, `A` is begun first, and `B`'s connection cannot die.
    fn begin(&mut self) -> Result<(Session<A>, Session<B>), DbError> {
        let b_connection = self.b_connection.take().ok_or_else(|| DbError::Other {
            database: B::NAME,
            cause: "a pair's sessions were begun twice".into(),
        })?;
        if self.b.backend() == Backend::Postgres {
            let b = Session::begin(b_connection, self.b.faults().clone())?;
            let a = self.a.begin::<Write>()?;
            Ok((a, b))
        } else {
            let a = self.a.begin::<Write>()?;
            let b = self.b.begin_on::<Write>(b_connection)?;
            Ok((a, b))
        }
    }
}

/// What a turn on both databases came to: `work`'s outcome, or `work` given back
/// unrun because `B`'s connection was found dead.
enum Attempt<T, E, W> {
    Ran(Result<T, E>),
    ConnectionLost(W, DbError),
}

/// Runs `work` on a blocking thread with a write session of each database (see the
/// module's rules), admitted by a [`Pair`]. A connection of `B` found dead before `work`
/// ran makes it start over with a new turn, as single-database sessions do.
pub(crate) async fn run<A, B, T, E, W>(a: &Pool<A>, b: &Pool<B>, work: W) -> Result<T, E>
where
    A: Database,
    B: Database,
    W: FnOnce(Session<A>, Session<B>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let mut work = work;
    let mut tries_left = b.status().max_size + 1;
    loop {
        let pair = Pair::admit(a, b).await?;
        let attempt = blocking(move || {
            // Declared first, so dropped last: the turn outlives the sessions.
            let mut pair = pair;
            Ok(match pair.begin() {
                Ok((a, b)) => Attempt::Ran(work(a, b)),
                Err(lost @ DbError::ConnectionLost { .. }) => Attempt::ConnectionLost(work, lost),
                Err(error) => Attempt::Ran(Err(error.into())),
            })
        })
        .await?;
        match attempt {
            Attempt::Ran(outcome) => return outcome,
            Attempt::ConnectionLost(unrun, lost) if tries_left > 0 => {
                log::debug!("{}: starting over on another connection: {lost}", B::NAME);
                tries_left -= 1;
                work = unrun;
            }
            Attempt::ConnectionLost(_, lost) => return Err(lost.into()),
        }
    }
}
