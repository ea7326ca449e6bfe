use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{path_id, JsonBody, PageQuery, Violations};
use crate::db::{self, CrossCommit, Pool};
use crate::domain::{Cents, OrderId, ParseId, Quantity, Text, UserId};
use crate::error::AppError;
use crate::orders::{self, Db2, NewOrder, OrderFilter};
use crate::users::Db1;
use crate::workflows;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/orders")
                .get(list)
                .post(create)
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/orders/{id}")
                .get(get)
                .delete(delete)
                .default_service(web::to(super::method_not_allowed)),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrder {
    user_id: i64,
    item: String,
    quantity: i64,
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

#[derive(Deserialize)]
struct OrderQuery {
    user_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn order_not_found(id: OrderId) -> AppError {
    AppError::NotFound(format!("order {id} not found"))
}

async fn list(
    db2: web::Data<Pool<Db2>>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, AppError> {
    let (after, limit) = query.page.parse()?;
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
    Ok(HttpResponse::Ok().json(page))
}

async fn create(
    cross: web::Data<CrossCommit<Db1, Db2>>,
    body: JsonBody<CreateOrder>,
) -> Result<HttpResponse, AppError> {
    let new = body.0.parse()?;
    let order = workflows::create_order(&cross, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/orders/{}", order.id)))
        .json(order))
}

async fn get(db2: web::Data<Pool<Db2>>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id: OrderId = path_id(&id)?;
    let order = db::read(&db2, move |session| orders::find(session, id)).await?;
    Ok(HttpResponse::Ok().json(order.ok_or_else(|| order_not_found(id))?))
}

async fn delete(
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
