//! A failed request stores nothing; keys are each API key's own; a crash right after the commit still replays.

#[allow(unused_imports)]
use super::*;

/// A request that failed — 422 `unknown_user`, 409 `conflict`, 422 `validation_failed`,
/// 400, a 500 — stored nothing under its key: the same request with the same key, once
/// it can succeed, is processed afresh (a new row, no `Idempotent-Replayed`), and so is
/// another body with that key.
fn a_failed_request_stores_nothing_and_its_retry_is_processed_afresh(stack: Stack) {
    let app = spawn_app(stack);

    // An order for a user who does not exist yet: ids are assigned in sequence.
    let probe = id_of(&app.create_user("probe@example.com", "Probe"));
    let order = Create::Orders(probe + 1).body(0).to_string();
    let before = Rows::of(&app);
    post_keyed(&app, "/orders", "late-user", &order).assert_error(422, "unknown_user");
    assert_eq!(Rows::of(&app), before);
    let late = app.create_user("late@example.com", "Late");
    assert_eq!(id_of(&late), probe + 1, "the next id");
    let before = Rows::of(&app);
    let created = post_keyed(&app, "/orders", "late-user", &order);
    assert_created(&created, "/orders");
    assert_eq!(Rows::of(&app), before.plus_one(Create::Orders(probe + 1)));
    assert_replay_of(&post_keyed(&app, "/orders", "late-user", &order), &created);

    // A taken email, then freed.
    let holder = id_of(&app.create_user("taken@example.com", "Holder"));
    let user = json!({"email": "taken@example.com", "name": "Second"}).to_string();
    let before = Rows::of(&app);
    post_keyed(&app, "/users", "taken", &user).assert_error(409, "conflict");
    assert_eq!(Rows::of(&app), before);
    app.delete(&format!("/users/{holder}")).assert_no_content();
    let before = Rows::of(&app);
    let created = post_keyed(&app, "/users", "taken", &user);
    let id = assert_created(&created, "/users");
    assert_ne!(id, holder);
    assert_eq!(created.body["name"], "Second");
    assert_eq!(Rows::of(&app), before.plus_one(Create::Users));
    assert_replay_of(&post_keyed(&app, "/users", "taken", &user), &created);

    // Refused bodies, then another, valid, body with the same key.
    let owner = id_of(&late);
    for (create, refused, status, code) in [
        (
            Create::Users,
            json!({"email": "nope", "name": "x"}).to_string(),
            422,
            "validation_failed",
        ),
        (Create::Users, "{\"email\":".to_owned(), 400, "bad_request"),
        (
            Create::Orders(owner),
            json!({"user_id": owner, "item": "x", "quantity": 0, "amount_cents": 1}).to_string(),
            422,
            "validation_failed",
        ),
        (
            Create::Orders(owner),
            json!({"user_id": owner, "item": "x", "quantity": 1, "amount_cents": 1, "extra": 1})
                .to_string(),
            400,
            "bad_request",
        ),
    ] {
        let path = create.path();
        let key = format!("refused-{status}{path}");
        let before = Rows::of(&app);
        post_keyed(&app, path, &key, &refused).assert_error(status, code);
        assert_eq!(Rows::of(&app), before, "POST {path} {refused}");
        let body = create.body(status.into()).to_string();
        let created = post_keyed(&app, path, &key, &body);
        assert_created(&created, path);
        assert_eq!(Rows::of(&app), before.plus_one(create));
        assert_replay_of(&post_keyed(&app, path, &key, &body), &created);
    }

    // A commit that fails: a 500, then the same request succeeds afresh.
    for (create, point) in [
        (Create::Users, "db1.commit"),
        (Create::Orders(owner), "db2.commit"),
    ] {
        let path = create.path();
        let key = format!("failed-commit{path}");
        let body = create.body(7).to_string();
        let before = Rows::of(&app);
        app.faults.arm(point, FaultAction::Error);
        post_keyed(&app, path, &key, &body).assert_error(500, "internal");
        app.faults.disarm_all();
        assert_eq!(Rows::of(&app), before, "POST {path} failed at {point}");
        let created = post_keyed(&app, path, &key, &body);
        assert_created(&created, path);
        assert_eq!(Rows::of(&app), before.plus_one(create));
        assert_replay_of(&post_keyed(&app, path, &key, &body), &created);
    }
}

// ---------------------------------------------------------------------------------------
// Expiry.

