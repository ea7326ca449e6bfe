use diesel::prelude::*;

use super::{NewOrder, Order, OrderFilter, UserOrders};
use crate::db::window::{CountOver, SumOver};
use crate::db::{Access, Database, DbError, KeyLock, KeyLocks, LockMode};
use crate::db2::schema::orders;
use crate::db2::{Db2, Session};
use crate::domain::{timestamp, AfterId, Limit, OrderId, Page, UserId};

/// How many orders a user summary lists; its count and total cover all of them.
pub const SUMMARY_ORDERS: i64 = 100;

pub fn insert(session: &mut Session, new: &NewOrder) -> Result<Order, DbError> {
    let created_at = timestamp::now();
    let insert = || {
        diesel::insert_into(orders::table).values((
            orders::user_id.eq(new.user_id),
            orders::item.eq(new.item.as_str()),
            orders::quantity.eq(new.quantity.get()),
            orders::amount_cents.eq(new.amount_cents.get()),
            orders::created_at.eq(created_at),
        ))
    };
    session
        .write_returning(
            // Positional: Diesel 2.3's MultiConnection cannot RETURNING a `SelectBy` (it
            // is a query fragment of its MultiBackend only); `all_columns` is in
            // `Order`'s field order.
            insert().returning(orders::all_columns),
            |session| {
                session.execute(insert())?;
                let id = session.last_insert_id();
                session.load_optional(
                    orders::table
                        .filter(orders::id.eq(id))
                        .select(Order::as_select()),
                )
            },
        )?
        .ok_or_else(|| DbError::Other {
            database: Db2::NAME,
            cause: "an INSERT into orders gave back no row".into(),
        })
}

pub fn find<M: Access>(session: &mut Session<M>, id: OrderId) -> Result<Option<Order>, DbError> {
    session.load_optional(orders::table.find(id).select(Order::as_select()))
}

/// Orders with ids after `after`, in id order, optionally of one user.
///
/// Two statically typed queries rather than one boxed query with an optional filter:
/// Diesel caches a boxed query's prepared statement under its SQL text, which it then
/// builds and hashes again on every call (6 % of the server's CPU on `GET /overview`);
/// a static query is found by its type.
pub fn page<M: Access>(
    session: &mut Session<M>,
    filter: OrderFilter,
    after: AfterId,
    limit: Limit,
) -> Result<Page<Order>, DbError> {
    let query = orders::table
        .filter(orders::id.gt(after.get()))
        .order(orders::id.asc())
        .limit(limit.get() + 1)
        .select(Order::as_select());
    let rows = match filter.user_id {
        None => session.load(query)?,
        Some(user_id) => session.load(query.filter(orders::user_id.eq(user_id)))?,
    };
    Ok(Page::from_rows(rows, limit.get(), |order: &Order| {
        order.id.get()
    }))
}

/// The orders of one user, as a lock in db2 ("mdbu"): shared while an order is added for
/// the user, exclusive while the user's orders are deleted with the user.
const USER_ORDERS: KeyLocks = KeyLocks::new(USER_ORDERS_CLASS);
const USER_ORDERS_CLASS: i32 = 0x6D64_6275;
// The class is none of the layer's (see `db::key_lock::RESERVED_CLASSES`), checked
// when the crate compiles.
const _: () = assert!(crate::db::key_lock_class_is_free(USER_ORDERS_CLASS));

/// The lock on the set of `user_id`'s orders, for a session to begin with (see
/// `workflows::create_order` for why db1's lock on the user is not enough).
pub fn user_orders_lock(user_id: UserId, mode: LockMode) -> KeyLock {
    USER_ORDERS.key(user_id.get(), mode)
}

/// Deletes one order; `false` when there was none.
pub fn delete(session: &mut Session, id: OrderId) -> Result<bool, DbError> {
    let deleted = session.execute(diesel::delete(orders::table.find(id)))?;
    Ok(deleted > 0)
}

/// Deletes every order of a user and returns how many there were.
pub fn delete_for_user(session: &mut Session, user_id: UserId) -> Result<usize, DbError> {
    session.execute(diesel::delete(
        orders::table.filter(orders::user_id.eq(user_id)),
    ))
}

/// The newest [`SUMMARY_ORDERS`] orders of a user, and the count and sum of all of them,
/// in one statement: the window aggregates are computed before the `LIMIT`, so they
/// cover every order, from the same snapshot as the listed ones.
pub fn for_user<M: Access>(
    session: &mut Session<M>,
    user_id: UserId,
) -> Result<UserOrders, DbError> {
    let rows: Vec<(Order, i64, i64)> = session.load(
        orders::table
            .filter(orders::user_id.eq(user_id))
            .order(orders::id.desc())
            .limit(SUMMARY_ORDERS)
            .select((Order::as_select(), CountOver, SumOver(orders::amount_cents))),
    )?;
    let (count, total_cents) = rows
        .first()
        .map_or((0, 0), |(_, count, total)| (*count, *total));
    Ok(UserOrders {
        newest: rows.into_iter().map(|(order, _, _)| order).collect(),
        count,
        total_cents,
    })
}

/// The distinct users that have orders, after `after` in id order, at most `limit`: a
/// range of the `(user_id, id)` index, for a scan in bounded steps (`multidb check`).
pub fn users_with_orders<M: Access>(
    session: &mut Session<M>,
    after: i64,
    limit: i64,
) -> Result<Vec<UserId>, DbError> {
    session.load(
        orders::table
            .filter(orders::user_id.gt(after))
            .select(orders::user_id)
            .distinct()
            .order(orders::user_id.asc())
            .limit(limit),
    )
}

/// How many orders each of `users` has; users without any are left out.
pub fn count_for_users<M: Access>(
    session: &mut Session<M>,
    users: &[UserId],
) -> Result<Vec<(UserId, i64)>, DbError> {
    session.load(
        orders::table
            .filter(orders::user_id.eq_any(users))
            .group_by(orders::user_id)
            .select((orders::user_id, diesel::dsl::count_star()))
            .order(orders::user_id.asc()),
    )
}
