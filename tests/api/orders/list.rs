//! GET /orders.

use super::*;

fn orders_are_listed_in_pages_by_ascending_id_without_gaps_or_duplicates(stack: Stack) {
    let app = spawn_app(stack);
    let (empty, next) = get_page(&app, "/orders");
    assert!(empty.is_empty());
    assert_eq!(next, None);

    let users = create_users(&app, "buyer", 2);
    let orders: Vec<Value> = (0..51)
        .map(|n| {
            app.order(id_of(&users[n % 2]))
                .item(&format!("item {n}"))
                .cents(i64::try_from(n).unwrap())
                .create()
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
            bobs.push(
                app.order(bob)
                    .item(&format!("bob {n}"))
                    .cents(10 * n)
                    .create(),
            );
        } else {
            adas.push(
                app.order(ada)
                    .item(&format!("ada {n}"))
                    .quantity(2)
                    .cents(100 * n)
                    .create(),
            );
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
    let order = app.order(user).create();

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

on_every_stack!(
    orders_are_listed_in_pages_by_ascending_id_without_gaps_or_duplicates,
    order_listing_filters_by_user_and_paginates_within_that_user,
    order_listing_refuses_bad_query_parameters,
);
