//! HTTP manners on every route of the route table (`multidb::http::route_templates()`):
//! HEAD wherever GET is, OPTIONS with `Allow` (public even when keys are required), CORS
//! only for the origins an operator allows, unknown query parameters refused as unknown
//! body fields are, long path segments quoted by a short prefix, one URL per resource.
//! The routing is the same on every stack, so SQLite only.

use std::collections::BTreeSet;

use multidb::api_keys::Scope;
use multidb::config::Auth;
use multidb::http::AllowedOrigins;
use serde_json::{json, Value};

use crate::helpers::{
    concrete_path, id_of, spawn_app, spawn_app_with, start_up_outcome, ChildServer, Response,
    Stack, Storage, TestApp,
};

fn allow(template: &str) -> BTreeSet<&'static str> {
    multidb::http::allowed_methods(template)
        .expect("a route of the table")
        .split(", ")
        .collect()
}

/// An app with a user and an order, and the path of every route for them.
fn app_with_every_route(app: &TestApp) -> Vec<(&'static str, String)> {
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let order = id_of(&app.order(user).create());
    multidb::http::route_templates()
        .map(|template| (template, concrete_path(template, user, order)))
        .collect()
}

#[test]
fn head_is_answered_wherever_get_is_with_the_same_status_and_headers_and_no_body() {
    let app = spawn_app(Stack::sqlite());
    let routes = app_with_every_route(&app);
    let mut checked = 0;
    for (template, path) in &routes {
        let methods = allow(template);
        assert_eq!(
            methods.contains("HEAD"),
            methods.contains("GET"),
            "{template}: HEAD goes with GET"
        );
        if !methods.contains("GET") {
            continue;
        }
        let get = app.get(path);
        let head = app.request("HEAD", path, None);
        assert_eq!(head.status, get.status, "HEAD {path}: {}", get.text);
        assert!(
            head.text.is_empty(),
            "HEAD {path} has a body: {}",
            head.text
        );
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert_eq!(head.header("location"), get.header("location"), "{path}");
        // /metrics grows between two scrapes; everything else is the same bytes.
        if *template != "/metrics" {
            assert_eq!(
                head.header("content-length"),
                Some(get.text.len().to_string().as_str()),
                "HEAD {path}: the length of the GET's body"
            );
        }
        assert!(head.header("x-request-id").is_some(), "{path}");
        checked += 1;
    }
    assert!(checked >= 10, "every GET route: {checked}");
    // An error is the GET's error, without its body.
    let missing = app.request("HEAD", "/users/999999", None);
    assert_eq!(missing.status, 404);
    assert!(missing.text.is_empty());
    assert_eq!(missing.header("content-type"), Some("application/json"));
}

/// OPTIONS needs no key: it says only which methods a path takes, and a browser's CORS
/// preflight carries no credentials.
#[test]
fn options_answers_204_with_allow_on_every_route_even_where_keys_are_required() {
    let app = spawn_app_with(Stack::sqlite(), |settings| settings.auth = Auth::Required);
    let routes: Vec<(&str, String)> = multidb::http::route_templates()
        .map(|template| (template, concrete_path(template, 1, 1)))
        .collect();
    for (template, path) in &routes {
        let response = app.request("OPTIONS", path, None);
        response.assert_no_content();
        assert_eq!(
            response.header("allow"),
            multidb::http::allowed_methods(template),
            "OPTIONS {path}"
        );
        assert!(allow(template).contains("OPTIONS"), "{template}");
    }
    // The key is still asked for everything else, HEAD included; a read key may HEAD.
    app.get("/users").assert_error(401, "unauthorized");
    let head = app.request("HEAD", "/users", None);
    assert_eq!((head.status, head.text.as_str()), (401, ""));
    let (_, token) = crate::auth::create_key(&app, "reader", Scope::Read);
    let authorization = crate::auth::bearer(&token);
    let head = app.request_with("HEAD", "/users", &[("Authorization", &authorization)], None);
    assert_eq!((head.status, head.text.as_str()), (200, ""));
    app.request("OPTIONS", "/no-such-route", None)
        .assert_error(404, "not_found");
}

