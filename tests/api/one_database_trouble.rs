//! One database's trouble stays its own: the scenarios of a review of leases, recovery
//! and safe retries, each as it was reproduced (same trigger, same settings).

use std::time::Duration;

use multidb::db::fault::FaultAction;
use multidb::db::idempotency;
use serde_json::json;

use crate::helpers::{
    admin_count, count, eventually, execute, execute_in, id_of, prepared_transactions,
    spawn_app_behind_proxy, spawn_app_with, ChildServer, ScratchDatabase, Stack, Storage,
};

/// db1 on PostgreSQL behind a proxy that holds its replies 8 s, db2 on SQLite (default
/// settings), one settled decision older than ten minutes: while a recovery pass waits
/// for db1 to list its prepared transactions before cleaning that decision, it holds
/// nothing of db2, so a deletion of an order (db2 only) goes through. (Before: the pass
/// held db2's write lock while it waited, and the deletion answered 503 after db2's
/// 5 s busy timeout.)
fn a_slow_db1_does_not_block_db2_writes_during_recovery(stack: Stack) {
    let (app, proxy) = spawn_app_behind_proxy(stack, 1, |_| {});
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let order = id_of(&app.order(user).create());
    execute(
        &app.databases.db2,
        "INSERT INTO multidb_decisions (gid, outcome, redo, created_at) \
         VALUES ('multidb:999:0:settled', 'commit', NULL, \
                 strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour'))",
    );

    proxy.hold_replies(Duration::from_secs(8));
    let cross = app.databases.cross.clone();
    let pass = std::thread::spawn(move || cross.recover());
    // The pass's second question to db1 is the one the cleaning waits for.
    eventually("the cleaning's question to db1 held", || {
        (proxy.held_in_all() >= 2 && proxy.held() > 0).then_some(())
    });
    app.delete(&format!("/orders/{order}")).assert_no_content();
    proxy.hold_replies(Duration::ZERO);
    pass.join().unwrap().unwrap();
    assert_eq!(count(&app.databases.db2, "multidb_decisions"), 0);
}

on_stacks!([postgres_sqlite] => a_slow_db1_does_not_block_db2_writes_during_recovery);

/// PostgreSQL for both, one connection for db1, and db2 refusing every decision (a
/// trigger that raises on insert): the deletion of a user fails, and the transaction
/// it prepared in db1 is rolled back at once on the coordinator's connection — an order
/// for that user is then taken, instead of waiting on the prepared transaction's lock.
fn a_decision_db2_refuses_rolls_back_the_prepared_transaction_at_once(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 1;
        settings.db1.pool.min_idle = 1;
    });
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    app.order(user).create();
    let db1 = app.postgres_database(1).unwrap();
    let db2 = app.postgres_database(2).unwrap();
    execute_in(
        &db2,
        "CREATE FUNCTION refuse_decisions() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'decisions refused'; END $$; \
         CREATE TRIGGER refuse_decisions BEFORE INSERT ON multidb_decisions \
         FOR EACH ROW EXECUTE FUNCTION refuse_decisions()",
    );
    let deletion = app.delete(&format!("/users/{user}"));
    deletion.assert_error(500, "internal");
    assert_eq!(prepared_transactions(&db1), Vec::<String>::new());
    app.order(user).item("pen").cents(5).create();
    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    execute_in(&db2, "DROP TRIGGER refuse_decisions ON multidb_decisions");
}

on_stacks!([postgres] => a_decision_db2_refuses_rolls_back_the_prepared_transaction_at_once);

