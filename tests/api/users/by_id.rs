//! GET, PATCH and DELETE /users/{id}.

use super::*;

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
        "1e-1",
        "0x1",
        "inf",
        ".5e1",
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
    // One resource, one URL: a number written otherwise than in canonical decimal is
    // not an id in a path (JSON bodies keep their number rules).
    let id = id_of(&user);
    for raw in [
        format!("{id}.0"),
        format!("{id}e0"),
        format!("{id}.000"),
        format!("0{id}"),
        format!("+{id}"),
        "1e3".to_owned(),
    ] {
        let path = format!("/users/{raw}");
        let response = app.get(&path);
        response.assert_error(400, "bad_request");
        assert!(
            response.body["error"]
                .as_str()
                .is_some_and(|message| message.contains(&format!("`{raw}`"))),
            "{path}: {}",
            response.text
        );
        assert_refused(&app, &app.delete(&path), 400, "bad_request", 1);
        app.get(&format!("/orders/{raw}"))
            .assert_error(400, "bad_request");
        app.get(&format!("{path}/summary"))
            .assert_error(400, "bad_request");
    }
    assert_eq!(get_user(&app, id), user);
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
    response.assert_no_content();
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

on_every_stack!(
    missing_users_are_not_found,
    malformed_user_ids_are_bad_requests,
    patching_changes_only_the_given_fields,
    patching_to_another_users_email_is_a_conflict_and_changes_nothing,
    invalid_patches_are_refused_and_change_nothing,
    deleting_a_user_answers_204_then_404,
);
