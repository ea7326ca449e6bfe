//! One structured log line and the metrics of every request, and the request id that
//! ties the line to everything logged on the request's behalf (see
//! [`crate::request_scope`]).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::guard::{Guard, GuardContext};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

use crate::db::DbError;
use crate::error::AppError;
use crate::request_scope::{self, Request};
use crate::telemetry::{RequestMetrics, UNMATCHED};

/// A guard on every resource that never refuses: routing checks it on the resource whose
/// path matched, and it notes the resource's template in the request's scope, for the
/// log line and the metrics. (`HttpRequest::match_pattern` would match the path against
/// every route again: some 10,000 instructions per request, measured with callgrind; and
/// the scope outlives a request cut short by its deadline.)
pub(super) struct Matched(pub &'static str);

impl Guard for Matched {
    fn check(&self, _: &GuardContext<'_>) -> bool {
        request_scope::matched(self.0);
        true
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `X-Request-Id` kept from a request.
pub(super) const MAX_REQUEST_ID_BYTES: usize = 128;

/// The id of the request being served: the client's `X-Request-Id` when it is sane,
/// otherwise a fresh UUID. Echoed back in the response.
fn request_id(request: &ServiceRequest) -> Arc<str> {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=MAX_REQUEST_ID_BYTES).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(Arc::from)
        .unwrap_or_else(|| {
            let mut text = uuid::Uuid::encode_buffer();
            Arc::from(&*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text))
        })
}

/// Why a request was not answered with success, for its log line.
enum Failure {
    /// A server error: the database concerned, if any, and the cause with its chain.
    Server(Option<&'static str>, String),
    /// A client error: the message the client was given.
    Refused(String),
}

/// What went wrong with a request whose answer carries `error`.
fn failure(error: &actix_web::Error) -> Option<Failure> {
    let app_error = error.as_error::<AppError>();
    let status = error.as_response_error().status_code();
    match app_error.and_then(AppError::cause) {
        Some(cause) => {
            let database = cause.downcast_ref::<DbError>().and_then(DbError::database);
            Some(Failure::Server(database, crate::db::chain(cause)))
        }
        None if status.is_server_error() => Some(Failure::Server(None, error.to_string())),
        None if status.is_client_error() => Some(Failure::Refused(error.to_string())),
        None => None,
    }
}

pub async fn observe_requests(
    metrics: Rc<RequestMetrics>,
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&request);
    // The method sent, for the log and the metrics; then a HEAD goes on as a GET.
    let method = request.method().clone();
    super::methods::route_head_as_get(&mut request);
    let path = logged_path(request.path());
    let scope = Request::new(id);

    let outcome = request_scope::scope(scope.clone(), next.call(request)).await;
    let route = scope.route();
    let id = scope.id();
    let (status, failed) = match &outcome {
        Ok(response) => (
            response.status(),
            response.response().error().and_then(failure),
        ),
        // An error raised by a middleware (the request deadline) rather than a handler:
        // actix makes it the response.
        Err(error) => (error.as_response_error().status_code(), failure(error)),
    };
    let took = started.elapsed();
    metrics.record(&method, route, status.as_u16(), took);
    log_request(
        id,
        method.as_str(),
        route.unwrap_or(UNMATCHED),
        &path,
        status,
        milliseconds(took),
        failed,
    );

    let id = HeaderValue::from_str(id).ok();
    match outcome {
        Ok(mut response) => {
            if let Some(id) = id {
                response.headers_mut().insert(REQUEST_ID.clone(), id);
            }
            Ok(response)
        }
        // The request is gone with the service that dropped it: the error's own response,
        // with the id added, goes out as the error.
        Err(error) => {
            let mut response = error.error_response();
            if let Some(id) = id {
                response.headers_mut().insert(REQUEST_ID.clone(), id);
            }
            Err(InternalError::from_response(error.to_string(), response).into())
        }
    }
}

/// `request request_id=… method=… route=… path=… status=… duration_ms=…`, with `db` and
/// `cause` for a server error (at error level) and `reason` for a refusal: the message
/// the client got.
fn log_request(
    id: &str,
    method: &str,
    route: &str,
    path: &str,
    status: StatusCode,
    duration_ms: f64,
    failed: Option<Failure>,
) {
    let status = status.as_u16();
    match failed {
        Some(Failure::Server(Some(database), cause)) => log::error!(
            request_id = id, method, route, path, status, duration_ms, db = database, cause = cause.as_str();
            "request"
        ),
        Some(Failure::Server(None, cause)) => log::error!(
            request_id = id, method, route, path, status, duration_ms, cause = cause.as_str();
            "request"
        ),
        Some(Failure::Refused(reason)) => log::info!(
            request_id = id, method, route, path, status, duration_ms, reason = reason.as_str();
            "request"
        ),
        None => log::info!(
            request_id = id, method, route, path, status, duration_ms;
            "request"
        ),
    }
}

/// The longest path logged whole; a longer one is logged as its start and its length.
const MAX_LOGGED_PATH_BYTES: usize = 256;

/// The request's path for its log line: a client can send one of tens of kilobytes.
fn logged_path(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH_BYTES {
        return path.to_owned();
    }
    format!(
        "{}…({} bytes)",
        crate::domain::prefix(path, MAX_LOGGED_PATH_BYTES),
        path.len()
    )
}

/// To the microsecond, which is as far as a duration in a log line means anything.
fn milliseconds(took: std::time::Duration) -> f64 {
    f64::from(u32::try_from(took.as_micros()).unwrap_or(u32::MAX)) / 1000.0
}
