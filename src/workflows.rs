//! Operations that span both databases. `orders.user_id` refers to `users.id` in the
//! other database, where no SQL foreign key reaches, so the invariant "no order ever
//! references a user that does not exist" is kept here, by locks and commit order
//! (see [`crate::db::UnitOfWork`]).

use crate::db::{self, Pool};
use crate::domain::Id;
use crate::error::AppError;
use crate::orders::{self, Db2, NewOrder, Order, UserOrders};
use crate::users::{self, Db1, User};

/// Writes an order for an existing user. The user is locked in db1 until the order is
/// committed in db2, so a concurrent deletion either happens first (and the order is
/// refused as `UnknownUser`) or waits and then deletes the new order with the user.
pub async fn create_order(
    db1: &Pool<Db1>,
    db2: &Pool<Db2>,
    new: NewOrder,
) -> Result<Order, AppError> {
    db::write_both(db1, db2, move |unit| {
        if !users::lock_existing(&mut unit.referenced, new.user_id)? {
            return Err(AppError::UnknownUser(new.user_id.get()));
        }
        Ok(orders::insert(&mut unit.referencing, &new)?)
    })
    .await
}

/// Deletes a user and all of their orders. The user's row is locked by the deletion
/// before the orders go, so no order can be added in between; the orders are committed
/// first, so a failure leaves the user intact.
pub async fn delete_user(db1: &Pool<Db1>, db2: &Pool<Db2>, id: Id) -> Result<(), AppError> {
    db::write_both(db1, db2, move |unit| {
        if !users::delete(&mut unit.referenced, id)? {
            return Err(AppError::NotFound(format!("user {id} not found")));
        }
        orders::delete_for_user(&mut unit.referencing, id)?;
        Ok(())
    })
    .await
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
