//! `multidb check`: whether the two databases agree, read only and in bounded steps, so
//! that it can run against production under load. It reports orders whose user does
//! not exist, users whose order totals disagree with their orders, users whose
//! deletion waits for its redo, cross-database writes in doubt with their age and
//! owner, expired leases that left work, and each database's migrations.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::migrations::DatabaseMigrations;
use crate::config::Settings;
use crate::db::{self, DbError, InDoubt, Owner, Pool, Read};
use crate::db1::Db1;
use crate::db2::Db2;
use crate::domain::UserId;
use crate::{orders, users, workflows};

/// How the check runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Work in doubt older than this is a problem even while its owner lives: recovery
    /// settles a crash's leftovers within a lease and a recovery interval.
    pub in_doubt_after: Duration,
    /// Users looked up per step of the scan of orders (one indexed range of db2, one
    /// primary-key lookup in db1).
    pub batch: i64,
    /// The most items listed of each kind.
    pub listed: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            in_doubt_after: Duration::from_secs(60),
            batch: 1_000,
            listed: 20,
        }
    }
}

/// What the check found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// True when nothing below is a problem.
    pub healthy: bool,
    /// Each problem in a sentence, for a person and an alert.
    pub problems: Vec<String>,
    pub migrations: Vec<DatabaseMigrations>,
    /// `None` when db2's orders could not be scanned (its schema is not migrated).
    pub orphan_orders: Option<Orphans>,
    /// `None` when db2's orders could not be scanned (its schema is not migrated).
    pub order_totals: Option<TotalsDrift>,
    pub users_awaiting_redo: Vec<UserAwaitingRedo>,
    /// `None` when the layer's tables are not migrated in both databases.
    pub in_doubt: Option<InDoubt>,
    pub expired_leases_with_work: Vec<Owner>,
    /// What the check took.
    pub took_seconds: f64,
}

/// Orders whose user does not exist in db1.
#[derive(Debug, Default, Serialize)]
pub struct Orphans {
    pub users: u64,
    pub orders: i64,
    /// The first users, in id order, with their order counts.
    pub listed: Vec<OrphanUser>,
    /// Distinct users with orders that were looked up, and in how many steps.
    pub users_scanned: u64,
    pub batches: u64,
}

#[derive(Debug, Serialize)]
pub struct OrphanUser {
    pub user_id: UserId,
    pub orders: i64,
}

/// Users whose order totals (what a summary reads) disagree with their orders.
#[derive(Debug, Default, Serialize)]
pub struct TotalsDrift {
    pub users: u64,
    /// The first users, in id order.
    pub listed: Vec<UserTotals>,
}

#[derive(Debug, Serialize)]
pub struct UserTotals {
    pub user_id: UserId,
    /// The count and sum of the user's orders.
    pub orders: i64,
    pub orders_total_cents: i64,
    /// What the totals say; `null` when the user has none.
    pub recorded_orders: Option<i64>,
    pub recorded_total_cents: Option<i64>,
}

/// A user deleted in db2 (orders gone, decision recorded) whose row in db1 waits for
/// the redo that deletes it.
#[derive(Debug, Serialize)]
pub struct UserAwaitingRedo {
    pub user_id: Option<UserId>,
    pub gid: String,
    pub age_seconds: Option<f64>,
    pub owner: Owner,
}

