//! The `multidb_decisions` table that both databases' migrations create: the durable
//! record of a cross-database commit decision (see `cross_commit/`).

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

pub const COMMIT: &str = "commit";
pub const ABORT: &str = "abort";

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
pub struct Decision {
    pub gid: String,
    pub outcome: String,
    pub redo: Option<String>,
}

/// Writes a decision, dated by the database's clock; a decision already recorded for
/// `gid` is a [`DbError::Conflict`].
pub fn record<D: Database>(
    session: &mut Session<D>,
    gid: &str,
    outcome: &str,
    redo: Option<&str>,
) -> Result<(), DbError> {
    diesel::insert_into(multidb_decisions::table)
        .values((
            multidb_decisions::gid.eq(gid),
            multidb_decisions::outcome.eq(outcome),
            multidb_decisions::redo.eq(redo),
            multidb_decisions::created_at.eq(diesel::dsl::sql::<Timestamp>(clock::now_timestamp(
                session.backend(),
            ))),
        ))
        .execute(session.connection())
        .map(drop)
        .map_err(Session::<D>::error)
}

pub fn find<D: Database>(session: &mut Session<D>, gid: &str) -> Result<Option<Decision>, DbError> {
    multidb_decisions::table
        .find(gid)
        .select(DECISION)
        .first(session.connection())
        .optional()
        .map_err(Session::<D>::error)
}

/// Decisions that carry work to redo, oldest first.
pub fn with_redo<D: Database, A: Access>(
    session: &mut Session<D, A>,
) -> Result<Vec<Decision>, DbError> {
    session.load(
        multidb_decisions::table
            .filter(multidb_decisions::redo.is_not_null())
            .order(multidb_decisions::created_at.asc())
            .select(DECISION),
    )
}

/// Whether a decision carrying exactly `redo` is still waiting to be applied (see
/// `CrossCommit::redoes`). An index lookup (`multidb_decisions_pending_redo`).
pub fn redo_pending<D: Database>(session: &mut Session<D>, redo: &str) -> Result<bool, DbError> {
    diesel::select(diesel::dsl::exists(
        multidb_decisions::table.filter(multidb_decisions::redo.eq(redo)),
    ))
    .get_result(session.connection())
    .map_err(Session::<D>::error)
}

/// At most `limit` decisions without work to redo older than `age`, by the database's
/// clock, oldest first.
pub fn settled_before<D: Database, A: Access>(
    session: &mut Session<D, A>,
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
    diesel::delete(multidb_decisions::table.filter(multidb_decisions::gid.eq_any(gids)))
        .execute(session.connection())
        .map(drop)
        .map_err(Session::<D>::error)
}

pub fn forget<D: Database>(session: &mut Session<D>, gid: &str) -> Result<(), DbError> {
    diesel::delete(multidb_decisions::table.find(gid))
        .execute(session.connection())
        .map(drop)
        .map_err(Session::<D>::error)
}
