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

/// A repeated request gets the first answer again, byte for byte, with
/// `Idempotent-Replayed: true`, also when its JSON is written differently (member order,
/// whitespace); exactly one row is created, and its key is stored beside it.
fn a_repeated_request_gets_the_first_answer_again_and_writes_nothing(stack: Stack) {
    let app = spawn_app(stack);
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("replay-{}", create.tag());
        let body = create.body(0);
        let before = Rows::of(&app);
        let first = post_keyed(&app, path, &key, &body.to_string());
        let id = assert_created(&first, path);
        let after = before.plus_one(create);
        assert_eq!(Rows::of(&app), after, "POST {path} with a key");

        for text in [body.to_string(), rewritten(&body), body.to_string()] {
            let replay = post_keyed(&app, path, &key, &text);
            assert_replay_of(&replay, &first);
            assert_eq!(Rows::of(&app), after, "a replay of POST {path} wrote");
        }
        let stored = app.get(&format!("{path}/{id}"));
        assert_eq!(stored.status, 200, "{}", stored.text);
        assert_eq!(stored.body, first.body, "the answer shows the row created");
    }
}

/// A key used before for another body, or on the other route (both ways), is refused
/// with 422 `idempotency_key_reused`, writing nothing; the header is ignored on every
/// other method (the key is neither consumed nor disturbed), and the first request
/// still replays its own answer afterwards — the stored one, though the user was
/// renamed since.
fn a_key_reused_for_another_request_is_refused_and_the_first_still_replays(stack: Stack) {
    let app = spawn_app(stack);
    let [users, orders] = Create::both(&app);
    let first_user = post_keyed(&app, "/users", "reuse-u", &users.body(0).to_string());
    let user = assert_created(&first_user, "/users");
    let first_order = post_keyed(&app, "/orders", "reuse-o", &orders.body(0).to_string());
    assert_created(&first_order, "/orders");
    let before = Rows::of(&app);

    let mut changed_string = users.body(0);
    changed_string["name"] = json!("User 0 ");
    let mut changed_number = orders.body(0);
    changed_number["quantity"] = json!(2);
    let refused = [
        ("/users", "reuse-u", users.body(1), "another body"),
        (
            "/users",
            "reuse-u",
            changed_string,
            "a string with a space more",
        ),
        ("/orders", "reuse-o", orders.body(1), "another body"),
        ("/orders", "reuse-o", changed_number, "another quantity"),
        ("/orders", "reuse-u", orders.body(1), "a key of POST /users"),
        ("/users", "reuse-o", users.body(1), "a key of POST /orders"),
    ];
    for (path, key, body, what) in refused {
        let response = post_keyed(&app, path, key, &body.to_string());
        assert_eq!(
            response.status, 422,
            "POST {path} {body} with {what}: {}",
            response.text
        );
        assert_reused(&response);
        assert_eq!(Rows::of(&app), before, "POST {path} with {what} wrote");
    }

    // The header on every other method is ignored.
    let Create::Orders(owner) = orders else {
        unreachable!()
    };
    let spare = app.create_order(owner, "spare", 1, 1);
    for key in ["reuse-u", "reuse-o"] {
        let headers = [(KEY, key)];
        for path in [
            "/users".to_owned(),
            format!("/users/{user}"),
            "/orders".to_owned(),
            format!("/orders/{}", id_of(&first_order.body)),
        ] {
            let read = app.request_with("GET", &path, &headers, None);
            assert_eq!(read.status, 200, "GET {path}: {}", read.text);
            assert_not_replayed(&read);
        }
    }
    let renamed = app.request_with(
        "PATCH",
        &format!("/users/{user}"),
        &[(KEY, "reuse-u")],
        Some(("application/json", br#"{"name":"Renamed"}"#.to_vec())),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Renamed");
    assert_not_replayed(&renamed);
    let deleted = app.request_with(
        "DELETE",
        &format!("/orders/{}", id_of(&spare)),
        &[(KEY, "reuse-o")],
        None,
    );
    deleted.assert_no_content();
    assert_eq!(
        Rows::of(&app),
        before,
        "other methods with a key stored something"
    );

    let replay = post_keyed(&app, "/users", "reuse-u", &users.body(0).to_string());
    assert_replay_of(&replay, &first_user);
    let replay = post_keyed(&app, "/orders", "reuse-o", &orders.body(0).to_string());
    assert_replay_of(&replay, &first_order);
    assert_eq!(Rows::of(&app), before);
}

// ---------------------------------------------------------------------------------------
// The key's syntax.

/// A key must be 1–255 characters, each visible ASCII (0x21–0x7E), sent once: anything
/// else is 400 `bad_request` with nothing written. A key at the edges is accepted and
/// replays, and the whole key counts (the 256-character key that starts with an
/// accepted 255-character one is no replay of it). On other methods the header, even
/// malformed, is ignored.
fn malformed_keys_are_bad_requests_and_write_nothing(stack: Stack) {
    let app = spawn_app(stack);
    for create in Create::both(&app) {
        let (path, tag) = (create.path(), create.tag());
        let long: String = format!("{tag}{}", "k".repeat(254));
        let visible: String = (0x21_u8..=0x7e).map(char::from).collect();
        let accepted = [
            long.clone(),
            tag.to_owned(),
            format!("{visible}{tag}"),
            format!("a,b;c=\"{tag}\""),
        ];
        let mut created = Vec::new();
        for (n, key) in accepted.iter().enumerate() {
            let body = create.body(n).to_string();
            let before = Rows::of(&app);
            let first = post_keyed(&app, path, key, &body);
            assert_created(&first, path);
            assert_eq!(Rows::of(&app), before.plus_one(create), "key {key:?}");
            created.push((key, body, first));
        }
        for (key, body, first) in &created {
            assert_replay_of(&post_keyed(&app, path, key, body), first);
        }

        let before = Rows::of(&app);
        let body = create.body(9).to_string();
        let too_long = format!("{long}k");
        assert_eq!((long.len(), too_long.len()), (255, 256));
        for (what, key) in [
            ("an empty key", ""),
            ("256 characters", too_long.as_str()),
            ("a space inside", "two words"),
            ("a tab inside", "tab\there"),
        ] {
            let response = post_keyed(&app, path, key, &body);
            assert_eq!(
                response.status, 400,
                "POST {path} with {what}: {}",
                response.text
            );
            response.assert_error(400, "bad_request");
            assert_eq!(Rows::of(&app), before, "POST {path} with {what} wrote");
        }
        let header = |value: &[u8]| [b"Idempotency-Key: ".as_slice(), value].concat();
        let twice = format!("twice-{tag}");
        let raw_cases = [
            ("non-ASCII UTF-8", vec![header("schlüssel".as_bytes())]),
            ("a Latin-1 byte", vec![header(b"caf\xe9")]),
            ("a byte 0x80", vec![header(b"\x80abc")]),
            (
                "the header twice, alike",
                vec![header(twice.as_bytes()), header(twice.as_bytes())],
            ),
            (
                "the header twice, different",
                vec![header(twice.as_bytes()), header(b"other")],
            ),
        ];
        for (what, headers) in &raw_cases {
            let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            let response = raw_request(&app, "POST", path, &headers, Some(&body));
            assert_eq!(
                response.status, 400,
                "POST {path} with {what}: {}",
                response.text
            );
            response.assert_error(400, "bad_request");
            assert_eq!(Rows::of(&app), before, "POST {path} with {what} wrote");
        }
        // None of those consumed a key: the same body with the key sent twice above is
        // created afresh.
        assert_created(&post_keyed(&app, path, &twice, &body), path);

        // On a GET, the header is ignored, whatever it holds.
        for key in ["", "two words", too_long.as_str()] {
            let read = app.request_with("GET", path, &[(KEY, key)], None);
            assert_eq!(read.status, 200, "GET {path} with {key:?}: {}", read.text);
        }
        for (what, headers) in &raw_cases {
            let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            let read = raw_request(&app, "GET", path, &headers, None);
            assert_eq!(read.status, 200, "GET {path} with {what}: {}", read.text);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent duplicates.

const STORM: usize = 20;

/// An application whose requests wait as long as a storm of them needs: its timeouts
/// (statement, checkout, SQLite busy) are 30 s.
fn patient_app(stack: Stack) -> TestApp {
    spawn_app_with(stack, |settings| {
        for database in [&mut settings.db1, &mut settings.db2] {
            database.pool.connection.statement_timeout = Duration::from_secs(30);
            database.pool.connection.busy_timeout = Duration::from_secs(30);
            database.pool.checkout_timeout = Duration::from_secs(30);
        }
    })
}

/// Sends `STORM` requests at once, `send(n)` the `n`th, with every commit slowed down
/// by 100 ms: the first request still holds its key when the others arrive.
fn storm(app: &TestApp, send: impl Fn(usize) -> Response + Sync) -> Vec<Response> {
    for commit in ["db1.commit", "db2.commit"] {
        app.faults.arm(commit, FaultAction::Sleep(100));
    }
    let answers = concurrently(STORM, send);
    app.faults.disarm_all();
    answers
}

/// Twenty identical requests with one key, at once: exactly one row; one answer is the
/// first (201, no `Idempotent-Replayed`) and every other one is its replay or 409
/// `idempotency_key_in_use` with `Retry-After`.
fn concurrent_duplicates_create_one_row(stack: Stack) {
    let app = patient_app(stack);
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("storm{path}");
        let body = create.body(0).to_string();
        let before = Rows::of(&app);
        let answers = storm(&app, |_| post_keyed(&app, path, &key, &body));
        assert_eq!(Rows::of(&app), before.plus_one(create), "POST {path}");

        let (firsts, others): (Vec<&Response>, Vec<&Response>) = answers
            .iter()
            .partition(|answer| answer.status == 201 && answer.header(REPLAYED).is_none());
        assert_eq!(
            firsts.len(),
            1,
            "POST {path}: one first answer: {:?}",
            statuses(&answers)
        );
        let first = firsts[0];
        assert_created(first, path);
        for answer in others {
            if answer.status == 201 {
                assert_replay_of(answer, first);
            } else {
                assert_in_use(answer);
            }
        }
        assert_replay_of(&post_keyed(&app, path, &key, &body), first);
        assert_eq!(Rows::of(&app), before.plus_one(create));
    }
}

/// Twenty requests with one key and twenty different bodies, at once: exactly one row,
/// the one of the single 201; every other answer is 422 `idempotency_key_reused` or 409
/// `idempotency_key_in_use`, never a replay of another body's answer.
fn concurrent_requests_with_one_key_and_different_bodies_create_one_row(stack: Stack) {
    let app = patient_app(stack);
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("mixed{path}");
        let before = Rows::of(&app);
        let answers = storm(&app, |n| {
            post_keyed(&app, path, &key, &create.body(n).to_string())
        });
        assert_eq!(Rows::of(&app), before.plus_one(create), "POST {path}");
        let created: Vec<usize> = (0..STORM).filter(|&n| answers[n].status == 201).collect();
        assert_eq!(
            created.len(),
            1,
            "POST {path}: one 201: {:?}",
            statuses(&answers)
        );
        let winner = created[0];
        assert_created(&answers[winner], path);
        let sent = create.body(winner);
        for (field, value) in sent.as_object().unwrap() {
            assert_eq!(&answers[winner].body[field], value, "the winner's row");
        }
        for (n, answer) in answers.iter().enumerate().filter(|&(n, _)| n != winner) {
            match answer.status {
                422 => assert_reused(answer),
                409 => assert_in_use(answer),
                _ => panic!("POST {path} #{n}: {} {}", answer.status, answer.text),
            }
        }
        assert_replay_of(
            &post_keyed(&app, path, &key, &sent.to_string()),
            &answers[winner],
        );
    }
}

fn statuses(answers: &[Response]) -> Vec<(u16, Option<&str>)> {
    answers
        .iter()
        .map(|answer| (answer.status, answer.header(REPLAYED)))
        .collect()
}

/// While the first request holds its key (its commit slowed down) for longer than a
/// duplicate will wait, the duplicate is told to retry: with both databases on
/// PostgreSQL, where it waits for the key's lock in db2 up to db2's statement timeout,
/// 409 `idempotency_key_in_use`; where a database is SQLite, whose write lock it waits
/// for first (up to the checkout and busy timeouts), 503 `database_unavailable`. Both
/// carry `Retry-After`, and the retry then replays. Which of the two requests comes
/// first does not matter.
fn a_duplicate_that_waits_too_long_is_told_to_retry(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        for database in [&mut settings.db1, &mut settings.db2] {
            database.pool.connection.statement_timeout = Duration::from_millis(300);
            database.pool.connection.busy_timeout = Duration::from_millis(300);
            database.pool.checkout_timeout = Duration::from_millis(300);
        }
    });
    for (create, commit) in [
        (Create::Users, "db1.commit"),
        (
            Create::Orders(id_of(&app.create_user("ada@example.com", "Ada"))),
            "db2.commit",
        ),
    ] {
        let path = create.path();
        let key = format!("slow-{}", create.tag());
        let body = create.body(0).to_string();
        let before = Rows::of(&app);
        // Long beside the 300 ms the duplicate waits, so that it is still held when the
        // duplicate comes on a loaded machine.
        app.faults.arm(commit, FaultAction::Sleep(3000));
        let answers = concurrently(2, |_| post_keyed(&app, path, &key, &body));
        app.faults.disarm_all();

        let Some(first) = answers.iter().position(|answer| answer.status == 201) else {
            panic!("POST {path}: no 201: {answers:?}");
        };
        assert_created(&answers[first], path);
        let waiter = &answers[1 - first];
        if (stack.db1, stack.db2) == (Backend::Postgres, Backend::Postgres) {
            assert_in_use(waiter);
        } else {
            waiter.assert_error(503, "database_unavailable");
            assert_eq!(waiter.header("retry-after"), Some("1"));
        }
        let after = before.plus_one(create);
        assert_eq!(Rows::of(&app), after);
        assert_replay_of(&post_keyed(&app, path, &key, &body), &answers[first]);
        assert_eq!(Rows::of(&app), after);
    }
}

// ---------------------------------------------------------------------------------------
// Failures store nothing.

/// A request that failed — 422 `unknown_user`, 409 `conflict`, 422 `validation_failed`,
/// 400, a 500 — stored nothing under its key: the same request with the same key, once
/// it can succeed, is processed afresh (a new row, no `Idempotent-Replayed`), and so is
/// another body with that key.
fn a_failed_request_stores_nothing_and_its_retry_is_processed_afresh(stack: Stack) {
    let app = spawn_app(stack);

    // An order for a user who does not exist yet: ids are assigned in sequence.
    let probe = id_of(&app.create_user("probe@example.com", "Probe"));
    let order = Create::Orders(probe + 1).body(0).to_string();
    let before = Rows::of(&app);
    post_keyed(&app, "/orders", "late-user", &order).assert_error(422, "unknown_user");
    assert_eq!(Rows::of(&app), before);
    let late = app.create_user("late@example.com", "Late");
    assert_eq!(id_of(&late), probe + 1, "the next id");
    let before = Rows::of(&app);
    let created = post_keyed(&app, "/orders", "late-user", &order);
    assert_created(&created, "/orders");
    assert_eq!(Rows::of(&app), before.plus_one(Create::Orders(probe + 1)));
    assert_replay_of(&post_keyed(&app, "/orders", "late-user", &order), &created);

    // A taken email, then freed.
    let holder = id_of(&app.create_user("taken@example.com", "Holder"));
    let user = json!({"email": "taken@example.com", "name": "Second"}).to_string();
    let before = Rows::of(&app);
    post_keyed(&app, "/users", "taken", &user).assert_error(409, "conflict");
    assert_eq!(Rows::of(&app), before);
    app.delete(&format!("/users/{holder}")).assert_no_content();
    let before = Rows::of(&app);
    let created = post_keyed(&app, "/users", "taken", &user);
    let id = assert_created(&created, "/users");
    assert_ne!(id, holder);
    assert_eq!(created.body["name"], "Second");
    assert_eq!(Rows::of(&app), before.plus_one(Create::Users));
    assert_replay_of(&post_keyed(&app, "/users", "taken", &user), &created);

    // Refused bodies, then another, valid, body with the same key.
    let owner = id_of(&late);
    for (create, refused, status, code) in [
        (
            Create::Users,
            json!({"email": "nope", "name": "x"}).to_string(),
            422,
            "validation_failed",
        ),
        (Create::Users, "{\"email\":".to_owned(), 400, "bad_request"),
        (
            Create::Orders(owner),
            json!({"user_id": owner, "item": "x", "quantity": 0, "amount_cents": 1}).to_string(),
            422,
            "validation_failed",
        ),
        (
            Create::Orders(owner),
            json!({"user_id": owner, "item": "x", "quantity": 1, "amount_cents": 1, "extra": 1})
                .to_string(),
            400,
            "bad_request",
        ),
    ] {
        let path = create.path();
        let key = format!("refused-{status}{path}");
        let before = Rows::of(&app);
        post_keyed(&app, path, &key, &refused).assert_error(status, code);
        assert_eq!(Rows::of(&app), before, "POST {path} {refused}");
        let body = create.body(status.into()).to_string();
        let created = post_keyed(&app, path, &key, &body);
        assert_created(&created, path);
        assert_eq!(Rows::of(&app), before.plus_one(create));
        assert_replay_of(&post_keyed(&app, path, &key, &body), &created);
    }

    // A commit that fails: a 500, then the same request succeeds afresh.
    for (create, point) in [
        (Create::Users, "db1.commit"),
        (Create::Orders(owner), "db2.commit"),
    ] {
        let path = create.path();
        let key = format!("failed-commit{path}");
        let body = create.body(7).to_string();
        let before = Rows::of(&app);
        app.faults.arm(point, FaultAction::Error);
        post_keyed(&app, path, &key, &body).assert_error(500, "internal");
        app.faults.disarm_all();
        assert_eq!(Rows::of(&app), before, "POST {path} failed at {point}");
        let created = post_keyed(&app, path, &key, &body);
        assert_created(&created, path);
        assert_eq!(Rows::of(&app), before.plus_one(create));
        assert_replay_of(&post_keyed(&app, path, &key, &body), &created);
    }
}

// ---------------------------------------------------------------------------------------
// Expiry.

/// After `idempotency_ttl`, a key counts as unused: the same request is processed
/// afresh, a new row without `Idempotent-Replayed` (until then, it replays).
fn an_expired_key_counts_as_unused(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_millis(300);
    });
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("expiring{path}");
        let body = create.body(0).to_string();
        let first = post_keyed(&app, path, &key, &body);
        let id = assert_created(&first, path);
        if let Create::Users = create {
            // The same body can only create a user again once the first one is gone.
            app.delete(&format!("/users/{id}")).assert_no_content();
        }
        let rows = create.rows(&app);
        let fresh = eventually("the key expires", || {
            let answer = post_keyed(&app, path, &key, &body);
            if answer.header(REPLAYED).is_some() {
                assert_replay_of(&answer, &first);
                assert_eq!(create.rows(&app), rows, "a replay wrote");
                None
            } else {
                Some(answer)
            }
        });
        let new_id = assert_created(&fresh, path);
        assert_ne!(new_id, id);
        assert_eq!(create.rows(&app), rows + 1);
    }
}

