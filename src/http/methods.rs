//! HEAD and OPTIONS on every route, as RFC 9110 asks of a server (§9.3.2, §9.3.7).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::AppError;

/// Routes a HEAD as the GET of the same path: wherever GET is answered, HEAD gets the
/// same status and headers. The body is not sent: actix's HTTP/1 and HTTP/2 dispatchers
/// note a HEAD request when they read it, before this runs, and send no body to it.
/// Runs inside the request log, which keeps the method the client sent.
pub async fn head_as_get(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    next.call(request).await
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
