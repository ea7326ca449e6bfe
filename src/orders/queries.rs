use diesel::prelude::*;

use super::with_totals::InsertWithTotals;
use super::{NewOrder, Order, OrderFilter, UserOrders};
use crate::db::window::{CountOver, SumBigInt, SumOver};
use crate::db::{Access, Database, DbError, Features, KeyLock, KeyLocks, LockMode, Read};
use crate::db2::schema::{orders, user_order_totals as totals};
use crate::db2::{Db2, Session};
use crate::domain::{timestamp, AfterId, Limit, OrderId, Page, UserId};

/// How many orders a user summary lists; its count and total cover all of them.
pub const SUMMARY_ORDERS: i64 = 100;

/// Inserts an order and adds it to its user's totals (see `db2`'s `user_order_totals`):
/// in one statement where the backend allows ([`InsertWithTotals`]), else in two.
pub fn insert(session: &mut Session, new: &NewOrder) -> Result<Order, DbError> {
    let created_at = timestamp::now();
    session.write_with_ctes(
        InsertWithTotals {
            user_id: new.user_id.get(),
            item: new.item.as_str(),
            quantity: new.quantity.get(),
            amount_cents: new.amount_cents.get(),
            created_at,
        },
        |session| {
            let order = insert_alone(session, new, created_at)?;
            add_to_totals(session, order.user_id, 1, order.amount_cents)?;
            Ok(order)
        },
    )
}