/// Shifts the stored keys that start with `prefix` two hours back, as if stored that long
/// ago.
fn age_keys(app: &TestApp, stack: Stack, prefix: &str) {
    let age = |backend| match backend {
        Backend::Postgres => format!(
            "UPDATE {KEYS_TABLE} SET created_at = created_at - INTERVAL '2 hours' \
             WHERE idempotency_key LIKE '{prefix}%'"
        ),
        Backend::Sqlite => format!(
            "UPDATE {KEYS_TABLE} \
             SET created_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '-2 hours') \
             WHERE idempotency_key LIKE '{prefix}%'"
        ),
    };
    execute(&app.databases.db1, &age(stack.db1));
    execute(&app.databases.db2, &age(stack.db2));
}

/// A key stored longer ago than the TTL (one hour here) is replaced by the retry's new
/// answer, which replays from then on.
fn an_expired_key_is_replaced_by_the_new_answer(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_secs(3600);
    });
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("aged-{}", create.tag());
        let body = create.body(0).to_string();
        let first = post_keyed(&app, path, &key, &body);
        let id = assert_created(&first, path);
        if let Create::Users = create {
            app.delete(&format!("/users/{id}")).assert_no_content();
        }
        assert_replay_of(&post_keyed(&app, path, &key, &body), &first);
        age_keys(&app, stack, &key);
        let before = Rows::of(&app);
        let fresh = post_keyed(&app, path, &key, &body);
        assert_ne!(assert_created(&fresh, path), id);
        let mut after = before.plus_one(create);
        // The expired key's row is replaced, not added to.
        (after.keys_db1, after.keys_db2) = (before.keys_db1, before.keys_db2);
        assert_eq!(Rows::of(&app), after);
        assert_replay_of(&post_keyed(&app, path, &key, &body), &fresh);
    }
}

