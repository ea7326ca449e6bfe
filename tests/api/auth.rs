//! API keys (API.md, "Authentication"): with `AUTH=required` every route but the
//! operations endpoints needs `Authorization: Bearer <token>` of a key whose scope allows
//! the method, and a refused request writes nothing and never repeats the token;
//! `multidb keys` creates, lists and revokes keys; a revocation reaches every running
//! instance; a key's use is noted at most once a minute; no token is ever logged.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::NaiveDate;
use multidb::api_keys::{self, ApiKey, Scope};
use multidb::config::Auth;
use multidb::db::{Read, Write};
use regex::Regex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{
    eventually, id_of, spawn_app_with, ChildServer, Response, Stack, Storage, TestApp,
};

/// The methods tried on every protected route: the documented ones must be served to a
/// key that allows them; the others answer 405, and only behind the key check.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The routes API.md lists as answered without a key.
const PUBLIC: [&str; 6] = [
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/",
    "/docs/{file}",
];

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token's public id and its secret.
fn parts(token: &str) -> (&str, &str) {
    token
        .strip_prefix("mdb_")
        .and_then(|rest| rest.split_once('_'))
        .unwrap_or_else(|| panic!("not a token: {token}"))
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `text` shows any of `tokens`: the whole token, its secret, or the first half
/// of its secret (what a token cut short or changed in case still shows).
fn shows_a_token(text: &str, tokens: &[&str]) -> bool {
    let text = text.to_ascii_lowercase();
    tokens.iter().any(|token| {
        let (_, secret) = parts(token);
        text.contains(token) || text.contains(&secret[..32])
    })
}

// ---------------------------------------------------------------------------------------
// Every protected route, in-process.

/// The headers of a request with `Authorization: <authorization>`, or with none.
fn authorized(authorization: Option<&str>) -> Vec<(&'static str, &str)> {
    authorization
        .map(|value| ("Authorization", value))
        .into_iter()
        .collect()
}

/// One method on one path of a protected route.
struct Call {
    method: &'static str,
    template: &'static str,
    path: String,
    documented: bool,
}

/// An application with `AUTH` as given, a user with an order, and a key of each scope
/// and a revoked one.
struct Fixture {
    app: TestApp,
    user: i64,
    order: i64,
    write: String,
    read: String,
    revoked: String,
}

impl Fixture {
    fn new(stack: Stack, auth: Auth) -> Self {
        let app = spawn_app_with(stack, |settings| {
            if auth == Auth::Off {
                assert_eq!(
                    settings.auth,
                    Auth::Off,
                    "the default on a loopback address"
                );
            }
            settings.auth = auth;
        });
        let (write_key, write) = create_key(&app, "writer", Scope::Write);
        let (read_key, read) = create_key(&app, "reader", Scope::Read);
        // Revoked before any use: no instance has its row cached.
        let (revoked_key, revoked) = create_key(&app, "revoked", Scope::Write);
        revoke_key(&app, &revoked_key.id);
        let mut fixture = Self {
            app,
            user: 0,
            order: 0,
            write,
            read,
            revoked,
        };
        let writer = bearer(&fixture.write);
        let user = fixture.send(
            "POST",
            "/users",
            Some(&writer),
            Some(json!({"email": "ada@example.com", "name": "Ada"})),
        );
        assert_eq!(user.status, 201, "{}", user.text);
        fixture.user = id_of(&user.body);
        let order = fixture.send(
            "POST",
            "/orders",
            Some(&writer),
            Some(
                json!({"user_id": fixture.user, "item": "book", "quantity": 1, "amount_cents": 100}),
            ),
        );
        assert_eq!(order.status, 201, "{}", order.text);
        fixture.order = id_of(&order.body);
        if auth == Auth::Required {
            // Each key's first use is noted by a write in the background, which would
            // still hold a connection if it were the test's last request: let both
            // notes land now (later uses within the minute write nothing).
            let read = fixture.send("GET", "/users", Some(&bearer(&fixture.read)), None);
            assert_eq!(read.status, 200, "{}", read.text);
            for key in [&write_key, &read_key] {
                eventually("a key's first use noted", || {
                    find_key(&fixture.app, &key.id).last_used_at
                });
            }
        }
        fixture
    }

    fn tokens(&self) -> [&str; 3] {
        [&self.write, &self.read, &self.revoked]
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let body = body.map(|body| ("application/json", body.to_string().into_bytes()));
        self.app
            .request_with(method, path, &authorized(authorization), body)
    }

    /// Sends `call` with a valid body for its route, so that only the key check stands
    /// between the request and a write.
    fn call(&self, call: &Call, authorization: Option<&str>) -> Response {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let body = match (call.method, call.template) {
            ("POST", "/users") => Some(json!({
                "email": format!("new{}@example.com", NEXT.fetch_add(1, Ordering::Relaxed)),
                "name": "New",
            })),
            ("PATCH", "/users/{id}") => Some(json!({"name": "Renamed"})),
            ("POST", "/orders") => {
                Some(json!({"user_id": self.user, "item": "pen", "quantity": 1, "amount_cents": 5}))
            }
            _ => None,
        };
        self.send(call.method, &call.path, authorization, body)
    }

    /// Every method of [`METHODS`] on every route not public, on resources that exist;
    /// the deletions last, the user's after the order's, so that each call finds what
    /// it names. The methods documented for each route are read from `/openapi.json`.
    fn calls(&self) -> Vec<Call> {
        let document = self.app.get("/openapi.json");
        assert_eq!(document.status, 200, "{}", document.text);
        let public: Vec<&str> = multidb::http::public_routes().collect();
        let mut calls = Vec::new();
        for template in multidb::http::route_templates().filter(|t| !public.contains(t)) {
            let item = document.body["paths"][template]
                .as_object()
                .unwrap_or_else(|| panic!("{template} is not documented"));
            let documented: Vec<String> = item
                .keys()
                .map(|key| key.to_ascii_uppercase())
                .filter(|key| {
                    [
                        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                    ]
                    .contains(&key.as_str())
                })
                .collect();
            for method in &documented {
                assert!(
                    METHODS.contains(&method.as_str()),
                    "{method} {template} is documented and not tried here"
                );
            }
            let id = if template.starts_with("/orders") {
                self.order
            } else {
                self.user
            };
            for method in METHODS {
                calls.push(Call {
                    method,
                    template,
                    path: template.replace("{id}", &id.to_string()),
                    documented: documented.iter().any(|m| m == method),
                });
            }
        }
        assert!(
            calls.iter().any(|call| call.documented),
            "no protected route"
        );
        calls.sort_by_key(|call| (call.method == "DELETE", call.template.starts_with("/users")));
        calls
    }

    /// What a write would change: the rows of both databases, and the user with their
    /// orders (or that the user is gone).
    fn state(&self) -> (i64, i64, u16, Value) {
        let summary = self.send(
            "GET",
            &format!("/users/{}/summary", self.user),
            Some(&bearer(&self.write)),
            None,
        );
        (
            self.app.count_users(),
            self.app.count_orders(),
            summary.status,
            summary.body,
        )
    }

    /// Asserts a refusal with `status` and `code` that repeats none of the tokens.
    #[track_caller]
    fn assert_refused(&self, response: &Response, status: u16, code: &str, what: &str) {
        assert_eq!(response.status, status, "{what}: {}", response.text);
        response.assert_error(status, code);
        if status == 401 {
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer"),
                "{what}"
            );
        }
        assert!(
            !shows_a_token(&response.text, &self.tokens()),
            "{what}: the body shows a token: {}",
            response.text
        );
        for (name, value) in &response.headers {
            assert!(
                !shows_a_token(value, &self.tokens()),
                "{what}: header {name} shows a token: {value}"
            );
        }
    }

    /// Every documented call is served (2xx) and every other method answers 405.
    fn assert_everything_served(&self, authorization: Option<&str>) {
        for call in self.calls() {
            let response = self.call(&call, authorization);
            let what = format!("{} {}", call.method, call.path);
            if call.documented {
                assert!(
                    (200..300).contains(&response.status),
                    "{what}: {} {}",
                    response.status,
                    response.text
                );
            } else {
                assert_eq!(response.status, 405, "{what}: {}", response.text);
                response.assert_error(405, "method_not_allowed");
            }
        }
    }
}

