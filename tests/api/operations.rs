//! `GET /metrics` (API.md, "Operations endpoints"): the series exist with their labels
//! after traffic, route labels are templates, pools show what they hold, and a scrape
//! never waits for a database.

use std::time::Duration;

use multidb::db::Read;
use serde_json::json;

use crate::helpers::metrics::{self, assert_value, value, Sample};
use crate::helpers::{eventually, spawn_app_with, Stack, TestApp};

fn scrape(app: &TestApp) -> Vec<Sample> {
    metrics::scrape(app.get("/metrics"))
}

fn every_series_is_there_with_its_labels_after_traffic(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 3;
        settings.db1.pool.min_idle = 1;
    });
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    app.order(user).create();
    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    assert_eq!(app.get(&format!("/users/{user}/summary")).status, 200);
    assert_eq!(app.get("/no/such/route/12345").status, 404);
    assert_eq!(
        app.request("PUT", &format!("/users/{user}"), None).status,
        405
    );
    app.delete(&format!("/users/{user}")).assert_no_content();
    assert_eq!(app.get(&format!("/users/{user}")).status, 404);

    let samples = scrape(&app);
    let requests = "http_requests_total";
    let user_route = [("method", "GET"), ("route", "/users/{id}")];
    assert_value(
        &samples,
        requests,
        &[user_route[0], user_route[1], ("status", "200")],
        1.0,
    );
    assert_value(
        &samples,
        requests,
        &[user_route[0], user_route[1], ("status", "404")],
        1.0,
    );
    assert_value(
        &samples,
        requests,
        &[
            ("method", "PUT"),
            ("route", "/users/{id}"),
            ("status", "405"),
        ],
        1.0,
    );
    assert_value(
        &samples,
        requests,
        &[("method", "POST"), ("route", "/orders"), ("status", "201")],
        1.0,
    );
    assert_value(
        &samples,
        requests,
        &[("method", "GET"), ("route", "unmatched"), ("status", "404")],
        1.0,
    );
    // Never a raw path: a client must not be able to make series without end.
    for sample in &samples {
        if let Some(route) = sample.labels.get("route") {
            assert!(
                route == "unmatched" || !route.chars().any(|c| c.is_ascii_digit()),
                "a raw path as a label: {sample:?}"
            );
        }
    }
    let duration = "http_request_duration_seconds";
    assert_value(&samples, &format!("{duration}_count"), &user_route, 2.0);
    let sum = value(&samples, &format!("{duration}_sum"), &user_route).unwrap();
    assert!(sum > 0.0, "{sum}");
    assert_value(
        &samples,
        &format!("{duration}_bucket"),
        &[user_route[0], user_route[1], ("le", "+Inf")],
        2.0,
    );

    for db in ["db1", "db2"] {
        let idle = value(
            &samples,
            "db_pool_connections",
            &[("db", db), ("state", "idle")],
        );
        assert!(idle.is_some_and(|idle| idle >= 1.0), "{db} idle: {idle:?}");
        assert_value(
            &samples,
            "db_pool_connections",
            &[("db", db), ("state", "in_use")],
            0.0,
        );
        let waited = value(&samples, "db_pool_wait_seconds_count", &[("db", db)]);
        assert!(waited.is_some_and(|n| n >= 3.0), "{db} waits: {waited:?}");
        assert_value(&samples, "db_pool_timeouts_total", &[("db", db)], 0.0);
    }
    assert_value(&samples, "db_pool_max_connections", &[("db", "db1")], 3.0);

    assert_value(
        &samples,
        "cross_commit_total",
        &[("outcome", "committed")],
        1.0,
    );
    assert_value(
        &samples,
        "cross_commit_total",
        &[("outcome", "rolled_back")],
        0.0,
    );
    assert_value(
        &samples,
        "cross_commit_total",
        &[("outcome", "in_doubt")],
        0.0,
    );
    for action in ["committed", "rolled_back", "redone", "failed"] {
        assert_value(
            &samples,
            "recovery_actions_total",
            &[("action", action)],
            0.0,
        );
    }
    assert_value(&samples, "cross_commit_in_doubt", &[], 0.0);
}

