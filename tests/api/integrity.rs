//! A failed request writes nothing; concurrent orders and deletions leave no orphans.

use std::sync::Barrier;

use crate::helpers::{
    admin_execute, admin_pids, eventually, id_of, spawn_app, spawn_app_with, Stack, TestApp,
};
use multidb::db::fault::FaultAction;
use serde_json::json;

/// Everything the databases hold, as the API shows it.
fn snapshot(app: &TestApp) -> (String, String) {
    let users = app.get("/users?limit=500");
    let orders = app.get("/orders?limit=500");
    assert_eq!((users.status, orders.status), (200, 200));
    (users.text, orders.text)
}

#[track_caller]
fn assert_unchanged(app: &TestApp, before: &(String, String)) {
    assert_eq!(
        &snapshot(app),
        before,
        "a failed request changed db1 or db2"
    );
}

fn failed_writes_are_rolled_back_in_every_database_they_touched(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    let order = app.order(ada).cents(1999).create()["id"].as_i64().unwrap();
    let before = snapshot(&app);

    // db2 fails after its writes, before its commit.
    app.faults.arm("db2.commit", FaultAction::Error);
    let response = app.post(
        "/orders",
        json!({"user_id": ada, "item": "pen", "quantity": 1, "amount_cents": 5}),
    );
    response.assert_error(500, "internal");
    assert!(
        !response.text.contains("fault"),
        "the cause leaked: {}",
        response.text
    );
    app.delete(&format!("/users/{ada}"))
        .assert_error(500, "internal");
    app.delete(&format!("/orders/{order}"))
        .assert_error(500, "internal");
    assert_unchanged(&app, &before);

    // db1 fails after its writes, before its commit.
    app.faults.disarm_all();
    app.faults.arm("db1.commit", FaultAction::Error);
    app.post("/users", json!({"email": "bob@example.com", "name": "Bob"}))
        .assert_error(500, "internal");
    app.patch(&format!("/users/{ada}"), json!({"name": "Ada L"}))
        .assert_error(500, "internal");
    assert_unchanged(&app, &before);

    app.faults.disarm_all();
    app.order(ada).item("pen").cents(5).create();
    assert_eq!(app.delete(&format!("/users/{ada}")).status, 204);
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
    app.assert_pools_idle();
    assert_eq!(app.idle_in_transaction(), 0);
}

fn a_panic_inside_a_session_rolls_back_and_answers_500(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    app.order(ada).cents(1999).create();
    let before = snapshot(&app);

    app.faults.arm("db2.commit", FaultAction::Panic);
    for _ in 0..3 {
        app.post(
            "/orders",
            json!({"user_id": ada, "item": "pen", "quantity": 1, "amount_cents": 5}),
        )
        .assert_error(500, "internal");
        app.delete(&format!("/users/{ada}"))
            .assert_error(500, "internal");
    }
    app.faults.disarm_all();
    assert_eq!(snapshot(&app), before);

    // The connections that were out during the panics were discarded, not reused dirty.
    app.order(ada).item("pen").cents(5).create();
    assert_eq!(app.count_orders(), 2);
    app.assert_pools_idle();
    assert_eq!(app.idle_in_transaction(), 0);
}

fn many_failing_requests_leave_every_pool_full_and_no_transaction_open(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    app.faults.arm("db1.commit", FaultAction::Error);
    app.faults.arm("db2.commit", FaultAction::Panic);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let app = &app;
            scope.spawn(move || {
                for i in 0..125 {
                    // Half fail (an error in db1, a panic in db2), half succeed.
                    let (status, expected) = match i % 4 {
                        0 => (app.post("/users", json!({"email": format!("u{worker}-{i}@x.y"), "name": "U"})).status, 500),
                        1 => (app.post("/orders", json!({"user_id": ada, "item": "x", "quantity": 1, "amount_cents": 1})).status, 500),
                        2 => (app.get(&format!("/users/{ada}")).status, 200),
                        _ => (app.get(&format!("/users/{ada}/summary")).status, 200),
                    };
                    assert_eq!(status, expected, "request {i} of worker {worker}");
                }
            });
        }
    });
    app.faults.disarm_all();
    assert_eq!((app.count_users(), app.count_orders()), (1, 0));
    app.assert_pools_idle();
    let (db1, db2) = (app.databases.db1.status(), app.databases.db2.status());
    assert!(db1.connections <= db1.max_size && db2.connections <= db2.max_size);
    assert_eq!(app.idle_in_transaction(), 0);
    // And the pools still serve.
    app.order(ada).cents(1).create();
}

