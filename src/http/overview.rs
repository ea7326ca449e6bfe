use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::db::Pool;
use crate::domain::Limit;
use crate::error::AppError;
use crate::orders::{Db2, Order};
use crate::users::{Db1, User};
use crate::workflows;

#[derive(Deserialize)]
pub struct OverviewQuery {
    limit: Option<String>,
}

/// `data1` and `data2`: the names of the original two-database endpoint.
#[derive(Serialize)]
struct OverviewBody {
    data1: Vec<User>,
    data2: Vec<Order>,
}

pub async fn overview(
    db1: web::Data<Pool<Db1>>,
    db2: web::Data<Pool<Db2>>,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = Limit::parse(query.limit.as_deref()).map_err(AppError::BadRequest)?;
    let (users, orders) = workflows::overview(&db1, &db2, limit).await?;
    Ok(HttpResponse::Ok().json(OverviewBody {
        data1: users,
        data2: orders,
    }))
}