fn preflight(app: &TestApp, path: &str, origin: &str, method: &str, headers: &str) -> Response {
    app.request_with(
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", headers),
        ],
        None,
    )
}

const APP_ORIGIN: &str = "https://app.example.com";
const REQUESTED_HEADERS: &str = "authorization, content-type, idempotency-key";

#[test]
fn cors_is_off_by_default() {
    let app = spawn_app(Stack::sqlite());
    let answer = preflight(&app, "/users", APP_ORIGIN, "POST", REQUESTED_HEADERS);
    // An OPTIONS like any other: the browser finds no permission and stops.
    answer.assert_no_content();
    assert_eq!(answer.header("access-control-allow-origin"), None);
    let read = app.request_with("GET", "/users", &[("Origin", APP_ORIGIN)], None);
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), None);
}

#[test]
fn cors_lets_in_exactly_the_allowed_origins() {
    let app = spawn_app_with(Stack::sqlite(), |settings| {
        settings.cors_allowed_origins =
            AllowedOrigins::parse(Some("https://App.Example.com, http://localhost:3000"))
                .expect("origins");
    });
    let answer = preflight(&app, "/users", APP_ORIGIN, "POST", REQUESTED_HEADERS);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let methods = answer.header("access-control-allow-methods").unwrap_or("");
    for method in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = answer
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(header), "{headers}");
    }
    assert!(answer.header("access-control-max-age").is_some());

    let created = app.request_with(
        "POST",
        "/users",
        &[("Origin", APP_ORIGIN)],
        Some((
            "application/json",
            json!({"email": "ada@example.com", "name": "Ada"})
                .to_string()
                .into_bytes(),
        )),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.header("access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let exposed = created
        .header("access-control-expose-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    for header in [
        "location",
        "x-request-id",
        "idempotent-replayed",
        "retry-after",
    ] {
        assert!(exposed.contains(header), "{exposed}");
    }
    // The second origin too.
    let local = preflight(
        &app,
        "/orders",
        "http://localhost:3000",
        "GET",
        "authorization",
    );
    assert_eq!(local.status, 200, "{}", local.text);

    // Another origin: its preflight is refused as JSON, and its reads carry no
    // permission, so a browser keeps the answer from the page.
    let users = app.count_users();
    let other = preflight(
        &app,
        "/users",
        "https://evil.example",
        "POST",
        REQUESTED_HEADERS,
    );
    other.assert_error(400, "bad_request");
    assert_eq!(other.header("access-control-allow-origin"), None);
    let read = app.request_with("GET", "/users", &[("Origin", "https://evil.example")], None);
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), None);
    // A method the API does not take, from the allowed origin.
    preflight(&app, "/users", APP_ORIGIN, "PUT", "content-type").assert_error(400, "bad_request");
    assert_eq!(app.count_users(), users);
}

