//! Reads batched across requests (`db::Coalescer`, behind `GET /users/{id}`, the
//! summary's user and the overview's two pages):
//! requests that arrive while a batch is forming are answered by its one statement,
//! each with its own row; a request that goes away leaves the batch to the others; a
//! dead connection under a batch is replaced; an unavailable database answers every
//! request of the batch 503, and the other database serves on.
//!
//! The fault point `db1.read_batch` holds a batch open (before it is read) so that
//! the requests of a test surely join it; in service a batch forms only while the
//! earlier ones hold the connections.

use std::sync::Barrier;
use std::time::Duration;

use multidb::db::fault::FaultAction;
use serde_json::Value;

use crate::helpers::metrics::{self, value};
use crate::helpers::{id_of, spawn_app, spawn_app_with, Response, Stack, TestApp};
use crate::resilience::set_connections_allowed;

/// `GET path` for each path at once, from a thread each; the answers in order.
fn get_together(app: &TestApp, paths: &[String]) -> Vec<Response> {
    let barrier = Barrier::new(paths.len());
    std::thread::scope(|scope| {
        let threads: Vec<_> = paths
            .iter()
            .map(|path| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    app.get(path)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a requesting thread"))
            .collect()
    })
}

/// db1's batches and the reads they answered so far.
fn batches(app: &TestApp) -> (f64, f64) {
    batches_of(app, "db1")
}

fn batches_of(app: &TestApp, db: &str) -> (f64, f64) {
    let samples = metrics::scrape(app.get("/metrics"));
    let counter = |name| value(&samples, name, &[("db", db)]).unwrap_or(0.0);
    (
        counter("db_read_batches_total"),
        counter("db_batched_reads_total"),
    )
}

/// Three users, and the paths of a round of reads: each user three times and two ids
/// that are no one's.
fn users_and_paths(app: &TestApp) -> (Vec<Value>, Vec<String>) {
    let users: Vec<Value> = (0..3)
        .map(|n| app.create_user(&format!("u{n}@example.com"), &format!("User {n}")))
        .collect();
    let missing = id_of(users.last().expect("users")) + 1;
    let mut paths: Vec<String> = users
        .iter()
        .cycle()
        .take(9)
        .map(|user| format!("/users/{}", id_of(user)))
        .collect();
    paths.push(format!("/users/{missing}"));
    paths.push(format!("/users/{}", missing + 7));
    (users, paths)
}

fn assert_answers(users: &[Value], answers: &[Response]) {
    for (n, answer) in answers.iter().enumerate() {
        match users.get(n % 3).filter(|_| n < 9) {
            Some(user) => {
                assert_eq!(answer.status, 200, "{}", answer.text);
                assert_eq!(&answer.body, user, "request {n} got another user's row");
            }
            None => answer.assert_error(404, "not_found"),
        }
    }
}

fn reads_arriving_together_are_answered_by_one_statement_each_with_its_row(stack: Stack) {
    let app = spawn_app(stack);
    let (users, paths) = users_and_paths(&app);
    let before = batches(&app);
    app.faults.arm("db1.read_batch", FaultAction::Sleep(300));
    let answers = get_together(&app, &paths);
    app.faults.disarm_all();
    assert_answers(&users, &answers);
    let after = batches(&app);
    let (batches_run, reads) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(
        reads,
        f64::from(u32::try_from(paths.len()).expect("a few paths")),
        "every read went through a batch"
    );
    assert!(
        batches_run < reads,
        "{reads} reads arriving together took {batches_run} statements"
    );
    // Alone, a read is a batch of one.
    let alone = app.get(&format!("/users/{}", id_of(&users[1])));
    assert_eq!(alone.body, users[1]);
    let last = batches(&app);
    assert_eq!((last.0 - after.0, last.1 - after.1), (1.0, 1.0));
}

/// Overviews of several lengths arriving together share the statements of both
/// databases: the longest page asked for answers each shorter one, and each request
/// gets exactly its own length. Summaries read their user in a batch too.
fn overviews_and_summaries_arriving_together_share_their_statements(stack: Stack) {
    let app = spawn_app(stack);
    let users: Vec<Value> = (0..6)
        .map(|n| app.create_user(&format!("o{n}@example.com"), "O"))
        .collect();
    let orders: Vec<Value> = users
        .iter()
        .map(|user| app.order(id_of(user)).cents(7).create())
        .collect();
    let limits = [1, 3, 6, 3, 10, 2, 1, 6];
    let paths: Vec<String> = limits
        .iter()
        .map(|limit| format!("/overview?limit={limit}"))
        .collect();
    let before = (batches_of(&app, "db1"), batches_of(&app, "db2"));
    app.faults.arm("db1.read_batch", FaultAction::Sleep(300));
    app.faults.arm("db2.read_batch", FaultAction::Sleep(300));
    let answers = get_together(&app, &paths);
    app.faults.disarm_all();
    for (answer, limit) in answers.iter().zip(limits) {
        assert_eq!(answer.status, 200, "{}", answer.text);
        let take = limit.min(users.len());
        assert_eq!(
            answer.body["data1"],
            Value::from(users[..take].to_vec()),
            "limit {limit}"
        );
        assert_eq!(
            answer.body["data2"],
            Value::from(orders[..take].to_vec()),
            "limit {limit}"
        );
    }
    let after = (batches_of(&app, "db1"), batches_of(&app, "db2"));
    for (database, before, after) in [("db1", before.0, after.0), ("db2", before.1, after.1)] {
        let (batches_run, reads) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(
            reads, 8.0,
            "{database}: every overview read through a batch"
        );
        assert!(
            batches_run < reads,
            "{database}: {reads} reads took {batches_run} statements"
        );
    }

    let summaries: Vec<String> = users
        .iter()
        .map(|user| format!("/users/{}/summary", id_of(user)))
        .collect();
    let before = batches(&app);
    app.faults.arm("db1.read_batch", FaultAction::Sleep(300));
    let answers = get_together(&app, &summaries);
    app.faults.disarm_all();
    for ((answer, user), order) in answers.iter().zip(&users).zip(&orders) {
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(&answer.body["user"], user);
        assert_eq!(answer.body["orders"], Value::from(vec![order.clone()]));
        assert_eq!(answer.body["order_count"], 1);
    }
    let after = batches(&app);
    assert!(
        after.0 - before.0 < after.1 - before.1,
        "the summaries' users were batched"
    );
}

/// The first request of a batch, which started it, is cut off by its deadline while
/// the batch is held open; the requests that joined it later, whose deadlines have not
/// passed, are answered by it.
fn a_request_that_goes_away_leaves_its_batch_to_the_others(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.request_timeout = Duration::from_millis(2_000);
    });
    let (users, paths) = users_and_paths(&app);
    // Held for 1.5 times the deadline: past the first request's, before the others'
    // (sent once the first is answered).
    app.faults.arm("db1.read_batch", FaultAction::Sleep(3_000));
    let first = app.get(&paths[0]);
    first.assert_error(503, "database_unavailable");
    let answers = get_together(&app, &paths);
    app.faults.disarm_all();
    assert_answers(&users, &answers);
    app.assert_pools_idle();
}

