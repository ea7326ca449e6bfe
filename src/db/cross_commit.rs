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
//!    If that fails, the write is still decided: it is finished from the decision (a
//!    retry of `COMMIT PREPARED` on another connection, or the redo), and if that fails
//!    too the caller gets [`DbError::Unavailable`], never success, and recovery finishes
//!    it.
//! 5. A decision carrying a redo is deleted; others are cleaned up later.
//!
//! Because B commits while A still holds its locks, nobody can see B's writes refer to
//! rows that A is deleting, and nothing can be added for a row A is deleting. Where A
//! cannot prepare, its lock ends with its lost commit, before the redo is applied: in
//! that window, work in B that refers to A's rows must ask [`CrossCommit::redo_pending`]
//! inside its own transaction, and the redo's second half ([`Redo::referencing`]) runs in
//! the transaction that forgets the decision.
//!
//! A failure before the decision settles the prepared transaction on the connection that
//! prepared it (a settlement that needed a second connection would wait forever in a
//! pool of one): rolled back if the decision was never attempted, else by whatever B
//! holds. A decision that loses the race against a recovery's "abort" (below) is
//! reported as [`DbError::Unavailable`]: nothing was written, and a retry is safe.
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
use super::pair;
use super::{
    blocking, context, AnyConnection, Backend, Database, DbError, KeyLock, Pool, Read, Session,
    Write,
};

/// Prefix of every global transaction id this service creates.
pub const GID_PREFIX: &str = "multidb";

/// First key of the advisory locks that tell live instances apart ("mdb1").
const LIVENESS_LOCK_CLASS: i32 = 0x6D64_6231;

/// How long a settled decision is kept after its transaction completed.
const SETTLED_DECISIONS_KEPT: Duration = Duration::from_secs(600);

/// How to apply again the work recorded in a decision's redo, when `A` cannot prepare
/// (SQLite) and its commit was lost. Both halves must be idempotent: recovery may apply
/// them to work that did commit, or twice.
pub struct Redo<A: Database, B: Database> {
    /// Applies the work to `A` again, in a transaction of its own.
    pub referenced: fn(&mut Session<A>, &str) -> Result<(), DbError>,
    /// Runs in `B`'s transaction that forgets the decision, after `A`'s half has
    /// committed: removes from `B` anything that came to refer to what `A`'s half removed.
    pub referencing: fn(&mut Session<B>, &str) -> Result<(), DbError>,
}

/// One write session per database, ended together by [`CrossCommit::write`].
pub struct UnitOfWork<A: Database, B: Database> {
    pub referenced: Session<A>,
    pub referencing: Session<B>,
    redo: Option<String>,
}

impl<A: Database, B: Database> UnitOfWork<A, B> {
    /// Describes the work done in `referenced` for [`Redo`], in case `A` cannot
    /// prepare (SQLite). Every unit of work that writes to `A` must give one.
    pub fn redo_referenced(&mut self, redo: String) {
        self.redo = Some(redo);
    }
}

/// The coordinator of cross-database writes between `A` and `B`.
pub struct CrossCommit<A: Database, B: Database> {
    a: Pool<A>,
    b: Pool<B>,
    shared: Arc<Shared<A, B>>,
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

struct Shared<A: Database, B: Database> {
    instance: Mutex<i32>,
    next: AtomicU64,
    in_flight: Mutex<HashSet<String>>,
    /// On PostgreSQL, the connection holding this instance's advisory lock.
    liveness: Mutex<Option<AnyConnection>>,
    /// Why cross-database writes are refused, if they are.
    refusal: Option<String>,
    redo: Redo<A, B>,
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
    pub fn new(a: Pool<A>, b: Pool<B>, redo: Redo<A, B>) -> Result<Self, DbError> {
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
    /// protocol above; an `Err` or a panic from `work` rolls both databases back. B's
    /// session begins holding `guard` (see [`super::write_holding`]).
    pub async fn write<T, E, F>(&self, guard: KeyLock, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut UnitOfWork<A, B>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        if let Some(refusal) = &self.shared.refusal {
            return Err(DbError::Unavailable {
                database: A::NAME,
                cause: refusal.clone().into(),
            }
            .into());
        }
        let coordinator = self.clone();
        pair::run(&self.a, &self.b, guard, move |referenced, referencing| {
            let mut unit = UnitOfWork {
                referenced,
                referencing,
                redo: None,
            };
            let value = work(&mut unit)?;
            coordinator.commit(unit)?;
            Ok(value)
        })
        .await
    }

    /// The pool of the database whose rows the other refers to.
    pub fn referenced(&self) -> &Pool<A> {
        &self.a
    }

    /// The pool of the database that refers to the other's rows.
    pub fn referencing(&self) -> &Pool<B> {
        &self.b
    }

    /// Whether a write decided with this `redo` is still to be applied to `A`. Work in
    /// `B` that refers to rows of `A` asks this inside its transaction (after taking the
    /// lock that the decided write took in `B`), since until the redo is applied `A`
    /// still shows the rows that the decided write removes. Never true when `A` can
    /// prepare: no redo is then recorded.
    pub fn redo_pending(&self, session: &mut Session<B>, redo: &str) -> Result<bool, DbError> {
        if self.a.backend() == Backend::Postgres {
            return Ok(false);
        }
        decisions::redo_pending(session, redo)
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
            referenced,
            referencing,
            redo,
        } = unit;
        let gid = self.new_gid();
        let _in_flight = InFlight::enter(&self.shared, &gid);
        self.hit("after_work")?;
        if referenced.backend() == Backend::Postgres {
            self.commit_prepared(referenced, referencing, &gid)?;
        } else {
            let redo = redo.ok_or_else(|| DbError::Other {
                database: A::NAME,
                cause:
                    "a unit of work wrote to a database that cannot prepare without giving a redo"
                        .into(),
            })?;
            self.commit_unprepared(referenced, referencing, &gid, &redo)?;
        }
        self.hit("after_commit")
    }

