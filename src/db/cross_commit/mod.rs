//! Writes that span two databases, committed all-or-nothing even across crashes.
//!
//! # Protocol
//!
//! `A` is the database whose rows the other refers to (db1, users), `B` the one that
//! refers to them (db2, orders). `B` is always the *last resource*: it is never
//! prepared, and its commit, which carries the decision record, is the commit point.
//!
//! 1. Both sessions do their work, begun in the lock order `pair::order` decides, so
//!    units never wait in a cycle.
//! 2. A is made durable without being committed:
//!    - with two-phase commit (`Features::two_phase_commit`): PostgreSQL's
//!      `PREPARE TRANSACTION '<gid>'`, or MySQL's `XA PREPARE` of the XA transaction the
//!      session began as (`XA START '<gid>'`); its locks stay held;
//!    - without (e.g. SQLite): its transaction stays open, holding the write
//!      lock, and the decision will carry a *redo* of its work.
//! 3. The decision: `INSERT INTO multidb_decisions (gid, 'commit', redo)` in B's
//!    transaction, then B commits. Before this point any failure rolls everything back.
//! 4. A completes: `COMMIT PREPARED` (`XA COMMIT`), or its open transaction commits.
//!    If that fails, the write is still decided: it is finished from the decision (a
//!    retry of `COMMIT PREPARED` on another connection, or the redo), and if that fails
//!    too the caller gets [`DbError::Unavailable`], never success, and recovery finishes
//!    it.
//! 5. A decision carrying a redo is deleted; others are cleaned up later.
//!
//! Because B commits while A still holds its locks, nobody can see B's writes refer to
//! rows that A is deleting, and nothing can be added for a row A is deleting. Where A
//! cannot prepare, its lock ends with its lost commit, before the redo is applied: in
//! that window, work in B that refers to A's rows must ask [`super::redo_pending`]
//! inside its own transaction, and the redo's second half ([`Redo::b`]) runs in
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
//! At start-up, and then in turns taken across instances, transactions left in doubt
//! by a crash are resolved: a prepared transaction in A whose gid carries our prefix is
//! committed if its decision exists and rolled back if not; a decision with a redo is
//! applied to A again (redo is idempotent) and deleted. Recovery decides "abort" by
//! *inserting* an abort decision under the same primary key: if the coordinator is
//! still about to commit, exactly one of the two inserts wins, so a late coordinator and
//! a recovery can never disagree.
//!
//! Gids name the lease of the instance that made them ([`super::lease`]): another
//! instance's work is resolved only once that lease has expired by B's clock, and this
//! instance's own only once it is no longer in flight here — whichever lease it was
//! started under. An instance whose lease lapsed starts no new cross-database write
//! until it holds a new one. None of this is needed for correctness, only for liveness:
//! a coordinator that wakes up after its lease expired and its work was resolved loses
//! the decision race and answers 503; one whose decision landed first has its work
//! committed by whoever resolves it.

mod gid;
mod inspect;
mod prepared;
mod recovery;

use super::session::cannot_prepare;

use gid::Gid;
pub use inspect::{in_doubt, InDoubt, Owner, Work};
use prepared::{Prepared, Settle};
pub use recovery::{Recovery, MAX_IDLE_IN_TRANSACTION};

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::decisions::{self, Outcome};
use super::lease::{Lease, LeaseId};
use super::metrics::CrossCommitMetrics;
use super::pair;
use super::sync::lock;
use super::{blocking, context, AnyConnection, Database, DbError, KeyLock, Pool, Session, Write};

/// How to apply again the work recorded in a decision's redo, when `A` cannot prepare
/// (SQLite) and its commit was lost. Both halves must be idempotent: recovery may apply
/// them to work that did commit, or twice.
pub struct Redo<A: Database, B: Database> {
    /// Applies the work to `A` again, in a transaction of its own.
    pub a: fn(&mut Session<A>, &RedoRecord) -> Result<(), DbError>,
    /// Runs in `B`'s transaction that forgets the decision, after `A`'s half has
    /// committed: removes from `B` anything that came to refer to what `A`'s half removed.
    pub b: fn(&mut Session<B>, &RedoRecord) -> Result<(), DbError>,
}

/// The work a decision carries to redo, as the application wrote it: one value both
/// recorded with the decision and looked up by [`super::redo_pending`], so the record
/// and its lookup cannot drift apart. The layer stores it and hands it back; only the
/// application reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedoRecord(String);

