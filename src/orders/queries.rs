use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::orders;
use super::{NewOrder, Order, OrderFilter, Session, UserOrders};
use crate::db::DbError;
use crate::domain::{timestamp, AfterId, Id, Limit, Page};

/// How many orders a user summary lists; its count and total cover all of them.
pub const SUMMARY_ORDERS: i64 = 100;

pub fn insert(session: &mut Session, new: &NewOrder) -> Result<Order, DbError> {
    diesel::insert_into(orders::table)
        .values((
            orders::user_id.eq(new.user_id.get()),
            orders::item.eq(new.item.as_str()),
            orders::quantity.eq(new.quantity.get()),
            orders::amount_cents.eq(new.amount_cents.get()),
            orders::created_at.eq(timestamp::now()),
        ))
        .returning(orders::all_columns)
        .get_result(session.connection())
        .map_err(Session::error)
}

pub fn find(session: &mut Session, id: Id) -> Result<Option<Order>, DbError> {
    orders::table
        .find(id.get())
        .first(session.connection())
        .optional()
        .map_err(Session::error)
}

/// Orders with ids after `after`, in id order, optionally of one user.
pub fn page(
    session: &mut Session,
    filter: OrderFilter,
    after: AfterId,
    limit: Limit,
) -> Result<Page<Order>, DbError> {
    let mut query = orders::table
        .filter(orders::id.gt(after.get()))
        .order(orders::id.asc())
        .limit(limit.get() + 1)
        .into_boxed();
    if let Some(user_id) = filter.user_id {
        query = query.filter(orders::user_id.eq(user_id.get()));
    }
    let rows = query.load(session.connection()).map_err(Session::error)?;
    Ok(Page::from_rows(rows, limit.get(), |order: &Order| order.id))
}

/// Deletes one order; `false` when there was none.
pub fn delete(session: &mut Session, id: Id) -> Result<bool, DbError> {
    let deleted = diesel::delete(orders::table.find(id.get()))
        .execute(session.connection())
        .map_err(Session::error)?;
    Ok(deleted > 0)
}

/// Deletes every order of a user and returns how many there were.
pub fn delete_for_user(session: &mut Session, user_id: Id) -> Result<usize, DbError> {
    diesel::delete(orders::table.filter(orders::user_id.eq(user_id.get())))
        .execute(session.connection())
        .map_err(Session::error)
}

/// The newest [`SUMMARY_ORDERS`] orders of a user, and the count and sum of all.
pub fn for_user(session: &mut Session, user_id: Id) -> Result<UserOrders, DbError> {
    let newest = orders::table
        .filter(orders::user_id.eq(user_id.get()))
        .order(orders::id.desc())
        .limit(SUMMARY_ORDERS)
        .load(session.connection())
        .map_err(Session::error)?;
    if (newest.len() as i64) < SUMMARY_ORDERS {
        // All of the user's orders are in hand: no second query for the count and sum.
        return Ok(UserOrders {
            count: newest.len() as i64,
            total_cents: newest.iter().map(|order: &Order| order.amount_cents).sum(),
            newest,
        });
    }
    // SUM(bigint) is NUMERIC on PostgreSQL; the cast keeps one Rust type for both backends.
    let (count, total_cents) = orders::table
        .filter(orders::user_id.eq(user_id.get()))
        .select((
            count_star(),
            sql::<BigInt>("CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT)"),
        ))
        .first(session.connection())
        .map_err(Session::error)?;
    Ok(UserOrders {
        newest,
        count,
        total_cents,
    })
}
