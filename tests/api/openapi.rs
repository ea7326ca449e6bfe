//! `GET /openapi.json` and the documentation page: the document lists exactly the routes
//! the service serves, each with exactly the methods it takes, and the page needs
//! nothing but the service. The routing is the same on every stack, so SQLite only.

use std::collections::{BTreeMap, BTreeSet};

use multidb::config::Auth;
use serde_json::{json, Value};

use crate::helpers::{concrete_path, id_of, spawn_app, spawn_app_with, Response, Stack, TestApp};

/// The methods tried on every route (CONNECT is not a request to a resource).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

/// Each documented path with its methods, upper-case.
fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item.as_object().expect("a path item").keys();
            let methods = methods
                .map(|key| key.to_ascii_uppercase())
                .filter(|method| METHODS.contains(&method.as_str()))
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// The statuses the document lists for one operation.
fn documented_statuses(document: &Value, template: &str, method: &str) -> Vec<u16> {
    let responses = &document["paths"][template][method.to_ascii_lowercase()]["responses"];
    let statuses = responses.as_object().expect("responses").keys();
    statuses
        .map(|status| status.parse().expect("a status"))
        .collect()
}

fn no_such_route(response: &Response) -> bool {
    response.status == 404 && response.body["error"] == "no such route"
}

fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json");
    assert_eq!(response.status, 200, "{}", response.text);
    response.body
}

/// Both directions: every operation served is documented and every path documented is
/// served; on each, every documented method is answered (with a status the document
/// lists for it), HEAD and OPTIONS as RFC 9110 asks (tests/api/http_manners.rs checks
/// them on every route), and every other method is 405 with an `Allow` that lists the
/// documented methods, HEAD with GET, and OPTIONS. The routes served are the table they
/// are registered from, `multidb::http::operation_templates()`; the documentation
/// page's own routes are not operations of the API.
#[test]
fn the_document_lists_exactly_the_routes_and_methods_served() {
    let app = spawn_app(Stack::sqlite());
    let document = document(&app);
    let documented = documented(&document);
    let served: BTreeSet<&str> = multidb::http::operation_templates().collect();
    assert_eq!(
        served.len(),
        multidb::http::operation_templates().count(),
        "a route twice"
    );

    let documented_paths: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
    assert_eq!(
        documented_paths, served,
        "documented paths against served ones"
    );
    assert!(
        !documented_paths
            .iter()
            .any(|path| path.starts_with("/docs")),
        "the page's routes are not operations"
    );
    let user = id_of(&app.create_user("ada@example.com", "Ada"));
    let order = id_of(&app.order(user).create());
    for template in served {
        let path = concrete_path(template, user, order);
        let mut allow = documented[template].clone();
        if allow.contains("GET") {
            allow.insert("HEAD".to_owned());
        }
        allow.insert("OPTIONS".to_owned());
        let listed = multidb::http::allowed_methods(template).expect("a route of the table");
        assert_eq!(methods(listed), allow, "Allow of {path} in the route table");
        for method in METHODS {
            let response = app.request(method, &path, None);
            if documented[template].contains(method) {
                assert!(
                    response.status != 405 && !no_such_route(&response),
                    "{method} {path} is documented, not served: {} {}",
                    response.status,
                    response.text
                );
                let statuses = documented_statuses(&document, template, method);
                assert!(
                    statuses.contains(&response.status),
                    "{method} {path} answered {}, documented {statuses:?}: {}",
                    response.status,
                    response.text
                );
            } else if allow.contains(method) {
                assert_ne!(response.status, 405, "{method} {path}: {}", response.text);
            } else {
                assert_eq!(
                    response.status, 405,
                    "{method} {path} is served, not documented: {}",
                    response.text
                );
                response.assert_error(405, "method_not_allowed");
                // RFC 9110: a 405 lists the methods the path takes.
                let allowed = response
                    .header("allow")
                    .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
                assert_eq!(methods(allowed), allow, "Allow of {path}");
            }
        }
    }
}

/// The methods of an `Allow` header.
fn methods(allow: &str) -> BTreeSet<String> {
    allow
        .split(',')
        .map(|method| method.trim().to_owned())
        .collect()
}

