//! Admission and sessions for work that writes to one database while using the other.
//!
//! Such work must not let one database's outage take the other down with it. Two rules
//! keep it from doing so:
//!
//! - **The connection that may not come is taken first.** A server can be down; a file
//!   this process opens cannot. So a server's connection (`B`'s when both are servers)
//!   is checked out before anything of the other database (its admission, its write
//!   slot, its connection): when that server is down, a request waits out its checkout
//!   timeout holding nothing of the other database. A checkout takes no lock, so the
//!   lock order is unchanged. Its session is also begun first when that takes no
//!   database lock (a `BEGIN` on a backend with many writers; `B`'s key lock, if the work
//!   has one, comes with it), which proves the connection alive: a dead one (after the
//!   server restarted or went away, every idle connection is) gives the turn back and
//!   the work starts over, instead of waiting for a new connection while holding the
//!   other database.
//!
//! **The lock order**, on which freedom from deadlock rests, is decided here and only
//! here ([`order`]): `B`'s key lock before any lock of `A`, then `A`'s locks before
//! `B`'s rows; on two single-writer databases, `A`'s write lock before `B`'s. Every
//! other module that begins sessions on both (`holding`, `cross_commit`) does so
//! through [`run`].
//! - **Such requests hold at most three quarters of either pool** (`Pool::admit_paired`):
//!   when the database taken second is down, requests waiting for it while holding the
//!   first one's connections still leave the rest of it to requests that need only that
//!   database, and to `/health`.

use r2d2::PooledConnection;
use tokio::sync::OwnedSemaphorePermit;

use super::admission::Admission;
use super::backend::Manager;
use super::key_lock::KeyLock;
use super::retry::OnLostConnection;
use super::session::Opening;
use super::{blocking, Database, DbError, Features, Pool, Session};

/// One of the two databases of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// In which order a pair's connections are taken and its sessions begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Order {
    /// Whose connection is checked out first (see the module's first rule).
    checkout_first: Side,
    /// Whose session begins first (the lock order, see the module).
    begin_first: Side,
}

/// The order for databases on backends with features `a` and `b`: the one place it is
/// decided.
fn order(a: &Features, b: &Features) -> Order {
    let checkout_first = if a.server && !b.server {
        Side::A
    } else {
        Side::B
    };
    // `B` first when its BEGIN takes no database lock: then only its key lock comes
    // with it, which every writer takes before `A`'s locks. Otherwise `A` first: its
    // BEGIN takes no lock, or both take the database's write lock, `A`'s first.
    let begin_first = if b.single_writer { Side::A } else { Side::B };
    Order {
        checkout_first,
        begin_first,
    }
}

/// A request's turn on both databases, with the first database's connection in hand.
struct Pair<A: Database, B: Database> {
    a: Pool<A>,
    b: Pool<B>,
    /// Decided once, at admission, for the checkout and the sessions alike.
    order: Order,
    connection: PooledConnection<Manager>,
    turn: Turn,
}

