//! Black-box tests of several instances behind haproxy and PgBouncer
//! (`deploy/local/cluster.sh`): kills, pauses, skewed clocks, rolling restarts, restarts
//! of PgBouncer and of each PostgreSQL server, start-up races and frozen databases.
//!
//! Built only with `--features cluster-tests`; run one at a time:
//! `cargo test --features cluster-tests --test cluster -- --test-threads=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod load;
mod restarts;
mod silent;

use std::sync::Arc;
use std::time::Duration;

use harness::{children, eventually, order_for, signal, Cluster, LEASE, RECOVERY_INTERVAL};
use serde_json::json;

/// Users `1..=SEEDED` with two orders each, created through haproxy.
pub const SEEDED: i64 = 20;

pub fn seed(cluster: &Cluster) {
    for n in 1..=SEEDED {
        assert_eq!(cluster.create_user(&format!("seed{n}@example.com")), n);
        cluster.create_order(n);
        cluster.create_order(n);
    }
}

/// The lease ids instance `i` has held, from the leases table (its pid is in `host`).
fn leases_of(cluster: &Cluster, i: usize) -> Vec<i64> {
    cluster.ids(
        2,
        &format!(
            "SELECT id FROM multidb_instances WHERE host LIKE '% pid {}'",
            cluster.instance_pid(i)
        ),
    )
}

/// A prepared transaction of instance `i`, once there is one.
fn prepared_by(cluster: &Cluster, i: usize) -> String {
    let leases = leases_of(cluster, i);
    eventually(&format!("instance {i} prepared a transaction"), || {
        cluster.prepared_transactions().into_iter().find(|gid| {
            gid.split(':')
                .nth(1)
                .and_then(|lease| lease.parse().ok())
                .is_some_and(|lease: i64| leases.contains(&lease))
        })
    })
    .0
}

/// For each user: both halves of a deletion happened, or neither.
fn assert_no_partial_deletion(cluster: &Cluster, users: &[i64]) {
    for user in users {
        let in_db1 = cluster.count(
            1,
            &format!("SELECT count(*) AS n FROM users WHERE id = {user}"),
        );
        let orders = cluster.count(
            2,
            &format!("SELECT count(*) AS n FROM orders WHERE user_id = {user}"),
        );
        assert!(
            (in_db1, orders) == (1, 2) || (in_db1, orders) == (0, 0),
            "user {user}: {in_db1} in db1 with {orders} orders in db2"
        );
    }
}

/// Three instances started at the same moment on empty databases, migrating through
/// PgBouncer: each migration — the application's, and the layer's own schema — is
/// applied once, by one of them.
#[test]
fn instances_starting_together_apply_each_migration_once() {
    let cluster = Cluster::up("migrations", 18500, &[]);
    let logs: String = (1..=3).map(|i| cluster.instance_log(i)).collect();
    for n in 1..=2_u8 {
        let dir = format!("{}/migrations_db{n}/postgres", env!("CARGO_MANIFEST_DIR"));
        let expected = std::fs::read_dir(&dir).unwrap().count();
        let recorded = cluster.count(n, "SELECT count(*) AS n FROM __diesel_schema_migrations");
        assert_eq!(recorded, i64::try_from(expected).unwrap(), "db{n}");
        let layer = cluster.count(n, "SELECT count(*) AS n FROM multidb_layer_migrations");
        assert_eq!(layer, 1, "db{n}: the layer's schema versions");
        assert_eq!(
            logs.matches(&format!("db{n}: applied migration")).count(),
            expected + 1,
            "db{n}: applied more or less than once:\n{logs}"
        );
    }
    assert_eq!(cluster.request("GET", "/users", None).status, 200);
}

