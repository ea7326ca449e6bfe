//! Orders, user summaries and the overview through HTTP against the real application,
//! on every stack: creation and its input rules, reading, deleting, pagination, and
//! what deleting a user does to their orders in the other database.

mod both_databases;
mod by_id;
mod create;
mod list;
mod overview;
mod summary;

use std::collections::HashSet;

use crate::helpers::{
    get_object, get_page, id_of, ids_of, items_of, keys_of, spawn_app, walk_pages, Response, Stack,
    TestApp,
};
use serde_json::{json, Value};

const ORDER_FIELDS: [&str; 6] = [
    "id",
    "user_id",
    "item",
    "quantity",
    "amount_cents",
    "created_at",
];

fn order_body(user_id: i64, item: &str, quantity: i64, amount_cents: i64) -> Value {
    json!({ "user_id": user_id, "item": item, "quantity": quantity, "amount_cents": amount_cents })
}

fn post_raw(app: &TestApp, content_type: &str, body: &[u8]) -> Response {
    app.request("POST", "/orders", Some((content_type, body.to_vec())))
}

/// Checks that `created_at` is an RFC 3339 timestamp in UTC written with `Z`.
#[track_caller]
fn assert_utc_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("created_at is not a string: {value}"));
    assert!(text.ends_with('Z'), "created_at not in UTC with Z: {text}");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("created_at {text:?} is not RFC 3339: {e}"));
}

/// Checks that `order` is an order with exactly the API's fields and these values.
#[track_caller]
fn assert_order(order: &Value, user_id: i64, item: &str, quantity: i64, amount_cents: i64) {
    let mut expected_keys = ORDER_FIELDS.to_vec();
    expected_keys.sort_unstable();
    assert_eq!(keys_of(order), expected_keys, "order fields: {order}");
    assert!(id_of(order) > 0, "order id must be positive: {order}");
    assert_eq!(order["user_id"], user_id, "{order}");
    assert_eq!(order["item"], item, "{order}");
    assert_eq!(order["quantity"], quantity, "{order}");
    assert_eq!(order["amount_cents"], amount_cents, "{order}");
    assert_utc_timestamp(&order["created_at"]);
}

/// Posts an order body that must be refused with `status` and `code`, and checks that
/// nothing was written to db2.
#[track_caller]
fn assert_order_refused(app: &TestApp, body: Value, status: u16, code: &str) {
    let before = app.count_orders();
    let response = app.post("/orders", body.clone());
    assert_eq!(
        response.status, status,
        "POST /orders {body}: unexpected status; response: {}",
        response.text
    );
    response.assert_error(status, code);
    assert_eq!(
        app.count_orders(),
        before,
        "refused POST /orders {body} wrote an order"
    );
}

/// Like [`assert_order_refused`] for a raw body with a given content type ("" for none).
#[track_caller]
fn assert_raw_order_refused(
    app: &TestApp,
    content_type: &str,
    body: &[u8],
    status: u16,
    code: &str,
) {
    let before = app.count_orders();
    let response = post_raw(app, content_type, body);
    let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
    assert_eq!(
        response.status, status,
        "POST /orders ({content_type:?}) {shown:?}: unexpected status; response: {}",
        response.text
    );
    response.assert_error(status, code);
    assert_eq!(
        app.count_orders(),
        before,
        "refused POST /orders ({content_type:?}) {shown:?} wrote an order"
    );
}

/// Posts an order that must be created; checks the response and that it reads back equal.
#[track_caller]
fn assert_order_accepted(
    app: &TestApp,
    body: Value,
    user_id: i64,
    item: &str,
    quantity: i64,
    amount_cents: i64,
) -> Value {
    let before = app.count_orders();
    let response = app.post("/orders", body.clone());
    assert_eq!(
        response.status, 201,
        "POST /orders {body}: response: {}",
        response.text
    );
    assert_order(&response.body, user_id, item, quantity, amount_cents);
    let location = format!("/orders/{}", id_of(&response.body));
    assert_eq!(response.header("location"), Some(location.as_str()));
    let read = app.get(&location);
    assert_eq!(read.status, 200, "GET {location}: {}", read.text);
    assert_eq!(read.body, response.body, "order reads back as created");
    assert_eq!(app.count_orders(), before + 1);
    response.body
}

#[track_caller]
fn assert_get_error(app: &TestApp, path: &str, status: u16, code: &str) {
    let response = app.get(path);
    assert_eq!(
        response.status, status,
        "GET {path}: unexpected status; response: {}",
        response.text
    );
    response.assert_error(status, code);
}

#[track_caller]
fn assert_no_orphans(app: &TestApp) {
    assert_eq!(
        app.orphan_orders(),
        Vec::<i64>::new(),
        "orders referencing missing users"
    );
}

/// A user's summary, checked for shape.
#[track_caller]
fn get_summary(app: &TestApp, user_id: i64) -> Value {
    get_object(
        app,
        &format!("/users/{user_id}/summary"),
        &["order_count", "orders", "total_cents", "user"],
    )
}

/// Checks a summary against the user's orders in creation order (ascending ids): the
/// newest 100 listed newest first, the count and the sum over all of them.
#[track_caller]
fn assert_summary(app: &TestApp, user: &Value, orders_oldest_first: &[Value]) {
    let summary = get_summary(app, id_of(user));
    assert_eq!(&summary["user"], user, "summary user");
    let newest: Vec<Value> = orders_oldest_first
        .iter()
        .rev()
        .take(100)
        .cloned()
        .collect();
    let listed = items_of(&summary["orders"]);
    assert_eq!(
        ids_of(&listed),
        ids_of(&newest),
        "summary of user {} with {} orders lists the newest 100, newest first",
        id_of(user),
        orders_oldest_first.len()
    );
    assert_eq!(listed, newest, "summary orders as created");
    assert_eq!(
        summary["order_count"],
        orders_oldest_first.len(),
        "summary order_count"
    );
    let total: i64 = orders_oldest_first
        .iter()
        .map(|order| order["amount_cents"].as_i64().expect("amount_cents"))
        .sum();
    assert_eq!(summary["total_cents"], total, "summary total_cents");
}

fn create_users(app: &TestApp, prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            app.create_user(
                &format!("{prefix}{n}@example.com"),
                &format!("{prefix} {n}"),
            )
        })
        .collect()
}

const BAD_IDS: [&str; 6] = [
    "0",
    "-1",
    "abc",
    "9223372036854775808",
    "1.5",
    "99999999999999999999",
];

#[track_caller]
fn get_overview(app: &TestApp, path: &str) -> (Vec<Value>, Vec<Value>) {
    let body = get_object(app, path, &["data1", "data2"]);
    (items_of(&body["data1"]), items_of(&body["data2"]))
}
