use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db::{self, Database, DbError, Pool};
use crate::orders::Db2;
use crate::users::Db1;

/// The whole check answers within this, even when a database hangs: the probes run
/// concurrently and each gives up after it.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

pub async fn health(db1: web::Data<Pool<Db1>>, db2: web::Data<Pool<Db2>>) -> HttpResponse {
    let (db1_ok, db2_ok) = futures_util::future::join(probe(&db1), probe(&db2)).await;
    let status = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": if db1_ok && db2_ok { "ok" } else { "degraded" },
        "databases": { "db1": status(db1_ok), "db2": status(db2_ok) },
    });
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
