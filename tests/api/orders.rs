//! Orders, user summaries and the overview through HTTP against the real application,
//! on every stack: creation and its input rules, reading, deleting, pagination, and
//! what deleting a user does to their orders in the other database.

use std::collections::HashSet;

use crate::helpers::{
    get_page, id_of, ids_of, items_of, keys_of, spawn_app, walk_pages, Response, Stack, TestApp,
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

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

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
    let path = format!("/users/{user_id}/summary");
    let response = app.get(&path);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text);
    assert_eq!(
        keys_of(&response.body),
        vec!["order_count", "orders", "total_cents", "user"],
        "GET {path}: summary fields: {}",
        response.text
    );
    response.body
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

// ---------------------------------------------------------------------------------------
// POST /orders
// ---------------------------------------------------------------------------------------

fn creating_an_order_returns_it_with_its_location_and_reads_back_equal(stack: Stack) {
    let app = spawn_app(stack);
    let user = app.create_user("ada@example.com", "Ada");
    let user_id = id_of(&user);

    let response = app.post("/orders", order_body(user_id, "book", 2, 1999));
    assert_eq!(response.status, 201, "{}", response.text);
    assert_order(&response.body, user_id, "book", 2, 1999);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let id = id_of(&response.body);
    let location = format!("/orders/{id}");
    assert_eq!(response.header("location"), Some(location.as_str()));
    let read = app.get(&location);
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body, response.body);
    assert_eq!(app.count_orders(), 1);

    // A second order gets an id of its own; a charset parameter on the JSON type is fine.
    let second = post_raw(
        &app,
        "application/json; charset=utf-8",
        order_body(user_id, "pen", 1, 250).to_string().as_bytes(),
    );
    assert_eq!(second.status, 201, "{}", second.text);
    assert_order(&second.body, user_id, "pen", 1, 250);
    assert_ne!(id_of(&second.body), id);
    assert_eq!(app.count_orders(), 2);
    assert_eq!(
        app.get(&location).body,
        response.body,
        "first order unchanged"
    );
    assert_no_orphans(&app);
}

