//! Expired keys count as unused, are replaced, and are purged (in batches) by the periodic recovery.

#[allow(unused_imports)]
use super::*;

/// After `idempotency_ttl`, a key counts as unused: the same request is processed
/// afresh, a new row without `Idempotent-Replayed` (until then, it replays).
fn an_expired_key_counts_as_unused(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_millis(300);
    });
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("expiring{path}");
        let body = create.body(0).to_string();
        let first = post_keyed(&app, path, &key, &body);
        let id = assert_created(&first, path);
        if let Create::Users = create {
            // The same body can only create a user again once the first one is gone.
            app.delete(&format!("/users/{id}")).assert_no_content();
        }
        let rows = create.rows(&app);
        let fresh = eventually("the key expires", || {
            let answer = post_keyed(&app, path, &key, &body);
            if answer.header(REPLAYED).is_some() {
                assert_replay_of(&answer, &first);
                assert_eq!(create.rows(&app), rows, "a replay wrote");
                None
            } else {
                Some(answer)
            }
        });
        let new_id = assert_created(&fresh, path);
        assert_ne!(new_id, id);
        assert_eq!(create.rows(&app), rows + 1);
    }
}

/// Shifts the stored keys that start with `prefix` two hours back, as if stored that long
/// ago.
fn age_keys(app: &TestApp, stack: Stack, prefix: &str) {
    let age = |backend| match backend {
        Backend::Postgres => format!(
            "UPDATE {KEYS_TABLE} SET created_at = created_at - INTERVAL '2 hours' \
             WHERE idempotency_key LIKE '{prefix}%'"
        ),
        Backend::Sqlite => format!(
            "UPDATE {KEYS_TABLE} \
             SET created_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '-2 hours') \
             WHERE idempotency_key LIKE '{prefix}%'"
        ),
        Backend::Mysql => format!(
            "UPDATE {KEYS_TABLE} SET created_at = created_at - INTERVAL 2 HOUR \
             WHERE idempotency_key LIKE '{prefix}%'"
        ),
    };
    execute(&app.databases.db1, &age(stack.db1));
    execute(&app.databases.db2, &age(stack.db2));
}

/// A key stored longer ago than the TTL (one hour here) is replaced by the retry's new
/// answer, which replays from then on.
fn an_expired_key_is_replaced_by_the_new_answer(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_secs(3600);
    });
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("aged-{}", create.tag());
        let body = create.body(0).to_string();
        let first = post_keyed(&app, path, &key, &body);
        let id = assert_created(&first, path);
        if let Create::Users = create {
            app.delete(&format!("/users/{id}")).assert_no_content();
        }
        assert_replay_of(&post_keyed(&app, path, &key, &body), &first);
        age_keys(&app, stack, &key);
        let before = Rows::of(&app);
        let fresh = post_keyed(&app, path, &key, &body);
        assert_ne!(assert_created(&fresh, path), id);
        let mut after = before.plus_one(create);
        // The expired key's row is replaced, not added to.
        (after.keys_db1, after.keys_db2) = (before.keys_db1, before.keys_db2);
        assert_eq!(Rows::of(&app), after);
        assert_replay_of(&post_keyed(&app, path, &key, &body), &fresh);
    }
}

/// The periodic recovery deletes the expired keys from both databases, and only those.
fn expired_keys_are_deleted_by_the_periodic_recovery(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_secs(3600);
        settings.recovery_interval = Duration::from_millis(50);
    });
    let mut kept = Vec::new();
    for create in Create::both(&app) {
        let path = create.path();
        for (n, age) in ["old", "new"].into_iter().enumerate() {
            let key = format!("{age}-{}", create.tag());
            let body = create.body(n).to_string();
            let answer = post_keyed(&app, path, &key, &body);
            assert_created(&answer, path);
            if age == "new" {
                kept.push((path, key, body, answer));
            }
        }
    }
    age_keys(&app, stack, "old-");
    eventually("the expired keys deleted", || {
        let rows = Rows::of(&app);
        (rows.keys_db1 == 1 && rows.keys_db2 == 1).then_some(())
    });
    for (path, key, body, answer) in &kept {
        assert_replay_of(&post_keyed(&app, path, key, body), answer);
    }
}

