//! A key's use is noted at most once a minute, never by a stopped app; no token is ever logged.

#[allow(unused_imports)]
use super::cli::*;
#[allow(unused_imports)]
use super::*;

/// A key's first use is noted in `last_used_at`, in the background; the uses within the
/// next minute are not written again. That the later uses wrote nothing is observed
/// through a witness: a mark is put in the column, the key is used again five times, then
/// another key is used for the first time on the same connection (the same worker); once
/// the witness's use is noted, a note of the five uses spawned before it would very
/// likely be in too, and would have overwritten the mark.
fn a_keys_use_is_noted_at_most_once_a_minute(stack: Stack) {
    let app = spawn_app_with(stack, |settings| settings.auth = Auth::Required);
    let (key, token) = create_key(&app, "noted", Scope::Read);
    let (witness, witness_token) = create_key(&app, "witness", Scope::Read);
    assert_eq!(key.last_used_at, None);
    let get = |token: &str| {
        let response = app.request_with("GET", "/users", &authorized(Some(&bearer(token))), None);
        assert_eq!(response.status, 200, "{}", response.text);
    };

    get(&token);
    let first = eventually("the first use noted", || {
        find_key(&app, &key.id).last_used_at
    });
    assert!(first >= key.created_at, "{first} before {}", key.created_at);

    let mark = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .unwrap();
    let mut session = app.databases.db1.begin::<Write>().unwrap();
    api_keys::touch(&mut session, &key.id, mark).unwrap();
    session.commit().unwrap();
    for _ in 0..5 {
        get(&token);
    }
    get(&witness_token);
    eventually("the witness's use noted", || {
        find_key(&app, &witness.id).last_used_at
    });
    assert_eq!(
        find_key(&app, &key.id).last_used_at,
        Some(mark),
        "a use within the minute was written again"
    );
}

// ---------------------------------------------------------------------------------------
// The real binary: `multidb keys`, several instances, the log.

/// Requests with a valid key (served, refused for its scope), a wrong secret, a revoked
/// key and malformed tokens, to a server logging everything (`trace`, its dependencies'
/// lines too) in each format, and the `keys` commands logging at debug level: no line
/// shows a token or its secret.
#[test]
fn no_token_is_ever_logged() {
    let storage = Storage::create(Stack::sqlite());
    for format in ["text", "json"] {
        let write = create_with_cli(&storage, &format!("writer {format}"), "write");
        let read = create_with_cli(&storage, &format!("reader {format}"), "read");
        let revoked = create_with_cli(&storage, &format!("revoked {format}"), "write");
        assert_exit(
            &keys(&storage, &["revoke", parts(&revoked).0]),
            0,
            "keys revoke",
        );
        let (write_id, _) = parts(&write);
        let (_, read_secret) = parts(&read);
        let server = serve(&storage, &[("RUST_LOG", "trace"), ("LOG_FORMAT", format)]);
        let user = json!({"email": format!("{format}@example.com"), "name": "Logged"});
        let requests = [
            (bearer(&write), "POST", "/users", Some(user), 201),
            (bearer(&write), "GET", "/users", None, 200),
            (bearer(&read), "GET", "/overview", None, 200),
            (bearer(&read), "DELETE", "/users/1", None, 403),
            (
                bearer(&format!("mdb_{write_id}_{read_secret}")),
                "GET",
                "/users",
                None,
                401,
            ),
            (bearer(&revoked), "GET", "/users", None, 401),
            (bearer(&format!("{write}0")), "GET", "/users", None, 401),
            (write.clone(), "GET", "/users", None, 401),
            (format!("Basic {read}"), "GET", "/users", None, 401),
        ];
        let mut request_ids = Vec::new();
        for (n, (authorization, method, path, body, status)) in requests.into_iter().enumerate() {
            let request_id = format!("auth-log-{format}-{n}");
            let headers = [
                ("Authorization", authorization.as_str()),
                ("X-Request-Id", request_id.as_str()),
            ];
            let response = server.request_with(method, path, &headers, body);
            assert_eq!(
                response.status, status,
                "{method} {path}: {}",
                response.text
            );
            request_ids.push(request_id);
        }
        // The background note of the key's use, and whatever it logs, is done.
        for token in [&write, &read] {
            eventually("the key's use noted", || {
                (listed(&storage, token)[LAST_USED] != "-").then_some(())
            });
        }

        let lines = server.stderr_until_killed();
        for request_id in &request_ids {
            assert!(
                lines.iter().any(|line| line.contains(request_id.as_str())),
                "{format}: no line of request {request_id}"
            );
        }
        for line in &lines {
            assert!(
                !shows_a_token(line, &[&write, &read, &revoked]),
                "{format}: a token in the log: {line}"
            );
        }
    }
    storage.remove();
}

/// The note of a key's first use is written within its request, not left running: a
/// server stopped right after it leaves no connection out of its pool and no transaction
/// open (checked when the test app drops). A background write did, every time, with the
/// commit slowed down.
fn a_stopped_app_leaves_no_note_of_a_keys_use_holding_a_connection(stack: Stack) {
    use multidb::db::fault::FaultAction;
    let app = spawn_app_with(stack, |settings| settings.auth = Auth::Required);
    let (_, token) = create_key(&app, "last", Scope::Read);
    app.faults.arm("db1.commit", FaultAction::Sleep(500));
    let response = app.request_with("GET", "/users", &authorized(Some(&bearer(&token))), None);
    assert_eq!(response.status, 200, "{}", response.text);
}

on_stacks!([sqlite, postgres] =>
    a_keys_use_is_noted_at_most_once_a_minute,
    a_stopped_app_leaves_no_note_of_a_keys_use_holding_a_connection,
);
