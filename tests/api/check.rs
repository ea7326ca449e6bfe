//! `multidb check` through the real binary: exit 0 and a clean report on a healthy pair
//! of databases; on a broken one exit 1 with each problem — orders whose user does not
//! exist, order totals that disagree with the orders, pending migrations, a crashed deletion left in doubt (a user awaiting its redo
//! when db1 cannot prepare, a prepared transaction when it can) under an expired lease —
//! and exit 3 when a database cannot be reached. It only reads.

use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::crash::{create, environment, kill_and_let_its_lease_expire, start};
use crate::helpers::{ChildServer, Stack, Storage};

fn multidb(storage: &Storage, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multidb"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(environment(storage))
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run multidb")
}

/// `multidb check --json ARGS…`: its exit status and report.
fn check(storage: &Storage, args: &[&str]) -> (i32, Value) {
    let output = multidb(storage, &[&["check", "--json"][..], args].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "not a report: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().expect("an exit status"), report)
}

fn order(server: &ChildServer, user: i64) {
    create(
        server,
        "/orders",
        json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1}),
    );
}

fn problems(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|problem| problem.as_str().unwrap().to_owned())
        .collect()
}

/// `count` orders of one cent for `user`, who has none yet, with their totals: as the
/// service would have written them, but for a user it does not know.
fn insert_orphans(storage: &Storage, user: i64, count: usize) {
    for _ in 0..count {
        insert_order_behind_the_back(storage, user);
    }
    storage.execute(
        2,
        &format!(
            "INSERT INTO user_order_totals (user_id, order_count, total_cents) \
             VALUES ({user}, {count}, {count})"
        ),
    );
}

/// An order of one cent for `user`, written without its totals.
fn insert_order_behind_the_back(storage: &Storage, user: i64) {
    storage.execute(
        2,
        &format!(
            "INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) \
             VALUES ({user}, 'stray', 1, 1, CURRENT_TIMESTAMP)"
        ),
    );
}

