//! Runs blocking Diesel work off the async workers, inside a session guard.

use super::{Database, DbError, Pool, Read, Session, Write};

/// Runs `work` on actix's blocking thread pool, as the current request's (so that what
/// it logs names the request). A panic inside `work` comes back as
/// [`DbError::Panicked`]; any session it held was rolled back while unwinding.
pub async fn blocking<T, E, F>(work: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    match actix_web::web::block(crate::request_scope::carry(work)).await {
        Ok(outcome) => outcome,
        // actix reports a panic as "thread pool is shut down"; say what happened.
        Err(_) => Err(DbError::Panicked.into()),
    }
}

/// Runs `work` in a read session of `pool`'s database. Reading is idempotent, so work
/// that finds its connection dead is run again on another.
pub async fn read<D, T, F>(pool: &Pool<D>, work: F) -> Result<T, DbError>
where
    D: Database,
    F: Fn(&mut Session<D, Read>) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    let admission = pool.admissions().admit().await?;
    let pool = pool.clone();
    blocking(move || read_admitted(&pool, admission, &work)).await
}

/// One read session's work, on a connection of its own if the first is found dead;
/// `turn` (its admission, and a share for work on both databases) is given back when it
/// is done. Blocks.
pub(crate) fn read_admitted<D, T, F>(
    pool: &Pool<D>,
    turn: impl Send,
    work: &F,
) -> Result<T, DbError>
where
    D: Database,
    F: Fn(&mut Session<D, Read>) -> Result<T, DbError>,
{
    let _turn = turn;
    pool.retrying(|| {
        let mut session = pool.begin::<Read>()?;
        work(&mut session)
    })
}

/// Runs `work` in a write session of `pool`'s database and commits if it returns `Ok`;
/// an `Err`, or a panic, rolls everything back.
pub async fn write<D, T, E, F>(pool: &Pool<D>, work: F) -> Result<T, E>
where
    D: Database,
    F: FnOnce(&mut Session<D, Write>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let admission = pool.admissions().admit_write().await?;
    let pool = pool.clone();
    blocking(move || {
        let _admission = admission;
        let mut session = pool.begin::<Write>()?;
        let value = work(&mut session)?;
        session.commit()?;
        Ok(value)
    })
    .await
}
