//! The users endpoints and the generic input and error rules of API.md, through HTTP
//! against the real application on every stack.

use std::collections::HashSet;
use std::time::Duration;

use crate::helpers::{id_of, ids_of, item_ids, spawn_app, walk_pages, Response, Stack, TestApp};
use serde_json::{json, Value};

const MAX_BODY_BYTES: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Sends `raw` as a JSON body, whatever it contains.
fn send_json(app: &TestApp, method: &str, path: &str, raw: &str) -> Response {
    app.request(
        method,
        path,
        Some(("application/json", raw.as_bytes().to_vec())),
    )
}

/// A user body as API.md describes it: exactly `id`, `email`, `name`, `created_at`.
#[track_caller]
fn assert_user(user: &Value, email: &str, name: &str) {
    let object = user
        .as_object()
        .unwrap_or_else(|| panic!("a user is a JSON object: {user}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "email", "id", "name"],
        "user fields: {user}"
    );
    assert!(id_of(user) > 0, "ids are positive: {user}");
    assert_eq!(user["email"], email, "email of {user}");
    assert_eq!(user["name"], name, "name of {user}");
    let created_at = user["created_at"]
        .as_str()
        .unwrap_or_else(|| panic!("created_at is a string: {user}"));
    let parsed = chrono::DateTime::parse_from_rfc3339(created_at)
        .unwrap_or_else(|e| panic!("created_at {created_at:?} is not RFC 3339: {e}"));
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "created_at is UTC: {created_at}"
    );
    assert!(
        created_at.ends_with('Z'),
        "created_at is shown in UTC with Z: {created_at}"
    );
}

/// Asserts an error response and that the database still holds `users` users.
#[track_caller]
fn assert_refused(app: &TestApp, response: &Response, status: u16, code: &str, users: i64) {
    response.assert_error(status, code);
    assert_eq!(
        app.count_users(),
        users,
        "a refused request wrote to db1; response: {}",
        response.text
    );
}

/// Error messages never show SQL, constraint names or backend details.
#[track_caller]
fn assert_no_sql_leak(response: &Response) {
    assert!(
        !response.text.contains("UNIQUE"),
        "SQL in the error: {}",
        response.text
    );
    let lower = response.text.to_lowercase();
    for leak in [
        "constraint",
        "users_email_key",
        "duplicate key",
        "sqlite",
        "postgres",
        "diesel",
        "insert into",
        "update users",
        "violates",
    ] {
        assert!(
            !lower.contains(leak),
            "{leak:?} leaked into the error: {}",
            response.text
        );
    }
}

/// The user as GET returns it, asserting the 200.
#[track_caller]
fn get_user(app: &TestApp, id: i64) -> Value {
    let response = app.get(&format!("/users/{id}"));
    assert_eq!(response.status, 200, "GET user {id}: {}", response.text);
    response.body
}

/// A JSON body padded with trailing whitespace (valid JSON) to exactly `size` bytes.
fn padded_body(object: &Value, size: usize) -> String {
    let mut body = object.to_string();
    assert!(body.len() <= size, "body too long to pad");
    body.push_str(&" ".repeat(size - body.len()));
    assert_eq!(body.len(), size);
    body
}

/// A request with an `X-Request-Id` of the client's choice (the harness sets no headers).
/// Returns the status and the `X-Request-Id` of the response.
fn send_with_request_id(
    app: &TestApp,
    method: &str,
    path: &str,
    request_id: &str,
    body: Option<&str>,
) -> (u16, Option<String>) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let request = agent
        .request(method, &format!("{}{path}", app.address))
        .set("X-Request-Id", request_id);
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {path}: transport error: {error}"),
    };
    (
        response.status(),
        response.header("x-request-id").map(str::to_owned),
    )
}

// ---------------------------------------------------------------------------------------
// POST /users
// ---------------------------------------------------------------------------------------

