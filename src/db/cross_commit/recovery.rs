//! Recovery: resolving what crashes left in doubt (see the module's "Recovery"), and
//! whose turn it is to look.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{cannot_prepare, finish_prepared_on, lock, CrossCommit, Gid, RedoRecord};
use crate::db::decisions::{self, Outcome};
use crate::db::lease;
use crate::db::{blocking, chain, clock, Database, DbError, Pool, Read, Write};

diesel::table! {
    /// `next_pass_ms` is computed and compared by the database's clock.
    multidb_recovery_turn (id) {
        id -> BigInt,
        next_pass_ms -> BigInt,
    }
}

/// How long a decision without redo is kept, by B's clock, before it may be cleaned up
/// (and then only if its transaction is no longer prepared). It must outlast any
/// transaction of B that a frozen coordinator can still have open: if an "abort" a
/// recovery claimed were gone when the coordinator woke up, its own "commit" would
/// land in B after A was rolled back. B's server ends such a transaction after
/// [`MAX_IDLE_IN_TRANSACTION`], whatever the statement and checkout timeouts.
const SETTLED_DECISIONS_KEPT: Duration = Duration::from_secs(600);

/// Settled decisions deleted per pass at most: a backlog goes a bounded batch at a time.
const CLEANED_PER_PASS: i64 = 1_000;

/// The longest `idle_in_transaction_session_timeout` the service sets: well inside
/// [`SETTLED_DECISIONS_KEPT`].
pub const MAX_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(300);

/// What a recovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub committed: usize,
    pub rolled_back: usize,
    pub redone: usize,
    pub skipped_live: usize,
    /// Left for the next pass: one that fails does not keep the others from being settled.
    pub failed: usize,
}

/// How a recovery pass settled one write left in doubt.
enum Settled {
    Committed,
    RolledBack,
    Redone,
}

impl<A: Database, B: Database> CrossCommit<A, B> {
    /// `COMMIT PREPARED` or `ROLLBACK PREPARED` from a connection of A's pool; a
    /// transaction that is no longer there was finished by someone else.
    pub(super) fn finish_prepared(&self, gid: &Gid, outcome: Outcome) -> Result<(), DbError> {
        let mut conn = self.a.connection()?;
        finish_prepared_on::<A>(&mut conn, self.a.two_phase_scope(), gid, outcome)
    }

    /// Commits or rolls back the prepared transaction `gid` by its decision.
    fn resolve(&self, gid: &Gid) -> Result<Outcome, DbError> {
        let outcome = self.decision_or_abort(gid)?;
        self.finish_prepared(gid, outcome)?;
        Ok(outcome)
    }

