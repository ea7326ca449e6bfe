//! The guard of a prepared transaction: settled on the connection that prepared it.

use super::{finish_prepared_on, CrossCommit, Gid};
use crate::db::decisions::Outcome;
use crate::db::{context, Database, DbError, Session};

/// How a prepared transaction is to be finished if the coordinator leaves early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settle {
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
pub(super) struct Prepared<'a, A: Database, B: Database> {
    pub(super) coordinator: &'a CrossCommit<A, B>,
    pub(super) gid: &'a Gid,
    pub(super) session: Option<Session<A>>,
    pub(super) settle: Settle,
}

impl<A: Database, B: Database> Prepared<'_, A, B> {
    /// Commits the decided transaction; a failure is reported, not swallowed.
    pub(super) fn complete(mut self) -> Result<(), DbError> {
        let outcome = self.finish(Outcome::Commit);
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
    /// fails, on another one of the pool once this one is discarded (a prepared XA
    /// transaction can be finished elsewhere only once its connection is gone).
    fn finish(&mut self, outcome: Outcome) -> Result<(), DbError> {
        self.coordinator.hit("finish_prepared")?;
        let first_try = match self.session.as_mut() {
            Some(session) => finish_prepared_on::<A>(
                session.connection(),
                self.coordinator.a.two_phase_scope(),
                self.gid,
                outcome,
            ),
            None => Err(DbError::Other {
                database: A::NAME,
                cause: "the preparing session was given back already".into(),
            }),
        };
        match first_try {
            Ok(()) => {
                if let Some(session) = self.session.as_mut() {
                    session.branch_finished();
                }
                Ok(())
            }
            Err(error) => {
                log::warn!(
                    "{}: cannot finish on the preparing connection, trying another: {error}",
                    self.gid
                );
                drop(self.session.take());
                self.finish_elsewhere(outcome)
            }
        }
    }

    /// Finishes the transaction on another connection of the pool, the preparing one
    /// being discarded. The server may hold an XA transaction for that connection a
    /// moment longer than the client does (it answers "not yours" meanwhile): a few
    /// tries, about a second in all, before the failure is left to recovery.
    fn finish_elsewhere(&self, outcome: Outcome) -> Result<(), DbError> {
        let mut tries_left = FINISH_ELSEWHERE_TRIES;
        loop {
            match self.coordinator.finish_prepared(self.gid, outcome) {
                Err(_) if tries_left > 1 => {
                    tries_left -= 1;
                    std::thread::sleep(FINISH_ELSEWHERE_PAUSE);
                }
                finished => return finished,
            }
        }
    }
}

/// How often, and how far apart, [`Prepared::finish_elsewhere`] tries.
const FINISH_ELSEWHERE_TRIES: u32 = 20;
const FINISH_ELSEWHERE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl<A: Database, B: Database> Drop for Prepared<'_, A, B> {
    fn drop(&mut self) {
        let outcome = match self.settle {
            Settle::Done => return,
            Settle::Abort => Ok(Outcome::Abort),
            Settle::Commit => Ok(Outcome::Commit),
            Settle::ByDecision => self.coordinator.decision_or_abort(self.gid),
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