/// The connections of the pool die before a batch is read: the batch is read again on a
/// new connection, and every request gets its row.
fn a_batch_on_a_dead_connection_is_read_again_on_another(stack: Stack) {
    let app = spawn_app(stack);
    let (users, paths) = users_and_paths(&app);
    assert_eq!(app.get(&paths[0]).status, 200, "a connection in the pool");
    set_connections_allowed(&app, 1, false);
    set_connections_allowed(&app, 1, true);
    app.faults.arm("db1.read_batch", FaultAction::Sleep(300));
    let answers = get_together(&app, &paths);
    app.faults.disarm_all();
    assert_answers(&users, &answers);
}

/// db1 goes away: every request of a batch is answered 503, db2 serves on, and once db1
/// is back the batches are read again.
fn a_batch_of_an_unavailable_database_answers_every_request_503(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.checkout_timeout = Duration::from_millis(300);
    });
    let (users, paths) = users_and_paths(&app);
    let order = app.order(id_of(&users[0])).create();
    set_connections_allowed(&app, 1, false);
    app.faults.arm("db1.read_batch", FaultAction::Sleep(300));
    for answer in get_together(&app, &paths) {
        answer.assert_error(503, "database_unavailable");
    }
    let served = app.get(&format!("/orders/{}", id_of(&order)));
    assert_eq!(
        served.status, 200,
        "db2 serves while db1 is down: {}",
        served.text
    );
    set_connections_allowed(&app, 1, true);
    let answers = get_together(&app, &paths);
    app.faults.disarm_all();
    assert_answers(&users, &answers);
}

on_every_stack!(
    reads_arriving_together_are_answered_by_one_statement_each_with_its_row,
    overviews_and_summaries_arriving_together_share_their_statements,
    a_request_that_goes_away_leaves_its_batch_to_the_others,
);

// Only a server's connections can be killed, or the server taken away, from outside.
on_stacks!([postgres, postgres_sqlite, mysql, mysql_sqlite, mysql_postgres] =>
    a_batch_on_a_dead_connection_is_read_again_on_another,
    a_batch_of_an_unavailable_database_answers_every_request_503,
);
