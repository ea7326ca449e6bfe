//! Admission and sessions for work that writes to one database while using the other.
//!
//! Such work must not let one database's outage take the other down with it. Two rules
//! keep it from doing so:
//!
//! - **The connection that may not come is taken first.** A PostgreSQL server can be
//!   down; a SQLite file cannot. So the PostgreSQL side's connection (`B`'s when both
//!   are PostgreSQL) is checked out before anything of the other database (its
//!   admission, its SQLite write slot, its connection): when that server is down, a
//!   request waits out its checkout timeout holding nothing of the other database. A
//!   checkout takes no lock, so the lock order is unchanged. Its session is also begun
//!   first when that takes no database lock (PostgreSQL's `BEGIN`; `B`'s key lock, which
//!   every writer takes before `A`'s locks, comes with it), which proves the connection
//!   alive: a dead one (after the server restarted or went away, every idle connection
//!   is) gives the turn back and the work starts over, instead of waiting for a new
//!   connection while holding the other database.
//! - **Such requests hold at most three quarters of either pool** (`Pool::admit_paired`):
//!   when the database taken second is down, requests waiting for it while holding the
//!   first one's connections still leave the rest of it to requests that need only that
//!   database, and to `/health`.

use r2d2::PooledConnection;
use tokio::sync::OwnedSemaphorePermit;

use super::connection::Manager;
use super::key_lock::KeyLock;
use super::{blocking, Admission, Backend, Database, DbError, Pool, Session, Write};

/// Which database's connection is taken first (see the module's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    A,
    B,
}

impl First {
    fn of<A: Database, B: Database>(a: &Pool<A>, b: &Pool<B>) -> Self {
        if a.backend() == Backend::Postgres && b.backend() == Backend::Sqlite {
            First::A
        } else {
            First::B
        }
    }
}

/// A request's turn on both databases, with the first database's connection in hand.
struct Pair<A: Database, B: Database> {
    a: Pool<A>,
    b: Pool<B>,
    first: First,
    connection: Option<PooledConnection<Manager>>,
    _turns: (Admission, Admission),
    _shares: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl<A: Database, B: Database> Pair<A, B> {
    /// Waits for a turn on both databases, each up to its checkout timeout.
    async fn admit(a: &Pool<A>, b: &Pool<B>) -> Result<Self, DbError> {
        let (a_deadline, b_deadline) = (a.deadline(), b.deadline());
        let shares = (
            a.admit_paired(a_deadline).await?,
            b.admit_paired(b_deadline).await?,
        );
        let first = First::of(a, b);
        let (turns, connection) = match first {
            First::B => {
                let b_turn = b.admit_write_by(b_deadline).await?;
                let connection = checkout(b, b_deadline).await?;
                ((a.admit_write_by(a_deadline).await?, b_turn), connection)
            }
            First::A => {
                let a_turn = a.admit_write_by(a_deadline).await?;
                let connection = checkout(a, a_deadline).await?;
                ((a_turn, b.admit_write_by(b_deadline).await?), connection)
            }
        };
        Ok(Self {
            a: a.clone(),
            b: b.clone(),
            first,
            connection: Some(connection),
            _turns: turns,
            _shares: shares,
        })
    }

    /// Begins a write session on each database, `B`'s holding `lock`. The pair must
    /// outlive the sessions: it is the turn that admitted them. Blocks.
    ///
    /// A PostgreSQL session whose connection was taken first is begun first (its `BEGIN`
    /// takes no lock), and a dead connection there is reported as
    /// [`DbError::ConnectionLost`] at once, for [`run`] to start over. Otherwise `A` is
    /// begun first: on SQLite `BEGIN IMMEDIATE` takes the database's lock, and the two
    /// are always locked `A` first.
    fn begin(&mut self, lock: &KeyLock) -> Result<(Session<A>, Session<B>), DbError> {
        let connection = self.connection.take().ok_or_else(|| DbError::Other {
            database: B::NAME,
            cause: "a pair's sessions were begun twice".into(),
        })?;
        let first_is_postgres = match self.first {
            First::A => self.a.backend() == Backend::Postgres,
            First::B => self.b.backend() == Backend::Postgres,
        };
        match self.first {
            First::B if first_is_postgres => {
                let b = Session::begin_holding(connection, self.b.faults().clone(), Some(lock))?;
                Ok((self.a.begin::<Write>()?, b))
            }
            First::B => {
                let a = self.a.begin::<Write>()?;
                Ok((a, self.b.begin_on(connection, Some(lock))?))
            }
            First::A => {
                let a = Session::begin(connection, self.a.faults().clone())?;
                Ok((a, self.b.begin_holding(Some(lock))?))
            }
        }
    }
}

/// An idle connection of `pool` if one is at hand, else one opened on a blocking thread
/// (which may take up to the deadline, or fail if the database is down).
async fn checkout<D: Database>(
    pool: &Pool<D>,
    deadline: tokio::time::Instant,
) -> Result<PooledConnection<Manager>, DbError> {
    if let Some(connection) = pool.idle_connection() {
        return Ok(connection);
    }
    let pool = pool.clone();
    blocking(move || pool.connection_by(deadline)).await
}

/// What a turn on both databases came to: `work`'s outcome, or `work` given back
/// unrun because the first connection was found dead.
enum Attempt<T, E, W> {
    Ran(Result<T, E>),
    ConnectionLost(W, DbError),
}

/// Runs `work` on a blocking thread with a write session of each database, `B`'s
/// holding `lock` from its `BEGIN`, admitted by the module's rules. A first connection
/// found dead before `work` ran makes it start over with a new turn, as single-database
/// sessions do.
pub(crate) async fn run<A, B, T, E, W>(
    a: &Pool<A>,
    b: &Pool<B>,
    lock: KeyLock,
    work: W,
) -> Result<T, E>
where
    A: Database,
    B: Database,
    W: FnOnce(Session<A>, Session<B>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let mut work = work;
    let mut tries_left = a.status().max_size.max(b.status().max_size) + 1;
    loop {
        let pair = Pair::admit(a, b).await?;
        let attempt = blocking(move || {
            // Declared first, so dropped last: the turn outlives the sessions.
            let mut pair = pair;
            Ok(match pair.begin(&lock) {
                Ok((a, b)) => Attempt::Ran(work(a, b)),
                Err(lost @ DbError::ConnectionLost { .. }) => Attempt::ConnectionLost(work, lost),
                Err(error) => Attempt::Ran(Err(error.into())),
            })
        })
        .await?;
        match attempt {
            Attempt::Ran(outcome) => return outcome,
            Attempt::ConnectionLost(unrun, lost) if tries_left > 0 => {
                log::debug!("starting over on other connections: {lost}");
                tries_left -= 1;
                work = unrun;
            }
            Attempt::ConnectionLost(_, lost) => return Err(lost.into()),
        }
    }
}
