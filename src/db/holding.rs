//! Writes to one database that depend on rows of the other.

use super::pair;
use super::{Database, DbError, KeyLock, Pool, Session};

/// Runs `work` with a write session of `b`, while a session of `a` holds what `work`
/// locked there; `b` commits first, then `a` is rolled back, releasing the locks.
///
/// For writes that only *depend* on `a` (an order that needs its user to exist): `a`
/// writes nothing, so there is nothing to commit atomically, and no two-phase commit is
/// needed. The lock on `a` is held until `b`'s writes are committed and visible, so a
/// concurrent deletion in `a` either completes before (and `work` sees the row gone) or
/// waits until after (and sees the new rows in `b`). Sessions are begun and admitted by
/// `super::pair`, which decides the lock order in one place (`pair::order`), so no two
/// units wait for each other in a cycle and neither database's outage blocks the other.
///
/// A lock in `a` lasts only as long as the server session holding it, which can end
/// before `b` commits (a failover, a terminated backend, an idle-in-transaction
/// timeout). So the work does not rely on it alone: `b`'s session begins holding
/// `guard`, a key lock that stands in `b` for what `work` locks in `a`, and that a
/// deletion in `a` takes too, exclusively, before it deletes what refers to it in `b`
/// (see [`super::KeyLocks`]). Both take `guard` before `a`'s lock, so they never wait
/// for each other in a cycle.
pub async fn write_b_holding_a<A, B, T, E, F>(
    a: &Pool<A>,
    b: &Pool<B>,
    guard: KeyLock,
    work: F,
) -> Result<T, E>
where
    A: Database,
    B: Database,
    F: FnOnce(&mut Session<A>, &mut Session<B>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    pair::run(a, b, Some(guard), None, move |mut held, mut session| {
        let value = work(&mut held, &mut session)?;
        session.commit()?;
        drop(held);
        Ok(value)
    })
    .await
}

/// Runs `work` with a write session of each database and commits `a`'s, then rolls `b`'s
/// back: for writes to `a` that must look at `b` under locks taken in `b` (as
/// [`write_b_holding_a`] does for writes to `b`), so that both kinds of writes take their
/// locks in the same database and never miss each other. `b` writes nothing. Sessions are
/// begun and admitted as in [`write_b_holding_a`].
pub async fn write_a_holding_b<A, B, T, E, F>(a: &Pool<A>, b: &Pool<B>, work: F) -> Result<T, E>
where
    A: Database,
    B: Database,
    F: FnOnce(&mut Session<A>, &mut Session<B>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    pair::run(a, b, None, None, move |mut session, mut holding| {
        let value = work(&mut session, &mut holding)?;
        session.commit()?;
        drop(holding);
        Ok(value)
    })
    .await
}
