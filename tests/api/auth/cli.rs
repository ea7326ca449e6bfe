//! `multidb keys` creates, lists and revokes keys; a revocation reaches every running instance.

#[allow(unused_imports)]
use super::*;

/// `multidb keys ARGS…` on `storage`'s databases, logging at debug level.
pub(super) fn keys(storage: &Storage, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multidb"))
        .arg("keys")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL_1", storage.raw_url(1))
        .env("DATABASE_URL_2", storage.raw_url(2))
        .env("RUST_LOG", "debug")
        // No ./.env of the developer's.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run multidb keys")
}

pub(super) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 on stdout")
}

pub(super) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
pub(super) fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: stdout {:?}, stderr {:?}",
        stdout(output),
        stderr(output)
    );
}

/// `multidb keys create`: asserts that it printed a token and nothing else, and no
/// token in its log; returns the token.
pub(super) fn create_with_cli(storage: &Storage, name: &str, scope: &str) -> String {
    let output = keys(storage, &["create", "--name", name, "--scope", scope]);
    assert_exit(&output, 0, "keys create");
    let printed = stdout(&output);
    let format = Regex::new(r"\Amdb_[0-9a-f]{16}_[0-9a-f]{64}\n\z").unwrap();
    assert!(format.is_match(&printed), "not a token: {printed:?}");
    let token = printed.trim_end().to_owned();
    assert!(
        !shows_a_token(&stderr(&output), &[&token]),
        "keys create logged its token: {}",
        stderr(&output)
    );
    token
}

/// What `multidb keys list` and `keys list --json` printed, and the keys as rows (id,
/// name, scope, created, last used, revoked; `-` for a time not reached) read from the
/// JSON. The table shows the same rows, in columns that start where the header's do.
pub(super) fn list_with_cli(storage: &Storage) -> (String, Vec<Vec<String>>) {
    let output = keys(storage, &["list", "--json"]);
    assert_exit(&output, 0, "keys list --json");
    let json = stdout(&output);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&json).expect("a JSON array");
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|key| {
            [
                "id",
                "name",
                "scope",
                "created_at",
                "last_used_at",
                "revoked_at",
            ]
            .iter()
            .map(|field| key[field].as_str().unwrap_or("-").to_owned())
            .collect()
        })
        .collect();

    let output = keys(storage, &["list"]);
    assert_exit(&output, 0, "keys list");
    let table = stdout(&output);
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let columns: Vec<usize> = ["ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"]
        .iter()
        .map(|title| header.find(title).expect("every column's title"))
        .collect();
    let shown: Vec<&str> = lines.collect();
    assert_eq!(shown.len(), rows.len(), "{table}");
    for (line, row) in shown.iter().zip(&rows) {
        for (start, cell) in columns.iter().zip(row) {
            assert_eq!(
                line.get(*start..start + cell.len()),
                Some(cell.as_str()),
                "{table}"
            );
        }
    }
    (format!("{table}{json}"), rows)
}

/// The `multidb keys list` row of the key of `token`.
pub(super) fn listed(storage: &Storage, token: &str) -> Vec<String> {
    let (id, _) = parts(token);
    let (_, rows) = list_with_cli(storage);
    rows.into_iter()
        .find(|row| row[0] == id)
        .unwrap_or_else(|| panic!("key {id} not listed"))
}

pub(super) const LAST_USED: usize = 4;
pub(super) const REVOKED: usize = 5;