/// Creates a key in the app's db1 as `multidb keys create` does; returns it and its token.
pub(crate) fn create_key(app: &TestApp, name: &str, scope: Scope) -> (ApiKey, String) {
    let mut session = app.databases.db1.begin::<Write>().unwrap();
    let created = api_keys::create(&mut session, name, scope).unwrap();
    session.commit().unwrap();
    created
}

fn revoke_key(app: &TestApp, id: &str) {
    let mut session = app.databases.db1.begin::<Write>().unwrap();
    assert!(api_keys::revoke(&mut session, id).unwrap());
    session.commit().unwrap();
}

fn find_key(app: &TestApp, id: &str) -> ApiKey {
    let mut session = app.databases.db1.begin::<Read>().unwrap();
    api_keys::find(&mut session, id).unwrap().expect("the key")
}

/// Authorization headers that carry no valid key, each with what it is.
fn invalid_authorizations(fixture: &Fixture) -> Vec<(&'static str, Option<String>)> {
    let token = fixture.write.as_str();
    let (id, secret) = parts(token);
    let (_, other_secret) = parts(&fixture.read);
    let unknown_id = format!(
        "{}{}",
        if id.starts_with('0') { '1' } else { '0' },
        &id[1..]
    );
    vec![
        ("no Authorization header", None),
        ("an empty bearer token", Some("Bearer ".into())),
        ("a bearer that is no token", Some(bearer("not-a-token"))),
        ("the token without a scheme", Some(token.to_owned())),
        ("the token under Basic", Some(format!("Basic {token}"))),
        (
            "the token in upper case",
            Some(bearer(&token.to_ascii_uppercase())),
        ),
        (
            "the token with a digit more",
            Some(bearer(&format!("{token}0"))),
        ),
        (
            "the token a digit short",
            Some(bearer(&token[..token.len() - 1])),
        ),
        (
            "an unknown key id",
            Some(bearer(&format!("mdb_{unknown_id}_{secret}"))),
        ),
        (
            "a known id with another key's secret",
            Some(bearer(&format!("mdb_{id}_{other_secret}"))),
        ),
        ("a revoked key", Some(bearer(&fixture.revoked))),
    ]
}

