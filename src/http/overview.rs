use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::bodies::{bodies, OrderBody, UserBody};
use super::responses::{BadRequest, Internal, Unavailable};
use crate::db::Coalescer;
use crate::domain::{schema, Limit};
use crate::error::AppError;
use crate::{orders, users, workflows};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct OverviewQuery {
    #[param(schema_with = schema::limit)]
    limit: Option<String>,
}

/// `data1` and `data2`: the names of the original two-database endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = Overview)]
pub(super) struct OverviewBody {
    /// The first `limit` users by id (db1).
    data1: Vec<UserBody>,
    /// The first `limit` orders by id (db2).
    data2: Vec<OrderBody>,
}

/// The first users and orders by id
///
/// The original two-database endpoint: one read of each database.
#[utoipa::path(
    get,
    path = "/overview",
    tag = "overview",
    operation_id = "overview",
    params(OverviewQuery),
    responses(
        (status = 200, description = "The first `limit` of each", body = OverviewBody),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn overview(
    first_users: web::Data<Coalescer<users::First>>,
    first_orders: web::Data<Coalescer<orders::First>>,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = Limit::parse(query.limit.as_deref()).map_err(AppError::BadRequest)?;
    let (users, orders) = workflows::overview(&first_users, &first_orders, limit).await?;
    Ok(HttpResponse::Ok().json(OverviewBody {
        data1: bodies(users),
        data2: bodies(orders),
    }))
}