/// `keys create` prints a new token once; `keys list` shows each key's id, name, scope
/// and times but never its token, secret or hash; `keys revoke` marks it revoked;
/// an unknown id fails (1) and bad usage is refused (2), creating nothing.
fn the_keys_commands_create_list_and_revoke(stack: Stack) {
    let storage = Storage::create(stack);
    let read = create_with_cli(&storage, "deploy bot", "read");
    let write = create_with_cli(&storage, "ci", "write");
    assert_ne!(parts(&read).0, parts(&write).0);

    let time = Regex::new(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z").unwrap();
    let (printed, rows) = list_with_cli(&storage);
    assert_eq!(rows.len(), 2, "{printed}");
    for (token, name, scope) in [(&read, "deploy bot", "read"), (&write, "ci", "write")] {
        let row = listed(&storage, token);
        assert_eq!(row.len(), 6, "{row:?}");
        assert_eq!((row[1].as_str(), row[2].as_str()), (name, scope), "{row:?}");
        assert!(time.is_match(&row[3]), "created: {row:?}");
        assert_eq!((row[LAST_USED].as_str(), row[REVOKED].as_str()), ("-", "-"));
        let (_, secret) = parts(token);
        assert!(
            !shows_a_token(&printed, &[token]) && !printed.contains(&sha256_hex(secret)),
            "keys list shows a token, a secret or its hash: {printed}"
        );
    }

    let (id, _) = parts(&read);
    let output = keys(&storage, &["revoke", id]);
    assert_exit(&output, 0, "keys revoke");
    assert_eq!(stdout(&output), format!("revoked {id}\n"));
    let row = listed(&storage, &read);
    assert!(time.is_match(&row[REVOKED]), "revoked: {row:?}");
    assert_eq!(listed(&storage, &write)[REVOKED], "-");

    let output = keys(&storage, &["revoke", "0123456789abcdef"]);
    assert_exit(&output, 1, "keys revoke of an unknown id");
    assert_eq!(stdout(&output), "");

    for usage in [
        &["create", "--name", "admin", "--scope", "admin"][..],
        &["create", "--name", "no scope"],
        &["create", "--scope", "read"],
        &["create", "--name", "", "--scope", "read"],
        &["revoke"],
        &["list", "--all"],
        &["rotate", id],
    ] {
        let output = keys(&storage, usage);
        assert_exit(&output, 2, &format!("keys {}", usage.join(" ")));
        assert_eq!(stdout(&output), "", "keys {}", usage.join(" "));
    }
    assert_eq!(list_with_cli(&storage).1.len(), 2, "created by bad usage");
    storage.remove();
}

pub(super) fn serve(storage: &Storage, extra: &[(&str, &str)]) -> ChildServer {
    let mut env = vec![
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        ("AUTH", "required"),
    ];
    env.extend_from_slice(extra);
    ChildServer::start(&env)
}

/// Two instances on the same databases both serve a key made with `multidb keys create`
/// (whose use `keys list` then shows) and, once `multidb keys revoke` has run, both
/// refuse it: each had the key's row cached, and lets it go within the cache's time.
fn a_revoked_key_is_refused_by_every_running_instance(stack: Stack) {
    let storage = Storage::create(stack);
    let servers = [serve(&storage, &[]), serve(&storage, &[])];
    let token = create_with_cli(&storage, "shared", "read");
    let authorization = bearer(&token);
    let get = |server: &ChildServer| {
        server.request_with("GET", "/users", &authorized(Some(&authorization)), None)
    };
    for server in &servers {
        server
            .request("GET", "/users", None)
            .assert_error(401, "unauthorized");
        let response = get(server);
        assert_eq!(response.status, 200, "{}", response.text);
    }
    eventually("the key's use shown by keys list", || {
        let row = listed(&storage, &token);
        (row[LAST_USED] != "-").then_some(())
    });

    let (id, _) = parts(&token);
    assert_exit(&keys(&storage, &["revoke", id]), 0, "keys revoke");
    for (n, server) in servers.iter().enumerate() {
        let refused = eventually(&format!("instance {n} refusing the revoked key"), || {
            Some(get(server)).filter(|response| response.status != 200)
        });
        refused.assert_error(401, "unauthorized");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    }
    drop(servers);
    storage.remove();
}

on_stacks!([sqlite, postgres] =>
    the_keys_commands_create_list_and_revoke,
    a_revoked_key_is_refused_by_every_running_instance,
);
