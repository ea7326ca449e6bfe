use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::NoQuery;
use crate::db::{self, Database, DbError, Pool};
use crate::db1::Db1;
use crate::db2::Db2;

/// The whole check answers within this, even when a database hangs: the probes run
/// concurrently and each gives up after it.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// `{"status":"ok","databases":{"db1":"ok","db2":"ok"}}`, or `degraded` with the failing
/// database `unavailable`.
#[derive(Serialize, ToSchema)]
#[schema(as = Health)]
pub(super) struct HealthBody {
    #[schema(inline)]
    status: Status,
    #[schema(inline)]
    databases: Databases,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Status {
    /// Both databases answered.
    Ok,
    /// At least one did not.
    Degraded,
}

#[derive(Serialize, ToSchema)]
struct Databases {
    #[schema(inline)]
    db1: Probe,
    #[schema(inline)]
    db2: Probe,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Probe {
    Ok,
    Unavailable,
}

impl From<bool> for Probe {
    fn from(ok: bool) -> Self {
        if ok {
            Probe::Ok
        } else {
            Probe::Unavailable
        }
    }
}

/// Whether both databases answer
///
/// Answers within 2 s even when a database hangs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "health",
    responses(
        (status = 200, description = "Both databases answer", body = HealthBody),
        (
            status = 503,
            description = "`degraded`: the database that did not answer is `unavailable`. \
                (With `REQUEST_TIMEOUT_MS` under the probes' 1.5 s, the request's deadline \
                can answer first, with the `Unavailable` error.)",
            body = HealthBody,
            headers(("Retry-After" = u32, description = "Seconds to wait: always 1")),
        ),
    ),
)]
pub(super) async fn health(
    _: NoQuery,
    db1: web::Data<Pool<Db1>>,
    db2: web::Data<Pool<Db2>>,
) -> HttpResponse {
    let (db1_ok, db2_ok) = futures_util::future::join(probe(&db1), probe(&db2)).await;
    let body = HealthBody {
        status: if db1_ok && db2_ok {
            Status::Ok
        } else {
            Status::Degraded
        },
        databases: Databases {
            db1: db1_ok.into(),
            db2: db2_ok.into(),
        },
    };
    if db1_ok && db2_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "1"))
            .json(body)
    }
}

async fn probe<D: Database>(pool: &Pool<D>) -> bool {
    let pool = pool.clone();
    let ping = db::blocking(move || pool.ping(PROBE_TIMEOUT));
    match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            let error: DbError = error;
            log::warn!("health: {} is unavailable: {error}", D::NAME);
            false
        }
        Err(_) => {
            log::warn!(
                "health: {} did not answer within {PROBE_TIMEOUT:?}",
                D::NAME
            );
            false
        }
    }
}