/// An answer stored three days ago against a 24-hour TTL, and the periodic purge
/// deleting it between a retry's lookup and the retry's own expiry check: the answer
/// counts as absent (a new order, not a replay of the old one).
fn an_expired_answer_purged_mid_request_is_not_replayed(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_secs(24 * 3600);
    });
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let body =
        json!({"user_id": user, "item": "book", "quantity": 1, "amount_cents": 100}).to_string();
    let post = |app: &crate::helpers::TestApp| {
        app.request_with(
            "POST",
            "/orders",
            &[("Idempotency-Key", "kB")],
            Some(("application/json", body.clone().into_bytes())),
        )
    };
    let first = post(&app);
    assert_eq!(first.status, 201, "{}", first.text);
    let db2 = app.postgres_database(2).unwrap();
    execute_in(
        &db2,
        "UPDATE multidb_idempotency_keys SET created_at = created_at - INTERVAL '3 days'",
    );

    app.faults
        .arm("db2.idempotency_found", FaultAction::Sleep(3000));
    let retry = std::thread::scope(|scope| {
        let retry = scope.spawn(|| post(&app));
        eventually("the retry waiting after its lookup", || {
            let waiting = admin_count(&format!(
                "SELECT count(*) AS count FROM pg_stat_activity WHERE datname = '{db2}' \
                 AND state = 'idle in transaction' AND query LIKE '%multidb_idempotency_keys%'"
            ));
            (waiting > 0).then_some(())
        });
        let purged = idempotency::purge_expired(&app.databases.db2, Duration::from_secs(24 * 3600));
        assert_eq!(purged.unwrap(), 1);
        retry.join().unwrap()
    });
    app.faults.disarm_all();
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(
        retry.header("idempotent-replayed"),
        None,
        "an expired answer was replayed"
    );
    assert_ne!(id_of(&retry.body), id_of(&first.body));
    assert_eq!(app.count_orders(), 2);
}

on_stacks!([postgres, sqlite_postgres] => an_expired_answer_purged_mid_request_is_not_replayed);

/// Both databases on SQLite, the shortest lease (300 ms), a user with 400,000 orders:
/// the deletion outlives the lease many times over and still completes, and a deletion
/// of another order sent meanwhile waits its turn and completes too. (Before: the
/// commit asked for a lease again while its own session held db2's write lock, which
/// the renewal needed: 503 after 5 s, and the user could never be deleted.)
fn a_deletion_that_outlives_the_lease_completes_on_sqlite(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.instance_lease = Duration::from_millis(300);
        settings.db2.pool.checkout_timeout = Duration::from_secs(60);
    });
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let other = id_of(&app.create_user("bob@example.com", "Bob"));
    let kept = id_of(&app.order(other).item("pen").cents(5).create());
    let doomed = id_of(&app.order(other).item("cup").cents(5).create());
    execute(
        &app.databases.db2,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) \
             INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) \
             SELECT {user}, 'item', 1, 1, '2026-01-01 00:00:00' FROM n"
        ),
    );
    let (deletion, meanwhile) = std::thread::scope(|scope| {
        let deletion = scope.spawn(|| app.delete(&format!("/users/{user}")));
        // Sent while the deletion holds db2's write lock (or about to).
        std::thread::sleep(Duration::from_millis(100));
        let meanwhile = app.delete(&format!("/orders/{doomed}"));
        (deletion.join().unwrap(), meanwhile)
    });
    deletion.assert_no_content();
    meanwhile.assert_no_content();
    assert_eq!(app.get(&format!("/users/{user}")).status, 404);
    assert_eq!(app.count_orders(), 1);
    assert_eq!(app.get(&format!("/orders/{kept}")).status, 200);
}

on_stacks!([sqlite] => a_deletion_that_outlives_the_lease_completes_on_sqlite);

