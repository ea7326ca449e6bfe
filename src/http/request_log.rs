//! One log line per request, and a request id that ties it to the logged cause of an error.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;

use crate::error::AppError;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `X-Request-Id` kept from a request.
pub(super) const MAX_REQUEST_ID_BYTES: usize = 128;

/// The id of the request being served: the client's `X-Request-Id` when it is sane,
/// otherwise a fresh UUID. Echoed back in the response.
fn request_id(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=MAX_REQUEST_ID_BYTES).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The cause of a server error, with the request id; client errors are not logged.
fn log_error(id: &str, method: &Method, path: &str, error: &actix_web::Error) {
    match error.as_error::<AppError>().and_then(AppError::cause) {
        Some(cause) => log::error!(
            "request_id={id} {method} {path} failed: {}",
            crate::db::chain(cause)
        ),
        None if error.as_response_error().status_code().is_server_error() => {
            log::error!("request_id={id} {method} {path} failed: {error}")
        }
        None => {}
    }
}

pub async fn log_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let path = request.path().to_owned();

    let mut response = match next.call(request).await {
        Ok(response) => response,
        // An error raised by a middleware (the request deadline) rather than a handler:
        // actix makes it the response.
        Err(error) => {
            log_error(&id, &method, &path, &error);
            log::info!(
                "{method} {path} {} {:.3}ms request_id={id}",
                error.as_response_error().status_code().as_u16(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            return Err(error);
        }
    };

    let status = response.status();
    if let Some(error) = response.response().error() {
        log_error(&id, &method, &path, error);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    log::info!(
        "{method} {path} {} {:.3}ms request_id={id}",
        status.as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(response)
}