fn order_for_a_missing_user_is_refused_and_not_written(stack: Stack) {
    let app = spawn_app(stack);
    // No users at all.
    assert_order_refused(&app, order_body(1, "book", 1, 100), 422, "unknown_user");
    assert_eq!(app.count_orders(), 0);

    let ada = id_of(&app.create_user("ada@example.com", "Ada"));
    let kept = app.create_order(ada, "book", 1, 100);
    for missing in [ada + 1, ada + 1000, i64::MAX] {
        assert_order_refused(
            &app,
            order_body(missing, "book", 1, 100),
            422,
            "unknown_user",
        );
    }

    // A user who existed but was deleted is as unknown as one who never did.
    let bob = id_of(&app.create_user("bob@example.com", "Bob"));
    app.create_order(bob, "lamp", 1, 4500);
    assert_eq!(app.count_orders(), 2);
    let deleted = app.delete(&format!("/users/{bob}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(app.count_orders(), 1);
    assert_order_refused(&app, order_body(bob, "lamp", 1, 4500), 422, "unknown_user");
    let (bobs, _) = get_page(&app, &format!("/orders?user_id={bob}"));
    assert!(bobs.is_empty(), "orders of a deleted user: {bobs:?}");

    let (all, next) = get_page(&app, "/orders");
    assert_eq!(all, vec![kept]);
    assert_eq!(next, None);
    assert_no_orphans(&app);
}

fn order_numbers_are_accepted_within_their_bounds_and_refused_outside(stack: Stack) {
    let app = spawn_app(stack);
    let user = id_of(&app.create_user("ada@example.com", "Ada"));

    for quantity in [0, -1, 10_001, 4_294_967_297, i64::MAX, i64::MIN] {
        assert_order_refused(
            &app,
            order_body(user, "book", quantity, 100),
            422,
            "validation_failed",
        );
    }
    for amount_cents in [-1, 1_000_000_000_001, i64::MAX, i64::MIN] {
        assert_order_refused(
            &app,
            order_body(user, "book", 1, amount_cents),
            422,
            "validation_failed",
        );
    }
    for user_id in [0, -5, i64::MIN] {
        assert_order_refused(
            &app,
            order_body(user_id, "book", 1, 100),
            422,
            "validation_failed",
        );
    }
    // Several broken rules at once are still one validation failure.
    assert_order_refused(&app, order_body(user, "", 0, -1), 422, "validation_failed");
    assert_eq!(app.count_orders(), 0);

    for (quantity, amount_cents) in [
        (1, 0),
        (10_000, 1_000_000_000_000),
        (1, 1_000_000_000_000),
        (10_000, 0),
    ] {
        assert_order_accepted(
            &app,
            order_body(user, "book", quantity, amount_cents),
            user,
            "book",
            quantity,
            amount_cents,
        );
    }
    assert_eq!(app.count_orders(), 4);
    assert_no_orphans(&app);
}

fn order_items_are_trimmed_and_must_be_1_to_200_characters_without_control_characters(
    stack: Stack,
) {
    let app = spawn_app(stack);
    let user = id_of(&app.create_user("ada@example.com", "Ada"));

    let refused = [
        String::new(),
        " ".into(),
        "   ".into(),
        "\t\n ".into(),
        "a".repeat(201),
        "é".repeat(201),
        format!(" {} ", "b".repeat(201)),
        "bell\u{7}".into(),
        "line\nbreak".into(),
        "tab\there".into(),
        "nul\u{0}byte".into(),
        "del\u{7f}".into(),
        "csi\u{9b}c1".into(),
        "\u{1b}[31mred".into(),
    ];
    for item in &refused {
        assert_order_refused(
            &app,
            order_body(user, item, 1, 100),
            422,
            "validation_failed",
        );
    }
    assert_eq!(app.count_orders(), 0);

    let accepted = [
        ("a".repeat(200), "a".repeat(200)),
        ("é".repeat(200), "é".repeat(200)),
        ("🎉".repeat(200), "🎉".repeat(200)),
        (format!("  {}  ", "b".repeat(200)), "b".repeat(200)),
        ("  padded book \t".into(), "padded book".into()),
        ("日本語 🎉".into(), "日本語 🎉".into()),
        ("x".into(), "x".into()),
    ];
    for (sent, stored) in &accepted {
        assert_order_accepted(&app, order_body(user, sent, 3, 700), user, stored, 3, 700);
    }
    assert_eq!(app.count_orders(), i64::try_from(accepted.len()).unwrap());
    assert_no_orphans(&app);
}

fn order_bodies_with_wrong_types_missing_or_unknown_fields_are_bad_requests(stack: Stack) {
    let app = spawn_app(stack);
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let valid = order_body(user, "book", 2, 1999);

    let mut bodies = Vec::new();
    // Wrong JSON types.
    for (field, value) in [
        ("quantity", json!(2.5)),
        ("quantity", json!("2")),
        ("quantity", json!(null)),
        ("quantity", json!(2.0)),
        ("quantity", json!([2])),
        ("user_id", json!(9_223_372_036_854_775_808_u64)),
        ("user_id", json!(user.to_string())),
        ("user_id", json!(null)),
        ("user_id", json!(true)),
        ("item", json!(null)),
        ("item", json!(5)),
        ("item", json!(["book"])),
        ("item", json!({ "name": "book" })),
        ("amount_cents", json!("1999")),
        ("amount_cents", json!(19.99)),
        ("amount_cents", json!(null)),
    ] {
        let mut body = valid.clone();
        body[field] = value;
        bodies.push(body);
    }
    // Missing fields.
    for field in ["user_id", "item", "quantity", "amount_cents"] {
        let mut body = valid.clone();
        body.as_object_mut().expect("object").remove(field);
        bodies.push(body);
    }
    bodies.push(json!({}));
    // Unknown fields, including ones the service assigns itself.
    for (field, value) in [
        ("note", json!("gift")),
        ("id", json!(5)),
        ("created_at", json!("2026-11-23T10:00:00Z")),
        ("Item", json!("book")),
    ] {
        let mut body = valid.clone();
        body[field] = value;
        bodies.push(body);
    }
    for body in bodies {
        assert_order_refused(&app, body, 400, "bad_request");
    }
    assert_eq!(app.count_orders(), 0);

    // The valid body itself is accepted: the refusals above were about the changes.
    assert_order_accepted(&app, valid, user, "book", 2, 1999);
    assert_no_orphans(&app);
}

fn order_bodies_must_be_json_objects_sent_as_json(stack: Stack) {
    let app = spawn_app(stack);
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let valid = order_body(user, "book", 2, 1999).to_string();

    for content_type in ["", "text/plain", "application/x-www-form-urlencoded"] {
        assert_raw_order_refused(
            &app,
            content_type,
            valid.as_bytes(),
            415,
            "unsupported_media_type",
        );
    }
    let malformed = [
        String::new(),
        "{".into(),
        "{\"user_id\": 1,}".into(),
        "[]".into(),
        format!("[{valid}]"),
        "null".into(),
        "\"book\"".into(),
        "42".into(),
        format!("{valid} trailing"),
        "not json".into(),
    ];
    for body in &malformed {
        assert_raw_order_refused(
            &app,
            "application/json",
            body.as_bytes(),
            400,
            "bad_request",
        );
    }
    // Over 64 KiB.
    let huge = order_body(user, &"x".repeat(70 * 1024), 1, 1).to_string();
    assert_raw_order_refused(
        &app,
        "application/json",
        huge.as_bytes(),
        413,
        "payload_too_large",
    );
    assert_eq!(app.count_orders(), 0);

    let response = post_raw(&app, "application/json", valid.as_bytes());
    assert_eq!(response.status, 201, "{}", response.text);
    assert_eq!(app.count_orders(), 1);

    // JSON under another media type is not `application/json` either.
    for content_type in ["text/json", "application/problem+json"] {
        assert_raw_order_refused(
            &app,
            content_type,
            valid.as_bytes(),
            415,
            "unsupported_media_type",
        );
    }
    assert_eq!(app.count_orders(), 1);
    assert_no_orphans(&app);
}

// ---------------------------------------------------------------------------------------
// GET and DELETE /orders/{id}
// ---------------------------------------------------------------------------------------

fn an_order_is_read_by_id_and_missing_or_malformed_ids_are_refused(stack: Stack) {
    let app = spawn_app(stack);
    let ada = id_of(&app.create_user("ada@example.com", "Ada"));
    let bob = id_of(&app.create_user("bob@example.com", "Bob"));
    let orders = [
        app.create_order(ada, "book", 2, 1999),
        app.create_order(bob, "lamp", 1, 4500),
        app.create_order(ada, "pen", 10, 99),
    ];
    for order in &orders {
        let response = app.get(&format!("/orders/{}", id_of(order)));
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(&response.body, order);
    }

    let highest = ids_of(&orders).into_iter().max().expect("orders");
    for missing in [highest + 1, highest + 1000, i64::MAX] {
        assert_get_error(&app, &format!("/orders/{missing}"), 404, "not_found");
        app.delete(&format!("/orders/{missing}"))
            .assert_error(404, "not_found");
    }
    for bad in BAD_IDS {
        assert_get_error(&app, &format!("/orders/{bad}"), 400, "bad_request");
        app.delete(&format!("/orders/{bad}"))
            .assert_error(400, "bad_request");
    }
    // Other methods on an order are not allowed.
    let path = format!("/orders/{}", id_of(&orders[0]));
    app.patch(&path, json!({ "quantity": 3 }))
        .assert_error(405, "method_not_allowed");
    app.request(
        "PUT",
        &path,
        Some(("application/json", orders[0].to_string().into_bytes())),
    )
    .assert_error(405, "method_not_allowed");

    assert_eq!(app.count_orders(), 3, "refusals deleted nothing");
    for order in &orders {
        assert_eq!(&app.get(&format!("/orders/{}", id_of(order))).body, order);
    }
    assert_no_orphans(&app);
}

fn deleting_an_order_removes_only_that_order(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    let first = app.create_order(id_of(&ada), "book", 2, 1999);
    let doomed = app.create_order(id_of(&ada), "pen", 1, 250);
    let third = app.create_order(id_of(&bob), "lamp", 1, 4500);
    let last = app.create_order(id_of(&ada), "ink", 3, 300);

    let path = format!("/orders/{}", id_of(&doomed));
    let response = app.delete(&path);
    assert_eq!(response.status, 204, "{}", response.text);
    assert!(
        response.text.is_empty(),
        "204 has no body: {}",
        response.text
    );
    assert_get_error(&app, &path, 404, "not_found");
    app.delete(&path).assert_error(404, "not_found");

    assert_eq!(app.count_orders(), 3);
    for order in [&first, &third, &last] {
        let response = app.get(&format!("/orders/{}", id_of(order)));
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(&response.body, order, "other orders untouched");
    }
    let (listed, next) = get_page(&app, "/orders");
    assert_eq!(listed, vec![first.clone(), third.clone(), last.clone()]);
    assert_eq!(next, None);
    assert_summary(&app, &ada, &[first, last]);
    assert_summary(&app, &bob, &[third]);
    // The user is untouched by deleting their order.
    assert_eq!(app.get(&format!("/users/{}", id_of(&ada))).body, ada);
    assert_no_orphans(&app);
}

// ---------------------------------------------------------------------------------------
// GET /orders
// ---------------------------------------------------------------------------------------

fn orders_are_listed_in_pages_by_ascending_id_without_gaps_or_duplicates(stack: Stack) {
    let app = spawn_app(stack);
    let (empty, next) = get_page(&app, "/orders");
    assert!(empty.is_empty());
    assert_eq!(next, None);

    let users = create_users(&app, "buyer", 2);
    let orders: Vec<Value> = (0..51)
        .map(|n| {
            app.create_order(
                id_of(&users[n % 2]),
                &format!("item {n}"),
                1,
                i64::try_from(n).unwrap(),
            )
        })
        .collect();
    let ids = ids_of(&orders);

    // Default limit: 50.
    let (first, next) = get_page(&app, "/orders");
    assert_eq!(first, orders[..50].to_vec());
    assert_eq!(next, Some(ids[49]));
    let (rest, next) = get_page(&app, &format!("/orders?after_id={}", ids[49]));
    assert_eq!(rest, orders[50..].to_vec());
    assert_eq!(next, None);

    // 51 is not a multiple of 2, 4 or 50, but is of 3 and 17: the last page is full
    // and still says it is the last.
    for (limit, pages) in [
        (1, 51),
        (2, 26),
        (3, 17),
        (4, 13),
        (17, 3),
        (50, 2),
        (51, 1),
        (500, 1),
    ] {
        let (all, walked) = walk_pages(&app, &format!("/orders?limit={limit}"), limit);
        assert_eq!(all, orders, "limit {limit}: every order once, in id order");
        assert_eq!(walked, pages, "limit {limit}: number of pages");
    }

    // Past the end, and from an id that no longer exists.
    for after in [ids[50], i64::MAX] {
        let (items, next) = get_page(&app, &format!("/orders?after_id={after}"));
        assert!(items.is_empty(), "after_id={after}: {items:?}");
        assert_eq!(next, None);
    }
    let gone = app.delete(&format!("/orders/{}", ids[10]));
    assert_eq!(gone.status, 204, "{}", gone.text);
    let (items, next) = get_page(&app, &format!("/orders?limit=3&after_id={}", ids[10]));
    assert_eq!(items, orders[11..14].to_vec());
    assert_eq!(next, Some(ids[13]));
    let (items, _) = get_page(&app, &format!("/orders?limit=3&after_id={}", ids[9]));
    assert_eq!(ids_of(&items), vec![ids[11], ids[12], ids[13]]);

    let mut remaining = orders.clone();
    remaining.remove(10);
    let (all, _) = walk_pages(&app, "/orders?limit=7", 7);
    assert_eq!(all, remaining);
    assert_no_orphans(&app);
}

fn order_listing_filters_by_user_and_paginates_within_that_user(stack: Stack) {
    let app = spawn_app(stack);
    let users = create_users(&app, "buyer", 3);
    let (ada, bob, cy) = (id_of(&users[0]), id_of(&users[1]), id_of(&users[2]));
    let mut adas = Vec::new();
    let mut bobs = Vec::new();
    for n in 0..12 {
        if n % 3 == 2 {
            bobs.push(app.create_order(bob, &format!("bob {n}"), 1, 10 * n));
        } else {
            adas.push(app.create_order(ada, &format!("ada {n}"), 2, 100 * n));
        }
    }
    assert_eq!((adas.len(), bobs.len()), (8, 4));

    for (limit, pages) in [(1, 8), (3, 3), (8, 1), (50, 1)] {
        let (all, walked) =
            walk_pages(&app, &format!("/orders?user_id={ada}&limit={limit}"), limit);
        assert_eq!(all, adas, "user {ada}, limit {limit}");
        assert_eq!(walked, pages, "user {ada}, limit {limit}: pages");
    }
    for (limit, pages) in [(2, 2), (4, 1), (500, 1)] {
        let (all, walked) =
            walk_pages(&app, &format!("/orders?limit={limit}&user_id={bob}"), limit);
        assert_eq!(all, bobs, "user {bob}, limit {limit}");
        assert_eq!(walked, pages, "user {bob}, limit {limit}: pages");
    }
    // Without a limit: the default page holds all of them.
    let (all, next) = get_page(&app, &format!("/orders?user_id={ada}"));
    assert_eq!(all, adas);
    assert_eq!(next, None);
    // after_id from another user's order is just a position.
    let (items, _) = get_page(
        &app,
        &format!("/orders?user_id={ada}&after_id={}", id_of(&bobs[0])),
    );
    let expected: Vec<Value> = adas
        .iter()
        .filter(|order| id_of(order) > id_of(&bobs[0]))
        .cloned()
        .collect();
    assert_eq!(items, expected);

    // A user without orders, and one that does not exist, have empty listings.
    let missing = cy + 1000;
    for user_id in [cy, missing, i64::MAX] {
        let (items, next) = get_page(&app, &format!("/orders?user_id={user_id}"));
        assert!(items.is_empty(), "user {user_id}: {items:?}");
        assert_eq!(next, None);
    }
    assert_no_orphans(&app);
}

fn order_listing_refuses_bad_query_parameters(stack: Stack) {
    let app = spawn_app(stack);
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let order = app.create_order(user, "book", 1, 100);

    let mut queries = Vec::new();
    for bad in BAD_IDS.iter().chain(&[""]) {
        queries.push(format!("user_id={bad}"));
        queries.push(format!("user_id={bad}&limit=10"));
    }
    for bad in [
        "0",
        "501",
        "-1",
        "x",
        "",
        "1.5",
        "65537",
        "99999999999999999999",
    ] {
        queries.push(format!("limit={bad}"));
        queries.push(format!("user_id={user}&limit={bad}"));
    }
    for bad in ["-1", "abc", "9223372036854775808", "1.5", ""] {
        queries.push(format!("after_id={bad}"));
        queries.push(format!("user_id={user}&after_id={bad}"));
    }
    for query in queries {
        assert_get_error(&app, &format!("/orders?{query}"), 400, "bad_request");
    }

    // The bounds themselves are fine.
    for query in [
        "limit=1",
        "limit=500",
        "after_id=9223372036854775807",
        "user_id=9223372036854775807",
    ] {
        let (items, next) = get_page(&app, &format!("/orders?{query}"));
        assert_eq!(next, None, "{query}");
        assert!(items.len() <= 1, "{query}");
    }
    let (items, _) = get_page(&app, &format!("/orders?user_id={user}&limit=1"));
    assert_eq!(items, vec![order]);
    assert_no_orphans(&app);
}

// ---------------------------------------------------------------------------------------
// GET /users/{id}/summary
// ---------------------------------------------------------------------------------------

fn user_summary_lists_orders_newest_first_with_count_and_total(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    let mut adas = Vec::new();
    let mut bobs = Vec::new();
    for (n, amount) in [1999, 0, 4500, 1_000_000_000_000, 250]
        .into_iter()
        .enumerate()
    {
        adas.push(app.create_order(id_of(&ada), &format!("ada {n}"), 1, amount));
        if n % 2 == 0 {
            bobs.push(app.create_order(id_of(&bob), &format!("bob {n}"), 2, amount + 1));
        }
    }

    let summary = get_summary(&app, id_of(&ada));
    assert_eq!(
        summary["user"],
        app.get(&format!("/users/{}", id_of(&ada))).body
    );
    let listed = items_of(&summary["orders"]);
    let listed_ids = ids_of(&listed);
    assert!(
        listed_ids.windows(2).all(|pair| pair[0] > pair[1]),
        "newest (highest id) first: {listed_ids:?}"
    );
    assert_eq!(summary["order_count"], 5);
    assert_eq!(summary["total_cents"], 1_000_000_006_749_i64);
    assert_summary(&app, &ada, &adas);
    assert_summary(&app, &bob, &bobs);

    // Deleting and adding orders shows up at once.
    let removed = adas.remove(3);
    let gone = app.delete(&format!("/orders/{}", id_of(&removed)));
    assert_eq!(gone.status, 204, "{}", gone.text);
    adas.push(app.create_order(id_of(&ada), "late", 1, 1));
    assert_summary(&app, &ada, &adas);
    assert_summary(&app, &bob, &bobs);
    assert_no_orphans(&app);
}

fn user_summary_lists_the_newest_100_orders_but_counts_and_sums_all(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    let mut adas = Vec::new();
    let mut bobs = Vec::new();
    for n in 1..=130_i64 {
        // Large amounts: the total is far beyond 32 bits.
        let amount = 1_000_000_000_000 - n * 7;
        adas.push(app.create_order(id_of(&ada), &format!("order {n}"), n % 7 + 1, amount));
        if n % 10 == 0 {
            bobs.push(app.create_order(id_of(&bob), &format!("bob {n}"), 1, n));
        }
        if [1, 99, 100, 101, 130].contains(&n) {
            assert_summary(&app, &ada, &adas);
        }
    }
    let summary = get_summary(&app, id_of(&ada));
    assert_eq!(items_of(&summary["orders"]).len(), 100);
    assert_eq!(summary["order_count"], 130);
    assert_eq!(
        summary["total_cents"],
        130 * 1_000_000_000_000_i64 - 7 * (130 * 131 / 2)
    );
    let listed = ids_of(&items_of(&summary["orders"]));
    let newest: Vec<i64> = ids_of(&adas[30..]).into_iter().rev().collect();
    assert_eq!(listed, newest, "the newest 100, newest first");

    assert_summary(&app, &bob, &bobs);
    assert_eq!(app.count_orders(), 143);
    assert_no_orphans(&app);
}

fn user_summary_of_a_user_without_orders_is_empty_and_missing_users_are_refused(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    app.create_order(id_of(&bob), "book", 1, 100);

    let summary = get_summary(&app, id_of(&ada));
    assert_eq!(
        summary,
        json!({ "user": ada, "orders": [], "order_count": 0, "total_cents": 0 })
    );

    let highest = id_of(&bob);
    for missing in [highest + 1, highest + 1000, i64::MAX] {
        assert_get_error(&app, &format!("/users/{missing}/summary"), 404, "not_found");
    }
    let deleted = app.delete(&format!("/users/{}", id_of(&bob)));
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_get_error(
        &app,
        &format!("/users/{}/summary", id_of(&bob)),
        404,
        "not_found",
    );
    for bad in BAD_IDS {
        assert_get_error(&app, &format!("/users/{bad}/summary"), 400, "bad_request");
    }
    assert_eq!(get_summary(&app, id_of(&ada)), summary);
    assert_no_orphans(&app);
}

// ---------------------------------------------------------------------------------------
// GET /overview
// ---------------------------------------------------------------------------------------

#[track_caller]
fn get_overview(app: &TestApp, path: &str) -> (Vec<Value>, Vec<Value>) {
    let response = app.get(path);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text);
    assert_eq!(
        keys_of(&response.body),
        vec!["data1", "data2"],
        "GET {path}: overview fields: {}",
        response.text
    );
    (
        items_of(&response.body["data1"]),
        items_of(&response.body["data2"]),
    )
}

fn overview_shows_the_first_users_and_orders_by_id(stack: Stack) {
    let app = spawn_app(stack);
    let (users, orders) = get_overview(&app, "/overview");
    assert!(users.is_empty() && orders.is_empty());

    let users = create_users(&app, "person", 53);
    // Orders of later users first, so that order ids and user ids do not line up.
    let orders: Vec<Value> = (0..52)
        .map(|n| {
            app.create_order(
                id_of(&users[52 - n]),
                &format!("item {n}"),
                1,
                i64::try_from(n).unwrap(),
            )
        })
        .collect();

    let (data1, data2) = get_overview(&app, "/overview");
    assert_eq!(data1, users[..50].to_vec(), "default: the first 50 users");
    assert_eq!(data2, orders[..50].to_vec(), "default: the first 50 orders");
    for limit in [1, 3, 50, 52, 53, 500] {
        let (data1, data2) = get_overview(&app, &format!("/overview?limit={limit}"));
        assert_eq!(
            data1,
            users[..limit.min(53)].to_vec(),
            "limit {limit}: users"
        );
        assert_eq!(
            data2,
            orders[..limit.min(52)].to_vec(),
            "limit {limit}: orders"
        );
    }

    // After deletions, the first by id are still the first remaining ones.
    let gone = app.delete(&format!("/orders/{}", id_of(&orders[0])));
    assert_eq!(gone.status, 204, "{}", gone.text);
    let gone = app.delete(&format!("/users/{}", id_of(&users[0])));
    assert_eq!(gone.status, 204, "{}", gone.text);
    let (data1, data2) = get_overview(&app, "/overview?limit=2");
    assert_eq!(data1, users[1..3].to_vec());
    assert_eq!(data2, orders[1..3].to_vec());
    assert_no_orphans(&app);
}

fn overview_refuses_limits_outside_1_to_500(stack: Stack) {
    let app = spawn_app(stack);
    let user = app.create_user("ada@example.com", "Ada");
    let order = app.create_order(id_of(&user), "book", 1, 100);
    for bad in [
        "0",
        "501",
        "x",
        "-1",
        "",
        "1.5",
        "65537",
        "99999999999999999999",
    ] {
        assert_get_error(&app, &format!("/overview?limit={bad}"), 400, "bad_request");
    }
    let (data1, data2) = get_overview(&app, "/overview?limit=1");
    assert_eq!((data1, data2), (vec![user], vec![order]));
    assert_no_orphans(&app);
}

// ---------------------------------------------------------------------------------------
// Across both databases
// ---------------------------------------------------------------------------------------

fn deleting_a_user_removes_their_orders_everywhere_and_keeps_other_users_orders(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let bob = app.create_user("bob@example.com", "Bob");
    let cy = app.create_user("cy@example.com", "Cy");
    let (ada_id, bob_id, cy_id) = (id_of(&ada), id_of(&bob), id_of(&cy));
    let mut adas = Vec::new();
    let mut bobs = Vec::new();
    for n in 0..7 {
        if n % 2 == 0 {
            adas.push(app.create_order(ada_id, &format!("ada {n}"), 1, 100 + n));
        } else {
            bobs.push(app.create_order(bob_id, &format!("bob {n}"), 2, 200 + n));
        }
    }
    assert_eq!(app.count_orders(), 7);

    let response = app.delete(&format!("/users/{ada_id}"));
    assert_eq!(response.status, 204, "{}", response.text);
    assert_eq!(app.count_orders(), 3, "the user's orders went with them");
    assert_no_orphans(&app);

    let (items, next) = get_page(&app, &format!("/orders?user_id={ada_id}"));
    assert!(
        items.is_empty(),
        "deleted user's orders still listed: {items:?}"
    );
    assert_eq!(next, None);
    for order in &adas {
        let path = format!("/orders/{}", id_of(order));
        assert_get_error(&app, &path, 404, "not_found");
        app.delete(&path).assert_error(404, "not_found");
    }
    assert_get_error(&app, &format!("/users/{ada_id}"), 404, "not_found");
    assert_get_error(&app, &format!("/users/{ada_id}/summary"), 404, "not_found");

    // Bob's orders are exactly as they were, everywhere.
    let (all, _) = walk_pages(&app, "/orders?limit=2", 2);
    assert_eq!(all, bobs);
    let (items, _) = get_page(&app, &format!("/orders?user_id={bob_id}"));
    assert_eq!(items, bobs);
    for order in &bobs {
        assert_eq!(&app.get(&format!("/orders/{}", id_of(order))).body, order);
    }
    assert_summary(&app, &bob, &bobs);
    let (data1, data2) = get_overview(&app, "/overview");
    assert_eq!(data1, vec![bob.clone(), cy.clone()]);
    assert_eq!(data2, bobs);

    // Deleting a user without orders touches no orders; deleting twice is 404.
    let response = app.delete(&format!("/users/{cy_id}"));
    assert_eq!(response.status, 204, "{}", response.text);
    assert_eq!(app.count_orders(), 3);
    app.delete(&format!("/users/{ada_id}"))
        .assert_error(404, "not_found");
    assert_eq!(app.count_orders(), 3);

    // The deleted users cannot get new orders.
    for gone in [ada_id, cy_id] {
        assert_order_refused(&app, order_body(gone, "book", 1, 100), 422, "unknown_user");
    }
    let (all, _) = get_page(&app, "/orders");
    assert_eq!(all, bobs);
    let unique: HashSet<i64> = ids_of(&all).into_iter().collect();
    assert_eq!(unique.len(), bobs.len());
    assert_no_orphans(&app);
}

on_every_stack!(
    creating_an_order_returns_it_with_its_location_and_reads_back_equal,
    order_for_a_missing_user_is_refused_and_not_written,
    order_numbers_are_accepted_within_their_bounds_and_refused_outside,
    order_items_are_trimmed_and_must_be_1_to_200_characters_without_control_characters,
    order_bodies_with_wrong_types_missing_or_unknown_fields_are_bad_requests,
    order_bodies_must_be_json_objects_sent_as_json,
    an_order_is_read_by_id_and_missing_or_malformed_ids_are_refused,
    deleting_an_order_removes_only_that_order,
    orders_are_listed_in_pages_by_ascending_id_without_gaps_or_duplicates,
    order_listing_filters_by_user_and_paginates_within_that_user,
    order_listing_refuses_bad_query_parameters,
    user_summary_lists_orders_newest_first_with_count_and_total,
    user_summary_lists_the_newest_100_orders_but_counts_and_sums_all,
    user_summary_of_a_user_without_orders_is_empty_and_missing_users_are_refused,
    overview_shows_the_first_users_and_orders_by_id,
    overview_refuses_limits_outside_1_to_500,
    deleting_a_user_removes_their_orders_everywhere_and_keeps_other_users_orders,
);