fn racing_orders_and_deletions_never_leave_an_orphan_order(stack: Stack) {
    let app = spawn_app(stack);
    const ROUNDS: usize = 25;
    const ORDERS_PER_ROUND: usize = 4;
    for round in 0..ROUNDS {
        let user = app.create_user(&format!("racer{round}@example.com"), "Racer")["id"]
            .as_i64()
            .unwrap();
        let barrier = Barrier::new(ORDERS_PER_ROUND + 1);
        std::thread::scope(|scope| {
            for _ in 0..ORDERS_PER_ROUND {
                let (app, barrier) = (&app, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let response = app.post(
                        "/orders",
                        json!({"user_id": user, "item": "race", "quantity": 1, "amount_cents": 1}),
                    );
                    assert!(
                        response.status == 201
                            || (response.status == 422 && response.body["code"] == "unknown_user"),
                        "order during deletion: {} {}",
                        response.status,
                        response.text
                    );
                });
            }
            let (app, barrier) = (&app, &barrier);
            scope.spawn(move || {
                barrier.wait();
                let response = app.delete(&format!("/users/{user}"));
                assert_eq!(response.status, 204, "{}", response.text);
            });
        });
        assert_eq!(app.orphan_orders(), Vec::<i64>::new(), "round {round}");
        assert_eq!(
            app.totals_disagreeing(),
            Vec::<String>::new(),
            "round {round}"
        );
    }
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
    app.assert_pools_idle();
    assert_eq!(app.idle_in_transaction(), 0);
}

on_every_stack!(
    failed_writes_are_rolled_back_in_every_database_they_touched,
    a_panic_inside_a_session_rolls_back_and_answers_500,
    many_failing_requests_leave_every_pool_full_and_no_transaction_open,
    racing_orders_and_deletions_never_leave_an_orphan_order,
);

/// Ada, with one order: the user the cross-database tests delete or order for.
fn ada_with_an_order(app: &TestApp) -> i64 {
    let ada = id_of(&app.create_user("ada@example.com", "Ada"));
    app.order(ada).cents(1999).create();
    ada
}

/// The backend of the first session on `database` whose last statement contains `text`
/// and that is waiting inside its transaction.
fn backend_in_transaction(database: &str, text: &str) -> i32 {
    eventually(
        &format!("a session of {database} waits after `{text}`"),
        || {
            admin_pids(&format!(
                "SELECT pid FROM pg_stat_activity WHERE datname = '{database}' \
             AND state LIKE 'idle in transaction%' AND query LIKE '%{text}%'"
            ))
            .first()
            .copied()
        },
    )
}

/// The gid of the deletion prepared in db1, once `ready` holds too.
fn prepared_deletion(app: &TestApp, mut ready: impl FnMut() -> bool) -> String {
    eventually("the deletion prepares", || {
        let prepared = app.prepared_transactions();
        prepared.into_iter().next().filter(|_| ready())
    })
}

/// db1's session of an order dies (its backend is terminated, as in a failover) after
/// it locked the user and before db2 committed the order, and the user is deleted
/// meanwhile: the deletion waits for the order and takes it along, instead of leaving
/// it orphaned.
fn an_order_whose_db1_session_dies_is_not_orphaned_by_a_deletion(stack: Stack) {
    let app = spawn_app(stack);
    let db1 = app.postgres_database(1).expect("db1 on PostgreSQL");
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    // Every db2 commit takes a while: the order is surely still uncommitted when its
    // db1 session is terminated.
    app.faults.arm("db2.commit", FaultAction::Sleep(1500));
    std::thread::scope(|scope| {
        let order = scope.spawn(|| {
            app.post(
                "/orders",
                json!({"user_id": user, "item": "late", "quantity": 1, "amount_cents": 1}),
            )
        });
        let holder = backend_in_transaction(&db1, "FOR KEY SHARE");
        admin_execute(&format!("SELECT pg_terminate_backend({holder})"));
        let deletion = app.delete(&format!("/users/{user}"));
        assert_eq!(deletion.status, 204, "{}", deletion.text);
        let order = order.join().unwrap();
        assert_eq!(order.status, 201, "{}", order.text);
    });
    app.faults.disarm_all();
    assert_eq!(app.orphan_orders(), Vec::<i64>::new());
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
}