/// The periodic recovery deletes the expired keys from both databases, and only those.
fn expired_keys_are_deleted_by_the_periodic_recovery(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_secs(3600);
        settings.recovery_interval = Duration::from_millis(50);
    });
    let mut kept = Vec::new();
    for create in Create::both(&app) {
        let path = create.path();
        for (n, age) in ["old", "new"].into_iter().enumerate() {
            let key = format!("{age}-{}", create.tag());
            let body = create.body(n).to_string();
            let answer = post_keyed(&app, path, &key, &body);
            assert_created(&answer, path);
            if age == "new" {
                kept.push((path, key, body, answer));
            }
        }
    }
    age_keys(&app, stack, "old-");
    eventually("the expired keys deleted", || {
        let rows = Rows::of(&app);
        (rows.keys_db1 == 1 && rows.keys_db2 == 1).then_some(())
    });
    for (path, key, body, answer) in &kept {
        assert_replay_of(&post_keyed(&app, path, key, body), answer);
    }
}

/// With a TTL of 300 ms and recovery passes every 50 ms, every stored key is soon gone
/// from both databases.
fn keys_past_a_short_ttl_are_soon_deleted(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_millis(300);
        settings.recovery_interval = Duration::from_millis(50);
    });
    for create in Create::both(&app) {
        let key = format!("short-{}", create.tag());
        let answer = post_keyed(&app, create.path(), &key, &create.body(0).to_string());
        assert_created(&answer, create.path());
    }
    eventually("the expired keys deleted", || {
        let rows = Rows::of(&app);
        (rows.keys_db1 == 0 && rows.keys_db2 == 0).then_some(())
    });
}