/// Five users with orders, looked up two at a time: clean. Then orders of users that do
/// not exist, between and after the real ones: every one found, in as many steps, and
/// the same in the report for a person.
fn orders_without_a_user_are_found_in_bounded_steps(stack: Stack) {
    let storage = Storage::create(stack);
    let server = start(&storage, None);
    let users: Vec<i64> = (0..5)
        .map(|n| {
            create(
                &server,
                "/users",
                json!({"email": format!("u{n}@example.com"), "name": "U"}),
            )
        })
        .collect();
    for &user in &users {
        order(&server, user);
    }
    order(&server, users[0]);
    let (status, report) = check(&storage, &["--batch", "2"]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["healthy"], true);
    assert!(problems(&report).is_empty());
    assert_eq!(report["orphan_orders"]["users_scanned"], 5);
    assert_eq!(report["orphan_orders"]["batches"], 3);
    assert_eq!(report["orphan_orders"]["orders"], 0);
    assert_eq!(report["in_doubt"]["prepared_count"], 0);
    assert_eq!(report["in_doubt"]["awaiting_redo_count"], 0);
    for database in report["migrations"].as_array().unwrap() {
        assert_eq!(database["application"]["pending"], json!([]));
    }

    // A user id between the real ones (deleted behind the service's back) and one
    // beyond them.
    let deleted = users[2];
    storage.execute(1, &format!("DELETE FROM users WHERE id = {deleted}"));
    let beyond = users[4] + 1000;
    insert_orphans(&storage, beyond, 3);
    let (status, report) = check(&storage, &["--batch", "2"]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(report["healthy"], false);
    assert_eq!(report["orphan_orders"]["users"], 2);
    assert_eq!(report["orphan_orders"]["orders"], 4);
    assert_eq!(
        report["orphan_orders"]["listed"],
        json!([{"user_id": deleted, "orders": 1}, {"user_id": beyond, "orders": 3}])
    );
    assert_eq!(
        problems(&report),
        [format!(
            "4 orders in db2 belong to 2 users missing from db1 (first: user {deleted} with 1 order)"
        )]
    );
    let person = multidb(&storage, &["check"]);
    assert_eq!(person.status.code(), Some(1));
    let text = String::from_utf8_lossy(&person.stdout);
    assert!(
        text.starts_with("1 problem:\n  - 4 orders in db2"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  user {beyond}: 3 orders")),
        "{text}"
    );
    drop(server);
    storage.remove();
}

on_stacks!([sqlite, postgres, mysql, postgres_sqlite, sqlite_postgres, mysql_sqlite, sqlite_mysql, mysql_postgres, postgres_mysql] => orders_without_a_user_are_found_in_bounded_steps);

/// Order totals (what a summary reads) that disagree with the orders, made behind the
/// service's back, looked at two users at a time: a total changed, a count changed,
/// totals deleted, an order written without its totals, and totals of a user without
/// orders beyond every user with orders (the scan's last range). Each is found and
/// listed; a user whose orders were all deleted keeps totals of zero, which agree.
fn order_totals_that_disagree_with_the_orders_are_found(stack: Stack) {
    let storage = Storage::create(stack);
    let server = start(&storage, None);
    let users: Vec<i64> = (0..6)
        .map(|n| {
            create(
                &server,
                "/users",
                json!({"email": format!("t{n}@example.com"), "name": "T"}),
            )
        })
        .collect();
    for &user in &users {
        order(&server, user);
        order(&server, user);
    }
    // All of users[5]'s orders deleted, one at a time: totals of zero remain.
    let listed = server.request("GET", &format!("/orders?user_id={}", users[5]), None);
    for order in listed.body["items"].as_array().expect("items") {
        let gone = server.request("DELETE", &format!("/orders/{}", order["id"]), None);
        assert_eq!(gone.status, 204, "{}", gone.text);
    }
    let (status, report) = check(&storage, &["--batch", "2"]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["order_totals"]["users"], 0, "{report:#}");

    let execute = |sql: String| storage.execute(2, &sql);
    execute(format!(
        "UPDATE user_order_totals SET total_cents = 7 WHERE user_id = {}",
        users[0]
    ));
    execute(format!(
        "UPDATE user_order_totals SET order_count = 3 WHERE user_id = {}",
        users[1]
    ));
    execute(format!(
        "DELETE FROM user_order_totals WHERE user_id = {}",
        users[2]
    ));
    insert_order_behind_the_back(&storage, users[3]);
    let beyond = users[5] + 1000;
    execute(format!(
        "INSERT INTO user_order_totals (user_id, order_count, total_cents) VALUES ({beyond}, 1, 5)"
    ));

    let (status, report) = check(&storage, &["--batch", "2"]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(report["orphan_orders"]["users"], 0, "{report:#}");
    assert_eq!(report["order_totals"]["users"], 5, "{report:#}");
    let row = |user: i64, orders: i64, cents: i64, recorded: Value, recorded_cents: Value| {
        json!({"user_id": user, "orders": orders, "orders_total_cents": cents,
               "recorded_orders": recorded, "recorded_total_cents": recorded_cents})
    };
    assert_eq!(
        report["order_totals"]["listed"],
        json!([
            row(users[0], 2, 2, json!(2), json!(7)),
            row(users[1], 2, 2, json!(3), json!(2)),
            row(users[2], 2, 2, Value::Null, Value::Null),
            row(users[3], 3, 3, json!(2), json!(2)),
            row(beyond, 0, 0, json!(1), json!(5)),
        ])
    );
    assert_eq!(
        problems(&report),
        [format!(
            "the order totals of 5 users disagree with their orders (first: user {} has 2 orders worth 2 cents, the totals say 2 orders worth 7 cents): orders written behind the service's back or by a build older than the totals (docs/operations.md)",
            users[0]
        )]
    );
    let person = multidb(&storage, &["check"]);
    assert_eq!(person.status.code(), Some(1));
    let text = String::from_utf8_lossy(&person.stdout);
    assert!(
        text.contains(&format!(
            "  user {}: 2 orders worth 2 cents; totals: none\n",
            users[2]
        )),
        "{text}"
    );

    // The summary of a user whose totals are missing still counts every order.
    let summary = server.request("GET", &format!("/users/{}/summary", users[2]), None);
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(summary.body["order_count"], 2, "{}", summary.text);
    assert_eq!(summary.body["total_cents"], 2, "{}", summary.text);
}

on_stacks!([sqlite, postgres, mysql] => order_totals_that_disagree_with_the_orders_are_found);

/// Databases never migrated: each is named with what to run, and nothing is created.
fn databases_not_migrated_are_reported_and_left_alone(stack: Stack) {
    let storage = Storage::create(stack);
    let (status, report) = check(&storage, &[]);
    assert_eq!(status, 1, "{report:#}");
    let problems = problems(&report);
    assert_eq!(problems.len(), 2, "{problems:?}");
    for (problem, name) in problems.iter().zip(["db1", "db2"]) {
        assert!(problem.starts_with(name), "{problem}");
        assert!(
            problem.contains("does not exist yet") || problem.contains("pending"),
            "{problem}"
        );
    }
    assert_eq!(report["orphan_orders"], Value::Null);
    assert_eq!(report["in_doubt"], Value::Null);
    // Looking created nothing: the same report again, still nothing applied.
    let (_, again) = check(&storage, &[]);
    assert_eq!(again["migrations"], report["migrations"]);
    storage.remove();
}

on_stacks!([sqlite, postgres, mysql] => databases_not_migrated_are_reported_and_left_alone);

/// An instance killed in the middle of deleting a user: while it lives, the write in
/// doubt is listed but young work of a live instance is no problem (unless older than
/// `--in-doubt-after`); once its lease expired, its lease and the write are problems —
/// on db1 without two-phase commit, as a user awaiting the redo of their deletion;
/// with it, as a prepared transaction. After a restart recovers it, the check is clean.
fn a_crashed_deletion_is_reported_until_recovered(stack: Stack) {
    let storage = Storage::create(stack);
    let prepares = storage.postgres_name(1).is_some() || storage.mysql_name(1).is_some();
    let point = if prepares {
        "after_prepare"
    } else {
        "after_decision"
    };
    let server = start(&storage, Some(&format!("uow.{point}=pause")));
    let user = create(
        &server,
        "/users",
        json!({"email": "doomed@example.com", "name": "Doomed"}),
    );
    order(&server, user);
    let deletion = server.request_in_background("DELETE", &format!("/users/{user}"));
    assert!(server.wait_for_stderr(&format!("multidb fault pause: uow.{point}")));

    let (status, report) = check(&storage, &["--in-doubt-after", "3600"]);
    assert_eq!(status, 0, "live and young: {report:#}");
    let in_doubt = &report["in_doubt"];
    let listed = if prepares {
        assert_eq!(in_doubt["prepared_count"], 1, "{report:#}");
        &in_doubt["prepared"][0]
    } else {
        assert_eq!(in_doubt["awaiting_redo_count"], 1, "{report:#}");
        assert_eq!(report["users_awaiting_redo"][0]["user_id"], user);
        &in_doubt["awaiting_redo"][0]
    };
    assert_eq!(listed["owner"]["expired"], false, "{report:#}");
    assert!(listed["owner"]["host"].is_string(), "{report:#}");
    // MySQL tells the age of a prepared transaction only once no connection holds it
    // (see the XA module), so while its instance lives it shows as 0 s old there.
    if storage.mysql_name(1).is_none() {
        let (status, report) = check(&storage, &["--in-doubt-after", "0"]);
        assert_eq!(status, 1, "older than 0 s: {report:#}");
    }

    kill_and_let_its_lease_expire(server);
    deletion.join().unwrap();
    let (status, report) = check(&storage, &["--in-doubt-after", "3600"]);
    assert_eq!(status, 1, "{report:#}");
    let expired = report["expired_leases_with_work"].as_array().unwrap();
    assert_eq!(expired.len(), 1, "{report:#}");
    assert_eq!(expired[0]["expired"], true);
    assert!(
        problems(&report)
            .iter()
            .any(|problem| problem.contains("expired with cross-database writes in doubt")),
        "{report:#}"
    );
    if !prepares {
        assert_eq!(report["users_awaiting_redo"][0]["user_id"], user);
    }

    // A restart resolves it before it serves.
    drop(start(&storage, None));
    let (status, report) = check(&storage, &[]);
    assert_eq!(status, 0, "{report:#}");
    storage.remove();
}

on_stacks!([sqlite, postgres, mysql, postgres_sqlite, sqlite_postgres] => a_crashed_deletion_is_reported_until_recovered);

#[test]
fn an_unreachable_database_exits_3_saying_why() {
    let storage = Storage::create(Stack::sqlite());
    let output = Command::new(env!("CARGO_BIN_EXE_multidb"))
        .args(["check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL_1", storage.raw_url(1))
        .env(
            "DATABASE_URL_2",
            "postgres://nobody:secret@127.0.0.1:9/none",
        )
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run multidb");
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{said}");
    assert!(
        said.contains("multidb: cannot check: DATABASE_URL_2"),
        "{said}"
    );
    assert!(!said.contains("secret"), "{said}");
    storage.remove();
}
