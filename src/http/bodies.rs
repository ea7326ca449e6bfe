//! What the API shows of a user and of an order, apart from the rows they are read
//! from (`users::User`, `orders::Order`): a column added to a table is not public until
//! it is added here, and a field renamed here cannot silently rename a column.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{schema, timestamp, OrderId, Page, UserId};
use crate::orders::Order;
use crate::users::User;

/// `{"id","email","name","created_at"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub(super) struct UserBody {
    id: UserId,
    #[schema(schema_with = schema::email)]
    email: String,
    #[schema(schema_with = schema::text)]
    name: String,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(schema_with = schema::timestamp)]
    created_at: NaiveDateTime,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        let User {
            id,
            email,
            name,
            created_at,
        } = user;
        Self {
            id,
            email,
            name,
            created_at,
        }
    }
}

/// `{"id","user_id","item","quantity","amount_cents","created_at"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Order)]
pub(super) struct OrderBody {
    id: OrderId,
    /// The user (in db1) the order belongs to: always one that exists.
    user_id: UserId,
    #[schema(schema_with = schema::text)]
    item: String,
    #[schema(schema_with = schema::quantity)]
    quantity: i32,
    #[schema(schema_with = schema::cents)]
    amount_cents: i64,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(schema_with = schema::timestamp)]
    created_at: NaiveDateTime,
}

impl From<Order> for OrderBody {
    fn from(order: Order) -> Self {
        let Order {
            id,
            user_id,
            item,
            quantity,
            amount_cents,
            created_at,
        } = order;
        Self {
            id,
            user_id,
            item,
            quantity,
            amount_cents,
            created_at,
        }
    }
}

/// Rows as the bodies the API shows.
pub(super) fn bodies<R, B: From<R>>(rows: Vec<R>) -> Vec<B> {
    rows.into_iter().map(B::from).collect()
}

/// A page of rows as a page of bodies.
pub(super) fn page_of<R, B: From<R>>(page: Page<R>) -> Page<B> {
    Page {
        items: bodies(page.items),
        next_after_id: page.next_after_id,
    }
}