/// `IDEMPOTENCY_TTL_HOURS` is a positive decimal number of hours, 24 when unset; any
/// other value is an error naming the variable.
#[test]
fn the_ttl_is_a_positive_decimal_number_of_hours() {
    let settings = |value: Option<&str>| {
        let value = value.map(str::to_owned);
        Settings::from_lookup(move |name| {
            (name == "IDEMPOTENCY_TTL_HOURS")
                .then(|| value.clone())
                .flatten()
        })
    };
    assert_eq!(
        settings(None).unwrap().idempotency_ttl,
        Duration::from_secs(24 * 3600)
    );
    for (raw, expected) in [
        ("24", Duration::from_secs(24 * 3600)),
        ("1", Duration::from_secs(3600)),
        ("0.5", Duration::from_secs(1800)),
        ("0.0001", Duration::from_millis(360)),
        ("168", Duration::from_secs(168 * 3600)),
    ] {
        let ttl = settings(Some(raw)).unwrap().idempotency_ttl;
        let difference = ttl.abs_diff(expected);
        assert!(
            difference < Duration::from_millis(1),
            "{raw}: {ttl:?}, not {expected:?}"
        );
    }
    for raw in ["0", "0.0", "-1", "abc", "1h", "NaN", "inf", "-inf"] {
        let error = settings(Some(raw)).expect_err(raw);
        assert_eq!(error.variable, "IDEMPOTENCY_TTL_HOURS", "{raw}: {error}");
    }
    // Too large for a duration: refused, not a panic.
    let error = settings(Some("1e300")).expect_err("1e300 hours is refused");
    assert_eq!(error.variable, "IDEMPOTENCY_TTL_HOURS", "{error}");
}

