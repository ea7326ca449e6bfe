//! Writes that span two databases, committed all-or-nothing even across crashes.
//!
//! # Protocol
//!
//! `A` is the database whose rows the other refers to (db1, users), `B` the one that
//! refers to them (db2, orders). `B` is always the *last resource*: it is never
//! prepared, and its commit, which carries the decision record, is the commit point.
//!
//! 1. Both sessions do their work (A begun first, so units never wait in a cycle).
//! 2. A is made durable without being committed:
//!    - PostgreSQL: `PREPARE TRANSACTION '<gid>'`; its locks stay held;
//!    - SQLite (which cannot prepare): its transaction stays open, holding the write
//!      lock, and the decision will carry a *redo* of its work.
//! 3. The decision: `INSERT INTO multidb_decisions (gid, 'commit', redo)` in B's
//!    transaction, then B commits. Before this point any failure rolls everything back.
//! 4. A completes: `COMMIT PREPARED` (PostgreSQL), or its open transaction commits.
//! 5. A decision carrying a redo is deleted; others are cleaned up later.
//!
//! Because B commits while A still holds its locks, nobody can see B's writes refer to
//! rows that A is deleting, and nothing can be added for a row A is deleting.
//!
//! # Recovery
//!
//! At start-up and periodically, transactions left in doubt by a crash are resolved:
//! a prepared transaction in A whose gid carries our prefix is committed if its
//! decision exists and rolled back if not; a decision with a redo is applied to A again
//! (redo is idempotent) and deleted. Recovery decides "abort" by *inserting* an abort
//! decision under the same primary key: if the coordinator is still about to commit,
//! exactly one of the two inserts wins, so a late coordinator and a recovery can never
//! disagree. Gids name the instance that made them, and every instance holds a
//! PostgreSQL advisory lock on its own id for as long as it runs: a prepared
//! transaction is only resolved once its instance is gone (or, for our own, once it is
//! no longer in flight), so instances never resolve each other's work in progress.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use super::decisions::{self, ABORT, COMMIT};
use super::{blocking, AnyConnection, Backend, Database, DbError, Pool, Read, Session, Write};

/// Prefix of every global transaction id this service creates.
pub const GID_PREFIX: &str = "multidb";

/// First key of the advisory locks that tell live instances apart ("mdb1").
const LIVENESS_LOCK_CLASS: i32 = 0x6D64_6231;

/// How long a settled decision is kept after its transaction completed.
const SETTLED_DECISIONS_KEPT: Duration = Duration::from_secs(600);

/// Re-applies, on a database that cannot prepare, the work recorded in a decision.
/// Must be idempotent: recovery may apply it to work that did commit.
pub type RedoFn<A> = fn(&mut Session<A>, &str) -> Result<(), DbError>;

/// One write session per database, ended together by [`CrossCommit::write`].
pub struct UnitOfWork<A: Database, B: Database> {
    pub referenced: Session<A>,
    pub referencing: Session<B>,
    redo: Option<String>,
}

impl<A: Database, B: Database> UnitOfWork<A, B> {
    /// Describes the work done in `referenced` for [`RedoFn`], in case `A` cannot
    /// prepare (SQLite). Every unit of work that writes to `A` must give one.
    pub fn redo_referenced(&mut self, redo: String) {
        self.redo = Some(redo);
    }
}

/// The coordinator of cross-database writes between `A` and `B`.
pub struct CrossCommit<A: Database, B: Database> {
    a: Pool<A>,
    b: Pool<B>,
    shared: Arc<Shared<A>>,
}

impl<A: Database, B: Database> Clone for CrossCommit<A, B> {
    fn clone(&self) -> Self {
        Self {
            a: self.a.clone(),
            b: self.b.clone(),
            shared: self.shared.clone(),
        }
    }
}

struct Shared<A: Database> {
    instance: Mutex<i32>,
    next: AtomicU64,
    in_flight: Mutex<HashSet<String>>,
    /// On PostgreSQL, the connection holding this instance's advisory lock.
    liveness: Mutex<Option<AnyConnection>>,
    /// Why cross-database writes are refused, if they are.
    refusal: Option<String>,
    redo: RedoFn<A>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct PreparedGid {
    #[diesel(sql_type = Text)]
    gid: String,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// What a recovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub committed: usize,
    pub rolled_back: usize,
    pub redone: usize,
    pub skipped_live: usize,
}

impl<A: Database, B: Database> CrossCommit<A, B> {
    /// Sets up the coordinator and checks that `A` can take part. Blocks.
    pub fn new(a: Pool<A>, b: Pool<B>, redo: RedoFn<A>) -> Result<Self, DbError> {
        let refusal = if a.backend() == Backend::Postgres {
            max_prepared_transactions_refusal(&a)?
        } else {
            None
        };
        if let Some(refusal) = &refusal {
            log::error!("{refusal}");
        }
        let coordinator = Self {
            a,
            b,
            shared: Arc::new(Shared {
                instance: Mutex::new(0),
                next: AtomicU64::new(0),
                in_flight: Mutex::new(HashSet::new()),
                liveness: Mutex::new(None),
                refusal,
                redo,
            }),
        };
        coordinator.ensure_liveness()?;
        Ok(coordinator)
    }