/// Runs the check. An `Err` means it could not be run (a database unreachable); what
/// it finds wrong is in the report. Blocks.
pub fn run(settings: &Settings, options: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (db1, db2) = super::open(settings)?;
    let migrations = super::migrations::read_both(&db1, &db2)?;
    let mut report = Report {
        healthy: true,
        problems: Vec::new(),
        migrations,
        orphan_orders: None,
        order_totals: None,
        users_awaiting_redo: Vec::new(),
        in_doubt: None,
        expired_leases_with_work: Vec::new(),
        took_seconds: 0.0,
    };
    for database in &report.migrations {
        let state = &database.state;
        if !database.exists {
            report.problems.push(format!(
                "{} does not exist yet ({}): `multidb migrate` creates it",
                database.name, database.url
            ));
        } else if state.pending() > 0 {
            report.problems.push(format!(
                "{}: {} pending (`multidb migrate status` lists them)",
                database.name,
                plural(state.pending(), "migration")
            ));
        }
        let unknown = state.layer.unknown.len() + state.application.unknown.len();
        if unknown > 0 {
            report.problems.push(format!(
                "{}: {} applied that this build does not know: a newer build migrated it",
                database.name,
                plural(unknown, "migration")
            ));
        }
    }
    let migrated = |n: usize, layer: bool| {
        let database = &report.migrations[n];
        let listing = if layer {
            &database.state.layer
        } else {
            &database.state.application
        };
        database.exists && listing.pending.is_empty()
    };
    let layers = migrated(0, true) && migrated(1, true);
    let orders_table = migrated(0, false) && migrated(1, false);
    if let (Some(db1), Some(db2)) = (&db1.pool, &db2.pool) {
        if orders_table {
            let (orphans, totals) = scan_orders(db1, db2, options)?;
            if orphans.users > 0 {
                let first = orphans
                    .listed
                    .first()
                    .map(|user| {
                        format!(
                            " (first: user {} with {})",
                            user.user_id,
                            plural(user.orders, "order")
                        )
                    })
                    .unwrap_or_default();
                report.problems.push(format!(
                    "{} in db2 belong to {} missing from db1{first}",
                    plural(orphans.orders, "order"),
                    plural(orphans.users, "user")
                ));
            }
            report.orphan_orders = Some(orphans);
            if let Some(first) = totals.listed.first() {
                report.problems.push(format!(
                    "the order totals of {} disagree with their orders (first: user {} has {} worth {} cents, the totals say {}): orders written behind the service's back or by a build older than the totals (docs/operations.md)",
                    plural(totals.users, "user"),
                    first.user_id,
                    plural(first.orders, "order"),
                    first.orders_total_cents,
                    match (first.recorded_orders, first.recorded_total_cents) {
                        (Some(count), Some(cents)) => format!("{} worth {cents} cents", plural(count, "order")),
                        _ => "nothing".to_owned(),
                    }
                ));
            }
            report.order_totals = Some(totals);
        }
        if layers {
            let in_doubt = db::in_doubt(db1, db2, options.listed)?;
            judge_in_doubt(&in_doubt, options, &mut report);
            report.in_doubt = Some(in_doubt);
        }
    }
    report.healthy = report.problems.is_empty();
    report.took_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn judge_in_doubt(in_doubt: &InDoubt, options: Options, report: &mut Report) {
    let limit = options.in_doubt_after.as_secs_f64();
    for work in &in_doubt.awaiting_redo {
        report.users_awaiting_redo.push(UserAwaitingRedo {
            user_id: work.redo.as_deref().and_then(workflows::user_of_redo),
            gid: work.gid.clone(),
            age_seconds: work.age_seconds,
            owner: work.owner.clone(),
        });
    }
    for owner in in_doubt
        .prepared
        .iter()
        .chain(&in_doubt.awaiting_redo)
        .map(|work| &work.owner)
        .filter(|owner| owner.expired)
    {
        if !report.expired_leases_with_work.contains(owner) {
            report.expired_leases_with_work.push(owner.clone());
        }
    }
    for owner in &report.expired_leases_with_work {
        report.problems.push(format!(
            "the lease {} of {} expired with cross-database writes in doubt: recovery by a running instance settles them",
            owner.lease,
            owner.host.as_deref().unwrap_or("an instance long gone")
        ));
    }
    if in_doubt.prepared_oldest_seconds > limit {
        report.problems.push(format!(
            "{} transactions prepared in db1, the oldest for {:.0} s (more than {limit:.0} s)",
            in_doubt.prepared_count, in_doubt.prepared_oldest_seconds
        ));
    }
    if in_doubt.awaiting_redo_oldest_seconds > limit {
        report.problems.push(format!(
            "{} user deletions wait for their redo in db1, the oldest for {:.0} s (more than {limit:.0} s)",
            in_doubt.awaiting_redo_count, in_doubt.awaiting_redo_oldest_seconds
        ));
    }
}

/// Walks db2's users with orders in batches and looks each batch up in db1; users not
/// found are looked at again in db2 after db1 answered, so that a user deleted (with
/// their orders) while the check ran is not taken for an orphan: orders are gone from
/// db2 before their user leaves db1, and none are added for a missing user. Each
/// batch's range of users also has its order totals compared with its orders.
fn scan_orders(
    db1: &Pool<Db1>,
    db2: &Pool<Db2>,
    options: Options,
) -> Result<(Orphans, TotalsDrift), DbError> {
    let mut orphans = Orphans::default();
    let mut drift = TotalsDrift::default();
    let mut after = 0;
    loop {
        let batch = {
            let mut session = db2.begin::<Read>()?;
            orders::users_with_orders(&mut session, after, options.batch)?
        };
        let up_to = batch.last().map(|last| last.get());
        compare_totals(db2, after, up_to, options, &mut drift)?;
        let Some(last) = up_to else {
            break;
        };
        orphans.batches += 1;
        after = last;
        orphans.users_scanned += batch.len() as u64;
        let found = {
            let mut session = db1.begin::<Read>()?;
            users::existing(&mut session, &batch)?
        };
        let missing: Vec<UserId> = batch.into_iter().filter(|id| !found.contains(id)).collect();
        if missing.is_empty() {
            continue;
        }
        let counted = {
            let mut session = db2.begin::<Read>()?;
            orders::count_for_users(&mut session, &missing)?
        };
        for (user_id, count) in counted {
            orphans.users += 1;
            orphans.orders += count;
            if orphans.listed.len() < options.listed {
                orphans.listed.push(OrphanUser {
                    user_id,
                    orders: count,
                });
            }
        }
    }
    Ok((orphans, drift))
}

/// Compares the totals of the users in `(after, up_to]` with their orders; the last
/// range (no `up_to`) holds no orders, but maybe totals left behind.
fn compare_totals(
    db2: &Pool<Db2>,
    after: i64,
    up_to: Option<i64>,
    options: Options,
    drift: &mut TotalsDrift,
) -> Result<(), DbError> {
    let disagreeing = {
        let mut session = db2.begin::<Read>()?;
        orders::totals_disagreeing(&mut session, after, up_to)?
    };
    for user in disagreeing {
        drift.users += 1;
        if drift.listed.len() < options.listed {
            drift.listed.push(UserTotals {
                user_id: user.user_id,
                orders: user.orders.0,
                orders_total_cents: user.orders.1,
                recorded_orders: user.totals.map(|(count, _)| count),
                recorded_total_cents: user.totals.map(|(_, cents)| cents),
            });
        }
    }
    Ok(())
}

/// The report for a person: the problems first, then what was looked at.
pub fn text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    if report.healthy {
        text.push_str("ok: the two databases agree\n");
    } else {
        let _ = writeln!(text, "{}:", plural(report.problems.len(), "problem"));
        for problem in &report.problems {
            let _ = writeln!(text, "  - {problem}");
        }
    }
    for database in &report.migrations {
        let _ = writeln!(
            text,
            "{} ({}, {}): {} migrations applied, {} pending",
            database.name,
            database.backend,
            database.url,
            database.state.layer.applied.len() + database.state.application.applied.len(),
            database.state.pending()
        );
    }
    match &report.orphan_orders {
        Some(orphans) => {
            let _ = writeln!(
                text,
                "orders without a user: {} (of {}); {} with orders looked up in {}",
                orphans.orders,
                plural(orphans.users, "user"),
                plural(orphans.users_scanned, "user"),
                plural(orphans.batches, "step")
            );
            for user in &orphans.listed {
                let _ = writeln!(
                    text,
                    "  user {}: {}",
                    user.user_id,
                    plural(user.orders, "order")
                );
            }
        }
        None => text.push_str("orders without a user: not checked (migrations pending)\n"),
    }
    if let Some(drift) = &report.order_totals {
        let _ = writeln!(
            text,
            "order totals that disagree with the orders: {}",
            plural(drift.users, "user")
        );
        for user in &drift.listed {
            let recorded = match (user.recorded_orders, user.recorded_total_cents) {
                (Some(count), Some(cents)) => {
                    format!("{} worth {cents} cents", plural(count, "order"))
                }
                _ => "none".to_owned(),
            };
            let _ = writeln!(
                text,
                "  user {}: {} worth {} cents; totals: {recorded}",
                user.user_id,
                plural(user.orders, "order"),
                user.orders_total_cents
            );
        }
    }
    match &report.in_doubt {
        Some(in_doubt) => {
            let _ = writeln!(
                text,
                "prepared in db1: {} (oldest {:.1} s); user deletions awaiting redo: {} (oldest {:.1} s)",
                in_doubt.prepared_count,
                in_doubt.prepared_oldest_seconds,
                in_doubt.awaiting_redo_count,
                in_doubt.awaiting_redo_oldest_seconds
            );
            for work in in_doubt.prepared.iter().chain(&in_doubt.awaiting_redo) {
                let _ = writeln!(
                    text,
                    "  {} {}{}, lease {} on {}{}",
                    work.gid,
                    work.decision.as_deref().unwrap_or("undecided"),
                    work.age_seconds
                        .map(|age| format!(" {age:.1} s ago"))
                        .unwrap_or_default(),
                    work.owner.lease,
                    work.owner.host.as_deref().unwrap_or("?"),
                    if work.owner.expired { " (expired)" } else { "" }
                );
            }
        }
        None => text.push_str("writes in doubt: not checked (migrations pending)\n"),
    }
    let _ = writeln!(text, "checked in {:.3} s", report.took_seconds);
    text
}

/// `1 order`, `2 orders`.
fn plural(count: impl std::fmt::Display, noun: &str) -> String {
    let count = count.to_string();
    if count == "1" {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
