//! An order and its user's totals written by one statement, where the backend has
//! data-modifying `WITH` clauses (`Features::writable_ctes`): one round trip to the
//! database instead of two, on the path of every `POST /orders`. Elsewhere
//! `queries::insert` sends the `INSERT` and the totals' upsert one after the other.
//!
//! Written as a query type with a static query id, as `db::window`'s expressions are,
//! so that it is prepared once per connection like any Diesel query.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

/// `WITH new_order AS (INSERT INTO orders … RETURNING …), added AS (INSERT INTO
/// user_order_totals … ON CONFLICT (user_id) DO UPDATE …) SELECT … FROM new_order`:
/// the order as inserted. Both inserts see the same snapshot and run to completion
/// whether or not the outer `SELECT` reads them; the upsert waits for a concurrent
/// first order's totals as the separate statement would.
#[derive(Debug, Clone)]
pub(super) struct InsertWithTotals<'a> {
    pub user_id: i64,
    pub item: &'a str,
    pub quantity: i32,
    pub amount_cents: i64,
    pub created_at: NaiveDateTime,
}

// One SQL text whatever the values: prepared once per connection, found by its type.
impl QueryId for InsertWithTotals<'_> {
    type QueryId = InsertWithTotals<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for InsertWithTotals<'_> {
    type SqlType = (BigInt, BigInt, Text, Integer, BigInt, Timestamp);
}

impl<Conn> RunQueryDsl<Conn> for InsertWithTotals<'_> {}

impl QueryFragment<Pg> for InsertWithTotals<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH new_order AS (INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) VALUES (",
        );
        out.push_bind_param::<BigInt, _>(&self.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.item)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&self.quantity)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.amount_cents)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.created_at)?;
        out.push_sql(
            ") RETURNING id, user_id, item, quantity, amount_cents, created_at), \
             added AS (INSERT INTO user_order_totals (user_id, order_count, total_cents) \
             SELECT user_id, 1, amount_cents FROM new_order \
             ON CONFLICT (user_id) DO UPDATE SET \
             order_count = user_order_totals.order_count + EXCLUDED.order_count, \
             total_cents = user_order_totals.total_cents + EXCLUDED.total_cents) \
             SELECT id, user_id, item, quantity, amount_cents, created_at FROM new_order",
        );
        Ok(())
    }
}
