//! What is in doubt between A and B, read without taking a lease or resolving anything:
//! for an operator's check (`multidb check`), beside the running instances. Every list
//! is bounded; ages are by the clock of the database that holds the record.

use diesel::prelude::*;
use diesel::sql_types::Timestamp;
use serde::Serialize;

use super::Gid;
use crate::db::decisions::multidb_decisions;
use crate::db::lease::{self, multidb_instances, LeaseId};
use crate::db::session::cannot_prepare;
use crate::db::{clock, AnyConnection, Database, DbError, Pool};

/// Cross-database writes left in doubt now.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InDoubt {
    /// Transactions prepared in A and not yet committed or rolled back: at most the
    /// limit asked for, oldest first where A's backend lists them so.
    pub prepared: Vec<Work>,
    /// How many are prepared in all, and the oldest one's age in seconds.
    pub prepared_count: i64,
    pub prepared_oldest_seconds: f64,
    /// Decisions in B whose work on A waits to be redone (A cannot prepare): at most the
    /// limit asked for, oldest first.
    pub awaiting_redo: Vec<Work>,
    pub awaiting_redo_count: i64,
    pub awaiting_redo_oldest_seconds: f64,
}

/// One write in doubt, with the instance that owns it.
#[derive(Debug, Clone, Serialize)]
pub struct Work {
    pub gid: String,
    /// Seconds since its decision was recorded, when there is one.
    pub age_seconds: Option<f64>,
    /// `commit` or `abort` when decided; `None` for a prepared transaction whose
    /// coordinator has not decided yet.
    pub decision: Option<String>,
    /// The work to redo, as the application recorded it.
    pub redo: Option<String>,
    pub owner: Owner,
}

/// The instance whose lease a write was started under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub lease: LeaseId,
    /// The machine it ran on, while its lease's row is kept.
    pub host: Option<String>,
    /// Expired: the instance is gone, and recovery elsewhere is due to resolve its work.
    pub expired: bool,
}

#[derive(Queryable)]
struct DecisionRow {
    gid: String,
    outcome: String,
    redo: Option<String>,
    created_at: chrono::NaiveDateTime,
}

/// What is in doubt between `a` and `b`, at most `limit` of each kind. Reads only.
pub fn in_doubt<A: Database, B: Database>(
    a: &Pool<A>,
    b: &Pool<B>,
    limit: usize,
) -> Result<InDoubt, DbError> {
    let mut b_conn = b.connection()?;
    let b_error = |e| DbError::from_diesel(B::NAME, e);
    let now: chrono::NaiveDateTime = diesel::select(diesel::dsl::sql::<Timestamp>(
        clock::now_timestamp(b.backend()),
    ))
    .get_result(&mut *b_conn)
    .map_err(b_error)?;
    let age = |at: chrono::NaiveDateTime| (now - at).to_std().map_or(0.0, |age| age.as_secs_f64());
    let mut report = InDoubt::default();
    // Many writes in doubt share an owner: each lease is looked up once.
    let mut owners = Owners::default();

    if a.features().two_phase_commit {
        let mut a_conn = a.connection()?;
        let Some(mut two_phase) = a_conn.two_phase(a.two_phase_scope()) else {
            return Err(cannot_prepare::<A>(Gid::any_prefix()));
        };
        let a_error = |e| DbError::from_diesel(A::NAME, e);
        let (count, oldest) = two_phase.count(&Gid::any_prefix()).map_err(a_error)?;
        report.prepared_count = count;
        report.prepared_oldest_seconds = oldest.max(0.0);
        let gids = two_phase.recover(&Gid::any_prefix()).map_err(a_error)?;
        for gid in gids
            .into_iter()
            .filter_map(|gid| Gid::parse(&gid))
            .take(limit)
        {
            let decision = multidb_decisions::table
                .find(gid.as_str())
                .select((
                    multidb_decisions::gid,
                    multidb_decisions::outcome,
                    multidb_decisions::redo,
                    multidb_decisions::created_at,
                ))
                .first::<DecisionRow>(&mut *b_conn)
                .optional()
                .map_err(b_error)?;
            report.prepared.push(Work {
                gid: gid.as_str().to_owned(),
                age_seconds: decision.as_ref().map(|row| age(row.created_at)),
                decision: decision.as_ref().map(|row| row.outcome.clone()),
                redo: decision.and_then(|row| row.redo),
                owner: owners.of(&mut b_conn, gid.owner()).map_err(b_error)?,
            });
        }
    }

    let (count, oldest) =
        crate::db::decisions::waiting_for_redo(&mut b_conn, b.backend()).map_err(b_error)?;
    report.awaiting_redo_count = count;
    report.awaiting_redo_oldest_seconds = oldest.max(0.0);
    let rows: Vec<DecisionRow> = multidb_decisions::table
        .filter(multidb_decisions::redo.is_not_null())
        .order(multidb_decisions::created_at.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select((
            multidb_decisions::gid,
            multidb_decisions::outcome,
            multidb_decisions::redo,
            multidb_decisions::created_at,
        ))
        .load(&mut *b_conn)
        .map_err(b_error)?;
    for row in rows {
        let Some(gid) = Gid::parse(&row.gid) else {
            continue;
        };
        report.awaiting_redo.push(Work {
            age_seconds: Some(age(row.created_at)),
            owner: owners.of(&mut b_conn, gid.owner()).map_err(b_error)?,
            gid: row.gid,
            decision: Some(row.outcome),
            redo: row.redo,
        });
    }
    Ok(report)
}

/// The owners looked up so far, by lease.
#[derive(Default)]
struct Owners(std::collections::BTreeMap<LeaseId, Owner>);

impl Owners {
    fn of(&mut self, conn: &mut AnyConnection, lease: LeaseId) -> QueryResult<Owner> {
        if let Some(owner) = self.0.get(&lease) {
            return Ok(owner.clone());
        }
        let host = multidb_instances::table
            .find(lease)
            .select(multidb_instances::host)
            .first::<String>(conn)
            .optional()?;
        let owner = Owner {
            lease,
            host,
            expired: !lease::is_live(conn, lease)?,
        };
        self.0.insert(lease, owner.clone());
        Ok(owner)
    }
}