    /// The decision for `gid`, claiming "abort" if none was recorded: the coordinator's
    /// own insert of "commit" then fails on the primary key, so both agree.
    pub(super) fn decision_or_abort(&self, gid: &Gid) -> Result<Outcome, DbError> {
        for _ in 0..2 {
            let mut session = self.b.begin_internal::<Write>()?;
            if let Some(decision) = decisions::find(&mut session, gid.as_str())? {
                return Ok(decision.outcome);
            }
            match decisions::record(&mut session, gid.as_str(), Outcome::Abort, None) {
                Ok(()) => {
                    session.commit()?;
                    return Ok(Outcome::Abort);
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

    /// Resolves what crashes left in doubt. Blocks.
    pub fn recover(&self) -> Result<Recovery, DbError> {
        let mut report = Recovery::default();
        if self.a.features().two_phase_commit {
            for gid in &self.prepared_gids()? {
                self.settle_counted(gid, &mut report, || {
                    self.resolve(gid).map(|outcome| match outcome {
                        Outcome::Commit => Settled::Committed,
                        Outcome::Abort => Settled::RolledBack,
                    })
                });
            }
        } else {
            let pending = {
                let mut session = self.b.begin_internal::<Read>()?;
                decisions::with_redo(&mut session)?
            };
            for decision in &pending {
                let Some(gid) = Gid::parse(&decision.gid) else {
                    log::warn!(
                        "{}: a decision with a gid not of multidb's, left alone",
                        decision.gid
                    );
                    continue;
                };
                let redo = RedoRecord::new(decision.redo.clone().unwrap_or_default());
                self.settle_counted(&gid, &mut report, || {
                    self.apply_redo(&gid, &redo).map(|()| Settled::Redone)
                });
            }
        }
        // Counted before the cleaning, which can fail after the resolutions took effect.
        self.count(&report);
        self.clean_settled()?;
        if report != Recovery::default() {
            log::info!("recovery of cross-database writes: {report:?}");
        }
        Ok(report)
    }

    /// Settles `gid` by `settle` if this pass may, and counts what happened in `report`.
    /// A failure, to ask whether it may or to settle, is logged and counted, and the pass
    /// goes on with the others.
    fn settle_counted(
        &self,
        gid: &Gid,
        report: &mut Recovery,
        settle: impl FnOnce() -> Result<Settled, DbError>,
    ) {
        match self
            .may_resolve(gid)
            .and_then(|may| may.then(settle).transpose())
        {
            Ok(None) => report.skipped_live += 1,
            Ok(Some(Settled::Committed)) => report.committed += 1,
            Ok(Some(Settled::RolledBack)) => report.rolled_back += 1,
            Ok(Some(Settled::Redone)) => report.redone += 1,
            Err(error) => {
                log::warn!("{gid}: not settled by this pass: {}", chain(&error));
                report.failed += 1;
            }
        }
    }

    /// Our prepared transactions in A (any instance's).
    fn prepared_gids(&self) -> Result<Vec<Gid>, DbError> {
        self.prepared_gids_like(&Gid::any_prefix())
    }

    /// The gids prepared in A that start with `prefix` (oldest first where the backend
    /// tells); none where A's backend cannot prepare.
    fn prepared_gids_like(&self, prefix: &str) -> Result<Vec<Gid>, DbError> {
        let mut conn = self.a.connection()?;
        let Some(mut two_phase) = conn.two_phase(self.a.two_phase_scope()) else {
            return Ok(Vec::new());
        };
        let prepared = two_phase
            .recover(prefix)
            .map_err(|e| DbError::from_diesel(A::NAME, e))?;
        Ok(prepared.iter().filter_map(|gid| Gid::parse(gid)).collect())
    }

    /// Resolves this instance's own prepared transactions under its current lease that
    /// are no longer in flight (their settlement failed). Others leave them alone while
    /// the lease lives, so this runs at every look, not only in the turns this instance
    /// wins; it lists only this lease's gids.
    fn recover_own(&self) -> Result<(), DbError> {
        if !self.a.features().two_phase_commit {
            return Ok(());
        }
        let own = Gid::prefix_under(self.shared.lease.id());
        for gid in self.prepared_gids_like(&own)? {
            if lock(&self.shared.in_flight).contains(&gid) {
                continue;
            }
            let mut report = Recovery::default();
            match self.resolve(&gid) {
                Ok(outcome) => {
                    log::info!("{gid}: settled by its own instance: {outcome}");
                    match outcome {
                        Outcome::Commit => report.committed += 1,
                        Outcome::Abort => report.rolled_back += 1,
                    }
                }
                Err(error) => {
                    log::warn!("{gid}: not settled by this look: {}", chain(&error));
                    report.failed += 1;
                }
            }
            self.count(&report);
        }
        Ok(())
    }

    fn count(&self, report: &Recovery) {
        let metrics = &self.shared.metrics;
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        metrics
            .recovery_committed
            .increment(as_u64(report.committed));
        metrics
            .recovery_rolled_back
            .increment(as_u64(report.rolled_back));
        metrics.recovery_redone.increment(as_u64(report.redone));
        metrics.recovery_failed.increment(as_u64(report.failed));
    }

    /// Sets the in-doubt gauges from what is in doubt now, by the clock of the database
    /// that holds it: prepared transactions of ours in A, or decisions in B waiting
    /// for their redo when A cannot prepare. Blocks.
    pub fn look_in_doubt(&self) -> Result<(), DbError> {
        let (count, oldest_seconds) = if self.a.features().two_phase_commit {
            let mut conn = self.a.connection()?;
            let Some(mut two_phase) = conn.two_phase(self.a.two_phase_scope()) else {
                return Err(cannot_prepare::<A>(Gid::any_prefix()));
            };
            // The same transactions as `prepared_gids`, counted.
            two_phase
                .count(&Gid::any_prefix())
                .map_err(|e| DbError::from_diesel(A::NAME, e))?
        } else {
            let mut conn = self.b.connection()?;
            decisions::waiting_for_redo(&mut conn, self.b.backend())
                .map_err(|e| DbError::from_diesel(B::NAME, e))?
        };
        let metrics = &self.shared.metrics;
        metrics
            .in_doubt_now
            .set(f64::from(u32::try_from(count).unwrap_or(u32::MAX)));
        metrics.in_doubt_oldest_seconds.set(oldest_seconds.max(0.0));
        Ok(())
    }

    /// Ours (under any lease) once no longer in flight; another instance's once its
    /// lease has expired by B's clock.
    fn may_resolve(&self, gid: &Gid) -> Result<bool, DbError> {
        if lock(&self.shared.in_flight).contains(gid) {
            return Ok(false);
        }
        let owner = gid.owner();
        if owner == self.shared.lease.id() {
            return Ok(true);
        }
        let mut conn = self.b.connection()?;
        lease::is_live(&mut conn, owner)
            .map(|live| !live)
            .map_err(|e| DbError::from_diesel(B::NAME, e))
    }

    /// Deletes decisions without redo that are older than [`SETTLED_DECISIONS_KEPT`] by
    /// B's clock and whose transaction is no longer prepared in A. A's prepared
    /// transactions are listed *after* the candidates are read: a transaction is
    /// prepared before its decision is written, so one not listed then is finished.
    /// Neither database is held while the other is asked: the candidates are read
    /// without a transaction, and B's write transaction begins only once A has answered
    /// (a slow A would otherwise keep B's lock — on SQLite, its one write lock — for as
    /// long as A takes). What was true of a candidate when it was read stays true: its
    /// gid is never prepared again.
    fn clean_settled(&self) -> Result<(), DbError> {
        let candidates = {
            let mut session = self.b.begin_internal::<Read>()?;
            decisions::settled_before(&mut session, SETTLED_DECISIONS_KEPT, CLEANED_PER_PASS)?
        };
        if candidates.is_empty() {
            return Ok(());
        }
        let still_prepared = self.prepared_gids()?;
        let settled: Vec<String> = candidates
            .into_iter()
            .filter(|gid| {
                !still_prepared
                    .iter()
                    .any(|prepared| prepared.as_str() == gid)
            })
            .collect();
        if settled.is_empty() {
            return Ok(());
        }
        let mut session = self.b.begin_internal::<Write>()?;
        decisions::forget_all(&mut session, &settled)?;
        session.commit()
    }

    /// Claims the next periodic pass for this instance if it is due by B's clock, and
    /// sets when the one after it is due. Instances take turns instead of all scanning.
    fn claim_turn(&self, spacing: Duration) -> Result<bool, DbError> {
        let mut conn = self.b.connection()?;
        let now = || diesel::dsl::sql::<BigInt>(clock::now_ms(self.b.backend()));
        let spacing_ms = i64::try_from(spacing.as_millis()).unwrap_or(i64::MAX);
        // A turn set further ahead than one spacing was not written by this protocol's
        // clock as it is now (B's clock was stepped back since): it is due at once,
        // instead of stopping recovery everywhere for as long as the step.
        diesel::update(
            multidb_recovery_turn::table.filter(
                multidb_recovery_turn::id.eq(1).and(
                    multidb_recovery_turn::next_pass_ms
                        .le(now())
                        .or(multidb_recovery_turn::next_pass_ms.gt(now() + spacing_ms)),
                ),
            ),
        )
        .set(multidb_recovery_turn::next_pass_ms.eq(now() + spacing_ms))
        .execute(&mut *conn)
        .map(|claimed| claimed == 1)
        .map_err(|e| DbError::from_diesel(B::NAME, e))
    }

    /// A pass if it is this instance's turn (and then `on_turn`, whatever its
    /// outcome), else the look at its own transactions.
    fn take_turn(&self, spacing: Duration, on_turn: &OnTurn<A, B>) -> Result<(), DbError> {
        if !self.claim_turn(spacing)? {
            return self.recover_own();
        }
        let recovered = self.recover().map(drop);
        on_turn(&self.a, &self.b);
        recovered
    }

    /// Runs recovery passes for as long as the actix system runs, in turns with the
    /// other instances: every instance looks every `interval / 4` on average (at random,
    /// so that the same one does not always come first), and whoever finds a pass due by
    /// B's clock runs it and makes the next one due `interval / 2` later. So a pass runs
    /// somewhere at least every `interval`, and one instance or ten cost the databases
    /// the same scans; each look also counts what is in doubt (one aggregate query) for
    /// the instance's gauges.
    ///
    /// After each pass, `on_turn` runs with the same pools: for other upkeep that one
    /// instance at a time should do (the application deletes expired idempotency keys
    /// there). It handles its own failures; they are not recovery's.
    /// The passes take their connections from the pools' upkeep connection (see
    /// [`Pool::for_upkeep`](crate::db::Pool::for_upkeep)), never the requests'.
    pub fn spawn_periodic_recovery<F>(&self, interval: Duration, on_turn: F)
    where
        F: Fn(&Pool<A>, &Pool<B>) + Send + Sync + 'static,
    {
        let coordinator = self.for_upkeep();
        let on_turn: std::sync::Arc<OnTurn<A, B>> = std::sync::Arc::new(on_turn);
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(jittered(interval)).await;
                let pass = coordinator.clone();
                let on_turn = on_turn.clone();
                let outcome = blocking(move || {
                    // The look runs even when the pass failed: the gauges must go on
                    // ageing while recovery cannot do its work.
                    let passed = pass.take_turn(interval / 2, &*on_turn);
                    let looked = pass.look_in_doubt();
                    let failed = [passed.is_err(), looked.is_err()];
                    let failed = failed.into_iter().filter(|failed| *failed).count();
                    pass.count(&Recovery {
                        failed,
                        ..Recovery::default()
                    });
                    passed.and(looked)
                })
                .await;
                if let Err(error) = outcome {
                    let error: DbError = error;
                    log::warn!("recovery of cross-database writes failed; will retry: {error}");
                }
            }
        });
    }
}

/// Upkeep run on an instance's recovery turns (see
/// [`CrossCommit::spawn_periodic_recovery`]).
type OnTurn<A, B> = dyn Fn(&Pool<A>, &Pool<B>) + Send + Sync;

/// A random wait from `interval / 8` to `3 * interval / 8`.
fn jittered(interval: Duration) -> Duration {
    let unit = uuid::Uuid::new_v4().as_u128() % 1000;
    let fraction = u32::try_from(unit).unwrap_or(0);
    interval / 8 + interval / 4 * fraction / 1000
}
