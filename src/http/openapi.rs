//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated from the
//! handlers' `#[utoipa::path]` annotations and the types they exchange, so that it cannot
//! drift from them. Its paths and methods are tested against the route table
//! ([`super::ROUTES`]) in both directions (tests/api/openapi.rs).

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, OpenApi as Document, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::examples::Examples;
use super::request_log::MAX_REQUEST_ID_BYTES;
use super::responses::{
    BadRequest, Conflict, Forbidden, Internal, Invalid, InvalidOrder, InvalidUser, KeyInUse,
    MethodNotAllowed, NotFound, PayloadTooLarge, Unauthorized, Unavailable, UnsupportedMediaType,
    UserConflict,
};

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
    modifiers(&RequestIds, &Authentication, &Examples),
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

const REQUEST_ID: &str = "X-Request-Id";

/// `X-Request-Id` as every response carries it: the request's when sane, else a new UUID.
fn request_id_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_REQUEST_ID_BYTES))
        .pattern(Some("^[!-~]+$"))
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

pub(super) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
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
    use crate::domain::{ParseId, UserId};
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
            AppError::DeadlineExceeded(crate::error::DeadlineExceeded {
                limit: std::time::Duration::from_secs(1),
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
                | AppError::DeadlineExceeded(_)
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
