use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::orders;
use super::{NewOrder, Order, OrderFilter, Session, UserOrders};
use crate::db::{Access, Database, DbError};
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
        .map_err(db_error)
}

pub fn find<A: Access>(session: &mut Session<A>, id: Id) -> Result<Option<Order>, DbError> {
    orders::table
        .find(id.get())
        .first(session.connection())
        .optional()
        .map_err(db_error)
}

/// Orders with ids after `after`, in id order, optionally of one user.
pub fn page<A: Access>(
    session: &mut Session<A>,
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
    let rows = query.load(session.connection()).map_err(db_error)?;
    Ok(Page::from_rows(rows, limit.get(), |order: &Order| order.id))
}

/// Deletes one order; `false` when there was none.
pub fn delete(session: &mut Session, id: Id) -> Result<bool, DbError> {
    let deleted = diesel::delete(orders::table.find(id.get()))
        .execute(session.connection())
        .map_err(db_error)?;
    Ok(deleted > 0)
}

/// Deletes every order of a user and returns how many there were.
pub fn delete_for_user(session: &mut Session, user_id: Id) -> Result<usize, DbError> {
    diesel::delete(orders::table.filter(orders::user_id.eq(user_id.get())))
        .execute(session.connection())
        .map_err(db_error)
}

/// The newest [`SUMMARY_ORDERS`] orders of a user, and the count and sum of all of them,
/// in one statement: the window aggregates are computed before the `LIMIT`, so they
/// cover every order, from the same snapshot as the listed ones.
pub fn for_user<A: Access>(session: &mut Session<A>, user_id: Id) -> Result<UserOrders, DbError> {
    let rows: Vec<SummaryRow> = diesel::sql_query(
        "SELECT id, user_id, item, quantity, amount_cents, created_at, \
                COUNT(*) OVER () AS order_count, \
                CAST(SUM(amount_cents) OVER () AS BIGINT) AS total_cents \
         FROM orders WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind::<BigInt, _>(user_id.get())
    .bind::<BigInt, _>(SUMMARY_ORDERS)
    .load(session.connection())
    .map_err(db_error)?;
    let (count, total_cents) = rows
        .first()
        .map_or((0, 0), |row| (row.order_count, row.total_cents));
    Ok(UserOrders {
        newest: rows.into_iter().map(|row| row.order).collect(),
        count,
        total_cents,
    })
}

#[derive(QueryableByName)]
struct SummaryRow {
    #[diesel(embed)]
    order: Order,
    #[diesel(sql_type = BigInt)]
    order_count: i64,
    #[diesel(sql_type = BigInt)]
    total_cents: i64,
}

fn db_error(error: diesel::result::Error) -> DbError {
    DbError::from_diesel(super::Db2::NAME, error)
}
