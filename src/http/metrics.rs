use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::{web, HttpResponse};

use super::extract::NoQuery;
use crate::db::{Database, Pool};
use crate::db1::Db1;
use crate::db2::Db2;
use crate::telemetry::Metrics;

/// The exposition format's media type (Prometheus text format 0.0.4).
static EXPOSITION: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    description = "Request counts and durations by route template, pool gauges, pool waits \
        and timeouts, cross-database commit outcomes, recovery actions and writes in doubt \
        (README, \"Operations\"). Rendered from memory: never waits for a database.",
    responses(
        (
            status = 200,
            description = "The metrics, in the Prometheus text exposition format 0.0.4",
            content_type = "text/plain; version=0.0.4; charset=utf-8",
            body = String,
        ),
    ),
)]
/// `GET /metrics`: rendered from memory; the pools' gauges are read from their own
/// counters, so a scrape never waits for a database, even one that is down.
pub async fn metrics(
    _: NoQuery,
    metrics: web::Data<Metrics>,
    db1: web::Data<Pool<Db1>>,
    db2: web::Data<Pool<Db2>>,
) -> HttpResponse {
    let text = metrics.render(&[(Db1::NAME, db1.status()), (Db2::NAME, db2.status())]);
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, EXPOSITION.clone()))
        .body(text)
}
