use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bodies::{bodies, page_of, OrderBody, UserBody};
use super::extract::{path_id, present, JsonBody, NoQuery, PageQuery, Violations};
use super::idempotency;
use super::responses::{
    BadRequest, Conflict, IdempotencyKeyHeader, Internal, Invalid, InvalidUser, NotFound,
    PayloadTooLarge, Unavailable, UnsupportedMediaType, UserConflict, UserPath,
};
use crate::db::idempotency::Answer;
use crate::db::{self, Coalescer, CrossCommit, Pool};
use crate::db1::Db1;
use crate::db2::Db2;
use crate::domain::{schema, Email, Page, Text, UserId};
use crate::error::AppError;
use crate::users::{self, NewUser, User, UserChanges};
use crate::workflows;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    #[schema(schema_with = schema::email_input)]
    email: String,
    #[schema(schema_with = schema::text_input)]
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

/// Any of the fields, at least one; an absent field is left as it is (`null` is refused).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub(super) struct PatchUser {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::email_input)]
    email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::text_input)]
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

/// A page of users
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    operation_id = "list_users",
    params(PageQuery),
    responses(
        (status = 200, description = "Users in ascending order of id", body = Page<UserBody>),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn list(
    db1: web::Data<Pool<Db1>>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let (after, limit) = query.parse()?;
    let page = db::read(&db1, move |session| users::page(session, after, limit)).await?;
    Ok(HttpResponse::Ok().json(page_of::<_, UserBody>(page)))
}

/// Create a user
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    operation_id = "create_user",
    params(IdempotencyKeyHeader),
    request_body(content = CreateUser, content_type = "application/json"),
    responses(
        (
            status = 201,
            description = "Created (or, with `Idempotent-Replayed`, the stored answer of an \
                earlier request with the same `Idempotency-Key`)",
            body = UserBody,
            headers(
                ("Location" = String, description = "`/users/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` on a stored answer replayed"),
            ),
        ),
        (status = 400, response = BadRequest),
        (status = 409, response = UserConflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = InvalidUser),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn create(
    _: NoQuery,
    request: HttpRequest,
    cross: web::Data<CrossCommit<Db1, Db2>>,
    body: JsonBody<CreateUser>,
) -> Result<HttpResponse, AppError> {
    let once = idempotency::once(&request, body.raw(), created)?;
    let new = body.0.parse()?;
    idempotency::respond(
        workflows::create_user(&cross, new, once).await?,
        location,
        UserBody::from,
    )
}

fn location(user: &User) -> String {
    format!("/users/{}", user.id)
}

/// The answer to a created user, as stored for its idempotency key.
fn created(user: &User) -> Result<Answer, AppError> {
    idempotency::created(location(user), &UserBody::from(user.clone()))
}

/// A user
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    operation_id = "get_user",
    params(UserPath),
    responses(
        (status = 200, description = "The user", body = UserBody),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn get(
    _: NoQuery,
    by_id: web::Data<Coalescer<users::ById>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    let user = by_id.read(id).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(user.ok_or_else(|| user_not_found(id))?)))
}

/// Change a user's email or name
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    operation_id = "update_user",
    params(UserPath),
    request_body(content = PatchUser, content_type = "application/json"),
    responses(
        (status = 200, description = "The user as changed", body = UserBody),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn update(
    _: NoQuery,
    db1: web::Data<Pool<Db1>>,
    id: web::Path<String>,
    body: JsonBody<PatchUser>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    let changes = body.0.parse()?;
    let user = db::write(&db1, move |session| users::update(session, id, &changes)).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(user.ok_or_else(|| user_not_found(id))?)))
}

/// Delete a user and all of their orders
///
/// Both or neither, even across a crash of the service: the user in db1 and their orders
/// in db2. A 503 means it could not be completed now; retry.
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    operation_id = "delete_user",
    params(UserPath),
    responses(
        (status = 204, description = "Deleted, with all of their orders"),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn delete(
    _: NoQuery,
    cross: web::Data<CrossCommit<Db1, Db2>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    workflows::delete_user(&cross, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
#[schema(as = UserSummary)]
pub(super) struct SummaryBody {
    user: UserBody,
    /// The newest orders (`orders::SUMMARY_ORDERS`), newest first.
    #[schema(max_items = 100)]
    orders: Vec<OrderBody>,
    /// All of the user's orders.
    #[schema(minimum = 0)]
    order_count: i64,
    /// The sum of `amount_cents` over all of the user's orders.
    #[schema(minimum = 0)]
    total_cents: i64,
}

/// A user with their newest orders, and the count and sum of all
#[utoipa::path(
    get,
    path = "/users/{id}/summary",
    tag = "users",
    operation_id = "get_user_summary",
    params(UserPath),
    responses(
        (status = 200, description = "The summary", body = SummaryBody),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn summary(
    _: NoQuery,
    users_by_id: web::Data<Coalescer<users::ById>>,
    db2: web::Data<Pool<Db2>>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: UserId = path_id(&id)?;
    let summary = workflows::user_summary(&users_by_id, &db2, id).await?;
    Ok(HttpResponse::Ok().json(SummaryBody {
        user: summary.user.into(),
        orders: bodies(summary.orders.newest),
        order_count: summary.orders.count,
        total_cents: summary.orders.total_cents,
    }))
}
