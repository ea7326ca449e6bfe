//! Operations that span both databases. `orders.user_id` refers to `users.id` in the
//! other database, where no SQL foreign key reaches, so the invariant "no order ever
//! references a user that does not exist" is kept here, by locks and commit order
//! (see [`crate::db::holding`] and [`crate::db::CrossCommit`]).

mod once;

pub use once::{Created, Once};

use crate::db::{self, CrossCommit, Database, DbError, LockMode, Pool, Redo, RedoRecord};
use crate::db1::{self, Db1};
use crate::db2::{self, Db2};
use crate::domain::{ParseId, UserId};
use crate::error::AppError;
use crate::orders::{self, NewOrder, Order, UserOrders};
use crate::users::{self, NewUser, User};

/// Writes a user. With an idempotency key, also reads and locks db2 (see [`once`]): the
/// user is committed in db1 with the key's answer while db2's session holds the key.
pub async fn create_user(
    cross: &CrossCommit<Db1, Db2>,
    new: NewUser,
    once: Option<Once<User>>,
) -> Result<Created<User>, AppError> {
    let Some(once) = once else {
        let user = db::write(cross.a(), move |session| users::insert(session, &new)).await?;
        return Ok(Created::New(user));
    };
    db::write_a_holding_b(
        cross.a(),
        cross.b(),
        move |users_session, orders_session| {
            if let Some(replay) = once.earlier(orders_session, users_session)? {
                return Ok(replay);
            }
            let user = users::insert(users_session, &new)?;
            once.record(users_session, &user)
        },
    )
    .await
}

/// Writes an order for an existing user. Only db2 is written, so no two-phase commit
/// is needed. The user is locked in db1 until the order is committed in db2, so a
/// concurrent deletion either happens first (and the order is refused as
/// `UnknownUser`) or waits and then deletes the new order with the user.
///
/// The user's orders are also locked in db2 (shared, as db2's session begins, or
/// exclusive where the totals' upsert needs it: [`orders::new_order_lock`]), because
/// db1's lock lasts only as long as its server session: if that session dies before db2
/// commits, a deletion still waits for this lock before it deletes the user's orders,
/// and then sees the new one. Both take db2's lock before db1's, so they never wait for
/// each other in a cycle.
/// And when db1 cannot prepare (SQLite), a deletion decided in db2 whose db1 half is
/// still to be redone leaves the user visible in db1: the pending redo refuses the order.
///
/// With an idempotency key, the order is committed with the key's answer (see [`once`]).
pub async fn create_order(
    cross: &CrossCommit<Db1, Db2>,
    new: NewOrder,
    once: Option<Once<Order>>,
) -> Result<Created<Order>, AppError> {
    let deletion_redo = cross.redoes().then(|| delete_user_redo(new.user_id));
    db::write_b_holding_a(
        cross.a(),
        cross.b(),
        orders::new_order_lock(new.user_id, cross.b().features()),
        move |users_session, orders_session| {
            if let Some(once) = &once {
                if let Some(replay) = once.earlier(orders_session, users_session)? {
                    return Ok(replay);
                }
            }
            let exists = users::lock_existing(users_session, new.user_id)?;
            let being_deleted = match &deletion_redo {
                Some(redo) if exists => db::redo_pending(orders_session, redo)?,
                _ => false,
            };
            if !exists || being_deleted {
                return Err(AppError::UnknownUser(new.user_id));
            }
            let order = orders::insert(orders_session, &new)?;
            match &once {
                None => Ok(Created::New(order)),
                Some(once) => once.record(orders_session, &order),
            }
        },
    )
    .await
}

/// Deletes a user and all of their orders, both or neither, even across a crash. The
/// user's orders are locked in db2 (exclusive, as db2's session begins) and the user's
/// row in db1 before anything is deleted, in the order [`create_order`] takes them, so
/// no order can be added in between.
pub async fn delete_user(cross: &CrossCommit<Db1, Db2>, id: UserId) -> Result<(), AppError> {
    cross
        .write(
            orders::user_orders_lock(id, LockMode::Exclusive),
            move |unit| {
                if !users::delete(&mut unit.a, id)? {
                    return Err(AppError::NotFound(format!("user {id} not found")));
                }
                unit.redo_a(delete_user_redo(id));
                orders::delete_for_user(&mut unit.b, id)?;
                Ok(())
            },
        )
        .await
}

/// The one kind of work a decision carries to redo in db1, written and read here only.
const DELETE_USER: &str = "delete_user:";

fn delete_user_redo(id: UserId) -> RedoRecord {
    RedoRecord::new(format!("{DELETE_USER}{id}"))
}

/// The user whose deletion a redo record is, if it is one.
pub fn user_of_redo(redo: &str) -> Option<UserId> {
    redo.strip_prefix(DELETE_USER)
        .and_then(|id| UserId::parse(id).ok())
}

fn redone_user(redo: &RedoRecord) -> Result<UserId, DbError> {
    user_of_redo(redo.as_str())
        // The record is read from db2, where the decision keeps it.
        .ok_or_else(|| DbError::Other {
            database: Db2::NAME,
            cause: format!("unknown redo record `{}`", redo.as_str()).into(),
        })
}

/// How a deletion whose db1 commit was lost (db1 on SQLite, which cannot prepare) is
/// applied again: the user goes in db1, then, in the db2 transaction that forgets the
/// decision, any order that was added for the user meanwhile. Idempotent: ids are never
/// reused.
pub const REDO: Redo<Db1, Db2> = Redo {
    a: redo_on_users,
    b: redo_on_orders,
};

fn redo_on_users(session: &mut db1::Session, redo: &RedoRecord) -> Result<(), DbError> {
    users::delete(session, redone_user(redo)?).map(drop)
}

fn redo_on_orders(session: &mut db2::Session, redo: &RedoRecord) -> Result<(), DbError> {
    let id = redone_user(redo)?;
    orders::user_orders_lock(id, LockMode::Exclusive).take(session)?;
    orders::delete_for_user(session, id).map(drop)
}

/// A user with their newest orders and the totals of all of them.
pub struct UserSummary {
    pub user: User,
    pub orders: UserOrders,
}

/// Reads the user and their orders at the same time: the user in a batch with the
/// other requests that want a user by id at that moment (see [`db::Coalescer`]), the
/// orders in a read of their own. Neither read waits for the other while it holds a
/// connection, so one database's outage does not hold the other's connections.
pub async fn user_summary(
    users_by_id: &db::Coalescer<users::ById>,
    db2: &Pool<Db2>,
    id: UserId,
) -> Result<UserSummary, AppError> {
    let (user, orders) = futures_util::future::join(
        users_by_id.read(id),
        db::read(db2, move |session| orders::for_user(session, id)),
    )
    .await;
    let user = user?.ok_or_else(|| AppError::NotFound(format!("user {id} not found")))?;
    Ok(UserSummary {
        user,
        orders: orders?,
    })
}

/// The first `limit` users and orders by id, each read in a batch with the other
/// requests that want first users or orders at that moment (see [`db::Coalescer`]): the
/// longest ask of a batch answers every shorter one.
pub async fn overview(
    first_users: &db::Coalescer<users::First>,
    first_orders: &db::Coalescer<orders::First>,
    limit: crate::domain::Limit,
) -> Result<(Vec<User>, Vec<Order>), AppError> {
    let (users, orders) =
        futures_util::future::join(first_users.read(limit), first_orders.read(limit)).await;
    Ok((users?, orders?))
}
