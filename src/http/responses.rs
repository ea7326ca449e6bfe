//! The parameters and error responses the handlers' annotations name: shared by the
//! handlers and by the OpenAPI document (`openapi.rs`), which imports the handlers, so
//! they live apart from both.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Type};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, PartialSchema, ToResponse};

use super::error::ErrorCode;
use super::MAX_BODY_BYTES;
use crate::domain::{OrderId, UserId};

/// `{id}` of the `/users/{id}…` paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Documents the parameter only: handlers read it as text, to word the 400.
pub(super) struct UserPath {
    /// The user's id.
    id: UserId,
}

/// The `Idempotency-Key` of the `POST`s that create (README, "Safe retries"); its
/// description is its schema's (see `idempotency_key_schema`).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Documents the header only: `http::idempotency` reads it.
pub(super) struct IdempotencyKeyHeader {
    #[param(rename = "Idempotency-Key", schema_with = idempotency_key_schema)]
    idempotency_key: Option<String>,
}

fn idempotency_key_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(super::idempotency::MAX_KEY_LENGTH))
        .pattern(Some("^[!-~]+$"))
        .description(Some(
            "Makes a retry safe: for `IDEMPOTENCY_TTL_HOURS` (24 by default), a request with \
             the same key from the same API key gets the first answer again, byte for byte, \
             with `Idempotent-Replayed: true`, if it is the same request (method, path, JSON \
             body), else 422 `idempotency_key_reused`; while the first is in flight it waits \
             for its answer, or gets 409 `idempotency_key_in_use` (both databases on \
             PostgreSQL) or 503 `database_unavailable` (a database on SQLite, where writes \
             take turns). Only successes are stored. Printable ASCII; a new UUID per \
             request is the usual choice.",
        ))
}

/// `{id}` of `/orders/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Documents the parameter only: handlers read it as text, to word the 400.
pub(super) struct OrderPath {
    /// The order's id.
    id: OrderId,
}

/// An error response whose body's `code` is one of `codes`.
fn error_response(description: &str, codes: &[ErrorCode]) -> Response {
    let names = codes
        .iter()
        .filter_map(|code| serde_json::to_value(code).ok());
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("Error"))
        .item(
            ObjectBuilder::new().property(
                "code",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names)),
            ),
        );
    let mut content = ContentBuilder::new().schema(Some(schema)).build();
    super::examples::add_error_examples(&mut content, codes);
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    // As `AppError::error_response` answers them.
    let mut response = response;
    if codes.contains(&ErrorCode::Unauthorized) {
        let challenge = HeaderBuilder::new()
            .schema(Some(String::schema()))
            .description(Some("Always `Bearer`"));
        response = response.header("WWW-Authenticate", challenge.build());
    }
    if codes.contains(&ErrorCode::DatabaseUnavailable)
        || codes.contains(&ErrorCode::IdempotencyKeyInUse)
    {
        let retry_after = HeaderBuilder::new()
            .schema(Some(u32::schema()))
            .description(Some(
                "Seconds to wait: always 1 (with `database_unavailable` and \
                 `idempotency_key_in_use`)",
            ));
        response = response.header("Retry-After", retry_after.build());
    }
    if codes.contains(&ErrorCode::MethodNotAllowed) {
        let allow = HeaderBuilder::new()
            .schema(Some(String::schema()))
            .description(Some("The methods the path takes, e.g. `GET, POST`"));
        response = response.header("Allow", allow.build());
    }
    response.build()
}

/// Declares the reusable error responses, named as the path annotations refer to them,
/// each with the codes its status carries (see `AppError::status_and_code`).
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident: [$($code:ident),+] $description:expr;)*) => {
        $(
            $(#[$doc])*
            pub(super) struct $name;

            impl<'s> ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<Response>) {
                    let codes = [$(ErrorCode::$code),+];
                    (stringify!($name), error_response(&$description, &codes).into())
                }
            }
        )*
    };
}

error_responses! {
    BadRequest: [BadRequest]
        "Malformed JSON, wrong JSON types, missing or unknown fields, a bad path or query \
         parameter, or (on the `POST`s that create) a malformed or repeated \
         `Idempotency-Key`";
    NotFound: [NotFound] "No such resource, or no such route";
    MethodNotAllowed: [MethodNotAllowed] "The path does not take this method";
    Conflict: [Conflict] "The email is taken, in any case";
    /// A 409 of `POST /users`, which also takes an `Idempotency-Key`.
    UserConflict: [Conflict, IdempotencyKeyInUse]
        "`conflict`: the email is taken, in any case; `idempotency_key_in_use`: a request \
         with the same `Idempotency-Key` is still being processed (retry after `Retry-After`)";
    /// The 409 of `POST /orders`.
    KeyInUse: [IdempotencyKeyInUse]
        "A request with the same `Idempotency-Key` is still being processed: retry after \
         `Retry-After` for its answer";
    PayloadTooLarge: [PayloadTooLarge]
        format!("The body is over {} KiB", MAX_BODY_BYTES / 1024);
    UnsupportedMediaType: [UnsupportedMediaType]
        "The body is not sent as `Content-Type: application/json`";
    Invalid: [ValidationFailed]
        "Values outside the input rules: the message lists every broken rule";
    /// A 422 of `POST /users`, which also takes an `Idempotency-Key`.
    InvalidUser: [ValidationFailed, IdempotencyKeyReused]
        "`validation_failed`: values outside the input rules (the message lists every broken \
         rule); `idempotency_key_reused`: the `Idempotency-Key` was used for a different \
         method, path or body";
    /// A 422 of `POST /orders`, which also checks that the user exists.
    InvalidOrder: [ValidationFailed, UnknownUser, IdempotencyKeyReused]
        "`validation_failed`: values outside the input rules (the message lists every broken \
         rule); `unknown_user`: `user_id` is not a user; `idempotency_key_reused`: the \
         `Idempotency-Key` was used for a different method, path or body";
    Unavailable: [DatabaseUnavailable]
        "A database is down, its pool gave no connection in time, or the request was not \
         answered within `REQUEST_TIMEOUT_MS`: nothing was written, except that a write \
         which had reached its commit may still complete. Retry after `Retry-After`";
    Internal: [Internal] "Anything else; the request's writes are rolled back";
    Unauthorized: [Unauthorized]
        "Authentication is on and the bearer token is missing, malformed, unknown or \
         revoked";
    Forbidden: [Forbidden] "The API key's scope does not allow the method (a `read` key on a write)";
}
