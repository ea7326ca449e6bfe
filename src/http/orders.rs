use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::bodies::{page_of, OrderBody};
use super::extract::{integer, page, path_id, JsonBody, NoQuery, PageQuery, Violations};
use super::idempotency;
use super::responses::{
    BadRequest, IdempotencyKeyHeader, Internal, InvalidOrder, KeyInUse, NotFound, OrderPath,
    PayloadTooLarge, Unavailable, UnsupportedMediaType,
};
use crate::db::idempotency::Answer;
use crate::db::{self, CrossCommit, Pool};
use crate::db1::Db1;
use crate::db2::Db2;
use crate::domain::{schema, Cents, OrderId, Page, ParseId, Quantity, Text, UserId};
use crate::error::AppError;
use crate::orders::{self, NewOrder, Order, OrderFilter};
use crate::workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateOrder {
    /// A user that exists (in db1), else 422 `unknown_user`.
    #[schema(value_type = UserId)]
    #[serde(deserialize_with = "integer")]
    user_id: i64,
    #[schema(schema_with = schema::text_input)]
    item: String,
    #[schema(schema_with = schema::quantity)]
    #[serde(deserialize_with = "integer")]
    quantity: i64,
    #[schema(schema_with = schema::cents)]
    #[serde(deserialize_with = "integer")]
    amount_cents: i64,
}

impl CreateOrder {
    fn parse(&self) -> Result<NewOrder, AppError> {
        let mut violations = Violations::default();
        let user_id =
            violations.check(UserId::new(self.user_id).map_err(|e| format!("user_id {e}")));
        let item = violations.check(Text::parse("item", &self.item));
        let quantity = violations.check(Quantity::parse(self.quantity));
        let amount_cents = violations.check(Cents::parse(self.amount_cents));
        match (user_id, item, quantity, amount_cents) {
            (Some(user_id), Some(item), Some(quantity), Some(amount_cents)) => Ok(NewOrder {
                user_id,
                item,
                quantity,
                amount_cents,
            }),
            _ => Err(violations.into_error()),
        }
    }
}

/// `?user_id=` beside the page's parameters (documented as `PageQuery`). Its own
/// copy of them: serde cannot refuse unknown parameters through a flattened struct.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct OrderQuery {
    /// Only this user's orders.
    #[param(value_type = Option<UserId>)]
    user_id: Option<String>,
    #[param(ignore)]
    limit: Option<String>,
    #[param(ignore)]
    after_id: Option<String>,
}

fn order_not_found(id: OrderId) -> AppError {
    AppError::NotFound(format!("order {id} not found"))
}

/// A page of orders, of every user or of one
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    operation_id = "list_orders",
    params(OrderQuery, PageQuery),
    responses(
        (status = 200, description = "Orders in ascending order of id", body = Page<OrderBody>),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn list(
    db2: web::Data<Pool<Db2>>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, AppError> {
    let (after, limit) = page(query.limit.as_deref(), query.after_id.as_deref())?;
    let user_id = match query.user_id.as_deref() {
        Some(raw) => {
            Some(UserId::parse(raw).map_err(|e| AppError::BadRequest(format!("user_id {e}")))?)
        }
        None => None,
    };
    let filter = OrderFilter { user_id };
    let page = db::read(&db2, move |session| {
        orders::page(session, filter, after, limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(page_of::<_, OrderBody>(page)))
}

/// Create an order for an existing user
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    operation_id = "create_order",
    params(IdempotencyKeyHeader),
    request_body(content = CreateOrder, content_type = "application/json"),
    responses(
        (
            status = 201,
            description = "Created (or, with `Idempotent-Replayed`, the stored answer of an \
                earlier request with the same `Idempotency-Key`)",
            body = OrderBody,
            headers(
                ("Location" = String, description = "`/orders/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` on a stored answer replayed"),
            ),
        ),
        (status = 400, response = BadRequest),
        (status = 409, response = KeyInUse),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = InvalidOrder),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn create(
    _: NoQuery,
    request: HttpRequest,
    cross: web::Data<CrossCommit<Db1, Db2>>,
    body: JsonBody<CreateOrder>,
) -> Result<HttpResponse, AppError> {
    let once = idempotency::once(&request, body.raw(), created)?;
    let new = body.0.parse()?;
    idempotency::respond(
        workflows::create_order(&cross, new, once).await?,
        location,
        OrderBody::from,
    )
}

fn location(order: &Order) -> String {
    format!("/orders/{}", order.id)
}

/// The answer to a created order, as stored for its idempotency key.
fn created(order: &Order) -> Result<Answer, AppError> {
    idempotency::created(location(order), &OrderBody::from(order.clone()))
}

/// An order
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    operation_id = "get_order",
    params(OrderPath),
    responses(
        (status = 200, description = "The order", body = OrderBody),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn get(
    _: NoQuery,
    db2: web::Data<Pool<Db2>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: OrderId = path_id(&id)?;
    let order = db::read(&db2, move |session| orders::find(session, id)).await?;
    Ok(HttpResponse::Ok().json(OrderBody::from(order.ok_or_else(|| order_not_found(id))?)))
}

/// Delete an order
#[utoipa::path(
    delete,
    path = "/orders/{id}",
    tag = "orders",
    operation_id = "delete_order",
    params(OrderPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn delete(
    _: NoQuery,
    db2: web::Data<Pool<Db2>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: OrderId = path_id(&id)?;
    if db::write(&db2, move |session| orders::delete(session, id)).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(order_not_found(id))
    }
}
