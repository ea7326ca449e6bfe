//! Operations that span both databases. `orders.user_id` refers to `users.id` in the
//! other database, where no SQL foreign key reaches, so the invariant "no order ever
//! references a user that does not exist" is kept here, by locks and commit order
//! (see [`crate::db::write_holding`] and [`crate::db::CrossCommit`]).

use crate::db::{self, CrossCommit, DbError, Pool};
use crate::domain::Id;
use crate::error::AppError;
use crate::orders::{self, Db2, NewOrder, Order, UserOrders};
use crate::users::{self, Db1, User};

/// Writes an order for an existing user. Only db2 is written, so no two-phase commit
/// is needed. The user is locked in db1 until the order is
/// committed in db2, so a concurrent deletion either happens first (and the order is
/// refused as `UnknownUser`) or waits and then deletes the new order with the user.
pub async fn create_order(
    db1: &Pool<Db1>,
    db2: &Pool<Db2>,
    new: NewOrder,
) -> Result<Order, AppError> {
    db::write_holding(db1, db2, move |users_session, orders_session| {
        if !users::lock_existing(users_session, new.user_id)? {
            return Err(AppError::UnknownUser(new.user_id.get()));
        }
        Ok(orders::insert(orders_session, &new)?)
    })
    .await
}

/// Deletes a user and all of their orders, both or neither, even across a crash. The
/// user's row is locked by the deletion before the orders go, so no order can be added
/// in between.
pub async fn delete_user(cross: &CrossCommit<Db1, Db2>, id: Id) -> Result<(), AppError> {
    cross
        .write(move |unit| {
            if !users::delete(&mut unit.referenced, id)? {
                return Err(AppError::NotFound(format!("user {id} not found")));
            }
            unit.redo_referenced(format!("{DELETE_USER}{id}"));
            orders::delete_for_user(&mut unit.referencing, id)?;
            Ok(())
        })
        .await
}

const DELETE_USER: &str = "delete_user:";

/// Applies again the db1 part of a cross-database write whose db1 commit was lost
/// (db1 on SQLite, which cannot prepare). Idempotent: ids are never reused.
pub fn redo_on_users(session: &mut users::Session, redo: &str) -> Result<(), DbError> {
    let id = redo
        .strip_prefix(DELETE_USER)
        .and_then(|id| Id::parse(id).ok())
        .ok_or_else(|| DbError::Other {
            database: "db1",
            cause: format!("unknown redo record `{redo}`"),
        })?;
    users::delete(session, id).map(drop)
}

/// A user with their newest orders and the totals of all of them.
pub struct UserSummary {
    pub user: User,
    pub orders: UserOrders,
}

/// Reads the user and their orders from both databases at the same time.
pub async fn user_summary(
    db1: &Pool<Db1>,
    db2: &Pool<Db2>,
    id: Id,
) -> Result<UserSummary, AppError> {
    let (user, orders) = futures_util::future::join(
        db::read(db1, move |session| users::find(session, id)),
        db::read(db2, move |session| orders::for_user(session, id)),
    )
    .await;
    let user: Option<User> = user?;
    let user = user.ok_or_else(|| AppError::NotFound(format!("user {id} not found")))?;
    Ok(UserSummary {
        user,
        orders: orders?,
    })
}

/// The first `limit` users and orders by id, read from both databases at the same time.
pub async fn overview(
    db1: &Pool<Db1>,
    db2: &Pool<Db2>,
    limit: crate::domain::Limit,
) -> Result<(Vec<User>, Vec<Order>), AppError> {
    let start = crate::domain::AfterId::default();
    let (users, orders) = futures_util::future::join(
        db::read(db1, move |session| users::page(session, start, limit)),
        db::read(db2, move |session| {
            orders::page(session, orders::OrderFilter::default(), start, limit)
        }),
    )
    .await;
    let (users, orders): (crate::domain::Page<User>, crate::domain::Page<Order>) =
        (users?, orders?);
    Ok((users.items, orders.items))
}
