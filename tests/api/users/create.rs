//! POST /users.

use super::*;

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
);