#[test]
fn cors_can_allow_any_origin() {
    let app = spawn_app_with(Stack::sqlite(), |settings| {
        settings.cors_allowed_origins = AllowedOrigins::Any;
    });
    let answer = preflight(
        &app,
        "/users",
        "https://anywhere.example",
        "GET",
        "authorization",
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn a_malformed_cors_origin_stops_the_start_up_and_names_the_variable() {
    let storage = Storage::create(Stack::sqlite());
    for wrong in [
        "app.example.com",
        "https://app.example.com/",
        "ftp://x.example",
    ] {
        let (status, stderr) = start_up_outcome(&[
            ("DATABASE_URL_1", storage.raw_url(1)),
            ("DATABASE_URL_2", storage.raw_url(2)),
            ("CORS_ALLOWED_ORIGINS", wrong),
        ]);
        assert_eq!(status, Some(1), "{wrong}: {stderr}");
        assert!(
            stderr.contains("invalid CORS_ALLOWED_ORIGINS") && stderr.contains(wrong),
            "{wrong}: {stderr}"
        );
    }
}

/// A valid body for each write, so that only the query can be wrong.
fn body_for(method: &str, template: &str, user: i64) -> Option<(&'static str, Vec<u8>)> {
    let body = match (method, template) {
        ("POST", "/users") => json!({"email": "bea@example.com", "name": "Bea"}),
        ("POST", "/orders") => {
            json!({"user_id": user, "item": "pen", "quantity": 1, "amount_cents": 5})
        }
        ("PATCH", _) => json!({"name": "Changed"}),
        _ => return None,
    };
    Some(("application/json", body.to_string().into_bytes()))
}

/// `GET /orders?userId=1` must not list everyone's orders: a parameter an operation does
/// not take is a 400 naming it, on every operation and method, and writes nothing.
#[test]
fn unknown_query_parameters_are_refused_on_every_operation_and_write_nothing() {
    let app = spawn_app(Stack::sqlite());
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let order = id_of(&app.order(user).create());
    let state = |app: &TestApp| {
        (
            app.count_users(),
            app.count_orders(),
            app.get(&format!("/users/{user}")).body,
        )
    };
    let before = state(&app);
    let mut refused = 0;
    for template in multidb::http::operation_templates() {
        let path = concrete_path(template, user, order);
        for method in allow(template) {
            if method == "OPTIONS" || method == "HEAD" {
                continue;
            }
            let response = app.request(
                method,
                &format!("{path}?userId={user}"),
                body_for(method, template, user),
            );
            response.assert_error(400, "bad_request");
            let message = response.body["error"].as_str().unwrap_or_default();
            assert!(message.contains("`userId`"), "{method} {path}: {message}");
            refused += 1;
        }
    }
    assert!(refused >= 14, "every operation: {refused}");
    assert_eq!(state(&app), before, "a refused request wrote something");

    // The parameters an operation takes still work, and a repeated one is refused.
    let filtered = app.get(&format!("/orders?user_id={user}&limit=1"));
    assert_eq!(filtered.status, 200, "{}", filtered.text);
    app.get("/users?limit=1&limit=2")
        .assert_error(400, "bad_request");
    // An empty query is no parameter.
    assert_eq!(app.get(&format!("/users/{user}?")).status, 200);
}

const LONG: usize = 60_000;

/// At most a short prefix of a client's text is quoted back: in the answer and in the
/// request's log line.
#[test]
fn a_long_path_segment_or_parameter_is_quoted_by_a_short_prefix() {
    let app = spawn_app(Stack::sqlite());
    let segment = "9".repeat(LONG);
    // Whether the answer quotes the value with its length, or cuts a longer message.
    for (path, with_length) in [
        (format!("/users/{segment}"), true),
        (format!("/orders/{segment}"), true),
        (format!("/users?after_id={segment}"), true),
        (format!("/health?{segment}=1"), true),
        (format!("/users?{segment}=1"), false),
    ] {
        let response = app.get(&path);
        response.assert_error(400, "bad_request");
        assert!(
            response.text.len() < 400,
            "{} bytes: {}…",
            response.text.len(),
            &response.text[..200]
        );
        let quoted = format!("{}…` ({LONG} bytes)", "9".repeat(32));
        let cut = format!("{}…", "9".repeat(100));
        if with_length {
            assert!(response.text.contains(&quoted), "{}", response.text);
        } else {
            assert!(response.text.contains(&cut), "{}", response.text);
        }
    }

    let storage = Storage::create(Stack::sqlite());
    let server = ChildServer::start(&[
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        ("RUST_LOG", "info"),
        ("LOG_FORMAT", "json"),
    ]);
    let response = server.request("GET", &format!("/users/{segment}"), None);
    assert_eq!(response.status, 400);
    let id = response.header("x-request-id").expect("an id").to_owned();
    let line = server
        .wait_for_stderr_line(|line| line.contains(&id) && line.contains("\"request\""))
        .expect("the request's line");
    assert!(line.len() < 1500, "a {}-byte log line", line.len());
    let line: Value = serde_json::from_str(line.trim_start_matches("[server] ")).expect("JSON");
    let path = line["path"].as_str().expect("a path");
    assert!(path.starts_with("/users/999"), "{path}");
    assert!(
        path.ends_with(&format!("({} bytes)", LONG + "/users/".len())),
        "{path}"
    );
    // The reason it was refused, which is the client's message.
    let reason = line["reason"].as_str().expect("a reason");
    assert_eq!(reason, response.body["error"], "{line}");
}
