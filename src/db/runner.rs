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

/// Runs `work_a` in a read session of `a` and `work_b` in one of `b`.
///
/// When both databases have a connection free at once (the service is not saturated),
/// the two reads run at the same time on two blocking threads: the request takes as
/// long as the slower one. Otherwise the request queues for both turns and then runs
/// the reads one after the other on one blocking thread: one hand-off between threads
/// instead of two, which is what a saturated machine runs short of (BENCHMARKS.md,
/// issue 10: fewer context switches per request and a lower p99 at saturation; at low
/// load the sequential form would add the second read's latency). Each session is
/// ended before the next begins, and each turn is given back when its read is done.
///
/// Admitted like work on both databases (see `super::pair`): the request may wait for
/// `b`'s turn while holding `a`'s, so such requests hold at most three quarters of
/// either pool, and the reads of a single database keep the rest when the other
/// database is down.
pub async fn read_both<A, B, TA, TB, FA, FB>(
    a: &Pool<A>,
    b: &Pool<B>,
    work_a: FA,
    work_b: FB,
) -> Result<(TA, TB), DbError>
where
    A: Database,
    B: Database,
    FA: Fn(&mut Session<A, Read>) -> Result<TA, DbError> + Send + 'static,
    FB: Fn(&mut Session<B, Read>) -> Result<TB, DbError> + Send + 'static,
    TA: Send + 'static,
    TB: Send + 'static,
{
    let (a_admissions, b_admissions) = (a.admissions(), b.admissions());
    if let Some((a_turn, b_turn)) = a_admissions
        .try_admit_paired()
        .zip(b_admissions.try_admit_paired())
    {
        a_admissions.record_no_wait();
        b_admissions.record_no_wait();
        let (a, b) = (a.clone(), b.clone());
        let (a_value, b_value) = futures_util::future::join(
            blocking(move || read_admitted(&a, a_turn, &work_a)),
            blocking(move || read_admitted(&b, b_turn, &work_b)),
        )
        .await;
        return Ok((a_value?, b_value?));
    }
    let (a_deadline, b_deadline) = (a_admissions.deadline(), b_admissions.deadline());
    let shares = (
        a_admissions.admit_paired(a_deadline).await?,
        b_admissions.admit_paired(b_deadline).await?,
    );
    let a_turn = (a_admissions.admit_by(a_deadline).await?, shares.0);
    let b_turn = (b_admissions.admit_by(b_deadline).await?, shares.1);
    let (a, b) = (a.clone(), b.clone());
    blocking(move || {
        let a_value = read_admitted(&a, a_turn, &work_a)?;
        let b_value = read_admitted(&b, b_turn, &work_b)?;
        Ok((a_value, b_value))
    })
    .await
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
