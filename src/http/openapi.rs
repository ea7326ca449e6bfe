//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated from the
//! handlers' `#[utoipa::path]` annotations and the types they exchange, so that it cannot
//! drift from them. Its paths and methods are tested against the route table
//! ([`super::ROUTES`]) in both directions (tests/api/openapi.rs).

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, OpenApi as Document, RefOr, Response, ResponseBuilder,
};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse};

use super::error::{ErrorBody, ErrorCode};
use super::request_log::MAX_REQUEST_ID_BYTES;
use super::MAX_BODY_BYTES;
use crate::domain::{OrderId, UserId};

#[derive(OpenApi)]
#[openapi(
    info(description = "One REST API over two databases: users in db1, their orders in db2, \
        kept consistent with each other.\n\n\
        Every error is JSON: `{\"error\": \"<message>\", \"code\": \"<code>\"}`. A path that \
        matches no route answers `404` (`NotFound`, code `not_found`); a method a path does \
        not list answers `405` (`MethodNotAllowed`, code `method_not_allowed`). Every \
        response carries `X-Request-Id`, and a request may give its own.\n\n\
        Request bodies are JSON objects sent as exactly `application/json` (`text/json` and \
        `+json` types are refused with 415)."),
    paths(
        super::health::health,
        super::overview::overview,
        super::users::list,
        super::users::create,
        super::users::get,
        super::users::update,
        super::users::delete,
        super::users::summary,
        super::orders::list,
        super::orders::create,
        super::orders::get,
        super::orders::delete,
        super::docs::openapi_json,
        super::docs::redirect,
        super::docs::index,
        super::docs::file,
        super::metrics::metrics,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            NotFound,
            MethodNotAllowed,
            Conflict,
            UserConflict,
            KeyInUse,
            PayloadTooLarge,
            UnsupportedMediaType,
            Invalid,
            InvalidUser,
            InvalidOrder,
            Unavailable,
            Internal,
            Unauthorized,
            Forbidden,
        )
    ),
    modifiers(&RequestIds, &Authentication),
    tags(
        (name = "users", description = "Users, in db1"),
        (name = "orders", description = "Orders, in db2, each of an existing user"),
        (name = "overview", description = "Reads of both databases"),
        (name = "operations", description = "Health, this document, its page and metrics"),
    ),
)]
struct ApiDoc;

/// The document as served: serialized once, at start-up.
pub(super) fn json() -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ApiDoc::openapi())
}

/// `{id}` of the `/users/{id}…` paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Documents the parameter only: handlers read it as text, to word the 400.
pub(super) struct UserPath {
    /// The user's id.
    id: UserId,
}

/// The `Idempotency-Key` of the `POST`s that create (README, "Safe retries").
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Documents the header only: `http::idempotency` reads it.
pub(super) struct IdempotencyKeyHeader {
    /// Makes a retry safe: for `IDEMPOTENCY_TTL_HOURS` (24 by default), a request with the
    /// same key from the same API key gets the first answer again, byte for byte, with
    /// `Idempotent-Replayed: true`, if it is the same request (method, path, JSON body),
    /// else 422 `idempotency_key_reused`; while the first is in flight it waits for its
    /// answer, or gets 409 `idempotency_key_in_use` (both databases on PostgreSQL) or 503
    /// `database_unavailable` (a database on SQLite, where writes take turns). Only
    /// successes are stored.
    #[param(rename = "Idempotency-Key", schema_with = idempotency_key_schema)]
    idempotency_key: Option<String>,
}

fn idempotency_key_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(super::idempotency::MAX_KEY_LENGTH))
        .pattern(Some("^[!-~]+$"))
}

/// `{id}` of `/orders/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Documents the parameter only: handlers read it as text, to word the 400.
pub(super) struct OrderPath {
    /// The order's id.
    id: OrderId,
}

const REQUEST_ID: &str = "X-Request-Id";

/// `X-Request-Id` as every response carries it: the request's when sane, else a new UUID.
fn request_id_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_REQUEST_ID_BYTES))
        .pattern(Some("^[!-~]+$"))
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
    let response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(schema)).build(),
    );
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

/// `X-Request-Id` on every response, as `request_log` answers every request: declared
/// once in the components and referred to everywhere.
struct RequestIds;

impl Modify for RequestIds {
    fn modify(&self, document: &mut Document) {
        // Only as a response header: a client may send its own (the description says
        // so), but declared as a request parameter, schemathesis's inferred links fill it
        // with numbers its HTTP client then refuses to send.
        let components = document.components.get_or_insert_with(Components::new);
        let header = HeaderBuilder::new()
            .schema(Some(request_id_schema()))
            .description(Some(
                "The request's own id if it gave a sane one, else a new UUID",
            ));
        components
            .headers
            .insert(REQUEST_ID.into(), header.build().into());

        let header = || RefOr::Ref(Ref::new(format!("#/components/headers/{REQUEST_ID}")));
        let responses = components.responses.values_mut();
        let mut every_response: Vec<&mut RefOr<Response>> = responses.collect();
        for item in document.paths.paths.values_mut() {
            for operation in operations(item) {
                every_response.extend(operation.responses.responses.values_mut());
            }
        }
        for response in every_response {
            // A reference is to one of the components, which get the header themselves.
            if let RefOr::T(response) = response {
                response.headers.insert(REQUEST_ID.into(), header());
            }
        }
    }
}