/// Both databases on SQLite, `INSTANCE_LEASE_MS=300` and a 500 ms busy timeout: an
/// order whose db2 transaction holds the write lock for 1.5 s (its commit slowed by a
/// fault point) does not send the lease's renewal into SQLite's busy handler to wait for
/// this very process: the renewal waits for the write, then goes through. (Before: it
/// waited out the busy timeout and failed, "cannot renew instance lease … database is
/// locked", and tried again only a third of a lease later.)
#[test]
fn the_lease_waits_for_its_own_process_write_instead_of_failing_on_sqlite() {
    let storage = Storage::create(Stack::sqlite());
    let server = ChildServer::start(&[
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        ("INSTANCE_LEASE_MS", "300"),
        ("DB2_BUSY_TIMEOUT_MS", "500"),
        ("MULTIDB_FAULTS", "db2.commit=sleep:1500"),
        ("RUST_LOG", "multidb=debug"),
    ]);
    let user = server.request(
        "POST",
        "/users",
        Some(json!({"email": "ada@example.com", "name": "Ada"})),
    );
    assert_eq!(user.status, 201, "{}", user.text);
    let order = server.request(
        "POST",
        "/orders",
        Some(json!({"user_id": id_of(&user.body), "item": "book", "quantity": 1, "amount_cents": 100})),
    );
    assert_eq!(order.status, 201, "{}", order.text);
    // A renewal after the write, which the server's log shows as it goes through.
    std::thread::sleep(Duration::from_millis(500));
    let lines = server.stderr_until_killed();
    let failed: Vec<_> = lines
        .iter()
        .filter(|line| line.contains("cannot renew instance lease"))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(
        lines
            .iter()
            .any(|line| line.contains("renewal waits for this process's write")),
        "the renewal never met the write"
    );
    storage.remove();
}

/// What a value far in the future stands for: a db2 clock that ran an hour fast when the
/// value was written, and was stepped back since.
#[derive(Debug, Clone, Copy)]
enum AheadByAnHour {
    /// The recovery turn's `next_pass_ms`.
    RecoveryTurn,
    /// The lease of the instance that died.
    Lease,
}

/// A prepared transaction left by a killed instance, with the recovery turn (or that
/// instance's lease) set an hour ahead by a clock since stepped back: it is resolved all
/// the same, as it is without the step. (Before: for as long as the step, and every
/// order for that user answered 503 meanwhile.)
fn a_clock_step_on_db2_does_not_stop_recovery(stack: Stack, ahead: AheadByAnHour) {
    let storage = Storage::create(stack);
    let lease_ms = match ahead {
        AheadByAnHour::RecoveryTurn => "300",
        // Long enough to set the row ahead after the kill, before it expires by itself.
        AheadByAnHour::Lease => "5000",
    };
    let env = |extra: &[(&'static str, &'static str)]| {
        let mut env = vec![
            ("DATABASE_URL_1", storage.raw_url(1)),
            ("DATABASE_URL_2", storage.raw_url(2)),
            ("INSTANCE_LEASE_MS", lease_ms),
        ];
        env.extend_from_slice(extra);
        env
    };
    let first = ChildServer::start(&env(&[("MULTIDB_FAULTS", "uow.after_prepare=pause")]));
    let user = first.request(
        "POST",
        "/users",
        Some(json!({"email": "held@example.com", "name": "Held"})),
    );
    assert_eq!(user.status, 201, "{}", user.text);
    let user = id_of(&user.body);
    let deletion = first.request_in_background("DELETE", &format!("/users/{user}"));
    assert!(first.wait_for_stderr("multidb fault pause: uow.after_prepare"));
    let db1 = &storage.postgres_names()[0];
    let db2 = &storage.postgres_names()[1];
    let second = ChildServer::start(&env(&[
        ("RECOVERY_INTERVAL_MS", "100"),
        ("RUST_LOG", "multidb=info"),
    ]));
    assert!(
        second.wait_for_stderr("skipped_live: 1"),
        "the second instance never looked"
    );

    let an_hour_ahead = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint + 3600000";
    match ahead {
        AheadByAnHour::RecoveryTurn => {
            execute_in(
                db2,
                &format!("UPDATE multidb_recovery_turn SET next_pass_ms = {an_hour_ahead}"),
            );
            first.kill();
        }
        AheadByAnHour::Lease => {
            first.kill();
            execute_in(
                db2,
                &format!(
                    "UPDATE multidb_instances SET lease_until_ms = {an_hour_ahead} \
                     WHERE lease_until_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
                ),
            );
        }
    }
    deletion.join().unwrap();
    eventually("the dead instance's prepared transaction resolved", || {
        prepared_transactions(db1).is_empty().then_some(())
    });
    let order = second.request(
        "POST",
        "/orders",
        Some(json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1})),
    );
    assert_eq!(order.status, 201, "{}", order.text);
    drop(second);
    storage.remove();
}