// ---------------------------------------------------------------------------------------
// The caller's own keys.

/// With `AUTH=required` keys are the API key's own: the same `Idempotency-Key` from
/// two API keys makes two rows, each replays its own answer, each API key's use of it
/// is checked against its own request only, and an answer never reaches the other key.
fn each_api_key_has_its_own_idempotency_keys(stack: Stack) {
    let app = spawn_app_with(stack, |settings| settings.auth = Auth::Required);
    let (_, a) = create_key(&app, "a", Scope::Write);
    let (_, b) = create_key(&app, "b", Scope::Write);
    let (a, b) = (bearer(&a), bearer(&b));
    let post = |authorization: &str, path: &str, key: &str, body: &Value| {
        post_keyed_with(
            &app,
            path,
            key,
            &body.to_string(),
            &[("Authorization", authorization)],
        )
    };
    let owner = app.request_with(
        "POST",
        "/users",
        &[("Authorization", a.as_str())],
        Some((
            "application/json",
            json!({"email": "owner@example.com", "name": "Owner"})
                .to_string()
                .into_bytes(),
        )),
    );
    let orders = Create::Orders(id_of(&owner.body));
    let users = Create::Users;
    let before = Rows::of(&app);

    // The same key, each API key with a body of its own.
    let a_user = post(&a, "/users", "shared", &users.body(1));
    let b_user = post(&b, "/users", "shared", &users.body(2));
    assert_ne!(
        assert_created(&a_user, "/users"),
        assert_created(&b_user, "/users")
    );
    // The same key and the same body.
    let a_order = post(&a, "/orders", "same", &orders.body(1));
    let b_order = post(&b, "/orders", "same", &orders.body(1));
    assert_ne!(
        assert_created(&a_order, "/orders"),
        assert_created(&b_order, "/orders")
    );
    let after = Rows {
        users: before.users + 2,
        orders: before.orders + 2,
        keys_db1: before.keys_db1 + 2,
        keys_db2: before.keys_db2 + 2,
    };
    assert_eq!(Rows::of(&app), after);

    assert_replay_of(&post(&a, "/users", "shared", &users.body(1)), &a_user);
    assert_replay_of(&post(&b, "/users", "shared", &users.body(2)), &b_user);
    assert_replay_of(&post(&a, "/orders", "same", &orders.body(1)), &a_order);
    assert_replay_of(&post(&b, "/orders", "same", &orders.body(1)), &b_order);
    // Each key's request is its own: the other API key's body is another body.
    assert_reused(&post(&b, "/users", "shared", &users.body(1)));
    assert_reused(&post(&a, "/users", "shared", &users.body(2)));
    // A key one API key used on one route is free for the other on the other route.
    let a_only = post(&a, "/users", "only-a", &users.body(3));
    let b_other = post(&b, "/orders", "only-a", &orders.body(3));
    assert_created(&a_only, "/users");
    assert_created(&b_other, "/orders");
    assert_eq!(
        Rows::of(&app),
        Rows {
            users: after.users + 1,
            orders: after.orders + 1,
            keys_db1: after.keys_db1 + 1,
            keys_db2: after.keys_db2 + 1,
        }
    );
    assert_replay_of(&post(&a, "/users", "only-a", &users.body(3)), &a_only);
    assert_replay_of(&post(&b, "/orders", "only-a", &orders.body(3)), &b_other);
}