/// With one connection in each pool, a deletion that fails after db1 prepared — before
/// the decision, or in the decision's commit — settles its prepared transaction at
/// once, on the connections it holds: nothing is left prepared, and the user's row is
/// not left locked against new orders until the next recovery pass.
fn a_failed_deletion_settles_on_its_own_connections(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        for database in [&mut settings.db1, &mut settings.db2] {
            database.pool.max_size = 1;
            database.pool.min_idle = 1;
        }
    });
    let user = ada_with_an_order(&app);
    for fault in ["uow.after_prepare", "db2.commit"] {
        app.faults.arm(fault, FaultAction::Error);
        app.delete(&format!("/users/{user}"))
            .assert_error(500, "internal");
        app.faults.disarm_all();
        assert_eq!(
            app.prepared_transactions(),
            Vec::<String>::new(),
            "failed at {fault}: left prepared"
        );
        app.order(user).item("pen").cents(5).create();
    }
    assert_eq!((app.count_users(), app.count_orders()), (1, 3));
    app.assert_pools_idle();
    assert_eq!(app.idle_in_transaction(), 0);
}

/// An order for a user whose deletion is prepared in db1 waits for the deletion's
/// outcome, and is then refused: the prepared deletion keeps its exclusive lock on the
/// user's row. (MariaDB releases a prepared XA branch's shared and gap locks at `XA
/// PREPARE`, MDEV-26682; were the row's lock released too, the order's locking read would
/// find the user still there and leave an order of a deleted user.)
fn an_order_for_a_user_whose_deletion_is_prepared_waits_and_is_refused(stack: Stack) {
    let app = spawn_app(stack);
    let user = ada_with_an_order(&app);
    app.faults
        .arm("uow.after_prepare", FaultAction::Sleep(1500));
    std::thread::scope(|scope| {
        let deletion = scope.spawn(|| app.delete(&format!("/users/{user}")));
        prepared_deletion(&app, || true);
        let order = app.post(
            "/orders",
            json!({"user_id": user, "item": "late", "quantity": 1, "amount_cents": 1}),
        );
        order.assert_error(422, "unknown_user");
        deletion.join().unwrap().assert_no_content();
    });
    app.faults.disarm_all();
    assert_eq!(app.orphan_orders(), Vec::<i64>::new());
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
}

