//! The log a machine reads (README, "Operations"): with `LOG_FORMAT=json` every line is
//! one JSON object; each request has one line with its id, method, route, status and
//! duration, and for a database error the database and the cause; and what the
//! database layer logs on a request's behalf carries the request's id.

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use serde_json::{json, Value};

use crate::helpers::{ChildServer, Stack, Storage};

/// The JSON line the server writes for which `wanted` holds.
fn logged(server: &ChildServer, wanted: impl Fn(&Value) -> bool) -> Value {
    let line = server
        .wait_for_stderr_line(|line| {
            let line = line.strip_prefix("[server] ").unwrap_or(line);
            serde_json::from_str::<Value>(line).is_ok_and(|value| wanted(&value))
        })
        .expect("the server never logged the line");
    serde_json::from_str(&line).unwrap()
}

#[test]
fn json_lines_name_the_request_in_its_own_line_and_in_the_database_layers() {
    let storage = Storage::create(Stack::sqlite());
    let server = ChildServer::start(&[
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        ("RUST_LOG", "info"),
        ("LOG_FORMAT", "json"),
        ("DB1_BUSY_TIMEOUT_MS", "100"),
        // A fault point that only waits a millisecond: the database layer logs a
        // warning, on a blocking thread, in the middle of the request.
        ("MULTIDB_FAULTS", "db1.commit=sleep:1"),
    ]);

    let created = server.request(
        "POST",
        "/users",
        Some(json!({"email": "ada@example.com", "name": "Ada"})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.header("x-request-id").unwrap().to_owned();
    // db1 commits at start-up too, for no request: the line wanted is this request's.
    let warning = logged(&server, |line| {
        line["msg"] == "fault injected at db1.commit: Sleep(1)" && line["request_id"] == id.as_str()
    });
    assert_eq!(warning["level"], "WARN");
    let line = logged(&server, |line| {
        line["msg"] == "request" && line["request_id"] == id.as_str()
    });
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/users");
    assert_eq!(line["path"], "/users");
    assert_eq!(line["status"], 201);
    assert!(
        line["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    assert!(
        line["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
        "{line}"
    );
    assert!(line.get("cause").is_none(), "{line}");

    // A database error: db1's file held locked by another process's transaction.
    let mut holder = SqliteConnection::establish(storage.raw_url(1)).unwrap();
    holder.batch_execute("BEGIN EXCLUSIVE").unwrap();
    let refused = server.request(
        "POST",
        "/users",
        Some(json!({"email": "bea@example.com", "name": "Bea"})),
    );
    refused.assert_error(503, "database_unavailable");
    let id = refused.header("x-request-id").unwrap().to_owned();
    let line = logged(&server, |line| {
        line["msg"] == "request" && line["request_id"] == id.as_str()
    });
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["status"], 503);
    assert_eq!(line["db"], "db1");
    assert!(
        line["cause"]
            .as_str()
            .is_some_and(|cause| cause.contains("database is locked")),
        "{line}"
    );
    assert!(
        !refused.text.contains("locked"),
        "the client sees no cause: {}",
        refused.text
    );
    holder.batch_execute("ROLLBACK").unwrap();

    // An unknown route is logged under `unmatched`, with the raw path beside it.
    let missing = server.request("GET", "/no/such/thing", None);
    let id = missing.header("x-request-id").unwrap().to_owned();
    let line = logged(&server, |line| {
        line["msg"] == "request" && line["request_id"] == id.as_str()
    });
    assert_eq!(line["route"], "unmatched");
    assert_eq!(line["path"], "/no/such/thing");
    assert_eq!(line["status"], 404);
    drop(server);
    storage.remove();
}