/// kill -9 of an instance in the middle of cross-database deletes under load: the other
/// instances resolve its prepared transactions once its lease has expired, and no
/// deletion is left half done.
#[test]
fn a_killed_instances_deletions_are_finished_by_the_others() {
    // Instance 1 waits after each PREPARE, so that the kill finds one prepared.
    let cluster = Arc::new(Cluster::up(
        "kill",
        18520,
        &[(1, "MULTIDB_FAULTS=uow.after_prepare=sleep:2000")],
    ));
    seed(&cluster);
    let users: Vec<i64> = (1..=SEEDED).collect();
    let deletions = load::Load::start(&cluster, 4, |cluster, n| {
        // Client c (n counts from c * 1,000,000) deletes users c+1, c+5, …, c+17 in turn:
        // each user is deleted by one client only, again and again (404 once gone).
        let user = i64::try_from(n % 1_000_000 % 5 * 4 + n / 1_000_000 + 1).unwrap();
        let path = format!("/users/{user}");
        (
            format!("DELETE {path}"),
            cluster.try_request("DELETE", &path, None),
        )
    });
    let gid = prepared_by(&cluster, 1);
    signal(cluster.instance_pid(1), "KILL");
    // Measured while the load goes on: the survivors' deletions of the same users wait
    // for the killed instance's locks until its transactions are resolved.
    let (_, resolved_after) = eventually("the others resolved the killed instance's work", || {
        (!cluster.prepared_transactions().contains(&gid)).then_some(())
    });
    let outcomes = deletions.stop();
    assert!(!outcomes.is_empty());
    eprintln!(
        "prepared transaction of the killed instance resolved {resolved_after:?} after the kill (lease {LEASE:?}, recovery interval {RECOVERY_INTERVAL:?})"
    );
    // Renewed every third of the lease, the lease ends at least two thirds of it after
    // the kill; and within a lease and a recovery interval, plus the test's own polling
    // and the pass itself.
    assert!(
        resolved_after >= LEASE * 2 / 3,
        "resolved before the killed instance's lease could have expired"
    );
    assert!(
        resolved_after <= LEASE + RECOVERY_INTERVAL + Duration::from_secs(2),
        "resolved only {resolved_after:?} after the kill"
    );
    eventually("no transaction left prepared", || {
        cluster.prepared_transactions().is_empty().then_some(())
    });
    cluster.assert_consistent();
    assert_no_partial_deletion(&cluster, &users);
    // The survivors go on deleting.
    for user in users {
        let answer = cluster.request("DELETE", &format!("/users/{user}"), None);
        assert!(matches!(answer.status, 204 | 404), "{}", answer.text);
    }
    cluster.assert_consistent();
}

/// An instance frozen (SIGSTOP) after PREPARE for longer than its lease: another
/// instance resolves its transaction meanwhile; woken up, it answers its request
/// cleanly, both databases agree, and it goes on serving under a new lease.
#[test]
fn a_paused_instance_wakes_up_to_a_resolved_transaction_and_a_clean_answer() {
    let cluster = Arc::new(Cluster::up(
        "pause",
        18540,
        &[(1, "MULTIDB_FAULTS=uow.after_prepare=sleep:1000")],
    ));
    let user = cluster.create_user("paused@example.com");
    cluster.create_order(user);
    cluster.create_order(user);
    let deletion = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            cluster.request_instance(1, "DELETE", &format!("/users/{user}"), None)
        })
    };
    let gid = prepared_by(&cluster, 1);
    let pid = cluster.instance_pid(1);
    signal(pid, "STOP");
    let (_, resolved_after) = eventually(
        "another instance resolved the paused one's transaction",
        || (!cluster.prepared_transactions().contains(&gid)).then_some(()),
    );
    eprintln!("resolved {resolved_after:?} into the pause (lease {LEASE:?})");
    signal(pid, "CONT");

    let answer = deletion.join().unwrap();
    let in_db1 = cluster.count(
        1,
        &format!("SELECT count(*) AS n FROM users WHERE id = {user}"),
    );
    let orders = cluster.count(
        2,
        &format!("SELECT count(*) AS n FROM orders WHERE user_id = {user}"),
    );
    match answer.status {
        503 => {
            assert_eq!(
                answer.code(),
                Some("database_unavailable"),
                "{}",
                answer.text
            );
            assert!(answer.retry_after.is_some());
            assert_eq!((in_db1, orders), (1, 2), "a 503 wrote nothing");
        }
        204 => assert_eq!((in_db1, orders), (0, 0), "a 204 deleted both"),
        other => panic!("the woken instance answered {other}: {}", answer.text),
    }
    cluster.assert_consistent();
    let (_, _) = eventually("the woken instance took a new lease", || {
        cluster.instance_log(1).contains("lapsed").then_some(())
    });
    let retried = cluster.request_instance(1, "DELETE", &format!("/users/{user}"), None);
    assert!(matches!(retried.status, 204 | 404), "{}", retried.text);
    cluster.assert_consistent();
    assert_eq!(
        cluster.count(
            2,
            &format!("SELECT count(*) AS n FROM orders WHERE user_id = {user}")
        ),
        0
    );
}

