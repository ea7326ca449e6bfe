//! The users endpoints and the generic input and error rules of API.md, through HTTP
//! against the real application on every stack.

mod by_id;
mod create;
mod list;
mod routing;

use std::collections::HashSet;
use std::time::Duration;

use crate::helpers::{id_of, item_ids, spawn_app, Response, Stack, TestApp};
use serde_json::{json, Value};

const MAX_BODY_BYTES: usize = 64 * 1024;

/// Sends `raw` as a JSON body, whatever it contains.
fn send_json(app: &TestApp, method: &str, path: &str, raw: &str) -> Response {
    app.request(
        method,
        path,
        Some(("application/json", raw.as_bytes().to_vec())),
    )
}

/// A user body as API.md describes it: exactly `id`, `email`, `name`, `created_at`.
#[track_caller]
fn assert_user(user: &Value, email: &str, name: &str) {
    let object = user
        .as_object()
        .unwrap_or_else(|| panic!("a user is a JSON object: {user}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "email", "id", "name"],
        "user fields: {user}"
    );
    assert!(id_of(user) > 0, "ids are positive: {user}");
    assert_eq!(user["email"], email, "email of {user}");
    assert_eq!(user["name"], name, "name of {user}");
    let created_at = user["created_at"]
        .as_str()
        .unwrap_or_else(|| panic!("created_at is a string: {user}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(created_at)
        .unwrap_or_else(|e| panic!("created_at {created_at:?} is not RFC 3339: {e}"));
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "created_at is UTC: {created_at}"
    );
    assert!(
        created_at.ends_with('Z'),
        "created_at is shown in UTC with Z: {created_at}"
    );
}

/// Asserts an error response and that the database still holds `users` users.
#[track_caller]
fn assert_refused(app: &TestApp, response: &Response, status: u16, code: &str, users: i64) {
    response.assert_error(status, code);
    assert_eq!(
        app.count_users(),
        users,
        "a refused request wrote to db1; response: {}",
        response.text
    );
}

/// Error messages never show SQL, constraint names or backend details.
#[track_caller]
fn assert_no_sql_leak(response: &Response) {
    assert!(
        !response.text.contains("UNIQUE"),
        "SQL in the error: {}",
        response.text
    );
    let lower = response.text.to_lowercase();
    for leak in [
        "constraint",
        "users_email_key",
        "duplicate key",
        "sqlite",
        "postgres",
        "diesel",
        "insert into",
        "update users",
        "violates",
    ] {
        assert!(
            !lower.contains(leak),
            "{leak:?} leaked into the error: {}",
            response.text
        );
    }
}

/// The user as GET returns it, asserting the 200.
#[track_caller]
fn get_user(app: &TestApp, id: i64) -> Value {
    let response = app.get(&format!("/users/{id}"));
    assert_eq!(response.status, 200, "GET user {id}: {}", response.text);
    response.body
}

/// A JSON body padded with trailing whitespace (valid JSON) to exactly `size` bytes.
fn padded_body(object: &Value, size: usize) -> String {
    let mut body = object.to_string();
    assert!(body.len() <= size, "body too long to pad");
    body.push_str(&" ".repeat(size - body.len()));
    assert_eq!(body.len(), size);
    body
}

/// A request with an `X-Request-Id` of the client's choice (the harness sets no headers).
/// Returns the status and the `X-Request-Id` of the response.
fn send_with_request_id(
    app: &TestApp,
    method: &str,
    path: &str,
    request_id: &str,
    body: Option<&str>,
) -> (u16, Option<String>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let request = agent
        .request(method, &format!("{}{path}", app.address))
        .set("X-Request-Id", request_id);
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {path}: transport error: {error}"),
    };
    (
        response.status(),
        response.header("x-request-id").map(str::to_owned),
    )
}
