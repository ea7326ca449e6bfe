//! Cross-database writes are all-or-nothing even when the process is killed (`kill -9`)
//! at any step of the commit protocol: after a restart, both databases show all of the
//! write or none of it, and no prepared transaction is left behind.

use crate::helpers::metrics::{assert_value, scrape, value, Sample};
use crate::helpers::{eventually, ChildServer, Stack, Storage};
use serde_json::json;

/// The protocol's steps, in order, and whether a crash there must end with the write
/// done (the decision record is the commit point).
const AFTER_WORK: (&str, bool) = ("after_work", false);
const AFTER_PREPARE: (&str, bool) = ("after_prepare", false);
const AFTER_DECISION: (&str, bool) = ("after_decision", true);
const AFTER_COMMIT: (&str, bool) = ("after_commit", true);

/// Leases as short as allowed, so that a killed instance's are soon expired.
pub(crate) const LEASE_MS: u64 = 300;

pub(crate) fn environment(storage: &Storage) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL_1", storage.raw_url(1).to_owned()),
        ("DATABASE_URL_2", storage.raw_url(2).to_owned()),
        ("INSTANCE_LEASE_MS", LEASE_MS.to_string()),
    ]
}

/// Kills `server` and waits out its lease: its work left in doubt may now be resolved
/// by any instance. (Its last renewal was sent before the kill, and the lease is timed
/// by the database's clock on this same machine.)
pub(crate) fn kill_and_let_its_lease_expire(server: ChildServer) {
    server.kill();
    std::thread::sleep(std::time::Duration::from_millis(LEASE_MS + 200));
}

pub(crate) fn start(storage: &Storage, faults: Option<&str>) -> ChildServer {
    let faults = faults.map(|faults| ("MULTIDB_FAULTS", faults));
    start_with(storage, faults.as_slice())
}

