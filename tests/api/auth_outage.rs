//! Authentication while db1, the key store, is down or slow (README, "Authentication"):
//! routes that need only db2 keep serving keys this instance verified recently, a
//! revocation is not outlived by a slow reply, and a stale key is looked up once.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use multidb::api_keys::{ApiKey, Scope};
use multidb::config::Auth;
use multidb::config::Settings;
use multidb::db::Read;
use serde_json::json;

use crate::auth::{bearer, create_key};
use crate::helpers::{
    eventually, execute_in, id_of, send, spawn_app_behind_proxy, spawn_app_with, Proxy, Response,
    Stack, TestApp,
};

/// How long the service trusts a key's row (`FRESH_FOR` in `http::auth`).
const FRESH_FOR: Duration = Duration::from_secs(4);

fn with_auth(settings: &mut Settings, grace_seconds: u64) {
    settings.auth = Auth::Required;
    settings.auth_offline_grace = Duration::from_secs(grace_seconds);
    settings.db1.pool.checkout_timeout = Duration::from_millis(500);
}

/// The app, with db1 behind a proxy when it is on PostgreSQL.
fn app_on(stack: Stack, grace_seconds: u64) -> (TestApp, Option<Arc<Proxy>>) {
    let customize = |settings: &mut Settings| with_auth(settings, grace_seconds);
    if stack.db1 == multidb::db::Backend::Postgres {
        let (app, proxy) = spawn_app_behind_proxy(stack, 1, customize);
        (app, Some(proxy))
    } else {
        (spawn_app_with(stack, customize), None)
    }
}

fn get(app: &TestApp, path: &str, token: &str) -> Response {
    app.request_with("GET", path, &[("Authorization", &bearer(token))], None)
}

/// db1 unreachable (PostgreSQL: the proxy in front of it killed; SQLite: every
/// connection of its pool taken), `AUTH=required`, a write key verified a moment before:
/// the routes of db2 keep serving it, reads and writes, for the offline grace, and
/// only then answer 503; a key never verified is refused; `/health` names db1.
fn db2_routes_keep_serving_a_verified_key_while_db1_is_down(stack: Stack) {
    const GRACE: u64 = 9;
    let (app, proxy) = app_on(stack, GRACE);
    let (_, token) = create_key(&app, "writer", Scope::Write);
    let (_, never_used) = create_key(&app, "never used", Scope::Write);
    let authorization = bearer(&token);
    let headers = [("Authorization", authorization.as_str())];
    let user = app.request_with(
        "POST",
        "/users",
        &headers,
        Some((
            "application/json",
            json!({"email": "ada@example.com", "name": "Ada"})
                .to_string()
                .into_bytes(),
        )),
    );
    assert_eq!(user.status, 201, "{}", user.text);
    let order_body =
        json!({"user_id": id_of(&user.body), "item": "book", "quantity": 1, "amount_cents": 1});
    let mut orders = Vec::new();
    for _ in 0..2 {
        let order = app.request_with(
            "POST",
            "/orders",
            &headers,
            Some(("application/json", order_body.to_string().into_bytes())),
        );
        assert_eq!(order.status, 201, "{}", order.text);
        orders.push(id_of(&order.body));
    }
    let verified = eventually("a lookup of the key after its creation", || {
        let at = Instant::now();
        (get(&app, "/orders", &token).status == 200).then_some(at)
    });

    // db1 goes away.
    let held = match &proxy {
        Some(proxy) => {
            proxy.kill();
            Vec::new()
        }
        None => (0..app.databases.db1.max_size())
            .map(|_| app.databases.db1.begin::<Read>().unwrap())
            .collect(),
    };
    // Past the row's freshness: every request now asks db1 first.
    std::thread::sleep(FRESH_FOR + Duration::from_millis(200));
    for path in ["/orders".to_owned(), format!("/orders/{}", orders[0])] {
        let response = get(&app, &path, &token);
        assert_eq!(response.status, 200, "GET {path}: {}", response.text);
    }
    let deleted = app.request_with("DELETE", &format!("/orders/{}", orders[1]), &headers, None);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    // On SQLite db1 is only out of connections for requests, which `/health`, on the
    // connection kept for upkeep, does not count as down.
    let health = app.get("/health");
    let db1_health = if proxy.is_some() { "unavailable" } else { "ok" };
    assert_eq!(
        health.body["databases"]["db1"], db1_health,
        "{}",
        health.text
    );
    assert_eq!(health.body["databases"]["db2"], "ok");
    // A key this instance has not verified cannot be let in.
    let unknown = get(&app, "/orders", &never_used);
    unknown.assert_error(503, "database_unavailable");
    assert!(unknown.header("retry-after").is_some());

    // The grace is counted from the last lookup that db1 answered.
    std::thread::sleep(
        (verified + Duration::from_secs(GRACE)).saturating_duration_since(Instant::now()),
    );
    get(&app, "/orders", &token).assert_error(503, "database_unavailable");
    drop(held);
    if let Some(proxy) = &proxy {
        proxy.revive();
    }
    eventually("db1 back", || {
        (get(&app, "/orders", &token).status == 200).then_some(())
    });
}

