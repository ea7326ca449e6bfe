use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{path_id, present, JsonBody, PageQuery, Violations};
use crate::db::{self, CrossCommit, Pool};
use crate::domain::{Email, Text, UserId};
use crate::error::AppError;
use crate::orders::{Db2, Order};
use crate::users::{self, Db1, NewUser, User, UserChanges};
use crate::workflows;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/users")
                .get(list)
                .post(create)
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/users/{id}")
                .get(get)
                .patch(update)
                .delete(delete)
                .default_service(web::to(super::method_not_allowed)),
        )
        .service(
            web::resource("/users/{id}/summary")
                .get(summary)
                .default_service(web::to(super::method_not_allowed)),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    email: String,
    name: String,
}

impl CreateUser {
    fn parse(&self) -> Result<NewUser, AppError> {
        let mut violations = Violations::default();
        let email = violations.check(Email::parse(&self.email));
        let name = violations.check(Text::parse("name", &self.name));
        match (email, name) {
            (Some(email), Some(name)) => Ok(NewUser { email, name }),
            _ => Err(violations.into_error()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    #[serde(default, deserialize_with = "present")]
    email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
}

impl PatchUser {
    fn parse(&self) -> Result<UserChanges, AppError> {
        if self.email.is_none() && self.name.is_none() {
            return Err(AppError::Validation(
                "give at least one of email, name".into(),
            ));
        }
        let mut violations = Violations::default();
        let email = self
            .email
            .as_deref()
            .map(|raw| violations.check(Email::parse(raw)));
        let name = self
            .name
            .as_deref()
            .map(|raw| violations.check(Text::parse("name", raw)));
        match (email, name) {
            (Some(None), _) | (_, Some(None)) => Err(violations.into_error()),
            (email, name) => Ok(UserChanges {
                email: email.flatten(),
                name: name.flatten(),
            }),
        }
    }
}

fn user_not_found(id: impl std::fmt::Display) -> AppError {
    AppError::NotFound(format!("user {id} not found"))
}

async fn list(
    db1: web::Data<Pool<Db1>>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let (after, limit) = query.parse()?;
    let page = db::read(&db1, move |session| users::page(session, after, limit)).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn create(
    db1: web::Data<Pool<Db1>>,
    body: JsonBody<CreateUser>,
) -> Result<HttpResponse, AppError> {
    let new = body.0.parse()?;
    let user: User = db::write(&db1, move |session| users::insert(session, &new)).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/users/{}", user.id)))
        .json(user))
}

async fn get(db1: web::Data<Pool<Db1>>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    let user = db::read(&db1, move |session| users::find(session, id)).await?;
    Ok(HttpResponse::Ok().json(user.ok_or_else(|| user_not_found(id))?))
}

async fn update(
    db1: web::Data<Pool<Db1>>,
    id: web::Path<String>,
    body: JsonBody<PatchUser>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    let changes = body.0.parse()?;
    let user = db::write(&db1, move |session| users::update(session, id, &changes)).await?;
    Ok(HttpResponse::Ok().json(user.ok_or_else(|| user_not_found(id))?))
}

async fn delete(
    cross: web::Data<CrossCommit<Db1, Db2>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    workflows::delete_user(&cross, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct SummaryBody {
    user: User,
    orders: Vec<Order>,
    order_count: i64,
    total_cents: i64,
}

async fn summary(
    db1: web::Data<Pool<Db1>>,
    db2: web::Data<Pool<Db2>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    let summary = workflows::user_summary(&db1, &db2, id).await?;
    Ok(HttpResponse::Ok().json(SummaryBody {
        user: summary.user,
        orders: summary.orders.newest,
        order_count: summary.orders.count,
        total_cents: summary.orders.total_cents,
    }))
}