/// No key, a malformed one, an unknown one, a wrong secret, a revoked key: every method
/// of every protected route (405s too) answers 401 with `WWW-Authenticate: Bearer`, and
/// nothing is written.
fn requests_without_a_valid_key_are_refused_and_write_nothing(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    let before = fixture.state();
    let calls = fixture.calls();
    for (what, authorization) in invalid_authorizations(&fixture) {
        for call in &calls {
            let response = fixture.call(call, authorization.as_deref());
            fixture.assert_refused(
                &response,
                401,
                "unauthorized",
                &format!("{} {} with {what}", call.method, call.path),
            );
        }
        assert_eq!(fixture.state(), before, "written with {what}");
    }
}

/// A `read` key gets every GET and is refused every other method (403, even where the
/// method would be 405), with nothing written.
fn a_read_key_may_get_and_nothing_else(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    let before = fixture.state();
    let reader = bearer(&fixture.read);
    for call in fixture.calls() {
        let response = fixture.call(&call, Some(&reader));
        let what = format!("{} {} with a read key", call.method, call.path);
        if call.method == "GET" {
            assert_eq!(response.status, 200, "{what}: {}", response.text);
        } else {
            fixture.assert_refused(&response, 403, "forbidden", &what);
        }
    }
    assert_eq!(fixture.state(), before, "written with a read key");
}

/// A `write` key may use every documented method of every route.
fn a_write_key_may_use_every_method(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    let writer = bearer(&fixture.write);
    fixture.assert_everything_served(Some(&writer));
    // The last calls deleted the user, with their orders; the one user left is the
    // one created by `POST /users`.
    assert_eq!(
        (fixture.app.count_users(), fixture.app.count_orders()),
        (1, 0)
    );
}

on_every_stack!(
    requests_without_a_valid_key_are_refused_and_write_nothing,
    a_read_key_may_get_and_nothing_else,
    a_write_key_may_use_every_method,
);

/// With `AUTH=off`, the default of the test harness (it binds to 127.0.0.1), every
/// route answers without a key.
#[test]
fn with_auth_off_every_route_answers_without_a_key() {
    let fixture = Fixture::new(Stack::sqlite(), Auth::Off);
    fixture.assert_everything_served(None);
}