impl RedoRecord {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One write session per database, ended together by [`CrossCommit::write`].
pub struct UnitOfWork<A: Database, B: Database> {
    pub a: Session<A>,
    pub b: Session<B>,
    redo: Option<RedoRecord>,
}

impl<A: Database, B: Database> UnitOfWork<A, B> {
    /// Describes the work done in `a` for [`Redo`], in case `A` cannot
    /// prepare (SQLite). Every unit of work that writes to `A` must give one.
    pub fn redo_a(&mut self, redo: RedoRecord) {
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

impl<A: Database, B: Database> CrossCommit<A, B> {
    /// This coordinator on the pools' upkeep connections, for background passes.
    fn for_upkeep(&self) -> Self {
        Self {
            a: self.a.for_upkeep(),
            b: self.b.for_upkeep(),
            shared: self.shared.clone(),
        }
    }
}

struct Shared<A: Database, B: Database> {
    /// This instance's lease in B: the owner named in the gids it makes.
    lease: Lease<B>,
    next: AtomicU64,
    /// Gids being committed by this process, under whichever lease they started.
    in_flight: Mutex<HashSet<Gid>>,
    /// Why cross-database writes are refused, if they are.
    refusal: Option<String>,
    redo: Redo<A, B>,
    metrics: CrossCommitMetrics,
}

impl<A: Database, B: Database> CrossCommit<A, B> {
    /// Sets up the coordinator, checks that `A` can take part and takes this instance's
    /// lease in `B`, renewed every third of `lease`. Outcomes and recovery's actions are
    /// recorded into `recorder` (see [`super::metrics`]). Blocks.
    pub fn new(
        a: Pool<A>,
        b: Pool<B>,
        redo: Redo<A, B>,
        lease: Duration,
        recorder: &dyn metrics::Recorder,
    ) -> Result<Self, DbError> {
        let refusal = if a.features().two_phase_commit {
            two_phase_unavailable(&a)?
        } else {
            None
        };
        if let Some(refusal) = &refusal {
            log::error!("{refusal}");
        }
        let lease = Lease::take(&b, lease)?;
        Ok(Self {
            a,
            b,
            shared: Arc::new(Shared {
                lease,
                next: AtomicU64::new(0),
                in_flight: Mutex::new(HashSet::new()),
                refusal,
                redo,
                metrics: CrossCommitMetrics::new(recorder),
            }),
        })
    }

    /// Runs `work` in a unit of work on a blocking thread and commits it by the
    /// protocol above; an `Err` or a panic from `work` rolls both databases back. B's
    /// session begins holding `guard` (see [`super::holding`]).
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
        // The gid, and so the lease the work is done under, is settled before any session
        // begins and never asked for again while one is open: on SQLite a renewal needs
        // the write lock that B's session holds. A lease that lapses while the work runs
        // costs nothing but liveness (see the module's last paragraph).
        let gid = match self.shared.lease.held() {
            Some(lease) => self.gid_under(lease),
            None => {
                // On SQLite, renewing is a write like any other: it waits for this
                // process's write slot in turn, instead of for a lock held here.
                let _slot = self.b.admissions().admit_write_if_single_writer().await?;
                let coordinator = self.clone();
                blocking(move || coordinator.gid_renewing_the_lease()).await?
            }
        };
        // Where A prepares, its transaction is a branch of the gid from its start (XA
        // names it there; PostgreSQL, at the prepare).
        let a_branch = self
            .a
            .features()
            .two_phase_commit
            .then(|| gid.as_str().into());
        let coordinator = self.clone();
        pair::run(&self.a, &self.b, Some(guard), a_branch, move |a, b| {
            let mut unit = UnitOfWork { a, b, redo: None };
            let value = work(&mut unit)?;
            coordinator.commit(unit, &gid)?;
            Ok(value)
        })
        .await
    }

    /// The pool of the database whose rows the other refers to.
    pub fn a(&self) -> &Pool<A> {
        &self.a
    }

    /// The pool of the database that refers to the other's rows.
    pub fn b(&self) -> &Pool<B> {
        &self.b
    }

    /// Whether a decided write can be waiting for its redo in `A` (`A` cannot prepare).
    /// Until the redo is applied `A` still shows the rows that the decided write removes,
    /// so work in `B` that refers to rows of `A` then asks [`super::redo_pending`] inside
    /// its transaction. When `A` prepares, no redo is ever recorded: nothing to ask.
    pub fn redoes(&self) -> bool {
        !self.a.features().two_phase_commit
    }

    /// A gid under this instance's lease, renewed first if it is running out. Blocks.
    fn gid_renewing_the_lease(&self) -> Result<Gid, DbError> {
        let lease = self
            .shared
            .lease
            .for_new_work()
            .map_err(|error| DbError::Unavailable {
                database: B::NAME,
                cause: context(
                    "this instance's lease cannot be renewed: no new write to both databases until it is",
                    error,
                ),
            })?;
        Ok(self.gid_under(lease))
    }

    fn gid_under(&self, lease: LeaseId) -> Gid {
        Gid::new(lease, self.shared.next.fetch_add(1, Ordering::Relaxed))
    }

    fn hit(&self, step: &str) -> Result<(), DbError> {
        self.a.faults().hit("uow", step)
    }

    /// Commits `unit` and counts the outcome: rolled back if it failed before the
    /// decision could have been written, in doubt if after.
    fn commit(&self, unit: UnitOfWork<A, B>, gid: &Gid) -> Result<(), DbError> {
        let mut reached = Reached::Work;
        let outcome = self.commit_steps(unit, gid, &mut reached);
        let metrics = &self.shared.metrics;
        match (&outcome, reached) {
            (Ok(()), _) => metrics.committed.increment(1),
            (Err(_), Reached::Work) => metrics.rolled_back.increment(1),
            (Err(_), Reached::Decision) => metrics.in_doubt.increment(1),
        }
        outcome
    }

    fn commit_steps(
        &self,
        unit: UnitOfWork<A, B>,
        gid: &Gid,
        reached: &mut Reached,
    ) -> Result<(), DbError> {
        let UnitOfWork {
            a: a_session,
            b: b_session,
            redo,
        } = unit;
        let _in_flight = InFlight::enter(&self.shared, gid);
        self.hit("after_work")?;
        if self.a.features().two_phase_commit {
            self.commit_prepared(a_session, b_session, gid, reached)?;
        } else {
            let redo = redo.ok_or_else(|| DbError::Other {
                database: A::NAME,
                cause:
                    "a unit of work wrote to a database that cannot prepare without giving a redo"
                        .into(),
            })?;
            self.commit_unprepared(a_session, b_session, gid, &redo, reached)?;
        }
        self.hit("after_commit")
    }

    fn commit_prepared(
        &self,
        mut a_session: Session<A>,
        b_session: Session<B>,
        gid: &Gid,
        reached: &mut Reached,
    ) -> Result<(), DbError> {
        a_session.prepare(gid.as_str())?;
        // From here on every way out — an error, an injected fault, a panic — settles the
        // prepared transaction when `prepared` drops, or it would keep its locks.
        let mut prepared = Prepared {
            coordinator: self,
            gid,
            session: Some(a_session),
            settle: Settle::Abort,
        };
        self.hit("after_prepare")?;
        // If B's commit fails only on the way back, the decision may be there: from now
        // on a failure settles by what B holds. `decide` consumes B's session, so B's
        // connection is back in its pool before that is read.
        prepared.settle = Settle::ByDecision;
        if let Err(undecided) = decide(b_session, gid, None, reached) {
            if undecided.certain {
                // B reported the failure itself: the decision is not there and cannot
                // land later, so A is rolled back now, on the connection in hand.
                prepared.settle = Settle::Abort;
            }
            return Err(undecided.error);
        }
        prepared.settle = Settle::Commit;
        self.hit("after_decision")?;
        prepared.complete()
    }

    /// Commits A's open transaction, or redoes its work if that commit fails, then
    /// deletes the decision. Once decided, a failure is left to recovery and reported
    /// as [`DbError::Unavailable`].
    fn commit_unprepared(
        &self,
        a_session: Session<A>,
        b_session: Session<B>,
        gid: &Gid,
        redo: &RedoRecord,
        reached: &mut Reached,
    ) -> Result<(), DbError> {
        // The step where A would have been prepared: its transaction just stays open.
        self.hit("after_prepare")?;
        decide(b_session, gid, Some(redo), reached).map_err(|undecided| undecided.error)?;
        self.hit("after_decision")?;
        if let Err(error) = a_session.commit() {
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
    fn apply_redo(&self, gid: &Gid, redo: &RedoRecord) -> Result<(), DbError> {
        self.hit("redo")?;
        let mut session = self.a.begin_internal::<Write>()?;
        (self.shared.redo.a)(&mut session, redo)?;
        session.commit()?;
        let mut session = self.b.begin_internal::<Write>()?;
        (self.shared.redo.b)(&mut session, redo)?;
        decisions::forget(&mut session, gid.as_str())?;
        session.commit()
    }

    fn forget(&self, gid: &Gid) -> Result<(), DbError> {
        let mut session = self.b.begin_internal::<Write>()?;
        decisions::forget(&mut session, gid.as_str())?;
        session.commit()
    }
}

/// How far a commit got, for counting its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Nothing decided: a failure rolls everything back.
    Work,
    /// B's commit of the decision was sent: it may have landed even if it failed.
    Decision,
}

/// Why the decision was not written, and whether that is certain.
struct Undecided {
    error: DbError,
    /// The decision certainly did not commit and never will: the failure came before
    /// B's commit was sent, or B answered the commit with an error. Otherwise (the
    /// connection was lost on the way) it may have landed, and only B can tell.
    certain: bool,
}

/// Writes the decision into B's transaction and commits it: the commit point. A
/// decision already there is a recovery's "abort", claimed because this write looked
/// abandoned (its instance paused, say): the write did not happen and may be retried.
fn decide<B: Database>(
    mut b_session: Session<B>,
    gid: &Gid,
    redo: Option<&RedoRecord>,
    reached: &mut Reached,
) -> Result<(), Undecided> {
    let certain = |error| Undecided {
        error,
        certain: true,
    };
    let redo = redo.map(RedoRecord::as_str);
    match decisions::record(&mut b_session, gid.as_str(), Outcome::Commit, redo) {
        Err(DbError::Conflict { cause, .. }) => {
            return Err(certain(DbError::Unavailable {
                database: B::NAME,
                cause: context(
                    format!("{gid}: a recovery decided to abort this write first"),
                    cause,
                ),
            }))
        }
        recorded => recorded.map_err(certain)?,
    }
    *reached = Reached::Decision;
    b_session.commit_telling().map_err(|failure| {
        if failure.refused {
            *reached = Reached::Work;
        }
        Undecided {
            error: failure.error,
            certain: failure.refused,
        }
    })
}

/// `COMMIT PREPARED` or `ROLLBACK PREPARED` of `gid` on `conn`, which must not be in a
/// transaction. A transaction that is no longer there was finished by someone else —
/// another instance's recovery, or this one's after a reply was lost — and by the same
/// decision, since a gid has one: that is success, not an error.
fn finish_prepared_on<A: Database>(
    conn: &mut AnyConnection,
    scope: &str,
    gid: &Gid,
    outcome: Outcome,
) -> Result<(), DbError> {
    let Some(mut two_phase) = conn.two_phase(scope) else {
        return Err(cannot_prepare::<A>(gid));
    };
    let commit = match outcome {
        Outcome::Commit => true,
        Outcome::Abort => false,
    };
    match two_phase.finish(gid.as_str(), commit) {
        Ok(true) => Ok(()),
        Ok(false) => {
            log::info!("{gid}: already finished elsewhere");
            Ok(())
        }
        Err(error) => Err(DbError::from_diesel(A::NAME, error)),
    }
}

/// Why `A`, whose backend can prepare, cannot now (a server setting), if so.
fn two_phase_unavailable<A: Database>(a: &Pool<A>) -> Result<Option<String>, DbError> {
    let mut conn = a.connection()?;
    let Some(mut two_phase) = conn.two_phase(a.two_phase_scope()) else {
        return Ok(None);
    };
    let why = two_phase
        .unavailable()
        .map_err(|e| DbError::from_diesel(A::NAME, e))?;
    Ok(why.map(|why| format!("{} is {why}", A::NAME)))
}

/// Marks a gid as being committed by this process, so that recovery leaves it alone.
struct InFlight<'a, A: Database, B: Database> {
    shared: &'a Shared<A, B>,
    gid: Gid,
}

impl<'a, A: Database, B: Database> InFlight<'a, A, B> {
    fn enter(shared: &'a Shared<A, B>, gid: &Gid) -> Self {
        lock(&shared.in_flight).insert(gid.clone());
        Self {
            shared,
            gid: gid.clone(),
        }
    }
}

impl<A: Database, B: Database> Drop for InFlight<'_, A, B> {
    fn drop(&mut self) {
        lock(&self.shared.in_flight).remove(&self.gid);
    }
}
