//! Safe retries across instances (README, "Safe retries"): two running binaries on the
//! same databases, one `Idempotency-Key` sent to both at once, make one user and one
//! order, and every answer is that creation's, byte for byte.

use std::sync::{Arc, Barrier};

use serde_json::{json, Value};

use crate::helpers::{send, ChildServer, Response, Stack, Storage};

/// Requests sent to each instance, all at once.
const PER_INSTANCE: usize = 5;

/// Sends `body` to `path` with `key`, `PER_INSTANCE` times to each server, all released
/// together.
fn send_at_once(servers: &[ChildServer; 2], path: &str, body: &Value, key: &str) -> Vec<Response> {
    let start = Arc::new(Barrier::new(2 * PER_INSTANCE));
    let senders: Vec<_> = (0..2 * PER_INSTANCE)
        .map(|n| {
            let start = start.clone();
            let url = format!("{}{path}", servers[n % 2].base_url());
            let (body, key) = (body.to_string().into_bytes(), key.to_owned());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                start.wait();
                send(
                    &agent,
                    "POST",
                    &url,
                    &[("Idempotency-Key", &key)],
                    Some(("application/json", body)),
                )
            })
        })
        .collect();
    senders
        .into_iter()
        .map(|sender| sender.join().unwrap())
        .collect()
}

/// One answer created, every other one its replay.
#[track_caller]
fn one_creation_and_its_replays(answers: &[Response]) -> i64 {
    for answer in answers {
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    let first = answers
        .iter()
        .filter(|answer| answer.header("idempotent-replayed").is_none())
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 1, "exactly one answer is not a replay");
    for answer in answers {
        assert_eq!(answer.text, first[0].text);
        assert_eq!(answer.header("location"), first[0].header("location"));
        if answer.header("idempotent-replayed").is_some() {
            assert_eq!(answer.header("idempotent-replayed"), Some("true"));
        }
    }
    first[0].body["id"].as_i64().unwrap()
}

fn items(server: &ChildServer, path: &str) -> Vec<Value> {
    let response = server.request("GET", path, None);
    assert_eq!(response.status, 200, "{}", response.text);
    response.body["items"].as_array().unwrap().clone()
}

fn one_key_sent_to_two_instances_at_once_creates_once(stack: Stack) {
    let storage = Storage::create(stack);
    let env = [
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        // Commits held a little, so that requests overlap; turns waited for generously,
        // so that on SQLite, where writes take turns, every request gets one.
        ("MULTIDB_FAULTS", "db1.commit=sleep:50,db2.commit=sleep:50"),
        ("DB1_CHECKOUT_TIMEOUT_MS", "20000"),
        ("DB2_CHECKOUT_TIMEOUT_MS", "20000"),
        ("REQUEST_TIMEOUT_MS", "60000"),
    ];
    let servers = [ChildServer::start(&env), ChildServer::start(&env)];

    let user = json!({"email": "twice@example.com", "name": "Twice"});
    let answers = send_at_once(&servers, "/users", &user, "one-user-please");
    let user_id = one_creation_and_its_replays(&answers);
    assert_eq!(items(&servers[0], "/users").len(), 1);

    let order = json!({"user_id": user_id, "item": "book", "quantity": 1, "amount_cents": 1250});
    let answers = send_at_once(&servers, "/orders", &order, "one-order-please");
    one_creation_and_its_replays(&answers);
    assert_eq!(items(&servers[1], "/orders").len(), 1);

    drop(servers);
    storage.remove();
}

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    one_key_sent_to_two_instances_at_once_creates_once);