pub(crate) fn start_with(storage: &Storage, extra: &[(&'static str, &str)]) -> ChildServer {
    let mut env = environment(storage);
    env.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    ChildServer::start(&env)
}

fn metrics(server: &ChildServer) -> Vec<Sample> {
    scrape(server.request("GET", "/metrics", None))
}

pub(crate) fn create(server: &ChildServer, path: &str, body: serde_json::Value) -> i64 {
    let response = server.request("POST", path, Some(body));
    assert_eq!(response.status, 201, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

fn order_count(server: &ChildServer, user: i64) -> usize {
    let response = server.request("GET", &format!("/orders?user_id={user}"), None);
    assert_eq!(response.status, 200, "{}", response.text);
    response.body["items"].as_array().unwrap().len()
}

/// Kills the server while it deletes a user with two orders, stopped at `point`.
fn deleting_a_user_survives_a_crash(stack: Stack, (point, committed): (&str, bool)) {
    let storage = Storage::create(stack);
    let server = start(&storage, Some(&format!("uow.{point}=pause")));
    let doomed = create(
        &server,
        "/users",
        json!({"email": "doomed@example.com", "name": "Doomed"}),
    );
    let bystander = create(
        &server,
        "/users",
        json!({"email": "stays@example.com", "name": "Stays"}),
    );
    for user in [doomed, doomed, bystander] {
        create(
            &server,
            "/orders",
            json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1}),
        );
    }

    let deletion = server.request_in_background("DELETE", &format!("/users/{doomed}"));
    assert!(
        server.wait_for_stderr(&format!("multidb fault pause: uow.{point}")),
        "the deletion never reached {point}"
    );
    let a_prepares = storage.postgres_name(1).is_some() || storage.mysql_name(1).is_some();
    if a_prepares && point == AFTER_PREPARE.0 {
        assert_eq!(storage.prepared_transactions().len(), 1, "nothing prepared");
    }
    kill_and_let_its_lease_expire(server);
    deletion.join().unwrap();

    // The restart resolves what the crash left in doubt before it serves.
    let server = start(&storage, None);
    let user_status = server
        .request("GET", &format!("/users/{doomed}"), None)
        .status;
    let orders_left = order_count(&server, doomed);
    if committed {
        assert_eq!(
            (user_status, orders_left),
            (404, 0),
            "killed at {point}: the write must be complete"
        );
    } else {
        assert_eq!(
            (user_status, orders_left),
            (200, 2),
            "killed at {point}: the write must be undone"
        );
    }
    assert_eq!(
        server
            .request("GET", &format!("/users/{bystander}"), None)
            .status,
        200
    );
    assert_eq!(order_count(&server, bystander), 1);
    assert_eq!(
        storage.prepared_transactions(),
        Vec::<String>::new(),
        "left prepared"
    );
    // And the service goes on writing to both databases.
    let response = server.request("DELETE", &format!("/users/{bystander}"), None);
    assert_eq!(response.status, 204, "{}", response.text);
    assert_eq!(order_count(&server, bystander), 0);
    drop(server);
    storage.remove();
}

macro_rules! crash_at_every_step_on_every_stack {
    ($($stack:ident => $make:expr),* $(,)?) => {
        $(
            mod $stack {
                use super::*;

                fn run(step: (&str, bool)) {
                    let stack: Option<Stack> = $make;
                    if let Some(stack) = stack {
                        deleting_a_user_survives_a_crash(stack, step);
                    }
                }

                #[test]
                fn killed_after_the_work() {
                    run(AFTER_WORK)
                }

                #[test]
                fn killed_after_prepare() {
                    run(AFTER_PREPARE)
                }

                #[test]
                fn killed_after_the_decision() {
                    run(AFTER_DECISION)
                }

                #[test]
                fn killed_after_the_commit() {
                    run(AFTER_COMMIT)
                }
            }
        )*
    };
}

crash_at_every_step_on_every_stack!(
    sqlite => Some(Stack::sqlite()),
    postgres => Stack::postgres(),
    postgres_sqlite => Stack::postgres_sqlite(),
    sqlite_postgres => Stack::sqlite_postgres(),
    mysql => Stack::mysql(),
    mysql_sqlite => Stack::mysql_sqlite(),
    sqlite_mysql => Stack::sqlite_mysql(),
    mysql_postgres => Stack::mysql_postgres(),
    postgres_mysql => Stack::postgres_mysql(),
);

/// A second instance on the same databases leaves the first one's prepared transaction
/// alone while the first is alive, and resolves it once it is gone.
fn an_instance_never_resolves_a_live_instances_transaction(stack: Stack) {
    let storage = Storage::create(stack);
    let first = start(&storage, Some("uow.after_prepare=pause"));
    let user = create(
        &first,
        "/users",
        json!({"email": "held@example.com", "name": "Held"}),
    );
    create(
        &first,
        "/orders",
        json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1}),
    );
    let deletion = first.request_in_background("DELETE", &format!("/users/{user}"));
    assert!(first.wait_for_stderr("multidb fault pause: uow.after_prepare"));
    assert_eq!(storage.prepared_transactions().len(), 1);

    let mut env = environment(&storage);
    env.push(("RECOVERY_INTERVAL_MS", "100".into()));
    env.push(("RUST_LOG", "multidb=info".into()));
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let second = ChildServer::start(&env);
    assert!(
        second.wait_for_stderr("skipped_live: 1"),
        "the second instance never looked"
    );
    assert!(
        second.wait_for_stderr("skipped_live: 1"),
        "the second instance looked only once"
    );
    assert_eq!(
        storage.prepared_transactions().len(),
        1,
        "a live instance's transaction was resolved"
    );
    // The look after the first pass has set the in-doubt gauges.
    let samples = metrics(&second);
    assert_value(&samples, "cross_commit_in_doubt", &[], 1.0);
    let oldest = value(&samples, "cross_commit_in_doubt_oldest_seconds", &[]).unwrap();
    // XA gives no age of a prepared transaction its live connection still holds (see
    // `mysql::two_phase`): MySQL's gauge follows only those no connection holds.
    if storage.mysql_name(1).is_none() {
        assert!(oldest > 0.0, "{oldest}");
    }

    first.kill();
    deletion.join().unwrap();
    assert!(
        second.wait_for_stderr("rolled_back: 1"),
        "the dead instance's transaction stayed in doubt"
    );
    assert_eq!(storage.prepared_transactions(), Vec::<String>::new());
    assert_value(
        &metrics(&second),
        "recovery_actions_total",
        &[("action", "rolled_back")],
        1.0,
    );
    eventually("the in-doubt gauge back at 0", || {
        (value(&metrics(&second), "cross_commit_in_doubt", &[]) == Some(0.0)).then_some(())
    });
    assert_eq!(
        second
            .request("GET", &format!("/users/{user}"), None)
            .status,
        200
    );
    assert_eq!(order_count(&second, user), 1);
    drop(second);
    storage.remove();
}

on_stacks!([postgres, mysql] => an_instance_never_resolves_a_live_instances_transaction);

