//! Routing, request ids.

use super::*;

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
    unknown_routes_are_404_and_wrong_methods_405,
    every_response_carries_a_request_id,
    a_client_request_id_is_echoed_back,
);
