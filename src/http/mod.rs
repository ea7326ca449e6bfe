//! The HTTP edge: routes, extractors, request ids and logging, and the one mapping of
//! [`AppError`](crate::error::AppError) to responses. Handlers only translate.

mod deadline;
mod error;
mod extract;
mod health;
mod metrics;
mod orders;
mod overview;
mod request_log;
mod users;

pub use deadline::answer_within;
pub use request_log::observe_requests;

use actix_web::{web, HttpResponse};

use crate::error::AppError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers every route of the API with its extractor configuration.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config())
        .service(
            web::resource("/health")
                .get(health::health)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/metrics")
                .get(metrics::metrics)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/overview")
                .get(overview::overview)
                .default_service(web::to(method_not_allowed)),
        )
        .configure(users::routes)
        .configure(orders::routes)
        .default_service(web::to(route_not_found));
}

async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}

async fn route_not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("no such route".into()))
}
