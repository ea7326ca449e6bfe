//! Safe retries (API.md, "Safe retries: `Idempotency-Key`"): `POST /users` and
//! `POST /orders` with a key answer a repeated request with the first answer, byte for
//! byte, marked `Idempotent-Replayed: true`, and write nothing more; a key reused for
//! another request is refused; a failed request stores nothing; concurrent duplicates,
//! a crash right after the commit and expired keys each still make exactly one row;
//! keys are the caller's own (per API key).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Barrier;
use std::time::Duration;

use multidb::api_keys::Scope;
use multidb::config::{Auth, Settings};
use multidb::db::fault::FaultAction;
use multidb::db::idempotency::{self, Answer, Claim};
use serde_json::{json, Value};

use crate::auth::{bearer, create_key};
use crate::helpers::{
    count, eventually, execute, id_of, items_of, spawn_app, spawn_app_with, Backend, ChildServer,
    Response, Stack, Storage, TestApp,
};

const KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "idempotent-replayed";
const KEYS_TABLE: &str = "multidb_idempotency_keys";

/// One of the two routes that take a key, with bodies for it.
#[derive(Debug, Clone, Copy)]
enum Create {
    Users,
    /// Orders for this user.
    Orders(i64),
}

impl Create {
    /// Both routes: a user is created (without a key) for the orders.
    fn both(app: &TestApp) -> [Self; 2] {
        let owner = app.create_user("owner@example.com", "Owner");
        [Self::Users, Self::Orders(id_of(&owner))]
    }

    fn path(self) -> &'static str {
        match self {
            Self::Users => "/users",
            Self::Orders(_) => "/orders",
        }
    }

    /// A valid body, another one for each `n`.
    fn body(self, n: usize) -> Value {
        match self {
            Self::Users => {
                json!({"email": format!("user{n}@example.com"), "name": format!("User {n}")})
            }
            Self::Orders(user) => {
                json!({"user_id": user, "item": format!("item {n}"), "quantity": n + 1, "amount_cents": 100})
            }
        }
    }

    /// A short name of the route, to keep each route's keys apart.
    fn tag(self) -> &'static str {
        match self {
            Self::Users => "u",
            Self::Orders(_) => "o",
        }
    }

    /// The rows of this route's table.
    fn rows(self, app: &TestApp) -> i64 {
        match self {
            Self::Users => app.count_users(),
            Self::Orders(_) => app.count_orders(),
        }
    }
}

/// `body` written differently — members in the reverse order, whitespace between every
/// token — with the same content.
fn rewritten(body: &Value) -> String {
    let members: Vec<String> = body
        .as_object()
        .expect("a JSON object")
        .iter()
        .rev()
        .map(|(name, value)| format!("\n\t{} :  {value}", Value::from(name.as_str())))
        .collect();
    let text = format!("  {{{} \r\n}}\n", members.join(" ,"));
    assert_ne!(text, body.to_string());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), *body);
    text
}

/// `POST path` of `body`, sent exactly as given, with `Idempotency-Key: key` and `extra`
/// headers.
fn post_keyed_with(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut headers = vec![(KEY, key)];
    headers.extend_from_slice(extra);
    app.request_with(
        "POST",
        path,
        &headers,
        Some(("application/json", body.as_bytes().to_vec())),
    )
}

fn post_keyed(app: &TestApp, path: &str, key: &str, body: &str) -> Response {
    post_keyed_with(app, path, key, body, &[])
}

/// Everything a request could write: the users, the orders, and the stored keys of
/// db1 and of db2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rows {
    users: i64,
    orders: i64,
    keys_db1: i64,
    keys_db2: i64,
}

impl Rows {
    fn of(app: &TestApp) -> Self {
        Self {
            users: app.count_users(),
            orders: app.count_orders(),
            keys_db1: count(&app.databases.db1, KEYS_TABLE),
            keys_db2: count(&app.databases.db2, KEYS_TABLE),
        }
    }

    /// These rows with one more created by `create`, and its key stored beside it.
    fn plus_one(self, create: Create) -> Self {
        match create {
            Create::Users => Self {
                users: self.users + 1,
                keys_db1: self.keys_db1 + 1,
                ..self
            },
            Create::Orders(_) => Self {
                orders: self.orders + 1,
                keys_db2: self.keys_db2 + 1,
                ..self
            },
        }
    }
}

/// Asserts a first answer of `POST path`: a 201 of JSON with a `Location` naming the new
/// row, and no `Idempotent-Replayed`. Returns the new row's id.
#[track_caller]
fn assert_created(response: &Response, path: &str) -> i64 {
    assert_eq!(response.status, 201, "POST {path}: {}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let id = id_of(&response.body);
    assert_eq!(
        response.header("location"),
        Some(format!("{path}/{id}").as_str())
    );
    assert_eq!(
        response.header(REPLAYED),
        None,
        "a first answer is no replay: {:?}",
        response.headers
    );
    id
}

/// Asserts that `replay` is `original` again — status, body bytes, `Location`, content
/// type — and says it is a replay.
#[track_caller]
fn assert_replay_of(replay: &Response, original: &Response) {
    assert_eq!(
        (replay.status, replay.text.as_str()),
        (original.status, original.text.as_str()),
        "a replay is the first answer"
    );
    assert_eq!(replay.header("location"), original.header("location"));
    assert_eq!(replay.header("content-type"), Some("application/json"));
    assert_eq!(
        replay.header(REPLAYED),
        Some("true"),
        "a replay says so: {:?}",
        replay.headers
    );
}

#[track_caller]
fn assert_not_replayed(response: &Response) {
    assert_eq!(
        response.header(REPLAYED),
        None,
        "{} {} is no replay",
        response.status,
        response.text
    );
}

/// Asserts 409 `idempotency_key_in_use` with a `Retry-After` in seconds.
#[track_caller]
fn assert_in_use(response: &Response) {
    response.assert_error(409, "idempotency_key_in_use");
    assert_not_replayed(response);
    let retry_after = response.header("retry-after");
    assert!(
        retry_after.is_some_and(|seconds| seconds.parse::<u64>().is_ok()),
        "Retry-After: {retry_after:?}"
    );
}

#[track_caller]
fn assert_reused(response: &Response) {
    response.assert_error(422, "idempotency_key_reused");
    assert_not_replayed(response);
}

/// Runs `send(0)` … `send(n - 1)` on `n` threads released together, and returns their
/// answers in that order.
fn concurrently(n: usize, send: impl Fn(usize) -> Response + Sync) -> Vec<Response> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, send) = (&barrier, &send);
                scope.spawn(move || {
                    barrier.wait();
                    send(i)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    })
}

/// A request written byte by byte — what ureq refuses to send: a header twice, bytes
/// outside ASCII — each of `headers` a whole header line without its CRLF.
fn raw_request(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[&[u8]],
    body: Option<&str>,
) -> Response {
    let address = app.address.trim_start_matches("http://");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    let mut request = request.into_bytes();
    for header in headers {
        request.extend_from_slice(header);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body.unwrap_or_default().as_bytes());
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(&request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).expect("a UTF-8 answer");
    let (head, text) = answer.split_once("\r\n\r\n").expect("a whole answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "a chunked answer: {head}"
    );
    Response {
        status,
        headers,
        text: text.to_owned(),
        body: serde_json::from_str(text).unwrap_or(Value::Null),
    }
}

// ---------------------------------------------------------------------------------------
// Replays and reuse.

mod concurrency;
mod expiry;
mod failures;
mod replay;
