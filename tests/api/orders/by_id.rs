//! GET and DELETE /orders/{id}.

use super::*;

fn an_order_is_read_by_id_and_missing_or_malformed_ids_are_refused(stack: Stack) {
    let app = spawn_app(stack);
    let ada = id_of(&app.create_user("ada@example.com", "Ada"));
    let bob = id_of(&app.create_user("bob@example.com", "Bob"));
    let orders = [
        app.order(ada).quantity(2).cents(1999).create(),
        app.order(bob).item("lamp").cents(4500).create(),
        app.order(ada).item("pen").quantity(10).cents(99).create(),
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
    let first = app.order(id_of(&ada)).quantity(2).cents(1999).create();
    let doomed = app.order(id_of(&ada)).item("pen").cents(250).create();
    let third = app.order(id_of(&bob)).item("lamp").cents(4500).create();
    let last = app
        .order(id_of(&ada))
        .item("ink")
        .quantity(3)
        .cents(300)
        .create();

    let path = format!("/orders/{}", id_of(&doomed));
    let response = app.delete(&path);
    response.assert_no_content();
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

on_every_stack!(
    an_order_is_read_by_id_and_missing_or_malformed_ids_are_refused,
    deleting_an_order_removes_only_that_order,
);