/// A recovery that cannot do its work is counted as failed, and the in-doubt gauges go
/// on following what is in doubt meanwhile: the "in doubt for over a minute" and the
/// "recovery failing" alerts of the README both see it.
#[test]
fn a_failing_recovery_is_counted_and_the_in_doubt_gauges_still_follow() {
    let storage = Storage::create(Stack::sqlite());
    let server = start_with(
        &storage,
        &[
            ("RECOVERY_INTERVAL_MS", "100"),
            ("RUST_LOG", "multidb=info"),
        ],
    );
    // Every pass now fails at its first statement, the claim of its turn.
    storage.execute(2, "DROP TABLE multidb_recovery_turn");
    // A decision two minutes old still waiting for its redo in db1 (SQLite).
    storage.execute(
        2,
        "INSERT INTO multidb_decisions (gid, outcome, redo, created_at) \
         VALUES ('multidb:1:0:stuck', 'commit', 'delete_user:999999', \
                 strftime('%Y-%m-%d %H:%M:%f', 'now', '-120 seconds'))",
    );
    let samples = eventually("a failed pass counted and a look after it", || {
        let samples = metrics(&server);
        let failed = value(&samples, "recovery_actions_total", &[("action", "failed")])?;
        let in_doubt = value(&samples, "cross_commit_in_doubt", &[])?;
        (failed >= 1.0 && in_doubt == 1.0).then_some(samples)
    });
    let oldest = value(&samples, "cross_commit_in_doubt_oldest_seconds", &[]).unwrap();
    assert!(oldest > 60.0, "{oldest}");
    drop(server);
    storage.remove();
}

/// db1 on SQLite, which cannot prepare: an instance dies after the deletion of a user was
/// decided in db2 but before db1 committed it. Until a recovery redoes it, db1 still
/// shows the user, and another instance must refuse orders for them; the recovery then
/// removes the user, and with the decision, whatever in db2 still refers to the user
/// (here an order written behind the service's back, as an older version could).
fn a_deletion_waiting_for_its_redo_takes_no_orders(stack: Stack) {
    let storage = Storage::create(stack);
    let dying = start(&storage, Some("uow.after_decision=pause"));
    // Recovers only at start-up, within this test.
    let other = start_with(&storage, &[("RECOVERY_INTERVAL_MS", "3600000")]);
    let user = create(
        &dying,
        "/users",
        json!({"email": "doomed@example.com", "name": "Doomed"}),
    );
    let order = json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1});
    create(&dying, "/orders", order.clone());

    // An instance that looks often, while the dying one's lease lives: it leaves the
    // decision alone and shows it in doubt. (Started first: it could not start while
    // the dying instance holds db1's write lock.)
    let watcher = start_with(
        &storage,
        &[
            ("RECOVERY_INTERVAL_MS", "100"),
            ("RUST_LOG", "multidb=info"),
        ],
    );
    let deletion = dying.request_in_background("DELETE", &format!("/users/{user}"));
    assert!(dying.wait_for_stderr("multidb fault pause: uow.after_decision"));
    for _ in 0..2 {
        assert!(
            watcher.wait_for_stderr("skipped_live: 1"),
            "the watcher never looked"
        );
    }
    let samples = metrics(&watcher);
    assert_value(&samples, "cross_commit_in_doubt", &[], 1.0);
    let oldest = value(&samples, "cross_commit_in_doubt_oldest_seconds", &[]).unwrap();
    assert!(oldest > 0.0, "{oldest}");
    drop(watcher);
    kill_and_let_its_lease_expire(dying);
    deletion.join().unwrap();

    assert_eq!(
        other.request("GET", &format!("/users/{user}"), None).status,
        200,
        "db1's half is not redone yet"
    );
    let refused = other.request("POST", "/orders", Some(order));
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (422, Some("unknown_user")),
        "an order for a user whose deletion is decided: {}",
        refused.text
    );
    storage.execute(
        2,
        &format!(
            "INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) \
             VALUES ({user}, 'sneaked', 1, 1, CURRENT_TIMESTAMP)"
        ),
    );
    drop(other);

    let recovered = start(&storage, None);
    assert_eq!(
        recovered
            .request("GET", &format!("/users/{user}"), None)
            .status,
        404
    );
    assert_eq!(
        order_count(&recovered, user),
        0,
        "an order outlived its user"
    );
    drop(recovered);
    storage.remove();
}

on_stacks!([sqlite, sqlite_postgres] => a_deletion_waiting_for_its_redo_takes_no_orders);
