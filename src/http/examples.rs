//! Realistic examples for the API page (`/docs`): every body, parameter and error of the
//! OpenAPI document gets one, so that "Try it out" sends something a person would and
//! the page shows what the service answers. Without them Swagger UI makes examples up
//! from the validation patterns (an email of punctuation, a name of spaces). The request
//! examples pass the service's own validation and each error example carries its real
//! code and the service's wording (tests/api/openapi.rs sends and compares them).

use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder};
use utoipa::openapi::{Content, OpenApi as Document, RefOr};
use utoipa::Modify;

use super::error::ErrorCode;
use crate::domain::{ParseId, UserId};
use crate::error::AppError;

/// An `Idempotency-Key` for each operation that takes one: a UUID, as usual. One per
/// operation, so that trying both on the page does not send one key for two requests
/// (422 `idempotency_key_reused`); trying one twice shows a replay.
fn idempotency_key(operation: &str) -> &'static str {
    match operation {
        "create_user" => "5d3c1e0a-7b2f-4e6d-9a8c-1f2e3d4c5b6a",
        _ => "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
    }
}

/// The example of a schema of the document, by its name there.
fn of_schema(name: &str) -> Option<Value> {
    let user = json!({
        "id": 1,
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "created_at": "2026-12-06T09:30:00Z",
    });
    let order = json!({
        "id": 1,
        "user_id": 1,
        "item": "Notes on the Analytical Engine",
        "quantity": 2,
        "amount_cents": 4999,
        "created_at": "2026-12-06T09:31:00Z",
    });
    Some(match name {
        "CreateUser" => json!({"email": "ada@example.com", "name": "Ada Lovelace"}),
        "PatchUser" => json!({"name": "Ada King, Countess of Lovelace"}),
        "CreateOrder" => json!({
            "user_id": 1,
            "item": "Notes on the Analytical Engine",
            "quantity": 2,
            "amount_cents": 4999,
        }),
        "User" => user,
        "Order" => order,
        "Page_User" => json!({"items": [user], "next_after_id": null}),
        "Page_Order" => json!({"items": [order], "next_after_id": null}),
        "UserSummary" => json!({
            "user": user,
            "orders": [order],
            "order_count": 1,
            "total_cents": 4999,
        }),
        "Overview" => json!({"data1": [user], "data2": [order]}),
        "Health" => json!({"status": "ok", "databases": {"db1": "ok", "db2": "ok"}}),
        _ => return None,
    })
}

/// The example of a parameter, by its name and its operation's id.
fn of_parameter(name: &str, operation: &str) -> Option<Value> {
    Some(match name {
        "id" | "user_id" => json!(1),
        "limit" => json!(20),
        "after_id" => json!(1),
        "Idempotency-Key" => json!(idempotency_key(operation)),
        _ => return None,
    })
}

/// An error of each code as the service words it.
pub(super) fn error_of(code: ErrorCode) -> AppError {
    match code {
        ErrorCode::BadRequest => {
            AppError::BadRequest("invalid JSON body: missing field `name` at line 1 column 29".into())
        }
        ErrorCode::NotFound => AppError::NotFound("user 42 not found".into()),
        ErrorCode::MethodNotAllowed => AppError::MethodNotAllowed {
            allow: "GET, HEAD, PATCH, DELETE, OPTIONS",
        },
        ErrorCode::Conflict => AppError::Conflict("the email is already taken".into()),
        ErrorCode::PayloadTooLarge => AppError::PayloadTooLarge {
            limit: super::MAX_BODY_BYTES,
        },
        ErrorCode::UnsupportedMediaType => AppError::UnsupportedMediaType,
        ErrorCode::ValidationFailed => AppError::Validation(
            "email must contain exactly one @ with text on both sides; quantity must be from 1 to 10000, got 0".into(),
        ),
        ErrorCode::UnknownUser => {
            UserId::new(42).map_or_else(|e| AppError::Internal(e.into()), AppError::UnknownUser)
        }
        ErrorCode::Unauthorized => AppError::Unauthorized(super::auth::MISSING),
        ErrorCode::Forbidden => AppError::Forbidden {
            scope: "read",
            method: "POST".into(),
        },
        ErrorCode::IdempotencyKeyInUse => AppError::IdempotencyKeyInUse,
        ErrorCode::IdempotencyKeyReused => AppError::IdempotencyKeyReused,
        ErrorCode::DatabaseUnavailable => AppError::DeadlineExceeded(crate::error::DeadlineExceeded {
            limit: std::time::Duration::from_secs(10),
        }),
        ErrorCode::Internal => AppError::Internal("hidden".into()),
    }
}

/// `{"error": …, "code": …}` for `code`, as the service answers it.
pub(super) fn error_body(code: ErrorCode) -> Value {
    json!({"error": error_of(code).to_string(), "code": code})
}

/// An example of each error code a response carries, named by the code.
pub(super) fn add_error_examples(content: &mut Content, codes: &[ErrorCode]) {
    for &code in codes {
        let name = serde_json::to_value(code)
            .ok()
            .and_then(|name| name.as_str().map(str::to_owned))
            .unwrap_or_default();
        let example = ExampleBuilder::new()
            .summary(name.clone())
            .value(Some(error_body(code)))
            .build();
        content.examples.insert(name, RefOr::T(example));
    }
}

/// Puts the examples into the document: on every named schema, every parameter, and
/// every request and response body whose schema is named.
pub struct Examples;

impl Modify for Examples {
    fn modify(&self, document: &mut Document) {
        if let Some(components) = document.components.as_mut() {
            for (name, schema) in components.schemas.iter_mut() {
                if let (Some(example), RefOr::T(utoipa::openapi::Schema::Object(object))) =
                    (of_schema(name), schema)
                {
                    object.examples = vec![example];
                }
            }
        }
        for item in document.paths.paths.values_mut() {
            for operation in super::openapi::operations(item) {
                add_to_operation(operation);
            }
        }
    }
}

fn add_to_operation(operation: &mut Operation) {
    let id = operation.operation_id.clone().unwrap_or_default();
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter {
            let mut builder = ParameterBuilder::from(parameter.clone());
            if let Some(example) = of_parameter(&parameter.name, &id) {
                builder = builder.example(Some(example));
            }
            // utoipa leaves the description of a parameter whose schema is built by a
            // function (`schema_with`) on the schema, where Swagger UI does not show it.
            if parameter.description.is_none() {
                if let Some(RefOr::T(utoipa::openapi::Schema::Object(schema))) = &parameter.schema {
                    builder = builder.description(schema.description.clone());
                }
            }
            *parameter = builder.build();
        }
    }
    if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
        for content in body.content.values_mut() {
            add_to_content(content);
        }
    }
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            for content in response.content.values_mut() {
                add_to_content(content);
            }
        }
    }
}

fn add_to_content(content: &mut RefOr<Content>) {
    let RefOr::T(content) = content else {
        return;
    };
    let named = match &content.schema {
        Some(RefOr::Ref(reference)) => reference.ref_location.rsplit('/').next(),
        _ => None,
    };
    if let Some(example) = named.and_then(of_schema) {
        content.example = Some(example);
    }
}