/// A deletion whose instance is taken for dead while it waits between prepare and
/// decision (here: a recovery's "abort" is written under its gid) loses the race for
/// the decision. Nothing is deleted, the answer is 503 with Retry-After (a retry is
/// safe), and the retry succeeds.
fn a_decision_that_loses_to_a_recovery_is_503_and_writes_nothing(stack: Stack) {
    let app = spawn_app(stack);
    let user = ada_with_an_order(&app);
    app.faults
        .arm("uow.after_prepare", FaultAction::Sleep(1500));
    std::thread::scope(|scope| {
        let deletion = scope.spawn(|| app.delete(&format!("/users/{user}")));
        let gid = prepared_deletion(&app, || true);
        crate::helpers::execute(
            &app.databases.db2,
            &format!(
                "INSERT INTO multidb_decisions (gid, outcome, redo, created_at) \
                 VALUES ('{gid}', 'abort', NULL, CURRENT_TIMESTAMP)"
            ),
        );
        let response = deletion.join().unwrap();
        response.assert_error(503, "database_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
    });
    app.faults.disarm_all();
    assert_eq!(app.prepared_transactions(), Vec::<String>::new());
    assert_eq!((app.count_users(), app.count_orders()), (1, 1));
    assert_eq!(app.delete(&format!("/users/{user}")).status, 204);
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
}

/// A deletion decided in db2 whose db1 half then fails — on SQLite its commit and the
/// immediate redo, on PostgreSQL `COMMIT PREPARED` on both connections tried — is not
/// reported as done. db1 still shows the user until recovery finishes the deletion; on
/// SQLite, where nothing holds the user's row meanwhile, the user takes no new order.
fn a_decided_deletion_whose_db1_half_failed_is_not_success(stack: Stack) {
    let app = spawn_app(stack);
    let user = ada_with_an_order(&app);
    // Without two-phase commit db1's half is its own commit, redone at once if lost.
    let failing = if stack.db1.features().two_phase_commit {
        ["uow.finish_prepared"].as_slice()
    } else {
        ["db1.commit", "uow.redo"].as_slice()
    };
    for point in failing {
        app.faults.arm(point, FaultAction::Error);
    }
    let response = app.delete(&format!("/users/{user}"));
    response.assert_error(503, "database_unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    app.faults.disarm_all();

    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    // (Where db1 prepares, the prepared deletion holds the user's row: an order waits
    // for it.)
    if !stack.db1.features().two_phase_commit {
        app.post(
            "/orders",
            json!({"user_id": user, "item": "pen", "quantity": 1, "amount_cents": 5}),
        )
        .assert_error(422, "unknown_user");
    }

    let report = app.databases.cross.recover().expect("recovery");
    assert_eq!(report.redone + report.committed, 1, "{report:?}");
    assert_eq!(app.get(&format!("/users/{user}")).status, 404);
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
}

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres, mysql, mysql_sqlite, sqlite_mysql, mysql_postgres, postgres_mysql] =>
    a_decided_deletion_whose_db1_half_failed_is_not_success,
);

/// A decided deletion can be finished by someone else before its coordinator gets to
/// it: another instance's recovery that took this one for dead (here: `COMMIT PREPARED`
/// run from outside while the coordinator waits after the decision). The coordinator
/// then finds the prepared transaction gone — settled as decided — and answers 204, not
/// 503 for work that is done.
fn a_deletion_finished_by_someone_else_is_still_a_success(stack: Stack) {
    let app = spawn_app(stack);
    let db1 = app.postgres_database(1).expect("db1 on PostgreSQL");
    let user = ada_with_an_order(&app);
    app.faults
        .arm("uow.after_decision", FaultAction::Sleep(1500));
    std::thread::scope(|scope| {
        let deletion = scope.spawn(|| app.delete(&format!("/users/{user}")));
        // Once decided: the decision is the last thing before the pause.
        let gid = prepared_deletion(&app, || decisions_recorded(&app) > 0);
        crate::helpers::execute_in(&db1, &format!("COMMIT PREPARED '{gid}'"));
        deletion.join().unwrap().assert_no_content();
    });
    app.faults.disarm_all();
    assert_eq!(app.get(&format!("/users/{user}")).status, 404);
    assert_eq!((app.count_users(), app.count_orders()), (0, 0));
}

/// Decisions recorded in db2.
fn decisions_recorded(app: &TestApp) -> i64 {
    crate::helpers::count(&app.databases.db2, "multidb_decisions")
}

// Where db1 can prepare. Only a server's db2 lets a recovery's decision in while the
// coordinator's transaction is open; SQLite's db2 write lock makes the coordinator
// always win. On MySQL nobody else can finish a prepared transaction while the
// connection that prepared it lives (XAER_NOTA), so "finished by someone else" is
// PostgreSQL's case only.
on_stacks!([postgres, postgres_sqlite] =>
    an_order_whose_db1_session_dies_is_not_orphaned_by_a_deletion,
    a_deletion_finished_by_someone_else_is_still_a_success,
);
on_stacks!([postgres, postgres_sqlite, mysql, mysql_sqlite, mysql_postgres] =>
    a_failed_deletion_settles_on_its_own_connections,
);
on_stacks!([postgres, mysql, mysql_postgres] => a_decision_that_loses_to_a_recovery_is_503_and_writes_nothing);
on_stacks!([postgres, postgres_sqlite, mysql, mysql_sqlite, mysql_postgres] =>
    an_order_for_a_user_whose_deletion_is_prepared_waits_and_is_refused,
);
