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

mod cli;
mod scopes;
mod usage;