/// The public routes are exactly the operations endpoints and `/health`, and answer
/// without a key when `AUTH=required`; a path no route matches is a 404, not a 401.
#[test]
fn public_routes_and_unknown_paths_answer_without_a_key() {
    let fixture = Fixture::new(Stack::sqlite(), Auth::Required);
    let public: BTreeSet<&str> = multidb::http::public_routes().collect();
    assert_eq!(public, BTreeSet::from(PUBLIC));
    for template in public {
        let path = template.replace("{file}", "swagger-ui.css");
        let response = fixture.app.get(&path);
        assert!(
            (200..400).contains(&response.status),
            "GET {path}: {} {}",
            response.status,
            response.text
        );
    }
    for method in ["GET", "POST", "DELETE"] {
        let response = fixture.app.request(method, "/no/such/route", None);
        response.assert_error(404, "not_found");
        assert_eq!(response.body["error"], "no such route");
    }
    // And the application did require keys.
    fixture.app.get("/users").assert_error(401, "unauthorized");
}

// ---------------------------------------------------------------------------------------
// Last use, in-process.

/// A key's first use is noted in `last_used_at`, in the background; the uses within the
/// next minute are not written again. That the later uses wrote nothing is observed
/// through a witness: a mark is put in the column, the key is used again five times, then
/// another key is used for the first time on the same connection (the same worker); once
/// the witness's use is noted, a note of the five uses spawned before it would very
/// likely be in too, and would have overwritten the mark.
fn a_keys_use_is_noted_at_most_once_a_minute(stack: Stack) {
    let app = spawn_app_with(stack, |settings| settings.auth = Auth::Required);
    let (key, token) = create_key(&app, "noted", Scope::Read);
    let (witness, witness_token) = create_key(&app, "witness", Scope::Read);
    assert_eq!(key.last_used_at, None);
    let get = |token: &str| {
        let response = app.request_with("GET", "/users", &authorized(Some(&bearer(token))), None);
        assert_eq!(response.status, 200, "{}", response.text);
    };

    get(&token);
    let first = eventually("the first use noted", || {
        find_key(&app, &key.id).last_used_at
    });
    assert!(first >= key.created_at, "{first} before {}", key.created_at);

    let mark = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .unwrap();
    let mut session = app.databases.db1.begin::<Write>().unwrap();
    api_keys::touch(&mut session, &key.id, mark).unwrap();
    session.commit().unwrap();
    for _ in 0..5 {
        get(&token);
    }
    get(&witness_token);
    eventually("the witness's use noted", || {
        find_key(&app, &witness.id).last_used_at
    });
    assert_eq!(
        find_key(&app, &key.id).last_used_at,
        Some(mark),
        "a use within the minute was written again"
    );
}

// ---------------------------------------------------------------------------------------
// The real binary: `multidb keys`, several instances, the log.

/// `multidb keys ARGS…` on `storage`'s databases, logging at debug level.
fn keys(storage: &Storage, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multidb"))
        .arg("keys")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL_1", storage.raw_url(1))
        .env("DATABASE_URL_2", storage.raw_url(2))
        .env("RUST_LOG", "debug")
        // No ./.env of the developer's.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run multidb keys")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 on stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout {:?}, stderr {:?}",
        stdout(output),
        stderr(output)
    );
}

/// `multidb keys create`: asserts that it printed a token and nothing else, and no
/// token in its log; returns the token.
fn create_with_cli(storage: &Storage, name: &str, scope: &str) -> String {
    let output = keys(storage, &["create", "--name", name, "--scope", scope]);
    assert_exit(&output, 0, "keys create");
    let printed = stdout(&output);
    let format = Regex::new(r"\Amdb_[0-9a-f]{16}_[0-9a-f]{64}\n\z").unwrap();
    assert!(format.is_match(&printed), "not a token: {printed:?}");
    let token = printed.trim_end().to_owned();
    assert!(
        !shows_a_token(&stderr(&output), &[&token]),
        "keys create logged its token: {}",
        stderr(&output)
    );
    token
}

/// The rows of `multidb keys list` under its header, each split at its tabs.
fn list_with_cli(storage: &Storage) -> (String, Vec<Vec<String>>) {
    let output = keys(storage, &["list"]);
    assert_exit(&output, 0, "keys list");
    let printed = stdout(&output);
    let mut lines = printed.lines();
    assert_eq!(
        lines.next(),
        Some("ID\tNAME\tSCOPE\tCREATED\tLAST USED\tREVOKED")
    );
    let rows = lines
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect();
    (printed, rows)
}