#[test]
fn the_document_is_openapi_3_1_json() {
    let app = spawn_app(Stack::sqlite());
    let response = app.get("/openapi.json");
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.header("x-request-id").is_some());
    let document: Value = serde_json::from_str(&response.text).expect("JSON");
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1"), "{version}");
    assert_eq!(document["info"]["title"], "multidb");
}

/// `src` and `href` attribute values of an HTML page.
fn references(html: &str) -> Vec<&str> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| html.split(attribute).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

#[test]
fn the_documentation_page_is_served_by_the_service_alone() {
    let app = spawn_app(Stack::sqlite());
    let redirect = app.get("/docs");
    assert_eq!(redirect.status, 308, "{}", redirect.text);
    assert_eq!(redirect.header("location"), Some("/docs/"));

    let page = app.get("/docs/");
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.header("content-type"), Some("text/html"));
    let assets = references(&page.text);
    assert!(
        assets.len() >= 3,
        "a page with its scripts and styles: {}",
        page.text
    );
    for asset in assets {
        assert!(
            !asset.contains(':') && !asset.starts_with('/'),
            "not a file of the page: {asset}"
        );
        let name = asset.trim_start_matches("./");
        let file = app.get(&format!("/docs/{name}"));
        assert_eq!(file.status, 200, "{name}: {}", file.text);
    }

    let initializer = app.get("/docs/swagger-initializer.js").text;
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    // Swagger UI would otherwise send the document to swagger.io's validator.
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );

    app.get("/docs/no-such-file.js")
        .assert_error(404, "not_found");
    assert!(no_such_route(&app.get("/docs/a/b")));
}

/// The schema a content refers to, by name.
fn schema_name(content: &Value) -> Option<&str> {
    content["schema"]["$ref"]
        .as_str()
        .map(|reference| reference.trim_start_matches("#/components/schemas/"))
}

/// The API page shows and sends the document's examples: every parameter has one, and a
/// description; every body of a named schema has one; every error response has one per
/// code it carries, with that code (the 401's is `unauthorized`, not the first code of
/// the enum); the page's own routes are not operations.
#[test]
fn every_parameter_body_and_error_has_an_example() {
    let app = spawn_app(Stack::sqlite());
    let document = document(&app);
    let mut bodies = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an item") {
            let what = format!("{method} {path}");
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = &parameter["name"];
                assert!(
                    !parameter["example"].is_null(),
                    "{what}: {name} has no example"
                );
                let description = parameter["description"].as_str().unwrap_or("");
                assert!(!description.is_empty(), "{what}: {name} has no description");
            }
            let mut contents: Vec<&Value> = operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flat_map(|content| content.values())
                .collect();
            for response in operation["responses"]
                .as_object()
                .expect("responses")
                .values()
            {
                contents.extend(
                    response["content"]
                        .as_object()
                        .into_iter()
                        .flat_map(|c| c.values()),
                );
            }
            for content in contents {
                if let Some(name) = schema_name(content) {
                    assert!(
                        !content["example"].is_null(),
                        "{what}: a {name} without example"
                    );
                    bodies += 1;
                }
            }
        }
    }
    assert!(bodies >= 14, "{bodies} bodies");
    for (name, response) in document["components"]["responses"]
        .as_object()
        .expect("responses")
    {
        let content = &response["content"]["application/json"];
        let codes: Vec<&str> = content["schema"]["allOf"][1]["properties"]["code"]["enum"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|code| code.as_str().unwrap())
            .collect();
        let examples = content["examples"].as_object().expect("examples");
        assert_eq!(examples.len(), codes.len(), "{name}");
        for code in codes {
            let example = &examples[code]["value"];
            assert_eq!(example["code"], code, "{name}");
            assert!(
                example["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{name}"
            );
        }
    }
    let unauthorized = &document["components"]["responses"]["Unauthorized"]["content"]
        ["application/json"]["examples"]["unauthorized"]["value"];
    assert_eq!(unauthorized["code"], "unauthorized");
}

/// `value` with every string, number and null replaced by its type: two bodies of the
/// same shape compare equal.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => Value::Null,
    }
}

