//! The `multidb_decisions` table of the layer's own schema: the durable record of a
//! cross-database commit decision (see `cross_commit/`).

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Timestamp;

use super::{clock, Access, Database, DbError, Session};

diesel::table! {
    multidb_decisions (gid) {
        gid -> Text,
        outcome -> Text,
        redo -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

/// What was decided for a cross-database write: every reader matches both, and the
/// text in the table is written and read here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written with the last participant's work: the write happened.
    Commit,
    /// Claimed by recovery for a write whose coordinator never decided: it did not.
    Abort,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Commit => "commit",
            Outcome::Abort => "abort",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Outcome::Commit, Outcome::Abort]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const DECISION: (
    multidb_decisions::gid,
    multidb_decisions::outcome,
    multidb_decisions::redo,
) = (
    multidb_decisions::gid,
    multidb_decisions::outcome,
    multidb_decisions::redo,
);

#[derive(Debug, Clone, Queryable)]
struct DecisionRow {
    gid: String,
    outcome: String,
    redo: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub gid: String,
    pub outcome: Outcome,
    pub redo: Option<String>,
}

impl DecisionRow {
    /// The table's CHECK admits the two outcomes only; anything else is a foreign row.
    fn decision<D: Database>(self) -> Result<Decision, DbError> {
        let outcome = Outcome::parse(&self.outcome).ok_or_else(|| DbError::Other {
            database: D::NAME,
            cause: format!("{}: unknown outcome {:?}", self.gid, self.outcome).into(),
        })?;
        Ok(Decision {
            gid: self.gid,
            outcome,
            redo: self.redo,
        })
    }
}

/// Writes a decision, dated by the database's clock; a decision already recorded for
/// `gid` is a [`DbError::Conflict`].
pub fn record<D: Database>(
    session: &mut Session<D>,
    gid: &str,
    outcome: Outcome,
    redo: Option<&str>,
) -> Result<(), DbError> {
    let created_at = clock::now_timestamp(session.backend());
    session
        .execute(diesel::insert_into(multidb_decisions::table).values((
            multidb_decisions::gid.eq(gid),
            multidb_decisions::outcome.eq(outcome.as_str()),
            multidb_decisions::redo.eq(redo),
            multidb_decisions::created_at.eq(diesel::dsl::sql::<Timestamp>(created_at)),
        )))
        .map(drop)
}

pub fn find<D: Database>(session: &mut Session<D>, gid: &str) -> Result<Option<Decision>, DbError> {
    session
        .load_optional::<_, DecisionRow>(multidb_decisions::table.find(gid).select(DECISION))?
        .map(DecisionRow::decision::<D>)
        .transpose()
}

/// Decisions that carry work to redo, oldest first.
pub fn with_redo<D: Database, M: Access>(
    session: &mut Session<D, M>,
) -> Result<Vec<Decision>, DbError> {
    session
        .load::<_, DecisionRow>(
            multidb_decisions::table
                .filter(multidb_decisions::redo.is_not_null())
                .order(multidb_decisions::created_at.asc())
                .select(DECISION),
        )?
        .into_iter()
        .map(DecisionRow::decision::<D>)
        .collect()
}

/// How many decisions wait for their redo, and the age in seconds of the oldest by the
/// database's clock (the gauges' counterpart of `TwoPhase::count`).
pub(crate) fn waiting_for_redo(
    conn: &mut super::AnyConnection,
    backend: super::Backend,
) -> QueryResult<(i64, f64)> {
    multidb_decisions::table
        .filter(multidb_decisions::redo.is_not_null())
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::sql::<diesel::sql_types::Double>(&clock::seconds_since_oldest(
                backend,
                "created_at",
            )),
        ))
        .get_result(conn)
}

/// Whether a decision carrying exactly `redo` is still waiting to be applied (see
/// `CrossCommit::redoes`). An index lookup (`multidb_decisions_pending_redo`).
pub fn redo_pending<D: Database>(
    session: &mut Session<D>,
    redo: &super::cross_commit::RedoRecord,
) -> Result<bool, DbError> {
    session.get_result(diesel::select(diesel::dsl::exists(
        multidb_decisions::table.filter(multidb_decisions::redo.eq(redo.as_str())),
    )))
}

/// At most `limit` decisions without work to redo older than `age`, by the database's
/// clock, oldest first.
pub fn settled_before<D: Database, M: Access>(
    session: &mut Session<D, M>,
    age: Duration,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    let before = clock::timestamp_ago(session.backend(), age);
    session.load(
        multidb_decisions::table
            .filter(multidb_decisions::redo.is_null())
            .filter(multidb_decisions::created_at.lt(diesel::dsl::sql::<Timestamp>(&before)))
            .order(multidb_decisions::created_at.asc())
            .limit(limit)
            .select(multidb_decisions::gid),
    )
}

/// Deletes the decisions of `gids`.
pub fn forget_all<D: Database>(session: &mut Session<D>, gids: &[String]) -> Result<(), DbError> {
    session
        .execute(diesel::delete(
            multidb_decisions::table.filter(multidb_decisions::gid.eq_any(gids)),
        ))
        .map(drop)
}

pub fn forget<D: Database>(session: &mut Session<D>, gid: &str) -> Result<(), DbError> {
    session
        .execute(diesel::delete(multidb_decisions::table.find(gid)))
        .map(drop)
}