/// The API-key scheme, required by every operation of a route that is not public (the
/// route table says which are), with its 401, and 403 for methods other than `GET`. The
/// service requires keys when `AUTH=required` (the default off loopback).
struct Authentication;

const BEARER: &str = "api_key";

impl Modify for Authentication {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Components::new);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("mdb_<id>_<secret>")
                    .description(Some(
                        "An API key made with `multidb keys create --scope read|write`. \
                         Needed when the service runs with `AUTH=required` (the default \
                         unless it listens on a loopback address). A `read` key may use \
                         `GET`; a `write` key every method.",
                    ))
                    .build(),
            ),
        );
        let public: Vec<&str> = super::public_routes().collect();
        for (path, item) in document.paths.paths.iter_mut() {
            if public.contains(&path.as_str()) {
                continue;
            }
            let reads = item.get.iter_mut().map(|operation| (operation, false));
            let writes = [
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            .map(|operation| (operation, true));
            for (operation, writes) in reads.chain(writes) {
                operation
                    .security
                    .get_or_insert_with(Vec::new)
                    .push(SecurityRequirement::new(BEARER, Vec::<String>::new()));
                let responses = &mut operation.responses.responses;
                responses.insert(
                    "401".into(),
                    RefOr::Ref(Ref::from_response_name("Unauthorized")),
                );
                if writes {
                    responses.insert(
                        "403".into(),
                        RefOr::Ref(Ref::from_response_name("Forbidden")),
                    );
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::db::DbError;
    use crate::domain::ParseId;
    use crate::error::AppError;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    /// One error of each kind. The match has no wildcard, so that a new kind of error
    /// fails to compile here, where its sample belongs.
    fn one_of_each() -> Vec<AppError> {
        let all = vec![
            AppError::BadRequest("x".into()),
            AppError::NotFound("x".into()),
            AppError::MethodNotAllowed { allow: "GET" },
            AppError::Conflict("x".into()),
            AppError::PayloadTooLarge { limit: 1 },
            AppError::UnsupportedMediaType,
            AppError::Validation("x".into()),
            AppError::UnknownUser(UserId::new(1).unwrap()),
            AppError::Unavailable(DbError::Unavailable {
                database: "db1",
                cause: "x".into(),
            }),
            AppError::Internal("x".into()),
            AppError::Unauthorized("x"),
            AppError::Forbidden {
                scope: "read",
                method: "POST".into(),
            },
            AppError::IdempotencyKeyInUse,
            AppError::IdempotencyKeyReused,
        ];
        for error in &all {
            match error {
                AppError::BadRequest(_)
                | AppError::NotFound(_)
                | AppError::MethodNotAllowed { .. }
                | AppError::Conflict(_)
                | AppError::PayloadTooLarge { .. }
                | AppError::UnsupportedMediaType
                | AppError::Validation(_)
                | AppError::UnknownUser(_)
                | AppError::Unavailable(_)
                | AppError::Internal(_)
                | AppError::Unauthorized(_)
                | AppError::Forbidden { .. }
                | AppError::IdempotencyKeyInUse
                | AppError::IdempotencyKeyReused => {}
            }
        }
        all
    }

    /// The codes a response allows, following a reference to the components.
    fn codes<'d>(document: &'d Value, response: &'d Value) -> Vec<&'d Value> {
        let response = match response["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/responses/");
                &document["components"]["responses"][name]
            }
            None => response,
        };
        let schemas = response["content"]["application/json"]["schema"]["allOf"].as_array();
        schemas
            .into_iter()
            .flatten()
            .filter_map(|schema| schema["properties"]["code"]["enum"].as_array())
            .flatten()
            .collect()
    }

    /// Every response of the document at `status`, and the 405 every documented path
    /// answers to the methods it does not list.
    fn responses_at<'d>(document: &'d Value, status: &str) -> Vec<&'d Value> {
        let operations = document["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .filter_map(Value::as_object)
            .flat_map(|item| item.values());
        let mut responses: Vec<&Value> = operations
            .filter_map(|operation| operation["responses"].get(status))
            .collect();
        if status == "405" {
            responses.push(&document["components"]["responses"]["MethodNotAllowed"]);
        }
        responses
    }

    #[test]
    fn every_error_the_service_answers_is_documented_with_its_status() {
        let document = document();
        let enumerated = document["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap();
        for error in one_of_each() {
            let (status, code) = error.status_and_code();
            let code = serde_json::to_value(code).unwrap();
            assert!(enumerated.contains(&code), "{code} not in {enumerated:?}");
            let documented = responses_at(&document, status.as_str())
                .into_iter()
                .any(|response| codes(&document, response).contains(&&code));
            assert!(documented, "no {status} response documents {code}");
        }
    }

    #[test]
    fn stated_limits_are_the_services() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        let orders = &schemas["UserSummary"]["properties"]["orders"];
        assert_eq!(orders["maxItems"], crate::orders::SUMMARY_ORDERS);
        for page in ["Page_User", "Page_Order"] {
            let required = schemas[page]["required"].as_array().unwrap();
            assert!(required.contains(&"next_after_id".into()), "{page}");
        }
    }
}