/// The examples pass the service's own validation: on a fresh service, "Try it out" with
/// each operation's examples succeeds, and what it answers has the shape the example of
/// the answer shows; an error the service words alike every time is answered as its
/// example says, word for word.
#[test]
fn the_examples_are_accepted_and_answered_as_shown() {
    let app = spawn_app_with(Stack::sqlite(), |_| {});
    let document = document(&app);
    let paths = &document["paths"];
    let example_of = |path: &str, method: &str, status: &str| {
        paths[path][method]["responses"][status]["content"]["application/json"]["example"].clone()
    };
    let body_of = |path: &str, method: &str| {
        let example = &paths[path][method]["requestBody"]["content"]["application/json"]["example"];
        Some(("application/json", example.to_string().into_bytes()))
    };
    let key = |path: &str| {
        paths[path]["post"]["parameters"][0]["example"]
            .as_str()
            .expect("an Idempotency-Key example")
            .to_owned()
    };
    let (user_key, order_key) = (key("/users"), key("/orders"));
    assert_ne!(user_key, order_key, "one key for two requests");
    // The order's example names user 1: the first user.
    for (path, method, status) in [
        ("/users", "post", "201"),
        ("/orders", "post", "201"),
        ("/users/{id}", "patch", "200"),
    ] {
        let concrete = path.replace("{id}", "1");
        let headers: &[(&str, &str)] = match (path, method) {
            ("/users", "post") => &[("Idempotency-Key", &user_key)],
            ("/orders", "post") => &[("Idempotency-Key", &order_key)],
            _ => &[],
        };
        let response = app.request_with(
            &method.to_ascii_uppercase(),
            &concrete,
            headers,
            body_of(path, method),
        );
        assert_eq!(
            response.status.to_string(),
            status,
            "{method} {path}: {}",
            response.text
        );
        assert_eq!(
            shape(&response.body),
            shape(&example_of(path, method, status)),
            "{method} {path}"
        );
    }
    // Every read, with its parameters' examples.
    for (path, item) in paths.as_object().unwrap() {
        let Some(operation) = item.get("get") else {
            continue;
        };
        if path == "/metrics" || path == "/openapi.json" {
            continue;
        }
        let mut concrete = path.clone();
        let mut query = Vec::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            let value = match &parameter["example"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            match parameter["in"].as_str() {
                Some("path") => concrete = concrete.replace(&format!("{{{name}}}"), &value),
                Some("query") if name != "after_id" => query.push(format!("{name}={value}")),
                _ => {}
            }
        }
        if !query.is_empty() {
            concrete = format!("{concrete}?{}", query.join("&"));
        }
        let response = app.get(&concrete);
        assert_eq!(response.status, 200, "GET {concrete}: {}", response.text);
        assert_eq!(
            shape(&response.body),
            shape(&example_of(path, "get", "200")),
            "GET {concrete}"
        );
    }
    // Errors worded the same every time, as their examples show them.
    let error_example = |response: &str, code: &str| {
        document["components"]["responses"][response]["content"]["application/json"]["examples"]
            [code]["value"]
            .clone()
    };
    let refused = app.request("POST", "/users", Some(("text/plain", b"x".to_vec())));
    assert_eq!(
        refused.body,
        error_example("UnsupportedMediaType", "unsupported_media_type")
    );
    let reused = app.request_with(
        "POST",
        "/orders",
        &[("Idempotency-Key", &order_key)],
        Some((
            "application/json",
            json!({"user_id": 1, "item": "another", "quantity": 1, "amount_cents": 1})
                .to_string()
                .into_bytes(),
        )),
    );
    assert_eq!(
        reused.body,
        error_example("InvalidOrder", "idempotency_key_reused")
    );
    let unknown = app.post(
        "/orders",
        json!({"user_id": 42, "item": "x", "quantity": 1, "amount_cents": 1}),
    );
    assert_eq!(unknown.body, error_example("InvalidOrder", "unknown_user"));
    let keyed = spawn_app_with(Stack::sqlite(), |settings| settings.auth = Auth::Required);
    assert_eq!(
        keyed.get("/users").body,
        error_example("Unauthorized", "unauthorized")
    );
}