/// With `AUTH=required` keys are the API key's own: the same `Idempotency-Key` from
/// two API keys makes two rows, each replays its own answer, each API key's use of it
/// is checked against its own request only, and an answer never reaches the other key.
fn each_api_key_has_its_own_idempotency_keys(stack: Stack) {
    let app = spawn_app_with(stack, |settings| settings.auth = Auth::Required);
    let (_, a) = create_key(&app, "a", Scope::Write);
    let (_, b) = create_key(&app, "b", Scope::Write);
    let (a, b) = (bearer(&a), bearer(&b));
    let post = |authorization: &str, path: &str, key: &str, body: &Value| {
        post_keyed_with(
            &app,
            path,
            key,
            &body.to_string(),
            &[("Authorization", authorization)],
        )
    };
    let owner = app.request_with(
        "POST",
        "/users",
        &[("Authorization", a.as_str())],
        Some((
            "application/json",
            json!({"email": "owner@example.com", "name": "Owner"})
                .to_string()
                .into_bytes(),
        )),
    );
    let orders = Create::Orders(id_of(&owner.body));
    let users = Create::Users;
    let before = Rows::of(&app);

    // The same key, each API key with a body of its own.
    let a_user = post(&a, "/users", "shared", &users.body(1));
    let b_user = post(&b, "/users", "shared", &users.body(2));
    assert_ne!(
        assert_created(&a_user, "/users"),
        assert_created(&b_user, "/users")
    );
    // The same key and the same body.
    let a_order = post(&a, "/orders", "same", &orders.body(1));
    let b_order = post(&b, "/orders", "same", &orders.body(1));
    assert_ne!(
        assert_created(&a_order, "/orders"),
        assert_created(&b_order, "/orders")
    );
    let after = Rows {
        users: before.users + 2,
        orders: before.orders + 2,
        keys_db1: before.keys_db1 + 2,
        keys_db2: before.keys_db2 + 2,
    };
    assert_eq!(Rows::of(&app), after);

    assert_replay_of(&post(&a, "/users", "shared", &users.body(1)), &a_user);
    assert_replay_of(&post(&b, "/users", "shared", &users.body(2)), &b_user);
    assert_replay_of(&post(&a, "/orders", "same", &orders.body(1)), &a_order);
    assert_replay_of(&post(&b, "/orders", "same", &orders.body(1)), &b_order);
    // Each key's request is its own: the other API key's body is another body.
    assert_reused(&post(&b, "/users", "shared", &users.body(1)));
    assert_reused(&post(&a, "/users", "shared", &users.body(2)));
    // A key one API key used on one route is free for the other on the other route.
    let a_only = post(&a, "/users", "only-a", &users.body(3));
    let b_other = post(&b, "/orders", "only-a", &orders.body(3));
    assert_created(&a_only, "/users");
    assert_created(&b_other, "/orders");
    assert_eq!(
        Rows::of(&app),
        Rows {
            users: after.users + 1,
            orders: after.orders + 1,
            keys_db1: after.keys_db1 + 1,
            keys_db2: after.keys_db2 + 1,
        }
    );
    assert_replay_of(&post(&a, "/users", "only-a", &users.body(3)), &a_only);
    assert_replay_of(&post(&b, "/orders", "only-a", &orders.body(3)), &b_other);
}

// ---------------------------------------------------------------------------------------
// A crash between the commit and the answer.

/// The binary on `storage`'s databases, with `faults` armed. (Fault points fire in
/// requests' sessions only, not in the start-up migrations'.)
fn start(storage: &Storage, faults: Option<&str>) -> ChildServer {
    let mut env = vec![
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
    ];
    if let Some(faults) = faults {
        env.push(("MULTIDB_FAULTS", faults));
    }
    ChildServer::start(&env)
}

/// The rows of a listing (one page is enough here).
fn listed(server: &ChildServer, path: &str) -> Vec<Value> {
    let response = server.request("GET", path, None);
    assert_eq!(response.status, 200, "{}", response.text);
    items_of(&response.body["items"])
}

/// The real binary is killed (`kill -9`) right after a request's commit, before its
/// answer was sent; the client retries on a new instance with the same key and gets the
/// committed row's answer, replayed: one row, never two.
fn a_retry_after_a_crash_right_after_the_commit_replays(stack: Stack) {
    let storage = Storage::create(stack);
    let server = start(&storage, None);
    let owner = server.request(
        "POST",
        "/users",
        Some(json!({"email": "owner@example.com", "name": "Owner"})),
    );
    assert_eq!(owner.status, 201, "{}", owner.text);
    let orders = Create::Orders(id_of(&owner.body));
    server.kill();

    for (create, point) in [(Create::Users, "db1.committed"), (orders, "db2.committed")] {
        let path = create.path();
        let body = create.body(0);
        let key = format!("crash-{}", create.tag());
        let headers = [(KEY, key.as_str())];
        let rows_before = listed(&start(&storage, None), path).len();

        let dying = start(&storage, Some(&format!("{point}=pause")));
        let request = dying.request_with_in_background("POST", path, &headers, Some(body.clone()));
        assert!(
            dying.wait_for_stderr(&format!("multidb fault pause: {point}")),
            "POST {path} never reached {point}"
        );
        dying.kill();
        request.join().unwrap();

        let server = start(&storage, None);
        let rows = listed(&server, path);
        assert_eq!(
            rows.len(),
            rows_before + 1,
            "the commit of POST {path} holds"
        );
        let committed = rows.last().unwrap();
        let retry = server.request_with("POST", path, &headers, Some(body));
        assert_eq!(retry.status, 201, "{}", retry.text);
        assert_eq!(retry.header(REPLAYED), Some("true"), "{:?}", retry.headers);
        assert_eq!(&retry.body, committed, "the answer is the committed row");
        assert_eq!(
            retry.header("location"),
            Some(format!("{path}/{}", id_of(committed)).as_str())
        );
        assert_eq!(listed(&server, path).len(), rows_before + 1, "one row");
    }
    storage.remove();
}

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    a_failed_request_stores_nothing_and_its_retry_is_processed_afresh,
    each_api_key_has_its_own_idempotency_keys,
    a_retry_after_a_crash_right_after_the_commit_replays,
);
