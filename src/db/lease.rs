//! Instance leases: which instance owns which cross-database work in doubt.
//!
//! Each instance holds a row in `multidb_instances` whose `lease_until_ms` it pushes
//! forward every third of the lease, on a thread and a connection of its own. Every time
//! in that table is the database's ([`super::clock`]): an instance's own clock, however
//! wrong, never takes part. The lease needs no session state (no session advisory lock),
//! so it works through a transaction-mode pooler, and it ends by itself when the
//! instance dies, freezes or is cut off: a process that is not running cannot renew.
//!
//! An instance whose lease lapsed does not renew it — others may already be resolving
//! its work — but takes a new one under a new id; ids are never reused.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{clock, AnyConnection, Database, DbError, Pool};

diesel::table! {
    /// Every time in it is computed by the database ([`super::clock`]): the queries
    /// compare and set it with the backend's SQL for "now" ([`now_ms`]).
    multidb_instances (id) {
        id -> BigInt,
        host -> Text,
        started_at_ms -> BigInt,
        lease_until_ms -> BigInt,
    }
}

/// The id of a lease, which names the work started under it.
pub type LeaseId = i64;

/// How long an expired lease's row is kept; a missing row counts as expired.
const EXPIRED_ROWS_KEPT_MS: i64 = 24 * 3600 * 1000;

/// The longest lease an instance may take (`INSTANCE_LEASE_MS` is bounded by it). A
/// lease row that holds for longer than this from now was not written by the database's
/// clock as it is now — the clock was stepped back since — and counts as expired: a
/// step must not keep another instance's work in doubt for as long as the step.
pub const MAX_LEASE: Duration = Duration::from_secs(600);

/// This instance's lease in database `D`, renewed in the background for as long as it
/// is alive.
pub(crate) struct Lease<D: Database> {
    state: Arc<Mutex<Current>>,
    ttl: Duration,
    pool: Pool<D>,
    /// Taken while renewing on a request's thread, so that one request renews and the
    /// others wait for it rather than all taking new leases.
    renewing: Mutex<()>,
    keeper: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

#[derive(Clone, Copy)]
struct Current {
    id: LeaseId,
    /// Until when the lease holds, by this process's monotonic clock: the time the
    /// renewal was *sent*, plus the lease; the database set its expiry later than that,
    /// by its own clock. Only liveness rests on it: a host suspended (the monotonic
    /// clock stops) or a step of the database's clock can make it wrong, and then the
    /// decision row still keeps both databases in agreement.
    holds_until: Instant,
}

impl<D: Database> Lease<D> {
    /// Takes a new lease in `pool`'s database and starts renewing it. Blocks.
    pub(crate) fn take(pool: &Pool<D>, ttl: Duration) -> Result<Self, DbError> {
        let mut conn = pool.open_dedicated()?;
        let sent = Instant::now();
        let id = take(&mut conn, ttl).map_err(|e| DbError::from_diesel(D::NAME, e))?;
        log::info!("{}: took instance lease {id} for {ttl:?}", D::NAME);
        let state = Arc::new(Mutex::new(Current {
            id,
            holds_until: sent + ttl,
        }));
        let (stop, stopped) = mpsc::channel();
        let keeper = {
            let state = state.clone();
            let pool = pool.clone();
            std::thread::Builder::new()
                .name("multidb-lease".into())
                .spawn(move || keep(&pool, conn, &state, ttl, &stopped))
                .map_err(|e| DbError::Other {
                    database: D::NAME,
                    cause: e.into(),
                })?
        };
        Ok(Self {
            state,
            ttl,
            pool: pool.clone(),
            renewing: Mutex::new(()),
            keeper: Some((stop, keeper)),
        })
    }

    /// The lease to start new work under, with at least a quarter of it left: work
    /// started near the end of a lease would likely outlive it. When less is left (the
    /// database was unreachable, or this process was paused) the lease is renewed — or
    /// a new one taken — here and now, on a connection of its own: the caller may hold
    /// the pool's last connection. Blocks.
    pub(crate) fn for_new_work(&self) -> Result<LeaseId, DbError> {
        if let Some(id) = self.held() {
            return Ok(id);
        }
        let _renewing = super::sync::lock(&self.renewing);
        if let Some(id) = self.held() {
            return Ok(id);
        }
        let id = lock(&self.state).id;
        let sent = Instant::now();
        let mut conn = self.pool.open_dedicated()?;
        let new_id = renew_or_retake(&mut conn, id, self.ttl)
            .map_err(|e| DbError::from_diesel(D::NAME, e))?;
        Ok(settle(&self.state, id, new_id, sent + self.ttl))
    }

    /// The lease to start new work under, if it can be without renewing it first.
    pub(crate) fn held(&self) -> Option<LeaseId> {
        let current = *lock(&self.state);
        (Instant::now() + self.ttl / 4 <= current.holds_until).then_some(current.id)
    }

