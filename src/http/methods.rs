//! HEAD and OPTIONS on every route, as RFC 9110 asks of a server (§9.3.2, §9.3.7).

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::AppError;

/// Routes a HEAD as the GET of the same path: wherever GET is answered, HEAD gets the
/// same status and headers. The body is not sent: actix's HTTP/1 and HTTP/2 dispatchers
/// note a HEAD request when they read it, before any service runs, and send no body to
/// it. Called by the request log's middleware once it has noted the method sent, rather
/// than from a middleware of its own: one layer fewer on every request.
pub(super) fn route_head_as_get(request: &mut ServiceRequest) {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
}

/// What a route answers to a method none of its handlers takes: OPTIONS gets 204 with
/// `Allow`; anything else 405 with `Allow`. `allow` lists every method of the route,
/// HEAD and OPTIONS included.
pub(super) async fn other_method(
    request: HttpRequest,
    allow: &'static str,
) -> Result<HttpResponse, AppError> {
    if request.method() == Method::OPTIONS {
        return Ok(HttpResponse::NoContent()
            .insert_header((header::ALLOW, HeaderValue::from_static(allow)))
            .finish());
    }
    Err(AppError::MethodNotAllowed { allow })
}