// ---------------------------------------------------------------------------------------
// A crash between the commit and the answer.

/// The binary on `storage`'s databases, with `faults` armed. (Fault points fire in
/// requests' sessions only, not in the start-up migrations'.)
fn start(storage: &Storage, faults: Option<&str>) -> ChildServer {
    let mut env = vec![
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
    ];
    if let Some(faults) = faults {
        env.push(("MULTIDB_FAULTS", faults));
    }
    ChildServer::start(&env)
}

/// The rows of a listing (one page is enough here).
fn listed(server: &ChildServer, path: &str) -> Vec<Value> {
    let response = server.request("GET", path, None);
    assert_eq!(response.status, 200, "{}", response.text);
    items_of(&response.body["items"])
}

/// The real binary is killed (`kill -9`) right after a request's commit, before its
/// answer was sent; the client retries on a new instance with the same key and gets the
/// committed row's answer, replayed: one row, never two.
fn a_retry_after_a_crash_right_after_the_commit_replays(stack: Stack) {
    let storage = Storage::create(stack);
    let server = start(&storage, None);
    let owner = server.request(
        "POST",
        "/users",
        Some(json!({"email": "owner@example.com", "name": "Owner"})),
    );
    assert_eq!(owner.status, 201, "{}", owner.text);
    let orders = Create::Orders(id_of(&owner.body));
    server.kill();

    for (create, point) in [(Create::Users, "db1.committed"), (orders, "db2.committed")] {
        let path = create.path();
        let body = create.body(0);
        let key = format!("crash-{}", create.tag());
        let headers = [(KEY, key.as_str())];
        let rows_before = listed(&start(&storage, None), path).len();

        let dying = start(&storage, Some(&format!("{point}=pause")));
        let request = dying.request_with_in_background("POST", path, &headers, Some(body.clone()));
        assert!(
            dying.wait_for_stderr(&format!("multidb fault pause: {point}")),
            "POST {path} never reached {point}"
        );
        dying.kill();
        request.join().unwrap();

        let server = start(&storage, None);
        let rows = listed(&server, path);
        assert_eq!(
            rows.len(),
            rows_before + 1,
            "the commit of POST {path} holds"
        );
        let committed = rows.last().unwrap();
        let retry = server.request_with("POST", path, &headers, Some(body));
        assert_eq!(retry.status, 201, "{}", retry.text);
        assert_eq!(retry.header(REPLAYED), Some("true"), "{:?}", retry.headers);
        assert_eq!(&retry.body, committed, "the answer is the committed row");
        assert_eq!(
            retry.header("location"),
            Some(format!("{path}/{}", id_of(committed)).as_str())
        );
        assert_eq!(listed(&server, path).len(), rows_before + 1, "one row");
    }
    storage.remove();
}

