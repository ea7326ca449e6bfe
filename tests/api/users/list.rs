//! GET /users: pages in id order.

use super::*;
use crate::helpers::{ids_of, walk_pages};

fn an_empty_listing_is_one_last_page(stack: Stack) {
    let app = spawn_app(stack);
    for path in [
        "/users",
        "/users?limit=1",
        "/users?after_id=5",
        "/users?limit=500",
    ] {
        let response = app.get(path);
        assert_eq!(response.status, 200, "{path}: {}", response.text);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.body, json!({"items": [], "next_after_id": null}));
    }
}

fn listing_users_pages_through_all_of_them_in_id_order(stack: Stack) {
    let app = spawn_app(stack);
    let created: Vec<Value> = (0..53)
        .map(|n| app.create_user(&format!("user{n:02}@example.com"), &format!("User {n}")))
        .collect();
    let mut all_ids: Vec<i64> = created.iter().map(id_of).collect();
    all_ids.sort_unstable();

    // Default limit: 50.
    let first = app.get("/users");
    assert_eq!(first.status, 200, "{}", first.text);
    let first_ids = item_ids(&first.body);
    assert_eq!(first_ids, all_ids[..50]);
    assert_eq!(first.body["next_after_id"], all_ids[49]);
    // Items are whole users, as they were created.
    for item in first.body["items"].as_array().unwrap() {
        let user = created
            .iter()
            .find(|user| user["id"] == item["id"])
            .unwrap();
        assert_eq!(item, user);
    }
    let second = app.get(&format!("/users?after_id={}", all_ids[49]));
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(item_ids(&second.body), all_ids[50..]);
    assert_eq!(second.body["next_after_id"], Value::Null);

    // Limits from 1 to 500 are accepted; walking the pages visits every user once.
    for limit in [1, 2, 7, 10, 49, 50, 52, 53, 54, 100, 499, 500] {
        // walk_pages checks each page: full before the end, next_after_id its last id.
        let (items, pages) = walk_pages(&app, &format!("/users?limit={limit}"), limit);
        assert_eq!(
            ids_of(&items),
            all_ids,
            "limit {limit}: pages skip or repeat users"
        );
        assert_eq!(pages, 53_usize.div_ceil(limit), "limit {limit}");
    }

    // A page that ends exactly at the last user is the last page.
    let exact = app.get("/users?limit=53");
    assert_eq!(exact.status, 200, "{}", exact.text);
    assert_eq!(item_ids(&exact.body), all_ids);
    assert_eq!(exact.body["next_after_id"], Value::Null);

    // after_id is exclusive and need not be an existing id.
    let after_last = app.get(&format!("/users?after_id={}", all_ids[52]));
    assert_eq!(
        after_last.body,
        json!({"items": [], "next_after_id": null}),
        "{}",
        after_last.text
    );
    let after_max = app.get("/users?after_id=9223372036854775807&limit=500");
    assert_eq!(after_max.status, 200, "{}", after_max.text);
    assert_eq!(after_max.body["items"], json!([]));

    // Deleted users leave gaps in the ids, not in the pages.
    for id in [all_ids[0], all_ids[10], all_ids[11], all_ids[52]] {
        let response = app.delete(&format!("/users/{id}"));
        assert_eq!(response.status, 204, "{}", response.text);
    }
    let remaining: Vec<i64> = all_ids
        .iter()
        .copied()
        .filter(|id| ![all_ids[0], all_ids[10], all_ids[11], all_ids[52]].contains(id))
        .collect();
    let walked = ids_of(&walk_pages(&app, "/users?limit=5", 5).0);
    assert_eq!(walked, remaining);
    let unique: HashSet<i64> = walked.iter().copied().collect();
    assert_eq!(unique.len(), walked.len());
    let from_gap = app.get(&format!("/users?after_id={}&limit=2", all_ids[10]));
    assert_eq!(item_ids(&from_gap.body), [all_ids[12], all_ids[13]]);
}

fn invalid_page_parameters_are_bad_requests(stack: Stack) {
    let app = spawn_app(stack);
    app.create_user("ada@example.com", "Ada");
    for query in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=65536",
        "limit=99999999999999999999",
        "after_id=abc",
        "after_id=-1",
        "after_id=9223372036854775808",
        "after_id=1.5",
        "limit=10&after_id=x",
        "limit=x&after_id=1",
        // One listing, one URL: integers in decimal digits only (API.md).
        "limit=5e1",
        "limit=10.0",
        "limit=010",
        "after_id=1e0",
        "after_id=+1",
        // Parameters the listing does not take.
        "userId=1",
        "limit=10&after=3",
    ] {
        let response = app.get(&format!("/users?{query}"));
        assert_eq!(response.status, 400, "{query}: {}", response.text);
        response.assert_error(400, "bad_request");
    }
}

on_every_stack!(
    an_empty_listing_is_one_last_page,
    listing_users_pages_through_all_of_them_in_id_order,
    invalid_page_parameters_are_bad_requests,
);