    /// Runs `work` in a unit of work on a blocking thread and commits it by the
    /// protocol above; an `Err` or a panic from `work` rolls both databases back.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut UnitOfWork<A, B>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let admissions = (self.a.admit_write().await?, self.b.admit_write().await?);
        let coordinator = self.clone();
        blocking(move || {
            let _admissions = admissions;
            if let Some(refusal) = &coordinator.shared.refusal {
                return Err(DbError::Unavailable {
                    database: A::NAME,
                    cause: refusal.clone(),
                }
                .into());
            }
            let mut unit = UnitOfWork {
                referenced: coordinator.a.begin::<Write>()?,
                referencing: coordinator.b.begin::<Write>()?,
                redo: None,
            };
            let value = work(&mut unit)?;
            coordinator.commit(unit)?;
            Ok(value)
        })
        .await
    }

    fn new_gid(&self) -> String {
        let instance = *lock(&self.shared.instance);
        let n = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let unique = uuid::Uuid::new_v4().simple();
        format!("{GID_PREFIX}:{instance}:{n}:{unique}")
    }

    fn hit(&self, step: &str) -> Result<(), DbError> {
        self.a.faults().hit("uow", step)
    }

    fn commit(&self, unit: UnitOfWork<A, B>) -> Result<(), DbError> {
        let UnitOfWork {
            mut referenced,
            referencing,
            redo,
        } = unit;
        let gid = self.new_gid();
        let _in_flight = InFlight::enter(&self.shared, &gid);
        self.hit("after_work")?;

        let prepared = referenced.backend() == Backend::Postgres;
        let redo = if prepared {
            referenced.prepare(&gid)?;
            None
        } else {
            Some(redo.ok_or_else(|| DbError::Other {
                database: A::NAME,
                cause: "a unit of work wrote to a database that cannot prepare without giving a redo".into(),
            })?)
        };
        // From here until the decision, every way out — an error, an injected fault, a
        // panic — must settle the prepared transaction, or it would keep its locks.
        let in_doubt = prepared.then(|| InDoubt {
            coordinator: self,
            gid: &gid,
        });
        self.hit("after_prepare")?;
        // On failure `in_doubt` settles A by whatever B holds: nothing, or (if B's
        // commit failed only on the way back) the decision to commit.
        decide(referencing, &gid, redo.as_deref())?;
        if let Some(in_doubt) = in_doubt {
            in_doubt.decided();
        }
        self.hit("after_decision")?;

        if prepared {
            if let Err(error) = run_outside_transaction(
                referenced.connection(),
                &format!("COMMIT PREPARED '{gid}'"),
            ) {
                log::warn!(
                    "{gid}: decided, but COMMIT PREPARED failed; recovery will finish it: {error}"
                );
            }
        } else {
            self.complete_unprepared(referenced, &gid, redo.as_deref().unwrap_or_default());
        }
        self.hit("after_commit")
    }

    /// Commits A's open transaction, or redoes its work if that commit fails, then
    /// deletes the decision. Failures are left to recovery: the outcome is decided.
    fn complete_unprepared(&self, referenced: Session<A>, gid: &str, redo: &str) {
        if let Err(error) = referenced.commit() {
            log::warn!(
                "{gid}: decided, but {} did not commit; redoing: {error}",
                A::NAME
            );
            if let Err(error) = self.redo(redo) {
                log::warn!("{gid}: redo failed; recovery will retry it: {error}");
                return;
            }
        }
        if let Err(error) = self.forget(gid) {
            log::warn!("{gid}: cannot delete its decision yet: {error}");
        }
    }

    fn redo(&self, redo: &str) -> Result<(), DbError> {
        let mut session = self.a.begin_internal::<Write>()?;
        (self.shared.redo)(&mut session, redo)?;
        session.commit()
    }

    fn forget(&self, gid: &str) -> Result<(), DbError> {
        let mut session = self.b.begin_internal::<Write>()?;
        decisions::forget(&mut session, gid)?;
        session.commit()
    }

