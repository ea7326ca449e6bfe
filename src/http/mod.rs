//! The HTTP edge: routes, extractors, request ids and logging, and the one mapping of
//! [`AppError`](crate::error::AppError) to responses. Handlers only translate.

mod auth;
mod bodies;
mod cors;
mod deadline;
mod docs;
mod error;
mod examples;
mod extract;
mod health;
mod idempotency;
mod methods;
mod metrics;
mod openapi;
mod orders;
mod overview;
mod request_log;
mod responses;
mod users;

pub use auth::Authenticator;
pub use cors::{refusals_as_json as cors_refusals_as_json, AllowedOrigins};
pub use deadline::answer_within;
pub use docs::Docs;
pub use idempotency::Retention;
pub use request_log::observe_requests;

use std::sync::Arc;

use actix_web::{middleware, web, HttpResponse, Resource};

use crate::error::AppError;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Adds a route's handlers, by method, to its resource.
type Methods = fn(Resource) -> Resource;

/// A route the service serves.
struct Route {
    template: &'static str,
    /// The methods `handlers` adds, and HEAD wherever GET is (see
    /// `methods::route_head_as_get`) and OPTIONS, for the `Allow` header of OPTIONS and 405
    /// answers (the OpenAPI test checks them against the document and the answers).
    allow: &'static str,
    handlers: Methods,
    /// Answered without an API key even when `AUTH=required`: the operations endpoints
    /// and `/health` only. Every other route is protected.
    public: bool,
    /// An operation of the API, in the OpenAPI document; the documentation page's own
    /// routes are not.
    operation: bool,
}

/// Every route the service serves. Routes are registered from this table alone, so it is
/// the list of what is served that the OpenAPI document is tested against
/// (tests/api/openapi.rs); actix cannot list the routes of an app.
const ROUTES: &[Route] = &[
    Route {
        template: "/health",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(health::health),
        public: true,
        operation: true,
    },
    Route {
        template: "/metrics",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(metrics::metrics),
        public: true,
        operation: true,
    },
    Route {
        template: "/overview",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(overview::overview),
        public: false,
        operation: true,
    },
    Route {
        template: "/users",
        allow: "GET, HEAD, POST, OPTIONS",
        handlers: |r| r.get(users::list).post(users::create),
        public: false,
        operation: true,
    },
    Route {
        template: "/users/{id}",
        allow: "GET, HEAD, PATCH, DELETE, OPTIONS",
        handlers: |r| r.get(users::get).patch(users::update).delete(users::delete),
        public: false,
        operation: true,
    },
    Route {
        template: "/users/{id}/summary",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(users::summary),
        public: false,
        operation: true,
    },
    Route {
        template: "/orders",
        allow: "GET, HEAD, POST, OPTIONS",
        handlers: |r| r.get(orders::list).post(orders::create),
        public: false,
        operation: true,
    },
    Route {
        template: "/orders/{id}",
        allow: "GET, HEAD, DELETE, OPTIONS",
        handlers: |r| r.get(orders::get).delete(orders::delete),
        public: false,
        operation: true,
    },
    Route {
        template: "/openapi.json",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(docs::openapi_json),
        public: true,
        operation: true,
    },
    Route {
        template: "/docs",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(docs::redirect),
        public: true,
        operation: false,
    },
    Route {
        template: "/docs/",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(docs::index),
        public: true,
        operation: false,
    },
    Route {
        template: "/docs/{file}",
        allow: "GET, HEAD, OPTIONS",
        handlers: |r| r.get(docs::file),
        public: true,
        operation: false,
    },
];

/// The template of every route served, as registered.
pub fn route_templates() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().map(|route| route.template)
}

/// The templates of the API's operations: every route but the documentation page's.
pub fn operation_templates() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .filter(|route| route.operation)
        .map(|route| route.template)
}

/// The `Allow` header of a route: its methods, with HEAD wherever GET and OPTIONS.
pub fn allowed_methods(template: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|route| route.template == template)
        .map(|route| route.allow)
}

/// Registers every route of the API with its extractor configuration. A method a route
/// does not take answers 405 with `Allow` (OPTIONS: 204 with `Allow`), a path no route
/// matches 404, both as JSON errors. Routing tells the request's log line and metrics which template matched (see
/// [`request_log::Matched`]). With `auth`, every route not marked public needs an API
/// key ([`auth::require_key`]). Needs the [`Docs`] as app data.
pub fn routes(config: &mut web::ServiceConfig, auth: Option<&Arc<Authenticator>>) {
    config
        .app_data(extract::json_config())
        .app_data(extract::query_config())
        .app_data(extract::path_config());
    for route in ROUTES {
        let allow = route.allow;
        let resource = (route.handlers)(
            web::resource(route.template)
                .guard(request_log::Matched(route.template))
                .default_service(web::to(move |request| {
                    methods::other_method(request, allow)
                })),
        );
        match auth {
            Some(auth) if !route.public => {
                let auth = auth.clone();
                config.service(resource.wrap(middleware::from_fn(move |request, next| {
                    auth::require_key(auth.clone(), request, next)
                })));
            }
            _ => {
                config.service(resource);
            }
        }
    }
    config.default_service(web::to(route_not_found));
}

/// The templates of the routes answered without an API key.
pub fn public_routes() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .filter(|route| route.public)
        .map(|route| route.template)
}

async fn route_not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("no such route".into()))
}
