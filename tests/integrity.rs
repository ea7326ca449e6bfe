//! A failed request writes nothing; concurrent orders and deletions leave no orphans.

mod common;

use std::sync::Barrier;

use common::{spawn_app, Stack, TestApp};
use multidb::db::fault::FaultAction;
use serde_json::json;

/// Everything the databases hold, as the API shows it.
fn snapshot(app: &TestApp) -> (String, String) {
    let users = app.get("/users?limit=500");
    let orders = app.get("/orders?limit=500");
    assert_eq!((users.status, orders.status), (200, 200));
    (users.text, orders.text)
}

fn failed_writes_are_rolled_back_in_every_database_they_touched(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    let order = app.create_order(ada, "book", 1, 1999)["id"]
        .as_i64()
        .unwrap();
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
    assert_eq!(
        snapshot(&app),
        before,
        "a failed request changed db1 or db2"
    );

    // db1 fails after its writes, before its commit.
    app.faults.disarm_all();
    app.faults.arm("db1.commit", FaultAction::Error);
    app.post("/users", json!({"email": "bob@example.com", "name": "Bob"}))
        .assert_error(500, "internal");
    app.patch(&format!("/users/{ada}"), json!({"name": "Ada L"}))
        .assert_error(500, "internal");
    assert_eq!(
        snapshot(&app),
        before,
        "a failed request changed db1 or db2"
    );

    app.faults.disarm_all();
    app.create_order(ada, "pen", 1, 5);
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
    app.create_order(ada, "book", 1, 1999);
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
    app.create_order(ada, "pen", 1, 5);
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
    app.create_order(ada, "book", 1, 1);
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