/// A pool held exhausted shows in its gauges and its timeout counter, and `/metrics`
/// answers meanwhile without a connection: the other pool is held too, and a checkout
/// would wait ten minutes (longer than the test client waits).
fn an_exhausted_pool_shows_in_the_gauges_and_the_timeout_counter(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 1;
        settings.db1.pool.min_idle = 1;
        settings.db1.pool.checkout_timeout = Duration::from_millis(300);
        settings.db2.pool.max_size = 1;
        settings.db2.pool.min_idle = 1;
        settings.db2.pool.checkout_timeout = Duration::from_secs(600);
    });
    let held = app.databases.db1.begin::<Read>().unwrap();
    app.get("/users/1")
        .assert_error(503, "database_unavailable");
    let held_too = app.databases.db2.begin::<Read>().unwrap();

    let samples = scrape(&app);
    assert_value(
        &samples,
        "db_pool_connections",
        &[("db", "db1"), ("state", "in_use")],
        1.0,
    );
    assert_value(
        &samples,
        "db_pool_connections",
        &[("db", "db1"), ("state", "idle")],
        0.0,
    );
    assert_value(&samples, "db_pool_max_connections", &[("db", "db1")], 1.0);
    assert_value(&samples, "db_pool_timeouts_total", &[("db", "db1")], 1.0);
    assert_value(&samples, "db_pool_timeouts_total", &[("db", "db2")], 0.0);
    assert_value(
        &samples,
        "http_requests_total",
        &[
            ("method", "GET"),
            ("route", "/users/{id}"),
            ("status", "503"),
        ],
        1.0,
    );

    drop((held, held_too));
    let samples = scrape(&app);
    assert_value(
        &samples,
        "db_pool_connections",
        &[("db", "db1"), ("state", "in_use")],
        0.0,
    );
    assert_value(
        &samples,
        "db_pool_connections",
        &[("db", "db1"), ("state", "idle")],
        1.0,
    );
}

/// Requests queued behind a busy pool: the one that gets its turn shows its wait, the one
/// whose turn does not come within the checkout timeout shows in the timeout counter and
/// with the whole timeout as its wait.
fn a_busy_pool_shows_the_waits_and_the_timeouts_of_the_requests_queued(stack: Stack) {
    use multidb::db::fault::FaultAction;
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 1;
        settings.db1.pool.min_idle = 1;
        settings.db1.pool.checkout_timeout = Duration::from_millis(300);
    });
    let before = scrape(&app);
    let waits_before = value(&before, "db_pool_wait_seconds_count", &[("db", "db1")]).unwrap();
    // A write holds db1's one connection for two seconds: long past the other request's
    // 300 ms, however slowly that one is sent.
    app.faults.arm("db1.commit", FaultAction::Sleep(2000));
    let url = format!("{}/users", app.address);
    let writer = std::thread::spawn(move || {
        ureq::post(&url)
            .send_json(json!({"email": "slow@example.com", "name": "Slow"}))
            .map(|response| response.status())
            .map_err(|error| error.to_string())
    });
    eventually("the write holding db1's connection", || {
        (app.databases.db1.status().idle == 0).then_some(())
    });
    app.get("/users/1")
        .assert_error(503, "database_unavailable");
    assert_eq!(writer.join().unwrap().unwrap(), 201);
    app.faults.disarm_all();

    let samples = scrape(&app);
    assert_value(&samples, "db_pool_timeouts_total", &[("db", "db1")], 1.0);
    let waits = value(&samples, "db_pool_wait_seconds_count", &[("db", "db1")]).unwrap();
    assert_eq!(waits - waits_before, 2.0, "one sample per request");
    let bucket = |le| {
        value(
            &samples,
            "db_pool_wait_seconds_bucket",
            &[("db", "db1"), ("le", le)],
        )
        .unwrap()
    };
    // The refused request waited the whole 300 ms: above 0.25 s, within 0.5 s.
    assert_eq!(bucket("0.5") - bucket("0.25"), 1.0);
}

