//! The HTTP edge: routes, extractors, request ids and logging, and the one mapping of
//! [`AppError`](crate::error::AppError) to responses. Handlers only translate.

mod deadline;
mod docs;
mod error;
mod extract;
mod health;
mod metrics;
mod openapi;
mod orders;
mod overview;
mod request_log;
mod users;

pub use deadline::answer_within;
pub use docs::Docs;
pub use request_log::observe_requests;

use actix_web::{web, HttpResponse, Resource};

use crate::error::AppError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Adds a route's handlers, by method, to its resource.
type Methods = fn(Resource) -> Resource;

/// Every route the service serves: its template, and the methods of its resource. Routes
/// are registered from this table alone, so it is the list of what is served that the
/// OpenAPI document is tested against (tests/api/openapi.rs); actix cannot list the
/// routes of an app.
const ROUTES: [(&str, Methods); 12] = [
    ("/health", |r| r.get(health::health)),
    ("/metrics", |r| r.get(metrics::metrics)),
    ("/overview", |r| r.get(overview::overview)),
    ("/users", |r| r.get(users::list).post(users::create)),
    ("/users/{id}", |r| {
        r.get(users::get).patch(users::update).delete(users::delete)
    }),
    ("/users/{id}/summary", |r| r.get(users::summary)),
    ("/orders", |r| r.get(orders::list).post(orders::create)),
    ("/orders/{id}", |r| {
        r.get(orders::get).delete(orders::delete)
    }),
    ("/openapi.json", |r| r.get(docs::openapi_json)),
    ("/docs", |r| r.get(docs::redirect)),
    ("/docs/", |r| r.get(docs::index)),
    ("/docs/{file}", |r| r.get(docs::file)),
];

/// The template of every route served, as registered.
pub fn route_templates() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().map(|(template, _)| *template)
}

/// Registers every route of the API with its extractor configuration. A method a route
/// does not take answers 405, a path no route matches 404, both as JSON errors. Needs
/// the [`Docs`] as app data.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config());
    for (template, methods) in ROUTES {
        config
            .service(methods(web::resource(template)).default_service(web::to(method_not_allowed)));
    }
    config.default_service(web::to(route_not_found));
}

async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}

async fn route_not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("no such route".into()))
}