fn a_recovery_turn_set_ahead_by_a_clock_step_is_taken(stack: Stack) {
    a_clock_step_on_db2_does_not_stop_recovery(stack, AheadByAnHour::RecoveryTurn);
}

fn a_lease_set_ahead_by_a_clock_step_expires(stack: Stack) {
    a_clock_step_on_db2_does_not_stop_recovery(stack, AheadByAnHour::Lease);
}

on_stacks!([postgres] =>
    a_recovery_turn_set_ahead_by_a_clock_step_is_taken,
    a_lease_set_ahead_by_a_clock_step_expires,
);

/// db1 on a PostgreSQL server whose prepared-transaction slots are all taken: the
/// deletion of a user cannot be completed now, and is answered 503 with `Retry-After`
/// (it was 500 `internal`); once a slot is free, 204. db2 on SQLite: this server is
/// the test's alone.
#[test]
fn every_prepared_transaction_slot_taken_is_503_and_a_free_one_204() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    // A server whose `max_prepared_transactions` is 2.
    let Some(db1) =
        ScratchDatabase::on_server(crate::helpers::Server::PostgresWith2Slots, "few2pc")
    else {
        return;
    };
    let db1_url = db1.url.clone();
    let mut filler = diesel::PgConnection::establish(&db1_url).unwrap();
    {
        let app = spawn_app_with(Stack::sqlite(), |settings| {
            settings.db1.url = multidb::db::DatabaseUrl::parse(&db1_url).unwrap();
        });
        let user = id_of(&app.create_user("ada@example.com", "Ada"));
        app.order(user).create();
        for slot in ["filler_1", "filler_2"] {
            filler
                .batch_execute(&format!("BEGIN; PREPARE TRANSACTION '{slot}'"))
                .unwrap();
        }
        let response = app.delete(&format!("/users/{user}"));
        response.assert_error(503, "database_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_eq!((app.count_users(), app.count_orders()), (1, 1));

        filler
            .batch_execute("ROLLBACK PREPARED 'filler_1'")
            .unwrap();
        app.delete(&format!("/users/{user}")).assert_no_content();
        assert_eq!((app.count_users(), app.count_orders()), (0, 0));
        filler
            .batch_execute("ROLLBACK PREPARED 'filler_2'")
            .unwrap();
    }
}

/// One connection for db2's requests, held by an order whose commit a fault point slows
/// past the health probe's 1.5 s: `/health` still finds db2 answering, on the connection
/// kept for the service's own upkeep. (Before: the probe queued for the requests'
/// connection and reported db2 `unavailable`, 503.)
fn health_answers_while_requests_hold_every_connection(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db2.pool.max_size = 1;
        settings.db2.pool.min_idle = 1;
    });
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    app.faults.arm("db2.commit", FaultAction::Sleep(3000));
    std::thread::scope(|scope| {
        let order = scope.spawn(|| app.order(user).create());
        eventually("the order holding db2's one connection", || {
            (app.databases.db2.status().idle == 0).then_some(())
        });
        let health = app.get("/health");
        assert_eq!(health.status, 200, "{}", health.text);
        assert_eq!(health.body["databases"]["db2"], "ok");
        order.join().unwrap();
    });
    app.faults.disarm_all();
    assert_eq!(app.count_orders(), 1);
}

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    health_answers_while_requests_hold_every_connection,
);
