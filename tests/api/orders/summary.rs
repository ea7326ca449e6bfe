//! GET /users/{id}/summary.

use super::*;

fn user_summary_lists_orders_newest_first_with_count_and_total(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    let mut adas = Vec::new();
    let mut bobs = Vec::new();
    for (n, amount) in [1999, 0, 4500, 1_000_000_000_000, 250]
        .into_iter()
        .enumerate()
    {
        adas.push(
            app.order(id_of(&ada))
                .item(&format!("ada {n}"))
                .cents(amount)
                .create(),
        );
        if n % 2 == 0 {
            bobs.push(
                app.order(id_of(&bob))
                    .item(&format!("bob {n}"))
                    .quantity(2)
                    .cents(amount + 1)
                    .create(),
            );
        }
    }

    let summary = get_summary(&app, id_of(&ada));
    assert_eq!(
        summary["user"],
        app.get(&format!("/users/{}", id_of(&ada))).body
    );
    let listed = items_of(&summary["orders"]);
    let listed_ids = ids_of(&listed);
    assert!(
        listed_ids.windows(2).all(|pair| pair[0] > pair[1]),
        "newest (highest id) first: {listed_ids:?}"
    );
    assert_eq!(summary["order_count"], 5);
    assert_eq!(summary["total_cents"], 1_000_000_006_749_i64);
    assert_summary(&app, &ada, &adas);
    assert_summary(&app, &bob, &bobs);

    // Deleting and adding orders shows up at once.
    let removed = adas.remove(3);
    let gone = app.delete(&format!("/orders/{}", id_of(&removed)));
    assert_eq!(gone.status, 204, "{}", gone.text);
    adas.push(app.order(id_of(&ada)).item("late").cents(1).create());
    assert_summary(&app, &ada, &adas);
    assert_summary(&app, &bob, &bobs);
    assert_no_orphans(&app);
}

fn user_summary_lists_the_newest_100_orders_but_counts_and_sums_all(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    let mut adas = Vec::new();
    let mut bobs = Vec::new();
    for n in 1..=130_i64 {
        // Large amounts: the total is far beyond 32 bits.
        let amount = 1_000_000_000_000 - n * 7;
        adas.push(
            app.order(id_of(&ada))
                .item(&format!("order {n}"))
                .quantity(n % 7 + 1)
                .cents(amount)
                .create(),
        );
        if n % 10 == 0 {
            bobs.push(
                app.order(id_of(&bob))
                    .item(&format!("bob {n}"))
                    .cents(n)
                    .create(),
            );
        }
        if [1, 99, 100, 101, 130].contains(&n) {
            assert_summary(&app, &ada, &adas);
        }
    }
    let summary = get_summary(&app, id_of(&ada));
    assert_eq!(items_of(&summary["orders"]).len(), 100);
    assert_eq!(summary["order_count"], 130);
    assert_eq!(
        summary["total_cents"],
        130 * 1_000_000_000_000_i64 - 7 * (130 * 131 / 2)
    );
    let listed = ids_of(&items_of(&summary["orders"]));
    let newest: Vec<i64> = ids_of(&adas[30..]).into_iter().rev().collect();
    assert_eq!(listed, newest, "the newest 100, newest first");

    assert_summary(&app, &bob, &bobs);
    assert_eq!(app.count_orders(), 143);
    assert_no_orphans(&app);
}

fn user_summary_of_a_user_without_orders_is_empty_and_missing_users_are_refused(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    app.order(id_of(&bob)).create();

    let summary = get_summary(&app, id_of(&ada));
    assert_eq!(
        summary,
        json!({ "user": ada, "orders": [], "order_count": 0, "total_cents": 0 })
    );

    let highest = id_of(&bob);
    for missing in [highest + 1, highest + 1000, i64::MAX] {
        assert_get_error(&app, &format!("/users/{missing}/summary"), 404, "not_found");
    }
    let deleted = app.delete(&format!("/users/{}", id_of(&bob)));
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_get_error(
        &app,
        &format!("/users/{}/summary", id_of(&bob)),
        404,
        "not_found",
    );
    for bad in BAD_IDS {
        assert_get_error(&app, &format!("/users/{bad}/summary"), 400, "bad_request");
    }
    assert_eq!(get_summary(&app, id_of(&ada)), summary);
    assert_no_orphans(&app);
}

