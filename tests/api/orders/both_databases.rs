//! Across both databases.

use super::*;

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
            adas.push(
                app.order(ada_id)
                    .item(&format!("ada {n}"))
                    .cents(100 + n)
                    .create(),
            );
        } else {
            bobs.push(
                app.order(bob_id)
                    .item(&format!("bob {n}"))
                    .quantity(2)
                    .cents(200 + n)
                    .create(),
            );
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

on_every_stack!(deleting_a_user_removes_their_orders_everywhere_and_keeps_other_users_orders,);