fn creating_a_user_returns_201_with_the_user_and_its_location(stack: Stack) {
    let app = spawn_app(stack);
    let response = app.post(
        "/users",
        json!({"email": "ada@example.com", "name": "Ada Lovelace"}),
    );
    assert_eq!(response.status, 201, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_user(&response.body, "ada@example.com", "Ada Lovelace");
    let id = id_of(&response.body);
    assert_eq!(
        response.header("location"),
        Some(format!("/users/{id}").as_str())
    );
    assert_eq!(app.count_users(), 1);

    // The Location names the stored user, which reads back equal to the 201's body.
    let location = response.header("location").unwrap().to_owned();
    let fetched = app.get(&location);
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(fetched.body, response.body);

    // A second user gets its own id and location.
    let second = app.post(
        "/users",
        json!({"email": "grace@example.com", "name": "Grace"}),
    );
    assert_eq!(second.status, 201, "{}", second.text);
    assert_user(&second.body, "grace@example.com", "Grace");
    let second_id = id_of(&second.body);
    assert_ne!(second_id, id);
    assert_eq!(
        second.header("location"),
        Some(format!("/users/{second_id}").as_str())
    );
    assert_eq!(app.count_users(), 2);
}

fn email_is_trimmed_and_lower_cased_and_name_is_trimmed(stack: Stack) {
    let app = spawn_app(stack);
    let created = app.post(
        "/users",
        json!({"email": "  Ada.Lovelace@Example.COM \t", "name": "  Ada Lovelace \n"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_user(&created.body, "ada.lovelace@example.com", "Ada Lovelace");
    let stored = get_user(&app, id_of(&created.body));
    assert_user(&stored, "ada.lovelace@example.com", "Ada Lovelace");

    // Lower-casing applies to non-ASCII letters too.
    let unicode = app.post(
        "/users",
        json!({"email": "ÜNÏ@CÖDÉ.DE", "name": "Ünï Cödé"}),
    );
    assert_eq!(unicode.status, 201, "{}", unicode.text);
    assert_user(&unicode.body, "ünï@cödé.de", "Ünï Cödé");
    assert_eq!(get_user(&app, id_of(&unicode.body)), unicode.body);
    assert_eq!(app.count_users(), 2);
}

fn taken_email_is_a_conflict_regardless_of_case(stack: Stack) {
    let app = spawn_app(stack);
    let original = app.create_user("ada@example.com", "Ada");
    for email in [
        "ada@example.com",
        "ADA@EXAMPLE.COM",
        "Ada@Example.Com",
        "  ada@example.com  ",
    ] {
        let response = app.post("/users", json!({"email": email, "name": "Impostor"}));
        assert_eq!(response.status, 409, "{email:?}: {}", response.text);
        assert_refused(&app, &response, 409, "conflict", 1);
        assert_no_sql_leak(&response);
    }
    // The first user is untouched.
    assert_eq!(get_user(&app, id_of(&original)), original);

    // The same holds for a user whose email was given in upper case.
    let upper = app.create_user("GRACE@Example.com", "Grace");
    assert_user(&upper, "grace@example.com", "Grace");
    let response = app.post(
        "/users",
        json!({"email": "grace@example.com", "name": "Grace 2"}),
    );
    assert_refused(&app, &response, 409, "conflict", 2);
    assert_no_sql_leak(&response);

    // The service still works after conflicts: another email is accepted.
    app.create_user("linus@example.com", "Linus");
    assert_eq!(app.count_users(), 3);
}

fn invalid_emails_are_validation_failures_and_write_nothing(stack: Stack) {
    let app = spawn_app(stack);
    let too_long_ascii = format!("{}@b.cd", "a".repeat(250)); // 255 characters
    let too_long_unicode = format!("{}@b.cd", "ü".repeat(250)); // 255 characters
    let bad_emails = [
        "".to_owned(),
        "   ".to_owned(),
        "ab".to_owned(),         // too short
        "  a@  ".to_owned(),     // too short once trimmed, empty domain
        too_long_ascii,          // 255 characters
        too_long_unicode,        // 255 characters
        "no-at-sign".to_owned(), // no @
        "ada.example.com".to_owned(),
        "a@b@c".to_owned(), // two @
        "ada@@example.com".to_owned(),
        "@example.com".to_owned(), // empty local part
        "ada@".to_owned(),         // empty domain
        "@".to_owned(),
        "ada lovelace@example.com".to_owned(), // whitespace inside
        "ada@exa mple.com".to_owned(),
        "ada\t@example.com".to_owned(),
        "ada@example\n.com".to_owned(),
        "ada\u{a0}@example.com".to_owned(),    // no-break space
        "ada\u{2003}x@example.com".to_owned(), // em space
    ];
    for email in &bad_emails {
        let response = app.post("/users", json!({"email": email, "name": "Ada"}));
        assert_eq!(response.status, 422, "{email:?}: {}", response.text);
        assert_refused(&app, &response, 422, "validation_failed", 0);
        assert!(
            response.text.contains("email"),
            "the message names the field for {email:?}: {}",
            response.text
        );
    }
    // A bad email with a good name is still refused as a whole; so is a body where both
    // values are bad.
    let both = app.post("/users", json!({"email": "nope", "name": ""}));
    assert_refused(&app, &both, 422, "validation_failed", 0);
}

fn email_length_edges_are_accepted_and_counted_in_characters(stack: Stack) {
    let app = spawn_app(stack);
    let mut expected_users = 0;
    let mut accept = |raw: &str, stored: &str| {
        let response = app.post("/users", json!({"email": raw, "name": "Edge"}));
        assert_eq!(
            response.status,
            201,
            "{raw:?} ({} characters) refused: {}",
            raw.chars().count(),
            response.text
        );
        assert_user(&response.body, stored, "Edge");
        assert_eq!(get_user(&app, id_of(&response.body)), response.body);
        expected_users += 1;
        assert_eq!(app.count_users(), expected_users);
    };

    accept("a@b", "a@b"); // exactly 3 characters
    accept("   c@d   ", "c@d"); // 3 once trimmed
    let ascii_254 = format!("{}@b.c", "a".repeat(250));
    accept(&ascii_254, &ascii_254);
    let upper_254 = format!("{}@B.C", "B".repeat(250));
    accept(&upper_254, &upper_254.to_lowercase());
    // 254 characters but 504 bytes: the limit counts characters.
    let unicode_254 = format!("{}@b.c", "ü".repeat(250));
    assert!(unicode_254.len() > 254);
    accept(&unicode_254, &unicode_254);
    // Padding outside the 254 characters is trimmed before counting.
    let padded = format!("  {}@d.e  ", "c".repeat(250));
    accept(&padded, padded.trim());
}

fn invalid_names_are_validation_failures_and_write_nothing(stack: Stack) {
    let app = spawn_app(stack);
    let bad_names = [
        "".to_owned(),
        " ".to_owned(),
        "   \t  ".to_owned(),
        "\n".to_owned(),
        "a".repeat(201),
        "é".repeat(201),
        format!("  {}  ", "a".repeat(201)),
        "Ada\u{7}Lovelace".to_owned(), // bell
        "Ada\nLovelace".to_owned(),
        "Ada\tLovelace".to_owned(),
        "Ada\rLovelace".to_owned(),
        "Ada\u{0}".to_owned(),
        "\u{1b}[31mAda".to_owned(),     // escape
        "Ada\u{7f}".to_owned(),         // delete
        "Ada\u{85}Lovelace".to_owned(), // C1 next line
    ];
    for (n, name) in bad_names.iter().enumerate() {
        let response = app.post(
            "/users",
            json!({"email": format!("user{n}@example.com"), "name": name}),
        );
        assert_eq!(response.status, 422, "{name:?}: {}", response.text);
        assert_refused(&app, &response, 422, "validation_failed", 0);
        assert!(
            response.text.contains("name"),
            "the message names the field for {name:?}: {}",
            response.text
        );
    }
}

fn name_length_edges_are_accepted_and_counted_in_characters(stack: Stack) {
    let app = spawn_app(stack);
    let padded = format!("  {}  ", "p".repeat(200));
    let cases: [(String, String); 6] = [
        ("a".repeat(200), "a".repeat(200)),
        ("é".repeat(200), "é".repeat(200)),   // 400 bytes
        ("🎉".repeat(200), "🎉".repeat(200)), // 800 bytes
        ("日本語 🎉".to_owned(), "日本語 🎉".to_owned()),
        ("X".to_owned(), "X".to_owned()), // one character
        (padded.clone(), padded.trim().to_owned()),
    ];
    for (n, (raw, stored)) in cases.iter().enumerate() {
        let email = format!("name{n}@example.com");
        let response = app.post("/users", json!({"email": email, "name": raw}));
        assert_eq!(
            response.status,
            201,
            "name of {} characters refused: {}",
            raw.chars().count(),
            response.text
        );
        assert_user(&response.body, &email, stored);
        assert_eq!(get_user(&app, id_of(&response.body)), response.body);
    }
    assert_eq!(app.count_users(), i64::try_from(cases.len()).unwrap());
}

fn malformed_json_is_a_bad_request(stack: Stack) {
    let app = spawn_app(stack);
    for raw in [
        "",
        " ",
        "{",
        "not json",
        r#"{"email": "ada@example.com", "name": "Ada""#,
        r#"{"email": "ada@example.com", "name": "Ada",}"#,
        r#"{'email': 'ada@example.com', 'name': 'Ada'}"#,
        r#"{"email": "ada@example.com" "name": "Ada"}"#,
        r#"{"email": "ada@example.com", "name": "Ada"} trailing"#,
        r#"{"email": "ada@example.com", "name": "Ada"}{}"#,
    ] {
        let response = send_json(&app, "POST", "/users", raw);
        assert_eq!(response.status, 400, "{raw:?}: {}", response.text);
        assert_refused(&app, &response, 400, "bad_request", 0);
    }
    // Bytes that are not UTF-8 are not JSON either.
    let response = app.request(
        "POST",
        "/users",
        Some((
            "application/json",
            b"{\"email\": \"a\xff@b.c\", \"name\": \"Ada\"}".to_vec(),
        )),
    );
    assert_refused(&app, &response, 400, "bad_request", 0);
}

fn wrong_json_types_and_missing_fields_are_bad_requests(stack: Stack) {
    let app = spawn_app(stack);
    let bodies = [
        // Not an object.
        "null",
        "[]",
        r#"[{"email": "ada@example.com", "name": "Ada"}]"#,
        // The fields in order, as an array: still not an object.
        r#"["ada@example.com", "Ada"]"#,
        r#""ada@example.com""#,
        "42",
        "true",
        // Wrong types.
        r#"{"email": "ada@example.com", "name": 42}"#,
        r#"{"email": 42, "name": "Ada"}"#,
        r#"{"email": "ada@example.com", "name": null}"#,
        r#"{"email": null, "name": "Ada"}"#,
        r#"{"email": "ada@example.com", "name": true}"#,
        r#"{"email": "ada@example.com", "name": ["Ada"]}"#,
        r#"{"email": {"address": "ada@example.com"}, "name": "Ada"}"#,
        // Missing fields.
        "{}",
        r#"{"email": "ada@example.com"}"#,
        r#"{"name": "Ada"}"#,
    ];
    for raw in bodies {
        let response = send_json(&app, "POST", "/users", raw);
        assert_eq!(response.status, 400, "{raw:?}: {}", response.text);
        assert_refused(&app, &response, 400, "bad_request", 0);
    }
}

fn unknown_fields_are_bad_requests(stack: Stack) {
    let app = spawn_app(stack);
    for body in [
        json!({"email": "ada@example.com", "name": "Ada", "admin": true}),
        json!({"email": "ada@example.com", "name": "Ada", "id": 7}),
        json!({"email": "ada@example.com", "name": "Ada", "created_at": "2026-11-23T10:00:00Z"}),
        json!({"email": "ada@example.com", "name": "Ada", "Email": "x@y.z"}),
        json!({"email": "ada@example.com", "name": "Ada", "extra": null}),
    ] {
        let response = app.post("/users", body.clone());
        assert_eq!(response.status, 400, "{body:?}: {}", response.text);
        assert_refused(&app, &response, 400, "bad_request", 0);
    }
}

fn bodies_must_be_declared_as_json(stack: Stack) {
    let app = spawn_app(stack);
    let valid = json!({"email": "ada@example.com", "name": "Ada"}).to_string();
    for content_type in [
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
        "text/json-ish",
        "text/json",
        "application/vnd.api+json",
        "application/jsonx",
    ] {
        let response = app.request(
            "POST",
            "/users",
            Some((content_type, valid.as_bytes().to_vec())),
        );
        assert_eq!(response.status, 415, "{content_type:?}: {}", response.text);
        assert_refused(&app, &response, 415, "unsupported_media_type", 0);
    }

    // application/json with a charset parameter is still application/json.
    let response = app.request(
        "POST",
        "/users",
        Some(("application/json; charset=utf-8", valid.as_bytes().to_vec())),
    );
    assert_eq!(response.status, 201, "{}", response.text);
    assert_user(&response.body, "ada@example.com", "Ada");
    assert_eq!(app.count_users(), 1);

    // PATCH bodies follow the same rule.
    let id = id_of(&response.body);
    for content_type in ["text/plain", "application/merge-patch+json"] {
        let patch = app.request(
            "PATCH",
            &format!("/users/{id}"),
            Some((content_type, br#"{"name": "Changed"}"#.to_vec())),
        );
        assert_eq!(patch.status, 415, "{content_type}: {}", patch.text);
        assert_refused(&app, &patch, 415, "unsupported_media_type", 1);
        assert_eq!(get_user(&app, id), response.body);
    }
}

fn bodies_over_64_kib_are_too_large(stack: Stack) {
    let app = spawn_app(stack);
    let too_large = padded_body(
        &json!({"email": "big@example.com", "name": "Big"}),
        MAX_BODY_BYTES + 1,
    );
    let response = send_json(&app, "POST", "/users", &too_large);
    assert_refused(&app, &response, 413, "payload_too_large", 0);

    // A large name alone also makes a large body.
    let long_name = json!({"email": "big@example.com", "name": "n".repeat(MAX_BODY_BYTES)});
    let response = app.post("/users", long_name);
    assert_refused(&app, &response, 413, "payload_too_large", 0);

    // At and just under the limit the body is read and judged on its content.
    let at_limit = padded_body(
        &json!({"email": "limit@example.com", "name": "Limit"}),
        MAX_BODY_BYTES,
    );
    let response = send_json(&app, "POST", "/users", &at_limit);
    assert_eq!(response.status, 201, "{}", response.text);
    assert_user(&response.body, "limit@example.com", "Limit");
    assert_eq!(app.count_users(), 1);

    let under_limit = padded_body(
        &json!({"email": "under@example.com", "name": "Under"}),
        MAX_BODY_BYTES - 1,
    );
    let response = send_json(&app, "POST", "/users", &under_limit);
    assert_eq!(response.status, 201, "{}", response.text);
    assert_eq!(app.count_users(), 2);
    let id = id_of(&response.body);

    // A body just under the limit with a name too long is refused for the name, not the size.
    let long_name_under_limit = padded_body(
        &json!({"email": "long@example.com", "name": "n".repeat(201)}),
        MAX_BODY_BYTES - 1,
    );
    let response = send_json(&app, "POST", "/users", &long_name_under_limit);
    assert_refused(&app, &response, 422, "validation_failed", 2);

    // PATCH bodies have the same limit.
    let before = get_user(&app, id);
    let patch = padded_body(&json!({"name": "Changed"}), MAX_BODY_BYTES + 1);
    let response = send_json(&app, "PATCH", &format!("/users/{id}"), &patch);
    assert_refused(&app, &response, 413, "payload_too_large", 2);
    assert_eq!(get_user(&app, id), before);
}

// ---------------------------------------------------------------------------------------
// GET, PATCH, DELETE /users/{id}
// ---------------------------------------------------------------------------------------

fn missing_users_are_not_found(stack: Stack) {
    let app = spawn_app(stack);
    let user = app.create_user("ada@example.com", "Ada");
    let id = id_of(&user);
    assert_eq!(get_user(&app, id), user);

    for missing in [id + 1, id + 1000, i64::MAX] {
        let path = format!("/users/{missing}");
        app.get(&path).assert_error(404, "not_found");
        let patch = app.patch(&path, json!({"name": "Ghost"}));
        assert_refused(&app, &patch, 404, "not_found", 1);
        let delete = app.delete(&path);
        assert_refused(&app, &delete, 404, "not_found", 1);
    }
    assert_eq!(get_user(&app, id), user);
}

fn malformed_user_ids_are_bad_requests(stack: Stack) {
    let app = spawn_app(stack);
    let user = app.create_user("ada@example.com", "Ada");
    for raw in [
        "0",
        "-1",
        "9223372036854775808",
        "-9223372036854775808",
        "99999999999999999999",
        "abc",
        "1.5",
        "1e3",
        "0x1",
    ] {
        let path = format!("/users/{raw}");
        app.get(&path).assert_error(400, "bad_request");
        let patch = app.patch(&path, json!({"name": "Changed"}));
        assert_refused(&app, &patch, 400, "bad_request", 1);
        let delete = app.delete(&path);
        assert_refused(&app, &delete, 400, "bad_request", 1);
    }
    // The largest id is well-formed: it is merely not there.
    app.get("/users/9223372036854775807")
        .assert_error(404, "not_found");
    assert_eq!(get_user(&app, id_of(&user)), user);
}

fn patching_changes_only_the_given_fields(stack: Stack) {
    let app = spawn_app(stack);
    let original = app.create_user("ada@example.com", "Ada");
    let id = id_of(&original);
    let path = format!("/users/{id}");

    // Name only: the email stays.
    let response = app.patch(&path, json!({"name": "  Ada Lovelace  "}));
    assert_eq!(response.status, 200, "{}", response.text);
    assert_user(&response.body, "ada@example.com", "Ada Lovelace");
    assert_eq!(response.body["id"], original["id"]);
    assert_eq!(response.body["created_at"], original["created_at"]);
    assert_eq!(get_user(&app, id), response.body);

    // Email only: trimmed and lower-cased; the name stays.
    let response = app.patch(&path, json!({"email": "  Countess@Example.ORG "}));
    assert_eq!(response.status, 200, "{}", response.text);
    assert_user(&response.body, "countess@example.org", "Ada Lovelace");
    assert_eq!(response.body["created_at"], original["created_at"]);
    assert_eq!(get_user(&app, id), response.body);

    // Both at once.
    let response = app.patch(&path, json!({"email": "AL@example.com", "name": "A. L."}));
    assert_eq!(response.status, 200, "{}", response.text);
    assert_user(&response.body, "al@example.com", "A. L.");
    assert_eq!(get_user(&app, id), response.body);

    // Patching to one's own email, in any case, is not a conflict.
    for own in ["al@example.com", "AL@EXAMPLE.COM", " Al@Example.com "] {
        let response = app.patch(&path, json!({"email": own}));
        assert_eq!(response.status, 200, "own email {own:?}: {}", response.text);
        assert_user(&response.body, "al@example.com", "A. L.");
    }
    let response = app.patch(&path, json!({"email": "al@example.com", "name": "A. L."}));
    assert_eq!(response.status, 200, "{}", response.text);
    assert_user(&response.body, "al@example.com", "A. L.");

    // The emails given up are free again; the one taken is not.
    app.create_user("ada@example.com", "New Ada");
    app.create_user("countess@example.org", "New Countess");
    let taken = app.post("/users", json!({"email": "Al@Example.com", "name": "Copy"}));
    assert_refused(&app, &taken, 409, "conflict", 3);
    assert_eq!(get_user(&app, id)["name"], "A. L.");
}

fn patching_to_another_users_email_is_a_conflict_and_changes_nothing(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let grace = app.create_user("grace@example.com", "Grace");
    let path = format!("/users/{}", id_of(&grace));
    for body in [
        json!({"email": "ada@example.com"}),
        json!({"email": "ADA@example.COM"}),
        json!({"email": "  ada@example.com "}),
        // With a valid name change too: the whole patch is refused.
        json!({"email": "ada@example.com", "name": "Grace Hopper"}),
    ] {
        let response = app.patch(&path, body.clone());
        assert_eq!(response.status, 409, "{body:?}: {}", response.text);
        assert_refused(&app, &response, 409, "conflict", 2);
        assert_no_sql_leak(&response);
        assert_eq!(get_user(&app, id_of(&grace)), grace);
        assert_eq!(get_user(&app, id_of(&ada)), ada);
    }
}

fn invalid_patches_are_refused_and_change_nothing(stack: Stack) {
    let app = spawn_app(stack);
    let user = app.create_user("ada@example.com", "Ada");
    let other = app.create_user("grace@example.com", "Grace");
    let id = id_of(&user);
    let path = format!("/users/{id}");

    let unchanged = |response: &Response, status: u16, code: &str| {
        assert_refused(&app, response, status, code, 2);
        assert_eq!(get_user(&app, id), user, "a failed patch changed the user");
        assert_eq!(get_user(&app, id_of(&other)), other);
    };

    // Values outside the rules.
    for body in [
        json!({}),
        json!({"email": "not-an-email"}),
        json!({"email": ""}),
        json!({"email": "a@b@c"}),
        json!({"email": "ada lovelace@example.com"}),
        json!({"email": format!("{}@b.cd", "a".repeat(250))}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "n".repeat(201)}),
        json!({"name": "Ada\u{7}"}),
        json!({"name": "Ada\nLovelace"}),
        // One valid and one invalid value: nothing is applied.
        json!({"email": "valid@example.com", "name": ""}),
        json!({"email": "invalid", "name": "Valid Name"}),
    ] {
        let response = app.patch(&path, body.clone());
        assert_eq!(response.status, 422, "{body}: {}", response.text);
        unchanged(&response, 422, "validation_failed");
    }

    // Malformed bodies, wrong types, nulls and unknown fields.
    for raw in [
        "",
        "{",
        "null",
        "[]",
        r#"["new@example.com"]"#,
        r#"["new@example.com", "New Name"]"#,
        r#""Ada""#,
        r#"{"name": null}"#,
        r#"{"email": null}"#,
        r#"{"email": null, "name": "Ada"}"#,
        r#"{"name": 5}"#,
        r#"{"email": ["ada@example.com"]}"#,
        r#"{"name": "Ada", "admin": true}"#,
        r#"{"id": 99}"#,
        r#"{"name": "Ada", "created_at": "2026-11-23T10:00:00Z"}"#,
    ] {
        let response = send_json(&app, "PATCH", &path, raw);
        assert_eq!(response.status, 400, "{raw}: {}", response.text);
        unchanged(&response, 400, "bad_request");
    }

    // Without a content type.
    let response = app.request(
        "PATCH",
        &path,
        Some(("", br#"{"name": "Changed"}"#.to_vec())),
    );
    unchanged(&response, 415, "unsupported_media_type");
}

fn deleting_a_user_answers_204_then_404(stack: Stack) {
    let app = spawn_app(stack);
    let ada = app.create_user("ada@example.com", "Ada");
    let grace = app.create_user("grace@example.com", "Grace");
    let path = format!("/users/{}", id_of(&ada));

    let response = app.delete(&path);
    assert_eq!(response.status, 204, "{}", response.text);
    assert!(
        response.text.is_empty(),
        "204 has no body: {}",
        response.text
    );
    assert_eq!(app.count_users(), 1);

    app.get(&path).assert_error(404, "not_found");
    assert_refused(&app, &app.delete(&path), 404, "not_found", 1);
    assert_refused(
        &app,
        &app.patch(&path, json!({"name": "Back"})),
        404,
        "not_found",
        1,
    );
    assert_eq!(get_user(&app, id_of(&grace)), grace);

    // The listing no longer has the user, and the email can be used again.
    let page = app.get("/users");
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(item_ids(&page.body), vec![id_of(&grace)]);
    let again = app.create_user("ADA@example.com", "Ada again");
    assert_user(&again, "ada@example.com", "Ada again");
    assert_ne!(
        id_of(&again),
        id_of(&ada),
        "the new user is not the old one"
    );
    assert_eq!(app.count_users(), 2);
}

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
    ] {
        let response = app.get(&format!("/users?{query}"));
        assert_eq!(response.status, 400, "{query}: {}", response.text);
        response.assert_error(400, "bad_request");
    }
}

// ---------------------------------------------------------------------------------------
// Routing, request ids
// ---------------------------------------------------------------------------------------

fn unknown_routes_are_404_and_wrong_methods_405(stack: Stack) {
    let app = spawn_app(stack);
    let user = app.create_user("ada@example.com", "Ada");
    let id = id_of(&user);
    let body = || {
        Some((
            "application/json",
            json!({"email": "new@example.com", "name": "New"})
                .to_string()
                .into_bytes(),
        ))
    };

    for (method, path) in [
        ("GET", "/nope".to_owned()),
        ("GET", "/user".to_owned()),
        ("GET", format!("/users/{id}/nope")),
        ("GET", "/users/1/2/3".to_owned()),
        ("POST", "/nope".to_owned()),
        ("DELETE", "/".to_owned()),
    ] {
        let response = app.request(method, &path, body());
        assert_eq!(response.status, 404, "{method} {path}: {}", response.text);
        assert_refused(&app, &response, 404, "not_found", 1);
    }

    for (method, path) in [
        ("PUT", "/users".to_owned()),
        ("DELETE", "/users".to_owned()),
        ("PATCH", "/users".to_owned()),
        ("POST", format!("/users/{id}")),
        ("PUT", format!("/users/{id}")),
        ("POST", "/users/1".to_owned()),
        ("POST", format!("/users/{id}/summary")),
    ] {
        let response = app.request(method, &path, body());
        assert_eq!(response.status, 405, "{method} {path}: {}", response.text);
        assert_refused(&app, &response, 405, "method_not_allowed", 1);
    }
    // Without a body, too.
    let response = app.request("PUT", "/users", None);
    assert_refused(&app, &response, 405, "method_not_allowed", 1);
    assert_eq!(get_user(&app, id), user);
}

fn every_response_carries_a_request_id(stack: Stack) {
    let app = spawn_app(stack);
    let created = app.post("/users", json!({"email": "ada@example.com", "name": "Ada"}));
    let id = id_of(&created.body);
    let too_large = padded_body(&json!({"name": "x"}), MAX_BODY_BYTES + 1);
    let responses = [
        created,                                                              // 201
        app.get("/users"),                                                    // 200
        app.get(&format!("/users/{id}")),                                     // 200
        app.get("/users/0"),                                                  // 400
        app.get("/users/999999"),                                             // 404
        app.get("/nope"),                                                     // 404
        app.request("PUT", "/users", None),                                   // 405
        app.post("/users", json!({"email": "ada@example.com", "name": "A"})), // 409
        send_json(&app, "POST", "/users", &too_large),                        // 413
        app.request("POST", "/users", Some(("text/plain", b"{}".to_vec()))),  // 415
        app.post("/users", json!({"email": "bad", "name": "A"})),             // 422
        app.delete(&format!("/users/{id}")),                                  // 204
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [201, 200, 200, 400, 404, 404, 405, 409, 413, 415, 422, 204]
    );
    let mut seen = HashSet::new();
    for response in &responses {
        let request_id = response
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id on a {}", response.status));
        assert!(!request_id.trim().is_empty(), "empty X-Request-Id");
        assert!(
            seen.insert(request_id.to_owned()),
            "X-Request-Id {request_id} repeated for another request"
        );
    }
}

fn a_client_request_id_is_echoed_back(stack: Stack) {
    let app = spawn_app(stack);
    let (status, echoed) = send_with_request_id(
        &app,
        "POST",
        "/users",
        "client-req-0001",
        Some(r#"{"email": "ada@example.com", "name": "Ada"}"#),
    );
    assert_eq!(status, 201);
    assert_eq!(echoed.as_deref(), Some("client-req-0001"));
    let id = item_ids(&app.get("/users").body)[0];
    let user_path = format!("/users/{id}");

    let uuid = "0b7c1c1e-93a4-4a55-8c1e-2f6a3c9d8e71";
    for (method, path, body, expected) in [
        ("GET", "/users", None, 200),
        ("GET", user_path.as_str(), None, 200),
        ("GET", "/users/999999", None, 404),
        ("GET", "/users/abc", None, 400),
        ("PUT", "/users", None, 405),
        ("POST", "/users", Some(r#"{"email": "bad"}"#), 400),
        (
            "POST",
            "/users",
            Some(r#"{"email": "ADA@example.com", "name": "A"}"#),
            409,
        ),
    ] {
        let (status, echoed) = send_with_request_id(&app, method, path, uuid, body);
        assert_eq!(status, expected, "{method} {path}");
        assert_eq!(echoed.as_deref(), Some(uuid), "{method} {path} {status}");
    }
    assert_eq!(app.count_users(), 1);
}

on_every_stack!(
    creating_a_user_returns_201_with_the_user_and_its_location,
    email_is_trimmed_and_lower_cased_and_name_is_trimmed,
    taken_email_is_a_conflict_regardless_of_case,
    invalid_emails_are_validation_failures_and_write_nothing,
    email_length_edges_are_accepted_and_counted_in_characters,
    invalid_names_are_validation_failures_and_write_nothing,
    name_length_edges_are_accepted_and_counted_in_characters,
    malformed_json_is_a_bad_request,
    wrong_json_types_and_missing_fields_are_bad_requests,
    unknown_fields_are_bad_requests,
    bodies_must_be_declared_as_json,
    bodies_over_64_kib_are_too_large,
    missing_users_are_not_found,
    malformed_user_ids_are_bad_requests,
    patching_changes_only_the_given_fields,
    patching_to_another_users_email_is_a_conflict_and_changes_nothing,
    invalid_patches_are_refused_and_change_nothing,
    deleting_a_user_answers_204_then_404,
    an_empty_listing_is_one_last_page,
    listing_users_pages_through_all_of_them_in_id_order,
    invalid_page_parameters_are_bad_requests,
    unknown_routes_are_404_and_wrong_methods_405,
    every_response_carries_a_request_id,
    a_client_request_id_is_echoed_back,
);
