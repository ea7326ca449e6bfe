use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db2::schema::orders;
use crate::domain::{Cents, OrderId, Quantity, Text, UserId};

/// An order as stored. Read by field name (`Selectable`), checked against the table for
/// both backends at compile time; the API shows it as `http::bodies::OrderBody`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Order {
    pub id: OrderId,
    /// The user (in db1) the order belongs to: always one that exists.
    pub user_id: UserId,
    pub item: String,
    pub quantity: i32,
    pub amount_cents: i64,
    pub created_at: NaiveDateTime,
}

/// A validated new order. That `user_id` exists in db1 is checked by the workflow
/// that writes it, not here.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub user_id: UserId,
    pub item: Text,
    pub quantity: Quantity,
    pub amount_cents: Cents,
}

/// Which orders a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFilter {
    pub user_id: Option<UserId>,
}

/// A user's newest orders with the count and sum over all of them.
#[derive(Debug, Clone)]
pub struct UserOrders {
    pub newest: Vec<Order>,
    pub count: i64,
    pub total_cents: i64,
}