/// The purge works off a backlog in batches, in one pass, and deletes only what is past
/// its TTL and the grace: 2,500 answers dated long ago go, one just stored stays.
fn a_backlog_of_expired_keys_is_purged_in_batches_and_fresh_ones_stay(stack: Stack) {
    let app = spawn_app(stack);
    let pool = &app.databases.db2;
    let ttl = Duration::from_secs(3600);
    let answer = Answer {
        status: 201,
        location: Some("/orders/1".into()),
        body: "{}".into(),
    };
    let mut session = pool.begin::<multidb::db::Write>().unwrap();
    for n in 0..2_500 {
        let claim = Claim::new("owner".into(), format!("old-{n}"), "f".into(), ttl);
        claim.record(&mut session, &answer).unwrap();
    }
    session.commit().unwrap();
    crate::helpers::execute(
        pool,
        "UPDATE multidb_idempotency_keys SET created_at = '2000-01-01 00:00:00'",
    );
    let mut session = pool.begin::<multidb::db::Write>().unwrap();
    Claim::new("owner".into(), "fresh".into(), "f".into(), ttl)
        .record(&mut session, &answer)
        .unwrap();
    session.commit().unwrap();

    assert_eq!(idempotency::purge_expired(pool, ttl).unwrap(), 2_500);
    assert_eq!(crate::helpers::count(pool, "multidb_idempotency_keys"), 1);
    assert_eq!(idempotency::purge_expired(pool, ttl).unwrap(), 0);
}

// Every stack: both databases on SQLite, both on PostgreSQL, and each mix.
on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    a_repeated_request_gets_the_first_answer_again_and_writes_nothing,
    a_key_reused_for_another_request_is_refused_and_the_first_still_replays,
    malformed_keys_are_bad_requests_and_write_nothing,
    concurrent_duplicates_create_one_row,
    concurrent_requests_with_one_key_and_different_bodies_create_one_row,
    a_duplicate_that_waits_too_long_is_told_to_retry,
    a_backlog_of_expired_keys_is_purged_in_batches_and_fresh_ones_stay,
    a_failed_request_stores_nothing_and_its_retry_is_processed_afresh,
    an_expired_key_counts_as_unused,
    an_expired_key_is_replaced_by_the_new_answer,
    expired_keys_are_deleted_by_the_periodic_recovery,
    keys_past_a_short_ttl_are_soon_deleted,
    each_api_key_has_its_own_idempotency_keys,
    a_retry_after_a_crash_right_after_the_commit_replays,
);