/// The `multidb keys list` row of the key of `token`.
fn listed(storage: &Storage, token: &str) -> Vec<String> {
    let (id, _) = parts(token);
    let (_, rows) = list_with_cli(storage);
    rows.into_iter()
        .find(|row| row[0] == id)
        .unwrap_or_else(|| panic!("key {id} not listed"))
}

const LAST_USED: usize = 4;
const REVOKED: usize = 5;

/// `keys create` prints a new token once; `keys list` shows each key's id, name, scope
/// and times but never its token, secret or hash; `keys revoke` marks it revoked;
/// an unknown id fails (1) and bad usage is refused (2), creating nothing.
fn the_keys_commands_create_list_and_revoke(stack: Stack) {
    let storage = Storage::create(stack);
    let read = create_with_cli(&storage, "deploy bot", "read");
    let write = create_with_cli(&storage, "ci", "write");
    assert_ne!(parts(&read).0, parts(&write).0);

    let time = Regex::new(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z").unwrap();
    let (printed, rows) = list_with_cli(&storage);
    assert_eq!(rows.len(), 2, "{printed}");
    for (token, name, scope) in [(&read, "deploy bot", "read"), (&write, "ci", "write")] {
        let row = listed(&storage, token);
        assert_eq!(row.len(), 6, "{row:?}");
        assert_eq!((row[1].as_str(), row[2].as_str()), (name, scope), "{row:?}");
        assert!(time.is_match(&row[3]), "created: {row:?}");
        assert_eq!((row[LAST_USED].as_str(), row[REVOKED].as_str()), ("-", "-"));
        let (_, secret) = parts(token);
        assert!(
            !shows_a_token(&printed, &[token]) && !printed.contains(&sha256_hex(secret)),
            "keys list shows a token, a secret or its hash: {printed}"
        );
    }

    let (id, _) = parts(&read);
    let output = keys(&storage, &["revoke", id]);
    assert_exit(&output, 0, "keys revoke");
    assert_eq!(stdout(&output), format!("revoked {id}\n"));
    let row = listed(&storage, &read);
    assert!(time.is_match(&row[REVOKED]), "revoked: {row:?}");
    assert_eq!(listed(&storage, &write)[REVOKED], "-");

    let output = keys(&storage, &["revoke", "0123456789abcdef"]);
    assert_exit(&output, 1, "keys revoke of an unknown id");
    assert_eq!(stdout(&output), "");

    for usage in [
        &["create", "--name", "admin", "--scope", "admin"][..],
        &["create", "--name", "no scope"],
        &["create", "--scope", "read"],
        &["create", "--name", "", "--scope", "read"],
        &["revoke"],
        &["list", "--all"],
        &["rotate", id],
    ] {
        let output = keys(&storage, usage);
        assert_exit(&output, 2, &format!("keys {}", usage.join(" ")));
        assert_eq!(stdout(&output), "", "keys {}", usage.join(" "));
    }
    assert_eq!(list_with_cli(&storage).1.len(), 2, "created by bad usage");
    storage.remove();
}

fn serve(storage: &Storage, extra: &[(&str, &str)]) -> ChildServer {
    let mut env = vec![
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        ("AUTH", "required"),
    ];
    env.extend_from_slice(extra);
    ChildServer::start(&env)
}

/// Two instances on the same databases both serve a key made with `multidb keys create`
/// (whose use `keys list` then shows) and, once `multidb keys revoke` has run, both
/// refuse it: each had the key's row cached, and lets it go within the cache's time.
fn a_revoked_key_is_refused_by_every_running_instance(stack: Stack) {
    let storage = Storage::create(stack);
    let servers = [serve(&storage, &[]), serve(&storage, &[])];
    let token = create_with_cli(&storage, "shared", "read");
    let authorization = bearer(&token);
    let get = |server: &ChildServer| {
        server.request_with("GET", "/users", &authorized(Some(&authorization)), None)
    };
    for server in &servers {
        server
            .request("GET", "/users", None)
            .assert_error(401, "unauthorized");
        let response = get(server);
        assert_eq!(response.status, 200, "{}", response.text);
    }
    eventually("the key's use shown by keys list", || {
        let row = listed(&storage, &token);
        (row[LAST_USED] != "-").then_some(())
    });

    let (id, _) = parts(&token);
    assert_exit(&keys(&storage, &["revoke", id]), 0, "keys revoke");
    for (n, server) in servers.iter().enumerate() {
        let refused = eventually(&format!("instance {n} refusing the revoked key"), || {
            Some(get(server)).filter(|response| response.status != 200)
        });
        refused.assert_error(401, "unauthorized");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    }
    drop(servers);
    storage.remove();
}

on_stacks!([sqlite, postgres] =>
    a_keys_use_is_noted_at_most_once_a_minute,
    the_keys_commands_create_list_and_revoke,
    a_revoked_key_is_refused_by_every_running_instance,
);

/// Requests with a valid key (served, refused for its scope), a wrong secret, a revoked
/// key and malformed tokens, to a server logging everything (`trace`, its dependencies'
/// lines too) in each format, and the `keys` commands logging at debug level: no line
/// shows a token or its secret.
#[test]
fn no_token_is_ever_logged() {
    let storage = Storage::create(Stack::sqlite());
    for format in ["text", "json"] {
        let write = create_with_cli(&storage, &format!("writer {format}"), "write");
        let read = create_with_cli(&storage, &format!("reader {format}"), "read");
        let revoked = create_with_cli(&storage, &format!("revoked {format}"), "write");
        assert_exit(
            &keys(&storage, &["revoke", parts(&revoked).0]),
            0,
            "keys revoke",
        );
        let (write_id, _) = parts(&write);
        let (_, read_secret) = parts(&read);
        let server = serve(&storage, &[("RUST_LOG", "trace"), ("LOG_FORMAT", format)]);
        let user = json!({"email": format!("{format}@example.com"), "name": "Logged"});
        let requests = [
            (bearer(&write), "POST", "/users", Some(user), 201),
            (bearer(&write), "GET", "/users", None, 200),
            (bearer(&read), "GET", "/overview", None, 200),
            (bearer(&read), "DELETE", "/users/1", None, 403),
            (
                bearer(&format!("mdb_{write_id}_{read_secret}")),
                "GET",
                "/users",
                None,
                401,
            ),
            (bearer(&revoked), "GET", "/users", None, 401),
            (bearer(&format!("{write}0")), "GET", "/users", None, 401),
            (write.clone(), "GET", "/users", None, 401),
            (format!("Basic {read}"), "GET", "/users", None, 401),
        ];
        let mut request_ids = Vec::new();
        for (n, (authorization, method, path, body, status)) in requests.into_iter().enumerate() {
            let request_id = format!("auth-log-{format}-{n}");
            let headers = [
                ("Authorization", authorization.as_str()),
                ("X-Request-Id", request_id.as_str()),
            ];
            let response = server.request_with(method, path, &headers, body);
            assert_eq!(
                response.status, status,
                "{method} {path}: {}",
                response.text
            );
            request_ids.push(request_id);
        }
        // The background note of the key's use, and whatever it logs, is done.
        for token in [&write, &read] {
            eventually("the key's use noted", || {
                (listed(&storage, token)[LAST_USED] != "-").then_some(())
            });
        }

        let lines = server.stderr_until_killed();
        for request_id in &request_ids {
            assert!(
                lines.iter().any(|line| line.contains(request_id.as_str())),
                "{format}: no line of request {request_id}"
            );
        }
        for line in &lines {
            assert!(
                !shows_a_token(line, &[&write, &read, &revoked]),
                "{format}: a token in the log: {line}"
            );
        }
    }
    storage.remove();
}

/// The note of a key's first use is written within its request, not left running: a
/// server stopped right after it leaves no connection out of its pool and no transaction
/// open (checked when the test app drops). A background write did, every time, with the
/// commit slowed down.
fn a_stopped_app_leaves_no_note_of_a_keys_use_holding_a_connection(stack: Stack) {
    use multidb::db::fault::FaultAction;
    let app = spawn_app_with(stack, |settings| settings.auth = Auth::Required);
    let (_, token) = create_key(&app, "last", Scope::Read);
    app.faults.arm("db1.commit", FaultAction::Sleep(500));
    let response = app.request_with("GET", "/users", &authorized(Some(&bearer(&token))), None);
    assert_eq!(response.status, 200, "{}", response.text);
}

on_stacks!([sqlite, postgres] => a_stopped_app_leaves_no_note_of_a_keys_use_holding_a_connection);