/// Instances whose clocks are an hour off either way: decisions are dated and aged by
/// the database's clock, so a decision is neither misdated nor cleaned up before its
/// time, and a crash after the decision is still finished as decided.
#[test]
fn skewed_instance_clocks_never_touch_decisions() {
    let cluster = Cluster::up(
        "skew",
        18560,
        &[
            (
                1,
                "MULTIDB_TEST_CLOCK_SKEW_MS=-3600000 MULTIDB_FAULTS=uow.after_decision=pause",
            ),
            (2, "MULTIDB_TEST_CLOCK_SKEW_MS=3600000"),
            (3, "MULTIDB_TEST_CLOCK_SKEW_MS=3600000"),
        ],
    );
    // The skew is real: what instance 1 dates with its own clock is an hour behind.
    let created = cluster.request_instance(
        1,
        "POST",
        "/users",
        Some(json!({"email": "skewed@example.com", "name": "Skewed"})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let user = created.id();
    assert_eq!(
        cluster.count(
            1,
            &format!("SELECT count(*) AS n FROM users WHERE id = {user} AND created_at < (now() AT TIME ZONE 'UTC') - interval '50 minutes'")
        ),
        1,
        "MULTIDB_TEST_CLOCK_SKEW_MS had no effect"
    );
    cluster.create_order(user);
    cluster.create_order(user);

    // Answered only by the kill: instance 1 stops for good after the decision.
    let deletion = {
        let port: u16 = cluster.var("INSTANCE1_PORT").parse().unwrap();
        std::thread::spawn(move || {
            let url = format!("http://127.0.0.1:{port}/users/{user}");
            ureq::delete(&url).call().err()
        })
    };
    eventually("instance 1 decided and stopped", || {
        cluster
            .instance_log(1)
            .contains("multidb fault pause: uow.after_decision")
            .then_some(())
    });
    assert_eq!(
        cluster.count(
            2,
            "SELECT count(*) AS n FROM multidb_decisions WHERE abs(extract(epoch FROM created_at - (now() AT TIME ZONE 'UTC'))) < 60"
        ),
        1,
        "the decision is dated by db2's clock, not by the instance's"
    );
    signal(cluster.instance_pid(1), "KILL");
    assert!(
        deletion.join().unwrap().is_some(),
        "the killed instance answered"
    );

    eventually("the deletion was finished as decided", || {
        cluster.prepared_transactions().is_empty().then_some(())
    });
    assert_no_partial_deletion(&cluster, &[user]);
    assert_eq!(
        cluster.count(
            1,
            &format!("SELECT count(*) AS n FROM users WHERE id = {user}")
        ),
        0
    );
    // Several more passes of instances an hour ahead: the decision is kept for its ten
    // minutes by db2's clock.
    std::thread::sleep(RECOVERY_INTERVAL * 4);
    assert_eq!(
        cluster.count(2, "SELECT count(*) AS n FROM multidb_decisions"),
        1,
        "a decision was cleaned up early"
    );
    cluster.assert_consistent();
}

/// A rolling restart (SIGTERM one instance at a time, wait for it to be back) under
/// steady load through haproxy: no client sees a failure.
#[test]
fn a_rolling_restart_under_load_fails_no_request() {
    let cluster = Arc::new(Cluster::up("rolling", 18580, &[]));
    seed(&cluster);
    let load = load::Load::start(&cluster, 4, restarts::mixed_step);
    for i in 1..=3 {
        cluster.script(&["stop-instance", &i.to_string()]);
        // (It returns once haproxy sees the instance up again.)
        cluster.script(&["start-instance", &i.to_string()]);
    }
    let outcomes = load.stop();
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.succeeded()).collect();
    eprintln!("{} requests during the rolling restart", outcomes.len());
    assert!(outcomes.len() > 100, "too little load: {}", outcomes.len());
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        load::describe(&failed)
    );
    cluster.assert_consistent();
}

