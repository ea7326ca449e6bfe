//! Every route needs a key whose scope allows the method; refused requests write nothing.

#[allow(unused_imports)]
use super::*;

/// No key, a malformed one, an unknown one, a wrong secret, a revoked key: every method
/// of every protected route (405s too) answers 401 with `WWW-Authenticate: Bearer`, and
/// nothing is written.
fn requests_without_a_valid_key_are_refused_and_write_nothing(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    let before = fixture.state();
    let calls = fixture.calls();
    for (what, authorization) in invalid_authorizations(&fixture) {
        for call in &calls {
            let response = fixture.call(call, authorization.as_deref());
            fixture.assert_refused(
                &response,
                401,
                "unauthorized",
                &format!("{} {} with {what}", call.method, call.path),
            );
        }
        assert_eq!(fixture.state(), before, "written with {what}");
    }
}

/// The scheme's name is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` serve
/// as `Bearer` does. Another scheme is refused naming the scheme, not the token.
fn the_bearer_scheme_is_case_insensitive_and_a_wrong_one_is_named(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let authorization = format!("{scheme} {}", fixture.read);
        let response = fixture.send("GET", "/users", Some(&authorization), None);
        assert_eq!(response.status, 200, "{scheme}: {}", response.text);
    }
    for authorization in [format!("Basic {}", fixture.read), fixture.read.clone()] {
        let response = fixture.send("GET", "/users", Some(&authorization), None);
        response.assert_error(401, "unauthorized");
        assert!(
            response.body["error"]
                .as_str()
                .is_some_and(|said| said.starts_with("the Authorization scheme is not Bearer")),
            "{}",
            response.text
        );
    }
}

/// A `read` key gets every GET and is refused every other method (403, even where the
/// method would be 405), with nothing written.
fn a_read_key_may_get_and_nothing_else(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    let before = fixture.state();
    let reader = bearer(&fixture.read);
    for call in fixture.calls() {
        let response = fixture.call(&call, Some(&reader));
        let what = format!("{} {} with a read key", call.method, call.path);
        if call.method == "GET" {
            assert_eq!(response.status, 200, "{what}: {}", response.text);
        } else {
            fixture.assert_refused(&response, 403, "forbidden", &what);
        }
    }
    assert_eq!(fixture.state(), before, "written with a read key");
}

/// A `write` key may use every documented method of every route.
fn a_write_key_may_use_every_method(stack: Stack) {
    let fixture = Fixture::new(stack, Auth::Required);
    let writer = bearer(&fixture.write);
    fixture.assert_everything_served(Some(&writer));
    // The last calls deleted the user, with their orders; the one user left is the
    // one created by `POST /users`.
    assert_eq!(
        (fixture.app.count_users(), fixture.app.count_orders()),
        (1, 0)
    );
}

on_every_stack!(
    requests_without_a_valid_key_are_refused_and_write_nothing,
    a_read_key_may_get_and_nothing_else,
    a_write_key_may_use_every_method,
);

/// With `AUTH=off`, the default of the test harness (it binds to 127.0.0.1), every
/// route answers without a key.
#[test]
fn with_auth_off_every_route_answers_without_a_key() {
    let fixture = Fixture::new(Stack::sqlite(), Auth::Off);
    fixture.assert_everything_served(None);
}

/// The public routes are exactly the operations endpoints and `/health`, and answer
/// without a key when `AUTH=required`; a path no route matches is a 404, not a 401.
#[test]
fn public_routes_and_unknown_paths_answer_without_a_key() {
    let fixture = Fixture::new(Stack::sqlite(), Auth::Required);
    let public: BTreeSet<&str> = multidb::http::public_routes().collect();
    assert_eq!(public, BTreeSet::from(PUBLIC));
    for template in public {
        let path = template.replace("{file}", "swagger-ui.css");
        let response = fixture.app.get(&path);
        assert!(
            (200..400).contains(&response.status),
            "GET {path}: {} {}",
            response.status,
            response.text
        );
    }
    for method in ["GET", "POST", "DELETE"] {
        let response = fixture.app.request(method, "/no/such/route", None);
        response.assert_error(404, "not_found");
        assert_eq!(response.body["error"], "no such route");
    }
    // And the application did require keys.
    fixture.app.get("/users").assert_error(401, "unauthorized");
}

// ---------------------------------------------------------------------------------------
// Last use, in-process.

// About the HTTP header only: one backend is enough.
on_stacks!([sqlite] => the_bearer_scheme_is_case_insensitive_and_a_wrong_one_is_named);