/// A user's first orders arrive together, then more orders race deletions of earlier
/// ones: the totals (one row per user, written in each order's transaction) neither
/// lose an order nor are created twice, and the summary counts and sums exactly what
/// is there.
fn concurrent_orders_and_deletions_of_one_user_are_all_counted(stack: Stack) {
    const THREADS: usize = 8;
    const ORDERS_EACH: usize = 4;
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let user = id_of(&ada);
    let create_together = |round: usize| -> Vec<Value> {
        let barrier = std::sync::Barrier::new(THREADS);
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let (app, barrier) = (&app, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        (0..ORDERS_EACH)
                            .map(|n| {
                                let cents =
                                    i64::try_from(round * 1000 + thread * 10 + n).expect("small");
                                app.order(user).item("together").cents(cents).create()
                            })
                            .collect::<Vec<Value>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|thread| thread.join().expect("an ordering thread"))
                .collect()
        })
    };
    let mut orders = create_together(0);
    assert_eq!(orders.len(), THREADS * ORDERS_EACH);
    assert_totals(&app, user, &orders);

    // Half of them deleted while as many again are created.
    let (deleted, kept): (Vec<Value>, Vec<Value>) =
        orders.drain(..).partition(|order| id_of(order) % 2 == 0);
    let created = std::thread::scope(|scope| {
        for chunk in deleted.chunks(deleted.len().div_ceil(THREADS).max(1)) {
            let app = &app;
            scope.spawn(move || {
                for order in chunk {
                    let gone = app.delete(&format!("/orders/{}", id_of(order)));
                    assert_eq!(gone.status, 204, "{}", gone.text);
                }
            });
        }
        create_together(1)
    });
    orders = kept.into_iter().chain(created).collect();
    assert_totals(&app, user, &orders);
    assert_eq!(app.totals_disagreeing(), Vec::<String>::new());
}

/// First orders of a user that all fail at db2's commit, eight at a time: each had
/// created the user's totals in its transaction, and each rollback leaves the others
/// to create them again. Every one answers as its fault says (500), none as a deadlock
/// (503: InnoDB's duplicate-key locks deadlock two transactions waiting for a first
/// inserter that rolls back, unless they take turns), and nothing is left behind; then
/// orders commit and are counted.
fn first_orders_of_a_user_rolled_back_together_neither_deadlock_nor_count(stack: Stack) {
    const THREADS: usize = 8;
    const ORDERS_EACH: usize = 10;
    let app = spawn_app(stack);
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    app.faults
        .arm("db2.commit", multidb::db::fault::FaultAction::Error);
    let barrier = std::sync::Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (app, barrier) = (&app, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for n in 0..ORDERS_EACH {
                    let response = app.post(
                        "/orders",
                        json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 5}),
                    );
                    assert_eq!(
                        response.status, 500,
                        "order {n} of thread {thread}: {}",
                        response.text
                    );
                }
            });
        }
    });
    app.faults.disarm_all();
    assert_eq!(app.count_orders(), 0);
    assert_totals(&app, user, &[]);
    let orders: Vec<Value> = (0..3).map(|_| app.order(user).cents(5).create()).collect();
    assert_totals(&app, user, &orders);
}

fn assert_totals(app: &TestApp, user: i64, orders: &[Value]) {
    let summary = get_summary(app, user);
    let total: i64 = orders
        .iter()
        .map(|order| order["amount_cents"].as_i64().expect("amount_cents"))
        .sum();
    assert_eq!(summary["order_count"], orders.len(), "{summary}");
    assert_eq!(summary["total_cents"], total, "{summary}");
}

on_every_stack!(
    concurrent_orders_and_deletions_of_one_user_are_all_counted,
    first_orders_of_a_user_rolled_back_together_neither_deadlock_nor_count,
    user_summary_lists_orders_newest_first_with_count_and_total,
    user_summary_lists_the_newest_100_orders_but_counts_and_sums_all,
    user_summary_of_a_user_without_orders_is_empty_and_missing_users_are_refused,
);