/// With a TTL of 300 ms and recovery passes every 50 ms, every stored key is soon gone
/// from both databases.
fn keys_past_a_short_ttl_are_soon_deleted(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.idempotency_ttl = Duration::from_millis(300);
        settings.recovery_interval = Duration::from_millis(50);
    });
    for create in Create::both(&app) {
        let key = format!("short-{}", create.tag());
        let answer = post_keyed(&app, create.path(), &key, &create.body(0).to_string());
        assert_created(&answer, create.path());
    }
    eventually("the expired keys deleted", || {
        let rows = Rows::of(&app);
        (rows.keys_db1 == 0 && rows.keys_db2 == 0).then_some(())
    });
}

/// `IDEMPOTENCY_TTL_HOURS` is a positive decimal number of hours, 24 when unset; any
/// other value is an error naming the variable.
#[test]
fn the_ttl_is_a_positive_decimal_number_of_hours() {
    let settings = |value: Option<&str>| {
        let value = value.map(str::to_owned);
        Settings::from_lookup(move |name| {
            (name == "IDEMPOTENCY_TTL_HOURS")
                .then(|| value.clone())
                .flatten()
        })
    };
    assert_eq!(
        settings(None).unwrap().idempotency_ttl,
        Duration::from_secs(24 * 3600)
    );
    for (raw, expected) in [
        ("24", Duration::from_secs(24 * 3600)),
        ("1", Duration::from_secs(3600)),
        ("0.5", Duration::from_secs(1800)),
        ("0.0001", Duration::from_millis(360)),
        ("168", Duration::from_secs(168 * 3600)),
    ] {
        let ttl = settings(Some(raw)).unwrap().idempotency_ttl;
        let difference = ttl.abs_diff(expected);
        assert!(
            difference < Duration::from_millis(1),
            "{raw}: {ttl:?}, not {expected:?}"
        );
    }
    for raw in ["0", "0.0", "-1", "abc", "1h", "NaN", "inf", "-inf"] {
        let error = settings(Some(raw)).expect_err(raw);
        assert_eq!(error.variable, "IDEMPOTENCY_TTL_HOURS", "{raw}: {error}");
    }
    // Too large for a duration: refused, not a panic.
    let error = settings(Some("1e300")).expect_err("1e300 hours is refused");
    assert_eq!(error.variable, "IDEMPOTENCY_TTL_HOURS", "{error}");
}

// ---------------------------------------------------------------------------------------
// The caller's own keys.

/// The purge works off a backlog in batches, in one pass, and deletes only what is past
/// its TTL and the grace: 2,500 answers dated long ago go, one just stored stays.
fn a_backlog_of_expired_keys_is_purged_in_batches_and_fresh_ones_stay(stack: Stack) {
    let app = spawn_app(stack);
    let pool = &app.databases.db2;
    let ttl = Duration::from_secs(3600);
    let answer = Answer {
        status: 201,
        location: Some("/orders/1".into()),
        body: "{}".into(),
    };
    let mut session = pool.begin::<multidb::db::Write>().unwrap();
    for n in 0..2_500 {
        let claim = Claim::new("owner".into(), format!("old-{n}"), "f".into(), ttl);
        claim.record(&mut session, &answer).unwrap();
    }
    session.commit().unwrap();
    crate::helpers::execute(
        pool,
        "UPDATE multidb_idempotency_keys SET created_at = '2000-01-01 00:00:00'",
    );
    let mut session = pool.begin::<multidb::db::Write>().unwrap();
    Claim::new("owner".into(), "fresh".into(), "f".into(), ttl)
        .record(&mut session, &answer)
        .unwrap();
    session.commit().unwrap();

    assert_eq!(idempotency::purge_expired(pool, ttl).unwrap(), 2_500);
    assert_eq!(crate::helpers::count(pool, "multidb_idempotency_keys"), 1);
    assert_eq!(idempotency::purge_expired(pool, ttl).unwrap(), 0);
}

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    an_expired_key_counts_as_unused,
    an_expired_key_is_replaced_by_the_new_answer,
    expired_keys_are_deleted_by_the_periodic_recovery,
    keys_past_a_short_ttl_are_soon_deleted,
    a_backlog_of_expired_keys_is_purged_in_batches_and_fresh_ones_stay,
);
