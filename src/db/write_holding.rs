//! Writes to one database that depend on rows of the other.

use super::{blocking, Database, DbError, Pool, Session, Write};

/// Runs `work` with a write session of `b`, while a session of `a` holds what `work`
/// locked there; `b` commits first, then `a` is rolled back, releasing the locks.
///
/// For writes that only *depend* on `a` (an order that needs its user to exist): `a`
/// writes nothing, so there is nothing to commit atomically, and no two-phase commit is
/// needed. The lock on `a` is held until `b`'s writes are committed and visible, so a
/// concurrent deletion in `a` either completes before (and `work` sees the row gone) or
/// waits until after (and sees the new rows in `b`). Sessions are begun `a` first, as
/// in [`super::CrossCommit`], so the two never wait for each other in a cycle.
pub async fn write_holding<A, B, T, E, F>(a: &Pool<A>, b: &Pool<B>, work: F) -> Result<T, E>
where
    A: Database,
    B: Database,
    F: FnOnce(&mut Session<A>, &mut Session<B>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let admissions = (a.admit_write().await?, b.admit_write().await?);
    let (a, b) = (a.clone(), b.clone());
    blocking(move || {
        let _admissions = admissions;
        // Write access on `a`: on SQLite that is the lock (`BEGIN IMMEDIATE`).
        let mut held = a.begin::<Write>()?;
        let mut session = b.begin::<Write>()?;
        let value = work(&mut held, &mut session)?;
        session.commit()?;
        drop(held);
        Ok(value)
    })
    .await
}