fn insert_alone(
    session: &mut Session,
    new: &NewOrder,
    created_at: chrono::NaiveDateTime,
) -> Result<Order, DbError> {
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

/// Adds `count` orders worth `cents` to a user's totals (both negative to take them
/// away), creating the totals with the user's first order. In one statement: two first
/// orders of a user in concurrent transactions cannot both create the row (the second
/// waits for the first's, then adds to it), nor lose an addition.
fn add_to_totals(
    session: &mut Session,
    user_id: UserId,
    count: i64,
    cents: i64,
) -> Result<(), DbError> {
    let row = (
        totals::user_id.eq(user_id),
        totals::order_count.eq(count),
        totals::total_cents.eq(cents),
    );
    let added = (
        totals::order_count.eq(totals::order_count + count),
        totals::total_cents.eq(totals::total_cents + cents),
    );
    session.upsert(
        diesel::insert_into(totals::table)
            .values(row)
            .on_conflict(totals::user_id)
            .do_update()
            .set(added),
        diesel::insert_into(totals::table)
            .values(row)
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(added),
    )
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

/// The first orders by id, as many as a request asks, read for many requests at once:
/// the first page of the longest ask answers every shorter one.
pub struct First;

impl crate::db::BatchRead for First {
    type Database = Db2;
    type Key = Limit;
    type Answer = Vec<Order>;
    type Batch = Vec<Order>;

    fn one(session: &mut Session<Read>, limit: Limit) -> Result<Vec<Order>, DbError> {
        session.load(
            orders::table
                .order(orders::id.asc())
                .limit(limit.get())
                .select(Order::as_select()),
        )
    }

    fn many(session: &mut Session<Read>, limits: &[Limit]) -> Result<Vec<Order>, DbError> {
        match limits.iter().copied().max() {
            Some(longest) => Self::one(session, longest),
            None => Ok(Vec::new()),
        }
    }

    fn answer(orders: &Self::Batch, limit: Limit) -> Vec<Order> {
        orders.iter().take(limit.count()).cloned().collect()
    }
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

/// The lock on `user_id`'s orders that adding one takes: shared, so that orders of a
/// user are added side by side, where upserting the user's totals cannot deadlock
/// ([`Features::deadlock_free_upserts`]); elsewhere exclusive, so that they take turns
/// (they would from their totals' upsert to their commit anyway).
pub fn new_order_lock(user_id: UserId, features: &Features) -> KeyLock {
    let mode = if features.deadlock_free_upserts {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    user_orders_lock(user_id, mode)
}

/// Deletes one order, and takes it off its user's totals; `false` when there was none.
pub fn delete(session: &mut Session, id: OrderId) -> Result<bool, DbError> {
    let deleted: Option<(UserId, i64)> = session.write_returning(
        diesel::delete(orders::table.find(id)).returning((orders::user_id, orders::amount_cents)),
        |session| {
            // Orders never change and ids are never reused: the row read is the row
            // deleted, if this transaction is the one that deletes it.
            let Some(found) = session.load_optional(
                orders::table
                    .find(id)
                    .select((orders::user_id, orders::amount_cents)),
            )?
            else {
                return Ok(None);
            };
            let deleted = session.execute(diesel::delete(orders::table.find(id)))?;
            Ok((deleted > 0).then_some(found))
        },
    )?;
    let Some((user_id, cents)) = deleted else {
        return Ok(false);
    };
    session.execute(diesel::update(totals::table.find(user_id)).set((
        totals::order_count.eq(totals::order_count - 1),
        totals::total_cents.eq(totals::total_cents - cents),
    )))?;
    Ok(true)
}

/// Deletes every order of a user, and their totals, and returns how many there were.
pub fn delete_for_user(session: &mut Session, user_id: UserId) -> Result<usize, DbError> {
    let deleted = session.execute(diesel::delete(
        orders::table.filter(orders::user_id.eq(user_id)),
    ))?;
    session.execute(diesel::delete(totals::table.find(user_id)))?;
    Ok(deleted)
}

/// The newest [`SUMMARY_ORDERS`] orders of a user, and the count and sum of all of them,
/// in one statement, so both are of one snapshot: the newest by the `(user_id, id)`
/// index, the count and sum from the user's totals, joined to each row. Its cost does
/// not grow with the user's orders.
///
/// Orders without totals can only have been written by a build older than the totals
/// (see migrations_db2); for them the count and sum are read from the orders, as
/// [`count_and_sum`] does.
pub fn for_user<M: Access>(
    session: &mut Session<M>,
    user_id: UserId,
) -> Result<UserOrders, DbError> {
    let rows: Vec<(Order, Option<(i64, i64)>)> = session.load(
        orders::table
            .left_join(totals::table)
            .filter(orders::user_id.eq(user_id))
            .order(orders::id.desc())
            .limit(SUMMARY_ORDERS)
            .select((
                Order::as_select(),
                (totals::order_count, totals::total_cents).nullable(),
            )),
    )?;
    match rows.first() {
        None => Ok(UserOrders {
            newest: Vec::new(),
            count: 0,
            total_cents: 0,
        }),
        Some((_, Some((count, total_cents)))) => Ok(UserOrders {
            count: *count,
            total_cents: *total_cents,
            newest: rows.into_iter().map(|(order, _)| order).collect(),
        }),
        Some((_, None)) => count_and_sum(session, user_id),
    }
}

/// [`for_user`] by reading every order of the user: the window aggregates are computed
/// before the `LIMIT`, so they cover every order, from the same snapshot as the listed
/// ones.
fn count_and_sum<M: Access>(
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

/// A user with orders: their count and sum, and their totals if there are any.
type CountedWithTotals = (UserId, i64, Option<i64>, Option<(i64, i64)>);

/// A user whose totals disagree with their orders, as [`totals_disagreeing`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsDisagreement {
    pub user_id: UserId,
    /// The count and sum of the user's orders.
    pub orders: (i64, i64),
    /// What the user's totals say; `None` when there are none.
    pub totals: Option<(i64, i64)>,
}

/// The users in `(after, up_to]` (no upper bound without `up_to`) whose totals disagree
/// with their orders, in two statements, each of one snapshot so that orders being
/// added or deleted meanwhile are never taken for a disagreement: users with orders
/// whose totals are missing or differ, then totals other than zero of users without
/// any order. Reads every order of the range (their amounts are not in an index).
pub fn totals_disagreeing<M: Access>(
    session: &mut Session<M>,
    after: i64,
    up_to: Option<i64>,
) -> Result<Vec<TotalsDisagreement>, DbError> {
    let up_to = up_to.unwrap_or(i64::MAX);
    let with_orders: Vec<CountedWithTotals> = session.load(
        orders::table
            .left_join(totals::table)
            .filter(orders::user_id.gt(after).and(orders::user_id.le(up_to)))
            .group_by((orders::user_id, totals::order_count, totals::total_cents))
            .select((
                orders::user_id,
                diesel::dsl::count_star(),
                SumBigInt(orders::amount_cents),
                (totals::order_count, totals::total_cents).nullable(),
            )),
    )?;
    let without_orders: Vec<(UserId, i64, i64)> = session.load(
        totals::table
            .left_join(orders::table)
            .filter(totals::user_id.gt(after).and(totals::user_id.le(up_to)))
            .filter(orders::id.is_null())
            .filter(totals::order_count.ne(0).or(totals::total_cents.ne(0)))
            .select((totals::user_id, totals::order_count, totals::total_cents)),
    )?;
    let mut disagreeing: Vec<TotalsDisagreement> = with_orders
        .into_iter()
        .map(|(user_id, count, sum, totals)| TotalsDisagreement {
            user_id,
            orders: (count, sum.unwrap_or(0)),
            totals,
        })
        .filter(|user| user.totals != Some(user.orders))
        .chain(
            without_orders
                .into_iter()
                .map(|(user_id, count, sum)| TotalsDisagreement {
                    user_id,
                    orders: (0, 0),
                    totals: Some((count, sum)),
                }),
        )
        .collect();
    disagreeing.sort_by_key(|user| user.user_id);
    Ok(disagreeing)
}