/// The admissions of a request on both databases, held until its sessions are done.
struct Turn {
    _admissions: (Admission, Admission),
    _shares: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl<A: Database, B: Database> Pair<A, B> {
    /// Waits for a turn on both databases, each up to its checkout timeout.
    async fn admit(a: &Pool<A>, b: &Pool<B>) -> Result<Self, DbError> {
        let (a_admissions, b_admissions) = (a.admissions(), b.admissions());
        let (a_deadline, b_deadline) = (a_admissions.deadline(), b_admissions.deadline());
        let shares = (
            a_admissions.admit_paired(a_deadline).await?,
            b_admissions.admit_paired(b_deadline).await?,
        );
        let order = order(a.features(), b.features());
        let (admissions, connection) = if order.checkout_first == Side::A {
            let a_admission = a_admissions.admit_write_by(a_deadline).await?;
            let connection = checkout(a, a_deadline).await?;
            (
                (a_admission, b_admissions.admit_write_by(b_deadline).await?),
                connection,
            )
        } else {
            let b_admission = b_admissions.admit_write_by(b_deadline).await?;
            let connection = checkout(b, b_deadline).await?;
            (
                (a_admissions.admit_write_by(a_deadline).await?, b_admission),
                connection,
            )
        };
        Ok(Self {
            a: a.clone(),
            b: b.clone(),
            order,
            connection,
            turn: Turn {
                _admissions: admissions,
                _shares: shares,
            },
        })
    }

    /// Begins a write session on each database, `A`'s as `a_opening` says, `B`'s
    /// holding `lock`, and hands back the turn, which must outlive the sessions, in the
    /// [`order`] of their backends. Blocks.
    ///
    /// A session begun first on the connection taken first is begun on it alone: a dead
    /// one is reported as [`DbError::ConnectionLost`] at once, for [`run`] to start
    /// over. Begun second, it is begun on another connection if that one is dead.
    fn begin(
        self,
        a_opening: Opening<'_>,
        lock: Option<&KeyLock>,
    ) -> Result<(Session<A>, Session<B>, Turn), DbError> {
        let Self {
            a,
            b,
            order,
            connection,
            turn,
        } = self;
        let b_opening = Opening::from(lock);
        let (a_session, b_session) = match (order.checkout_first, order.begin_first) {
            (Side::B, Side::B) => {
                let b_session = Session::begin_opening(connection, b.session_begin(), b_opening)?;
                (a.begin_opening(a_opening)?, b_session)
            }
            (Side::A, Side::A) => {
                let a_session = Session::begin_opening(connection, a.session_begin(), a_opening)?;
                (a_session, b.begin_opening(b_opening)?)
            }
            (Side::B, Side::A) => {
                let a_session = a.begin_opening(a_opening)?;
                (a_session, b.begin_on(connection, b_opening)?)
            }
            (Side::A, Side::B) => {
                let b_session = b.begin_opening(b_opening)?;
                (a.begin_on(connection, a_opening)?, b_session)
            }
        };
        Ok((a_session, b_session, turn))
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
/// holding `lock` (if any) from its `BEGIN`, `A`'s begun as the branch `a_branch` of a
/// global transaction if one is given (see [`Opening::Branch`]), admitted by the module's rules. A first connection
/// found dead before `work` ran makes it start over with a new turn, as single-database
/// sessions do.
pub(crate) async fn run<A, B, T, E, W>(
    a: &Pool<A>,
    b: &Pool<B>,
    lock: Option<KeyLock>,
    a_branch: Option<Box<str>>,
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
    let mut policy = OnLostConnection::for_pools_of(a.max_size().max(b.max_size()));
    loop {
        let pair = Pair::admit(a, b).await?;
        let a_branch = a_branch.clone();
        let attempt = blocking(move || {
            let a_opening = a_branch.as_deref().map_or(Opening::Plain, Opening::Branch);
            Ok(match pair.begin(a_opening, lock.as_ref()) {
                Ok((a, b, turn)) => {
                    // `work` ends both sessions; only then is the turn given back.
                    let outcome = work(a, b);
                    drop(turn);
                    Attempt::Ran(outcome)
                }
                Err(lost @ DbError::ConnectionLost { .. }) => Attempt::ConnectionLost(work, lost),
                Err(error) => Attempt::Ran(Err(error.into())),
            })
        })
        .await?;
        match attempt {
            Attempt::Ran(outcome) => return outcome,
            Attempt::ConnectionLost(unrun, lost) if policy.again(&lost) => {
                work = unrun;
            }
            Attempt::ConnectionLost(_, lost) => return Err(lost.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{order, Order, Side};
    use crate::db::Backend;

    /// Every mix of backends: the server's connection first, and `B` begun first unless
    /// its BEGIN takes the database's write lock.
    #[test]
    fn the_order_per_backend_mix() {
        let of = |a: Backend, b: Backend| order(a.features(), b.features());
        let (server, file) = (Backend::Postgres, Backend::Sqlite);
        let both = |checkout_first, begin_first| Order {
            checkout_first,
            begin_first,
        };
        assert_eq!(of(server, server), both(Side::B, Side::B));
        assert_eq!(of(file, server), both(Side::B, Side::B));
        assert_eq!(of(server, file), both(Side::A, Side::A));
        assert_eq!(of(file, file), both(Side::B, Side::A));
        // MySQL is a server with many writers, as PostgreSQL is.
        let mysql = Backend::Mysql;
        assert_eq!(of(mysql, mysql), both(Side::B, Side::B));
        assert_eq!(of(mysql, server), both(Side::B, Side::B));
        assert_eq!(of(file, mysql), both(Side::B, Side::B));
        assert_eq!(of(mysql, file), both(Side::A, Side::A));
    }
}
