//! Recovery: resolving what crashes left in doubt (see the module's "Recovery"), and
//! telling live instances from dead ones.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use super::{finish_prepared_on, lock, CrossCommit, GID_PREFIX};
use crate::db::decisions::{self, ABORT, COMMIT};
use crate::db::{blocking, chain, AnyConnection, Backend, Database, DbError, Read, Write};

/// First key of the advisory locks that tell live instances apart ("mdb1").
const LIVENESS_LOCK_CLASS: i32 = 0x6D64_6231;

/// How long a settled decision is kept after its transaction completed.
const SETTLED_DECISIONS_KEPT: Duration = Duration::from_secs(600);

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
    /// Left for the next pass: one that fails does not keep the others from being settled.
    pub failed: usize,
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

impl<A: Database, B: Database> CrossCommit<A, B> {
    /// `COMMIT PREPARED` or `ROLLBACK PREPARED` from a connection of A's pool; a
    /// transaction that is no longer there was finished by someone else.
    pub(super) fn finish_prepared(&self, gid: &str, outcome: &str) -> Result<(), DbError> {
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
    pub(super) fn decision_or_abort(&self, gid: &str) -> Result<String, DbError> {
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
    pub(super) fn ensure_liveness(&self) -> Result<(), DbError> {
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
                    match self.resolve(gid) {
                        Ok(COMMIT) => report.committed += 1,
                        Ok(_) => report.rolled_back += 1,
                        Err(error) => {
                            log::warn!("{gid}: not settled by this pass: {}", chain(&error));
                            report.failed += 1;
                        }
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
                    let redo = decision.redo.as_deref().unwrap_or_default();
                    match self.apply_redo(&decision.gid, redo) {
                        Ok(()) => report.redone += 1,
                        Err(error) => {
                            log::warn!(
                                "{}: not redone by this pass: {}",
                                decision.gid,
                                chain(&error)
                            );
                            report.failed += 1;
                        }
                    }
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