    /// The id of the lease held now (or being renewed).
    pub(crate) fn id(&self) -> LeaseId {
        lock(&self.state).id
    }
}

/// Ends the lease at once (others may resolve what this instance left in doubt without
/// waiting for it to expire) and stops the renewals.
impl<D: Database> Drop for Lease<D> {
    fn drop(&mut self) {
        if let Some((stop, keeper)) = self.keeper.take() {
            drop(stop);
            let _ = keeper.join();
        }
    }
}

use super::sync::lock;

/// The renewal loop: every third of the lease until stopped; then the lease is released.
fn keep<D: Database>(
    pool: &Pool<D>,
    conn: AnyConnection,
    state: &Mutex<Current>,
    ttl: Duration,
    stopped: &mpsc::Receiver<()>,
) {
    let mut conn = Some(conn);
    let own_writers = pool.session_begin().own_writers.clone();
    let mut pause = ttl / 3;
    // Nothing is ever sent: the sender's drop is the signal to stop.
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
        pause = ttl / 3;
        let id = lock(state).id;
        let mut renew = || {
            let sent = Instant::now();
            let renewed = conn
                .take()
                .map_or_else(|| pool.open_dedicated(), Ok)
                .and_then(|mut open| {
                    let outcome = renew_or_retake(&mut open, id, ttl)
                        .map_err(|e| DbError::from_diesel(D::NAME, e));
                    conn = Some(open);
                    outcome
                });
            (sent, renewed)
        };
        // On SQLite, not while this process holds the write lock (see `own_writers`).
        let renewal = match &own_writers {
            Some(writers) => writers.exclusively(Instant::now() + ttl / 3, renew),
            None => Some(renew()),
        };
        match renewal {
            Some((sent, Ok(new_id))) => {
                settle(state, id, new_id, sent + ttl);
            }
            Some((_, Err(error))) => {
                // A connection that failed is opened anew next time.
                conn = None;
                log::warn!("{}: cannot renew instance lease {id}: {error}", D::NAME);
            }
            None => {
                log::debug!(
                    "{}: instance lease {id} renewal waits for this process's write",
                    D::NAME
                );
                pause = Duration::ZERO;
            }
        }
    }
    if let Some(conn) = conn.as_mut() {
        let id = lock(state).id;
        if let Err(error) = release(conn, id) {
            log::warn!("{}: cannot release instance lease {id}: {error}", D::NAME);
        }
    }
}

/// Records a renewal of lease `id` sent at `holds_until - ttl`, which found `new_id`,
/// and returns the lease held afterwards: the renewal thread and a request may both
/// find a lapsed lease and each take a new one; the first to settle wins, and the
/// other's new lease, never renewed, is not used.
fn settle(state: &Mutex<Current>, id: LeaseId, new_id: LeaseId, holds_until: Instant) -> LeaseId {
    let mut current = lock(state);
    if current.id != id {
        return current.id;
    }
    if new_id != id {
        log::warn!(
            "instance lease {id} lapsed (this process was paused or cut off for longer than the lease); its writes in doubt may be resolved by other instances; took lease {new_id}"
        );
    }
    *current = Current {
        id: new_id,
        holds_until,
    };
    new_id
}

fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{name} pid {}", std::process::id())
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// "Now" in milliseconds, by `conn`'s database, as an expression.
fn now_ms(conn: &AnyConnection) -> SqlLiteral<BigInt> {
    diesel::dsl::sql(clock::now_ms(conn.backend()))
}

fn take(conn: &mut AnyConnection, ttl: Duration) -> QueryResult<LeaseId> {
    let insert = |now: SqlLiteral<BigInt>| {
        diesel::insert_into(multidb_instances::table).values((
            multidb_instances::host.eq(host()),
            multidb_instances::started_at_ms.eq(now.clone()),
            multidb_instances::lease_until_ms.eq(now + ttl_ms(ttl)),
        ))
    };
    let now = now_ms(conn);
    match conn.load_returning(insert(now.clone()).returning(multidb_instances::id)) {
        Some(taken) => taken?.ok_or(diesel::result::Error::NotFound),
        None => {
            insert(now).execute(conn)?;
            let last = conn.backend().dialect().last_insert_id();
            diesel::select(diesel::dsl::sql::<BigInt>(last)).get_result(conn)
        }
    }
}

/// Renews lease `id` if it has not expired; otherwise takes a new one. Also forgets
/// leases long expired.
fn renew_or_retake(conn: &mut AnyConnection, id: LeaseId, ttl: Duration) -> QueryResult<LeaseId> {
    let now = now_ms(conn);
    let renewed = diesel::update(
        multidb_instances::table.filter(
            multidb_instances::id
                .eq(id)
                .and(multidb_instances::lease_until_ms.gt(now.clone())),
        ),
    )
    .set(multidb_instances::lease_until_ms.eq(now.clone() + ttl_ms(ttl)))
    .execute(conn)?;
    diesel::delete(
        multidb_instances::table
            .filter(multidb_instances::lease_until_ms.lt(now - EXPIRED_ROWS_KEPT_MS)),
    )
    .execute(conn)?;
    if renewed == 1 {
        Ok(id)
    } else {
        take(conn, ttl)
    }
}

fn release(conn: &mut AnyConnection, id: LeaseId) -> QueryResult<()> {
    diesel::update(multidb_instances::table.find(id))
        .set(multidb_instances::lease_until_ms.eq(0))
        .execute(conn)
        .map(drop)
}

/// Whether lease `id` is still held, by the database's clock. A lease with no row (long
/// expired and forgotten) is not.
pub(crate) fn is_live(conn: &mut AnyConnection, id: LeaseId) -> QueryResult<bool> {
    let now = now_ms(conn);
    diesel::select(diesel::dsl::exists(
        multidb_instances::table.filter(
            multidb_instances::id
                .eq(id)
                .and(multidb_instances::lease_until_ms.gt(now.clone()))
                .and(multidb_instances::lease_until_ms.le(now + ttl_ms(MAX_LEASE))),
        ),
    ))
    .get_result(conn)
}
