//! A repeated request gets the first answer; a key reused for another request, or malformed, is refused.

#[allow(unused_imports)]
use super::*;

/// A repeated request gets the first answer again, byte for byte, with
/// `Idempotent-Replayed: true`, also when its JSON is written differently (member order,
/// whitespace); exactly one row is created, and its key is stored beside it.
fn a_repeated_request_gets_the_first_answer_again_and_writes_nothing(stack: Stack) {
    let app = spawn_app(stack);
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("replay-{}", create.tag());
        let body = create.body(0);
        let before = Rows::of(&app);
        let first = post_keyed(&app, path, &key, &body.to_string());
        let id = assert_created(&first, path);
        let after = before.plus_one(create);
        assert_eq!(Rows::of(&app), after, "POST {path} with a key");

        for text in [body.to_string(), rewritten(&body), body.to_string()] {
            let replay = post_keyed(&app, path, &key, &text);
            assert_replay_of(&replay, &first);
            assert_eq!(Rows::of(&app), after, "a replay of POST {path} wrote");
        }
        let stored = app.get(&format!("{path}/{id}"));
        assert_eq!(stored.status, 200, "{}", stored.text);
        assert_eq!(stored.body, first.body, "the answer shows the row created");
    }
}

/// A key used before for another body, or on the other route (both ways), is refused
/// with 422 `idempotency_key_reused`, writing nothing; the header is ignored on every
/// other method (the key is neither consumed nor disturbed), and the first request
/// still replays its own answer afterwards — the stored one, though the user was
/// renamed since.
fn a_key_reused_for_another_request_is_refused_and_the_first_still_replays(stack: Stack) {
    let app = spawn_app(stack);
    let [users, orders] = Create::both(&app);
    let first_user = post_keyed(&app, "/users", "reuse-u", &users.body(0).to_string());
    let user = assert_created(&first_user, "/users");
    let first_order = post_keyed(&app, "/orders", "reuse-o", &orders.body(0).to_string());
    assert_created(&first_order, "/orders");
    let before = Rows::of(&app);

    let mut changed_string = users.body(0);
    changed_string["name"] = json!("User 0 ");
    let mut changed_number = orders.body(0);
    changed_number["quantity"] = json!(2);
    let refused = [
        ("/users", "reuse-u", users.body(1), "another body"),
        (
            "/users",
            "reuse-u",
            changed_string,
            "a string with a space more",
        ),
        ("/orders", "reuse-o", orders.body(1), "another body"),
        ("/orders", "reuse-o", changed_number, "another quantity"),
        ("/orders", "reuse-u", orders.body(1), "a key of POST /users"),
        ("/users", "reuse-o", users.body(1), "a key of POST /orders"),
    ];
    for (path, key, body, what) in refused {
        let response = post_keyed(&app, path, key, &body.to_string());
        assert_eq!(
            response.status, 422,
            "POST {path} {body} with {what}: {}",
            response.text
        );
        assert_reused(&response);
        assert_eq!(Rows::of(&app), before, "POST {path} with {what} wrote");
    }

    // The header on every other method is ignored.
    let Create::Orders(owner) = orders else {
        unreachable!()
    };
    let spare = app.order(owner).item("spare").cents(1).create();
    for key in ["reuse-u", "reuse-o"] {
        let headers = [(KEY, key)];
        for path in [
            "/users".to_owned(),
            format!("/users/{user}"),
            "/orders".to_owned(),
            format!("/orders/{}", id_of(&first_order.body)),
        ] {
            let read = app.request_with("GET", &path, &headers, None);
            assert_eq!(read.status, 200, "GET {path}: {}", read.text);
            assert_not_replayed(&read);
        }
    }
    let renamed = app.request_with(
        "PATCH",
        &format!("/users/{user}"),
        &[(KEY, "reuse-u")],
        Some(("application/json", br#"{"name":"Renamed"}"#.to_vec())),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Renamed");
    assert_not_replayed(&renamed);
    let deleted = app.request_with(
        "DELETE",
        &format!("/orders/{}", id_of(&spare)),
        &[(KEY, "reuse-o")],
        None,
    );
    deleted.assert_no_content();
    assert_eq!(
        Rows::of(&app),
        before,
        "other methods with a key stored something"
    );

    let replay = post_keyed(&app, "/users", "reuse-u", &users.body(0).to_string());
    assert_replay_of(&replay, &first_user);
    let replay = post_keyed(&app, "/orders", "reuse-o", &orders.body(0).to_string());
    assert_replay_of(&replay, &first_order);
    assert_eq!(Rows::of(&app), before);
}

// ---------------------------------------------------------------------------------------
// The key's syntax.

/// A key must be 1–255 characters, each visible ASCII (0x21–0x7E), sent once: anything
/// else is 400 `bad_request` with nothing written. A key at the edges is accepted and
/// replays, and the whole key counts (the 256-character key that starts with an
/// accepted 255-character one is no replay of it). On other methods the header, even
/// malformed, is ignored.
fn malformed_keys_are_bad_requests_and_write_nothing(stack: Stack) {
    let app = spawn_app(stack);
    for create in Create::both(&app) {
        let (path, tag) = (create.path(), create.tag());
        let long: String = format!("{tag}{}", "k".repeat(254));
        let visible: String = (0x21_u8..=0x7e).map(char::from).collect();
        let accepted = [
            long.clone(),
            tag.to_owned(),
            format!("{visible}{tag}"),
            format!("a,b;c=\"{tag}\""),
        ];
        let mut created = Vec::new();
        for (n, key) in accepted.iter().enumerate() {
            let body = create.body(n).to_string();
            let before = Rows::of(&app);
            let first = post_keyed(&app, path, key, &body);
            assert_created(&first, path);
            assert_eq!(Rows::of(&app), before.plus_one(create), "key {key:?}");
            created.push((key, body, first));
        }
        for (key, body, first) in &created {
            assert_replay_of(&post_keyed(&app, path, key, body), first);
        }

        let before = Rows::of(&app);
        let body = create.body(9).to_string();
        let too_long = format!("{long}k");
        assert_eq!((long.len(), too_long.len()), (255, 256));
        for (what, key) in [
            ("an empty key", ""),
            ("256 characters", too_long.as_str()),
            ("a space inside", "two words"),
            ("a tab inside", "tab\there"),
        ] {
            let response = post_keyed(&app, path, key, &body);
            assert_eq!(
                response.status, 400,
                "POST {path} with {what}: {}",
                response.text
            );
            response.assert_error(400, "bad_request");
            assert_eq!(Rows::of(&app), before, "POST {path} with {what} wrote");
        }
        let header = |value: &[u8]| [b"Idempotency-Key: ".as_slice(), value].concat();
        let twice = format!("twice-{tag}");
        let raw_cases = [
            ("non-ASCII UTF-8", vec![header("schlüssel".as_bytes())]),
            ("a Latin-1 byte", vec![header(b"caf\xe9")]),
            ("a byte 0x80", vec![header(b"\x80abc")]),
            (
                "the header twice, alike",
                vec![header(twice.as_bytes()), header(twice.as_bytes())],
            ),
            (
                "the header twice, different",
                vec![header(twice.as_bytes()), header(b"other")],
            ),
        ];
        for (what, headers) in &raw_cases {
            let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            let response = raw_request(&app, "POST", path, &headers, Some(&body));
            assert_eq!(
                response.status, 400,
                "POST {path} with {what}: {}",
                response.text
            );
            response.assert_error(400, "bad_request");
            assert_eq!(Rows::of(&app), before, "POST {path} with {what} wrote");
        }
        // None of those consumed a key: the same body with the key sent twice above is
        // created afresh.
        assert_created(&post_keyed(&app, path, &twice, &body), path);

        // On a GET, the header is ignored, whatever it holds.
        for key in ["", "two words", too_long.as_str()] {
            let read = app.request_with("GET", path, &[(KEY, key)], None);
            assert_eq!(read.status, 200, "GET {path} with {key:?}: {}", read.text);
        }
        for (what, headers) in &raw_cases {
            let headers: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            let read = raw_request(&app, "GET", path, &headers, None);
            assert_eq!(read.status, 200, "GET {path} with {what}: {}", read.text);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent duplicates.

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    a_repeated_request_gets_the_first_answer_again_and_writes_nothing,
    a_key_reused_for_another_request_is_refused_and_the_first_still_replays,
    malformed_keys_are_bad_requests_and_write_nothing,
);