/// Cross-database writes that fail before their decision count as rolled back; the
/// request's answer and the counts agree.
fn a_failed_cross_database_write_counts_as_rolled_back(stack: Stack) {
    use multidb::db::fault::FaultAction;
    let app = spawn_app_with(stack, |_| {});
    let user = app.create_user("bea@example.com", "Bea")["id"]
        .as_i64()
        .unwrap();
    app.faults.arm("uow.after_work", FaultAction::Error);
    app.delete(&format!("/users/{user}"))
        .assert_error(500, "internal");
    app.faults.disarm_all();
    app.delete(&format!("/users/{user}")).assert_no_content();

    let samples = scrape(&app);
    assert_value(
        &samples,
        "cross_commit_total",
        &[("outcome", "rolled_back")],
        1.0,
    );
    assert_value(
        &samples,
        "cross_commit_total",
        &[("outcome", "committed")],
        1.0,
    );
    assert_eq!(
        app.post(
            "/orders",
            json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1})
        )
        .status,
        422
    );
}

/// A request cut short by its deadline is counted under its route, although the request
/// was dropped before it was answered.
fn a_request_past_its_deadline_is_counted_under_its_route(stack: Stack) {
    use multidb::db::fault::FaultAction;
    let app = spawn_app_with(stack, |settings| {
        settings.request_timeout = Duration::from_millis(200);
    });
    app.faults.arm("db1.commit", FaultAction::Sleep(600));
    let late = app.post(
        "/users",
        json!({"email": "late@example.com", "name": "Late"}),
    );
    late.assert_error(503, "database_unavailable");
    assert!(
        late.header("x-request-id").is_some(),
        "the deadline's answer has an id too"
    );
    app.faults.disarm_all();
    // The commit goes on after the answer; wait for its connection to come back.
    eventually("db1's connection back", || {
        let status = app.databases.db1.status();
        (status.idle == status.connections).then_some(())
    });
    assert_value(
        &scrape(&app),
        "http_requests_total",
        &[("method", "POST"), ("route", "/users"), ("status", "503")],
        1.0,
    );
}

on_every_backend!(
    a_busy_pool_shows_the_waits_and_the_timeouts_of_the_requests_queued,
    a_request_past_its_deadline_is_counted_under_its_route,
    every_series_is_there_with_its_labels_after_traffic,
    an_exhausted_pool_shows_in_the_gauges_and_the_timeout_counter,
    a_failed_cross_database_write_counts_as_rolled_back,
);

/// The process behind the service (memory, CPU, file descriptors, threads) and the build
/// it runs, for a dashboard beside the request series. (The tests' process here: the
/// app runs in it.)
#[test]
fn the_process_and_the_build_are_described() {
    let app = spawn_app_with(Stack::sqlite(), |_| {});
    let samples = scrape(&app);
    let at_least = |name: &str, floor: f64| {
        let found = value(&samples, name, &[]);
        assert!(found.is_some_and(|v| v >= floor), "{name}: {found:?}");
    };
    at_least("process_resident_memory_bytes", 1024.0 * 1024.0);
    at_least("process_virtual_memory_bytes", 1024.0 * 1024.0);
    at_least("process_open_fds", 3.0);
    at_least("process_max_fds", 3.0);
    at_least("process_threads", 2.0);
    at_least("process_cpu_seconds_total", 0.0);
    // After 2024-01-01: a real clock reading, not a zero.
    at_least("process_start_time_seconds", 1_704_067_200.0);
    assert_value(
        &samples,
        "multidb_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
}