on_every_stack!(db2_routes_keep_serving_a_verified_key_while_db1_is_down);

/// The app with db1 behind a proxy, and a read key whose row the app read once and has
/// just let go stale: the next request with it asks db1.
fn with_a_stale_key(stack: Stack) -> (TestApp, Arc<Proxy>, ApiKey, String) {
    let (app, proxy) = spawn_app_behind_proxy(stack, 1, |settings| {
        with_auth(settings, 300);
        settings.db1.pool.checkout_timeout = Duration::from_secs(10);
    });
    let (key, token) = create_key(&app, "reader", Scope::Read);
    assert_eq!(get(&app, "/orders", &token).status, 200);
    std::thread::sleep(FRESH_FOR + Duration::from_millis(200));
    (app, proxy, key, token)
}

/// `GET /orders` with `token`, sent from a thread of its own once `start` (if any) lets
/// it go.
fn get_orders_in_another_thread(
    app: &TestApp,
    token: &str,
    start: Option<Arc<Barrier>>,
) -> std::thread::JoinHandle<Response> {
    let (url, authorization) = (format!("{}/orders", app.address), bearer(token));
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new().build();
        if let Some(start) = start {
            start.wait();
        }
        send(
            &agent,
            "GET",
            &url,
            &[("Authorization", &authorization)],
            None,
        )
    })
}

/// db1's replies held 2.5 s; a key is revoked while a lookup of it is in flight. The row
/// that lookup brings back is trusted from when the lookup was sent, not from when its
/// reply came: 5 s after that lookup was sent, the key is refused.
fn a_revocation_is_not_outlived_by_a_slow_reply(stack: Stack) {
    let (app, proxy, key, token) = with_a_stale_key(stack);

    proxy.hold_replies(Duration::from_millis(2500));
    let sent = Instant::now();
    let in_flight = get_orders_in_another_thread(&app, &token, None);
    eventually("the key's lookup held by the proxy", || {
        (proxy.held() > 0).then_some(())
    });
    let db1 = app.postgres_database(1).unwrap();
    execute_in(
        &db1,
        &format!(
            "UPDATE api_keys SET revoked_at = now() WHERE id = '{}'",
            key.id
        ),
    );
    // Revoked after the lookup was sent: that request may still be let in.
    assert_eq!(in_flight.join().unwrap().status, 200);
    proxy.hold_replies(Duration::ZERO);

    std::thread::sleep((sent + Duration::from_secs(5)).saturating_duration_since(Instant::now()));
    get(&app, "/orders", &token).assert_error(401, "unauthorized");
}

/// 48 requests released together with one key whose row has just gone stale, db1
/// answering in 0.3 s: the key is looked up once, the others wait for that answer.
fn a_stale_key_is_looked_up_once_by_concurrent_requests(stack: Stack) {
    const REQUESTS: usize = 48;
    let (app, proxy, _, token) = with_a_stale_key(stack);

    proxy.hold_replies(Duration::from_millis(300));
    let before = proxy.requests();
    let start = Arc::new(Barrier::new(REQUESTS));
    let clients: Vec<_> = (0..REQUESTS)
        .map(|_| get_orders_in_another_thread(&app, &token, Some(start.clone())))
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap().status, 200);
    }
    let sent_to_db1 = proxy.requests() - before;
    // One lookup: a statement, sent in at most two writes (a first use prepares it).
    assert!(
        (1..=2).contains(&sent_to_db1),
        "{sent_to_db1} messages to db1 for {REQUESTS} requests with one key"
    );
}

on_stacks!([postgres, postgres_sqlite] =>
    a_revocation_is_not_outlived_by_a_slow_reply,
    a_stale_key_is_looked_up_once_by_concurrent_requests,
);
