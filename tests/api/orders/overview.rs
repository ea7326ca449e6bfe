//! GET /overview.

use super::*;

fn overview_shows_the_first_users_and_orders_by_id(stack: Stack) {
    let app = spawn_app(stack);
    let (users, orders) = get_overview(&app, "/overview");
    assert!(users.is_empty() && orders.is_empty());

    let users = create_users(&app, "person", 53);
    // Orders of later users first, so that order ids and user ids do not line up.
    let orders: Vec<Value> = (0..52)
        .map(|n| {
            app.order(id_of(&users[52 - n]))
                .item(&format!("item {n}"))
                .cents(i64::try_from(n).unwrap())
                .create()
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
    let order = app.order(id_of(&user)).create();
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

on_every_stack!(
    overview_shows_the_first_users_and_orders_by_id,
    overview_refuses_limits_outside_1_to_500,
);