/// A database that hangs instead of refusing (its server SIGSTOPped): every request is
/// answered within the request deadline with 503 `database_unavailable`, and service
/// comes back by itself once the server runs again.
#[test]
fn a_frozen_database_gets_503_within_the_deadline_and_service_resumes() {
    let cluster = Arc::new(Cluster::up("frozen", 18620, &[]));
    let user = cluster.create_user("frozen@example.com");
    cluster.create_order(user);
    // Never deleted: the deletion of `user` answered 503 at the deadline may still
    // complete once the server runs again (the 503 does not exclude it).
    let bystander = cluster.create_user("bystander@example.com");
    let postmaster = cluster.postmaster_pid(1);
    let frozen: Vec<i32> = std::iter::once(postmaster)
        .chain(children(postmaster))
        .collect();
    for pid in &frozen {
        signal(*pid, "STOP");
    }
    let requests = [
        ("GET", format!("/users/{user}"), None),
        ("GET", format!("/users/{user}/summary"), None),
        ("POST", "/orders".to_owned(), Some(order_for(user))),
        ("DELETE", format!("/users/{user}"), None),
    ];
    // Several at once per instance, more than its pool: none may hang.
    std::thread::scope(|scope| {
        let answers: Vec<_> = (1..=3)
            .flat_map(|i| requests.iter().map(move |request| (i, request)))
            .map(|(i, (method, path, body))| {
                let cluster = &cluster;
                scope.spawn(move || {
                    (
                        method,
                        path,
                        cluster.request_instance(i, method, path, body.clone()),
                    )
                })
            })
            .collect();
        for answer in answers {
            let (method, path, answer) = answer.join().unwrap();
            assert_eq!(
                (answer.status, answer.code(), answer.retry_after.is_some()),
                (503, Some("database_unavailable"), true),
                "{method} {path} while db1 is frozen: {}",
                answer.text
            );
        }
    });
    let through_haproxy = cluster.request("GET", &format!("/users/{user}"), None);
    assert_eq!(
        through_haproxy.code(),
        Some("database_unavailable"),
        "{}",
        through_haproxy.text
    );
    for pid in &frozen {
        signal(*pid, "CONT");
    }
    let (_, resumed_after) = eventually("service resumed on every instance", || {
        (1..=3)
            .all(|i| {
                cluster
                    .request_instance(i, "GET", &format!("/users/{bystander}"), None)
                    .status
                    == 200
                    && cluster
                        .request_instance(i, "POST", "/orders", Some(order_for(bystander)))
                        .status
                        == 201
            })
            .then_some(())
    });
    eprintln!("service resumed {resumed_after:?} after the server ran again");
    // The deletion answered 503 at the deadline either completed meanwhile or not.
    let deleted = cluster.request("DELETE", &format!("/users/{user}"), None);
    assert!(matches!(deleted.status, 204 | 404), "{}", deleted.text);
    cluster.assert_consistent();
}

/// The statement timeout holds through PgBouncer in transaction mode, where nothing is
/// `SET` for a session: it is `SET LOCAL` in every transaction. A write waiting for a row
/// lock held from outside is cancelled by it and answered 503, long before the request
/// deadline; once the lock is gone the same write succeeds.
#[test]
fn statement_timeouts_hold_through_pgbouncer() {
    let cluster = Cluster::up("timeout", 18720, &[(1, "DB1_STATEMENT_TIMEOUT_MS=500")]);
    let user = cluster.create_user("locked@example.com");
    let mut holder = cluster.db(1);
    {
        use diesel::connection::SimpleConnection;
        holder
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM users WHERE id = {user} FOR UPDATE"
            ))
            .unwrap();
    }
    let rename = json!({"name": "Renamed"});
    let waited =
        cluster.request_instance(1, "PATCH", &format!("/users/{user}"), Some(rename.clone()));
    assert_eq!(
        (waited.status, waited.code(), waited.retry_after.is_some()),
        (503, Some("database_unavailable"), true),
        "{}",
        waited.text
    );
    let log = cluster.instance_log(1);
    assert!(
        log.contains("canceling statement due to statement timeout"),
        "not cancelled by the statement timeout:\n{log}"
    );
    assert!(
        !log.contains("REQUEST_TIMEOUT_MS"),
        "answered by the request deadline instead"
    );
    drop(holder);
    let renamed = cluster.request_instance(1, "PATCH", &format!("/users/{user}"), Some(rename));
    assert_eq!(renamed.status, 200, "{}", renamed.text);
}
