//! POST /orders.

use super::*;

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
    let kept = app.order(ada).create();
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
    app.order(bob).item("lamp").cents(4500).create();
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
        ("quantity", json!(1e300)),
        (
            "user_id",
            json!(f64::from(u32::MAX) * 4_294_967_296.0 * 4.0),
        ),
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
    // JSON has one kind of number: an integer written with a fraction of zero or an
    // exponent is the integer, as JSON Schema (and so the OpenAPI document) counts it.
    let written_as_floats = json!({
        "user_id": f64::from(u32::try_from(user).unwrap()), "item": "pen", "quantity": 3.0, "amount_cents": 1.5e3
    });
    assert_order_accepted(&app, written_as_floats, user, "pen", 3, 1500);
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

on_every_stack!(
    order_items_are_trimmed_and_must_be_1_to_200_characters_without_control_characters,
    creating_an_order_returns_it_with_its_location_and_reads_back_equal,
    order_for_a_missing_user_is_refused_and_not_written,
    order_numbers_are_accepted_within_their_bounds_and_refused_outside,
    order_bodies_with_wrong_types_missing_or_unknown_fields_are_bad_requests,
    order_bodies_must_be_json_objects_sent_as_json,
);