    fn commit_prepared(
        &self,
        mut referenced: Session<A>,
        referencing: Session<B>,
        gid: &str,
    ) -> Result<(), DbError> {
        referenced.prepare(gid)?;
        // From here on every way out — an error, an injected fault, a panic — settles the
        // prepared transaction when `prepared` drops, or it would keep its locks.
        let mut prepared = Prepared {
            coordinator: self,
            gid,
            session: Some(referenced),
            settle: Settle::Abort,
        };
        self.hit("after_prepare")?;
        // If B's commit fails only on the way back, the decision may be there: from now
        // on a failure settles by what B holds. `decide` consumes B's session, so B's
        // connection is back in its pool before that is read.
        prepared.settle = Settle::ByDecision;
        decide(referencing, gid, None)?;
        prepared.settle = Settle::Commit;
        self.hit("after_decision")?;
        prepared.complete()
    }

    /// Commits A's open transaction, or redoes its work if that commit fails, then
    /// deletes the decision. Once decided, a failure is left to recovery and reported
    /// as [`DbError::Unavailable`].
    fn commit_unprepared(
        &self,
        referenced: Session<A>,
        referencing: Session<B>,
        gid: &str,
        redo: &str,
    ) -> Result<(), DbError> {
        // The step where A would have been prepared: its transaction just stays open.
        self.hit("after_prepare")?;
        decide(referencing, gid, Some(redo))?;
        self.hit("after_decision")?;
        if let Err(error) = referenced.commit() {
            log::warn!(
                "{gid}: decided, but {} did not commit; redoing: {error}",
                A::NAME
            );
            return self.apply_redo(gid, redo).map_err(|error| DbError::Unavailable {
                database: A::NAME,
                cause: context(
                    format!("{gid}: decided, but neither the commit nor the redo went through; recovery will finish it"),
                    error,
                ),
            });
        }
        if let Err(error) = self.forget(gid) {
            log::warn!("{gid}: cannot delete its decision yet: {error}");
        }
        Ok(())
    }

    /// Applies a decision's redo to A, then, in one transaction of B, its second half
    /// and the deletion of the decision.
    fn apply_redo(&self, gid: &str, redo: &str) -> Result<(), DbError> {
        self.hit("redo")?;
        let mut session = self.a.begin_internal::<Write>()?;
        (self.shared.redo.referenced)(&mut session, redo)?;
        session.commit()?;
        let mut session = self.b.begin_internal::<Write>()?;
        (self.shared.redo.referencing)(&mut session, redo)?;
        decisions::forget(&mut session, gid)?;
        session.commit()
    }

    fn forget(&self, gid: &str) -> Result<(), DbError> {
        let mut session = self.b.begin_internal::<Write>()?;
        decisions::forget(&mut session, gid)?;
        session.commit()
    }

    /// `COMMIT PREPARED` or `ROLLBACK PREPARED` from a connection of A's pool; a
    /// transaction that is no longer there was finished by someone else.
    fn finish_prepared(&self, gid: &str, outcome: &str) -> Result<(), DbError> {
        let mut conn = self.a.connection()?;
        finish_prepared_on(&mut conn, gid, outcome)
    }