    /// `COMMIT PREPARED` or `ROLLBACK PREPARED` from any connection of A; a transaction
    /// that is no longer there was finished by someone else.
    fn finish_prepared(&self, gid: &str, outcome: &str) {
        let verb = if outcome == COMMIT {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let finished = self.a.connection().and_then(|mut conn| {
            run_outside_transaction(&mut conn, &format!("{verb} PREPARED '{gid}'"))
        });
        if let Err(error) = finished {
            log::warn!("{gid}: {verb} PREPARED failed; recovery will retry it: {error}");
        }
    }

    /// Commits or rolls back the prepared transaction `gid` by its decision.
    fn resolve(&self, gid: &str) -> Result<&'static str, DbError> {
        let outcome = if self.decision_or_abort(gid)? == COMMIT {
            COMMIT
        } else {
            ABORT
        };
        self.finish_prepared(gid, outcome);
        Ok(outcome)
    }

    /// The decision for `gid`, claiming "abort" if none was recorded: the coordinator's
    /// own insert of "commit" then fails on the primary key, so both agree.
    fn decision_or_abort(&self, gid: &str) -> Result<String, DbError> {
        for _ in 0..2 {
            let mut session = self.b.begin_internal::<Write>()?;
            if let Some(decision) = decisions::find(&mut session, gid)? {
                return Ok(decision.outcome);
            }
            match decisions::record(&mut session, gid, ABORT, None) {
                Ok(()) => {
                    session.commit()?;
                    return Ok(ABORT.to_owned());
                }
                // The coordinator's decision landed meanwhile: read it in a new session.
                Err(DbError::Conflict(_)) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(DbError::Other {
            database: B::NAME,
            cause: format!("{gid}: no decision could be read or claimed"),
        })
    }

    /// (Re)takes this instance's advisory lock on A when A is PostgreSQL.
    fn ensure_liveness(&self) -> Result<(), DbError> {
        if self.a.backend() != Backend::Postgres {
            return Ok(());
        }
        let mut liveness = lock(&self.shared.liveness);
        if let Some(conn) = liveness.as_mut() {
            if diesel::sql_query("SELECT 1").execute(conn).is_ok() {
                return Ok(());
            }
        }
        let mut conn = self.a.open_dedicated()?;
        loop {
            let instance = i32::from_ne_bytes(
                uuid::Uuid::new_v4().as_bytes()[..4]
                    .try_into()
                    .unwrap_or_default(),
            )
            .abs();
            if try_advisory_lock(&mut conn, instance)? {
                *lock(&self.shared.instance) = instance;
                *liveness = Some(conn);
                return Ok(());
            }
        }
    }

    /// Resolves what crashes left in doubt. Blocks.
    pub fn recover(&self) -> Result<Recovery, DbError> {
        let mut report = Recovery::default();
        match self.a.backend() {
            Backend::Postgres => {
                self.ensure_liveness()?;
                let prepared = self.prepared_gids()?;
                for gid in &prepared {
                    if !self.may_resolve(gid)? {
                        report.skipped_live += 1;
                        continue;
                    }
                    if self.resolve(gid)? == COMMIT {
                        report.committed += 1;
                    } else {
                        report.rolled_back += 1;
                    }
                }
                self.clean_settled(&prepared)?;
            }
            Backend::Sqlite => {
                let pending = {
                    let mut session = self.b.begin_internal::<Read>()?;
                    decisions::with_redo(&mut session)?
                };
                for decision in pending {
                    if lock(&self.shared.in_flight).contains(&decision.gid) {
                        continue;
                    }
                    self.redo(decision.redo.as_deref().unwrap_or_default())?;
                    self.forget(&decision.gid)?;
                    report.redone += 1;
                }
                self.clean_settled(&[])?;
            }
        }
        if report != Recovery::default() {
            log::info!("recovery of cross-database writes: {report:?}");
        }
        Ok(report)
    }

    /// Our prepared transactions in A (any instance's).
    fn prepared_gids(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.a.connection()?;
        diesel::sql_query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE $1 ORDER BY prepared",
        )
        .bind::<Text, _>(format!("{GID_PREFIX}:%"))
        .load::<PreparedGid>(&mut *conn)
        .map(|rows| rows.into_iter().map(|row| row.gid).collect())
        .map_err(|e| DbError::from_diesel(A::NAME, e))
    }

    /// Ours when no longer in flight; another instance's when that instance is gone.
    fn may_resolve(&self, gid: &str) -> Result<bool, DbError> {
        let owner: Option<i32> = gid.split(':').nth(1).and_then(|id| id.parse().ok());
        let Some(owner) = owner else {
            return Ok(false);
        };
        if owner == *lock(&self.shared.instance) {
            return Ok(!lock(&self.shared.in_flight).contains(gid));
        }
        let mut liveness = lock(&self.shared.liveness);
        let Some(conn) = liveness.as_mut() else {
            return Ok(false);
        };
        if try_advisory_lock(conn, owner)? {
            diesel::sql_query("SELECT pg_advisory_unlock($1, $2)")
                .bind::<Integer, _>(LIVENESS_LOCK_CLASS)
                .bind::<Integer, _>(owner)
                .execute(conn)
                .map_err(|e| DbError::from_diesel(A::NAME, e))?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Deletes decisions without redo that are old and whose transaction is finished.
    fn clean_settled(&self, still_prepared: &[String]) -> Result<(), DbError> {
        let before = chrono::Utc::now().naive_utc() - SETTLED_DECISIONS_KEPT;
        let mut session = self.b.begin_internal::<Write>()?;
        for gid in decisions::settled_before(&mut session, before)? {
            if !still_prepared.contains(&gid) {
                decisions::forget(&mut session, &gid)?;
            }
        }
        session.commit()
    }

    /// Runs [`recover`](Self::recover) every `interval` on the blocking pool, for as long
    /// as the actix system runs.
    pub fn spawn_periodic_recovery(&self, interval: Duration) {
        let coordinator = self.clone();
        actix_web::rt::spawn(async move {
            let mut ticks = actix_web::rt::time::interval(interval);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let pass = coordinator.clone();
                if let Err(error) = blocking(move || pass.recover()).await {
                    let error: DbError = error;
                    log::warn!("recovery of cross-database writes failed; will retry: {error}");
                }
            }
        });
    }
}

/// Writes the decision into B's transaction and commits it: the commit point.
fn decide<B: Database>(
    mut referencing: Session<B>,
    gid: &str,
    redo: Option<&str>,
) -> Result<(), DbError> {
    decisions::record(&mut referencing, gid, COMMIT, redo)?;
    referencing.commit()
}

fn run_outside_transaction(conn: &mut AnyConnection, sql: &str) -> Result<(), DbError> {
    diesel::sql_query(sql)
        .execute(conn)
        .map(drop)
        .map_err(|e| DbError::Other {
            database: "prepared transaction",
            cause: e.to_string(),
        })
}

fn try_advisory_lock(conn: &mut AnyConnection, instance: i32) -> Result<bool, DbError> {
    diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS locked")
        .bind::<Integer, _>(LIVENESS_LOCK_CLASS)
        .bind::<Integer, _>(instance)
        .get_result::<Locked>(conn)
        .map(|row| row.locked)
        .map_err(|e| DbError::Unavailable {
            database: "liveness lock",
            cause: e.to_string(),
        })
}

/// Two-phase commit needs `max_prepared_transactions > 0` where it prepares.
fn max_prepared_transactions_refusal<A: Database>(a: &Pool<A>) -> Result<Option<String>, DbError> {
    let mut conn = a.connection()?;
    let setting = diesel::sql_query("SELECT current_setting('max_prepared_transactions') AS value")
        .get_result::<Setting>(&mut *conn)
        .map_err(|e| DbError::from_diesel(A::NAME, e))?;
    Ok((setting.value.trim() == "0").then(|| {
        format!(
            "{} is PostgreSQL with max_prepared_transactions = 0: two-phase commit is off, so writes to both databases are refused with 503 until the server is restarted with max_prepared_transactions > 0",
            A::NAME
        )
    }))
}

/// A prepared transaction whose decision is not known to be written: settled by the
/// decision table when dropped, unless [`InDoubt::decided`] was called.
struct InDoubt<'a, A: Database, B: Database> {
    coordinator: &'a CrossCommit<A, B>,
    gid: &'a str,
}

impl<A: Database, B: Database> InDoubt<'_, A, B> {
    fn decided(self) {
        std::mem::forget(self);
    }
}

impl<A: Database, B: Database> Drop for InDoubt<'_, A, B> {
    fn drop(&mut self) {
        match self.coordinator.resolve(self.gid) {
            Ok(outcome) => log::info!("{}: settled after a failure: {outcome}", self.gid),
            Err(error) => log::warn!("{}: left in doubt for recovery: {error}", self.gid),
        }
    }
}

/// Marks a gid as being committed by this process, so that recovery leaves it alone.
struct InFlight<'a, A: Database> {
    shared: &'a Shared<A>,
    gid: String,
}

impl<'a, A: Database> InFlight<'a, A> {
    fn enter(shared: &'a Shared<A>, gid: &str) -> Self {
        lock(&shared.in_flight).insert(gid.to_owned());
        Self {
            shared,
            gid: gid.to_owned(),
        }
    }
}

impl<A: Database> Drop for InFlight<'_, A> {
    fn drop(&mut self) {
        lock(&self.shared.in_flight).remove(&self.gid);
    }
}
