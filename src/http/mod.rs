//! The HTTP edge: routes, extractors, request ids and logging, and the one mapping of
//! [`AppError`](crate::error::AppError) to responses. Handlers only translate.

mod auth;
mod bodies;
mod deadline;
mod docs;
mod error;
mod extract;
mod health;
mod idempotency;
mod metrics;
mod openapi;
mod orders;
mod overview;
mod request_log;
mod responses;
mod users;

pub use auth::Authenticator;
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
    /// The methods `handlers` adds, for the `Allow` header of its 405 answers (the
    /// OpenAPI test checks the two agree).
    allow: &'static str,
    handlers: Methods,
    /// Answered without an API key even when `AUTH=required`: the operations endpoints
    /// and `/health` only. Every other route is protected.
    public: bool,
}

/// Every route the service serves. Routes are registered from this table alone, so it is
/// the list of what is served that the OpenAPI document is tested against
/// (tests/api/openapi.rs); actix cannot list the routes of an app.
const ROUTES: &[Route] = &[
    Route {
        template: "/health",
        allow: "GET",
        handlers: |r| r.get(health::health),
        public: true,
    },
    Route {
        template: "/metrics",
        allow: "GET",
        handlers: |r| r.get(metrics::metrics),
        public: true,
    },
    Route {
        template: "/overview",
        allow: "GET",
        handlers: |r| r.get(overview::overview),
        public: false,
    },
    Route {
        template: "/users",
        allow: "GET, POST",
        handlers: |r| r.get(users::list).post(users::create),
        public: false,
    },
    Route {
        template: "/users/{id}",
        allow: "GET, PATCH, DELETE",
        handlers: |r| r.get(users::get).patch(users::update).delete(users::delete),
        public: false,
    },
    Route {
        template: "/users/{id}/summary",
        allow: "GET",
        handlers: |r| r.get(users::summary),
        public: false,
    },
    Route {
        template: "/orders",
        allow: "GET, POST",
        handlers: |r| r.get(orders::list).post(orders::create),
        public: false,
    },
    Route {
        template: "/orders/{id}",
        allow: "GET, DELETE",
        handlers: |r| r.get(orders::get).delete(orders::delete),
        public: false,
    },
    Route {
        template: "/openapi.json",
        allow: "GET",
        handlers: |r| r.get(docs::openapi_json),
        public: true,
    },
    Route {
        template: "/docs",
        allow: "GET",
        handlers: |r| r.get(docs::redirect),
        public: true,
    },
    Route {
        template: "/docs/",
        allow: "GET",
        handlers: |r| r.get(docs::index),
        public: true,
    },
    Route {
        template: "/docs/{file}",
        allow: "GET",
        handlers: |r| r.get(docs::file),
        public: true,
    },
];

/// The template of every route served, as registered.
pub fn route_templates() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().map(|route| route.template)
}

/// Registers every route of the API with its extractor configuration. A method a route
/// does not take answers 405 with `Allow`, a path no route matches 404, both as JSON
/// errors. Routing tells the request's log line and metrics which template matched (see
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
                .default_service(web::to(move || method_not_allowed(allow))),
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

async fn method_not_allowed(allow: &'static str) -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed { allow })
}

async fn route_not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("no such route".into()))
}