    /// Commits or rolls back the prepared transaction `gid` by its decision.
    fn resolve(&self, gid: &str) -> Result<&'static str, DbError> {
        let outcome = if self.decision_or_abort(gid)? == COMMIT {
            COMMIT
        } else {
            ABORT
        };
        self.finish_prepared(gid, outcome)?;
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
                Err(DbError::Conflict { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(DbError::Other {
            database: B::NAME,
            cause: format!("{gid}: no decision could be read or claimed").into(),
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
                    self.apply_redo(&decision.gid, decision.redo.as_deref().unwrap_or_default())?;
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

/// Writes the decision into B's transaction and commits it: the commit point. A
/// decision already there is a recovery's "abort", claimed because this write looked
/// abandoned (its instance paused, say): the write did not happen and may be retried.
fn decide<B: Database>(
    mut referencing: Session<B>,
    gid: &str,
    redo: Option<&str>,
) -> Result<(), DbError> {
    match decisions::record(&mut referencing, gid, COMMIT, redo) {
        Err(DbError::Conflict { cause, .. }) => {
            return Err(DbError::Unavailable {
                database: B::NAME,
                cause: context(
                    format!("{gid}: a recovery decided to abort this write first"),
                    cause,
                ),
            })
        }
        recorded => recorded?,
    }
    referencing.commit()
}

/// `COMMIT PREPARED` or `ROLLBACK PREPARED` of `gid` on `conn`, which must not be in a
/// transaction.
fn finish_prepared_on(conn: &mut AnyConnection, gid: &str, outcome: &str) -> Result<(), DbError> {
    let verb = if outcome == COMMIT {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    run_outside_transaction(conn, &format!("{verb} PREPARED '{gid}'"))
}

fn run_outside_transaction(conn: &mut AnyConnection, sql: &str) -> Result<(), DbError> {
    diesel::sql_query(sql)
        .execute(conn)
        .map(drop)
        .map_err(|e| DbError::Other {
            database: "prepared transaction",
            cause: e.into(),
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
            cause: e.into(),
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

/// How a prepared transaction is to be finished if the coordinator leaves early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// No decision was attempted: nobody can have decided "commit".
    Abort,
    /// The decision was attempted and may have landed: B says which.
    ByDecision,
    /// The decision is written.
    Commit,
    /// Finished.
    Done,
}

/// A prepared transaction of A and the session that prepared it: finished, when
/// dropped, as [`Settle`] says, on that session's own connection.
struct Prepared<'a, A: Database, B: Database> {
    coordinator: &'a CrossCommit<A, B>,
    gid: &'a str,
    session: Option<Session<A>>,
    settle: Settle,
}

impl<A: Database, B: Database> Prepared<'_, A, B> {
    /// Commits the decided transaction; a failure is reported, not swallowed.
    fn complete(mut self) -> Result<(), DbError> {
        let outcome = self.finish(COMMIT);
        self.settle = Settle::Done;
        outcome.map_err(|error| DbError::Unavailable {
            database: A::NAME,
            cause: context(
                format!(
                    "{}: decided, but COMMIT PREPARED failed; recovery will finish it",
                    self.gid
                ),
                error,
            ),
        })
    }

    /// Finishes the transaction on the session's connection, or, if that connection
    /// fails, on another one of the pool once this one is given back.
    fn finish(&mut self, outcome: &str) -> Result<(), DbError> {
        self.coordinator.hit("finish_prepared")?;
        let first_try = match self.session.as_mut() {
            Some(session) => finish_prepared_on(session.connection(), self.gid, outcome),
            None => Err(DbError::NotFound),
        };
        match first_try {
            Ok(()) => Ok(()),
            Err(error) => {
                log::warn!(
                    "{}: cannot finish on the preparing connection, trying another: {error}",
                    self.gid
                );
                drop(self.session.take());
                self.coordinator.finish_prepared(self.gid, outcome)
            }
        }
    }
}

impl<A: Database, B: Database> Drop for Prepared<'_, A, B> {
    fn drop(&mut self) {
        let outcome = match self.settle {
            Settle::Done => return,
            Settle::Abort => Ok(ABORT),
            Settle::Commit => Ok(COMMIT),
            Settle::ByDecision => self
                .coordinator
                .decision_or_abort(self.gid)
                .map(|decision| if decision == COMMIT { COMMIT } else { ABORT }),
        };
        match outcome.and_then(|outcome| self.finish(outcome).map(|()| outcome)) {
            Ok(outcome) => log::info!("{}: settled after a failure: {outcome}", self.gid),
            Err(error) => log::warn!(
                "{}: not settled, left in doubt for recovery: {error}",
                self.gid
            ),
        }
    }
}

/// Marks a gid as being committed by this process, so that recovery leaves it alone.
struct InFlight<'a, A: Database, B: Database> {
    shared: &'a Shared<A, B>,
    gid: String,
}

impl<'a, A: Database, B: Database> InFlight<'a, A, B> {
    fn enter(shared: &'a Shared<A, B>, gid: &str) -> Self {
        lock(&shared.in_flight).insert(gid.to_owned());
        Self {
            shared,
            gid: gid.to_owned(),
        }
    }
}

impl<A: Database, B: Database> Drop for InFlight<'_, A, B> {
    fn drop(&mut self) {
        lock(&self.shared.in_flight).remove(&self.gid);
    }
}
