use diesel::prelude::*;

use super::model::UserChangeset;
use super::{NewUser, User, UserChanges};
use crate::db::Database;
use std::collections::HashMap;

use crate::db::{Access, AnyConnection, DbError, Read};
use crate::db1::schema::users;
use crate::db1::{Db1, Session};
use crate::domain::{timestamp, AfterId, Limit, Page, UserId};

/// Why a user could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The only unique constraint of `users` besides its key: emails, in any case.
    #[error("the email is already taken")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] DbError),
}

fn email_taken(error: DbError) -> WriteError {
    match error {
        DbError::Conflict { .. } => WriteError::EmailTaken,
        other => WriteError::Database(other),
    }
}

/// Inserts a user.
pub fn insert(session: &mut Session, new: &NewUser) -> Result<User, WriteError> {
    let created_at = timestamp::now();
    let insert = || {
        diesel::insert_into(users::table).values((
            users::email.eq(new.email.as_str()),
            users::name.eq(new.name.as_str()),
            users::created_at.eq(created_at),
        ))
    };
    session
        .write_returning(
            // Positional: Diesel 2.3's MultiConnection cannot RETURNING a `SelectBy` (it
            // is a query fragment of its MultiBackend only); `all_columns` is in `User`'s
            // field order.
            insert().returning(users::all_columns),
            |session| {
                session.execute(insert())?;
                let id = session.last_insert_id();
                session.load_optional(
                    users::table
                        .filter(users::id.eq(id))
                        .select(User::as_select()),
                )
            },
        )
        .map_err(email_taken)?
        .ok_or_else(|| WriteError::Database(inserted_nothing()))
}

/// An `INSERT` that reported no row: the database broke its own contract.
fn inserted_nothing() -> DbError {
    DbError::Other {
        database: Db1::NAME,
        cause: "an INSERT into users gave back no row".into(),
    }
}

pub fn find<M: Access>(session: &mut Session<M>, id: UserId) -> Result<Option<User>, DbError> {
    session.load_optional(users::table.find(id).select(User::as_select()))
}

/// Users by id, read for many requests at once (see [`crate::db::Coalescer`]).
pub struct ById;

impl crate::db::BatchRead for ById {
    type Database = Db1;
    type Key = UserId;
    type Answer = Option<User>;
    type Batch = HashMap<UserId, User>;

    fn one(session: &mut Session<Read>, id: UserId) -> Result<Option<User>, DbError> {
        find(session, id)
    }

    fn many(session: &mut Session<Read>, ids: &[UserId]) -> Result<Self::Batch, DbError> {
        let users: Vec<User> = session.load(
            users::table
                .filter(users::id.eq_any(ids))
                .select(User::as_select()),
        )?;
        Ok(users.into_iter().map(|user| (user.id, user)).collect())
    }

    fn answer(users: &Self::Batch, id: UserId) -> Option<User> {
        users.get(&id).cloned()
    }
}

/// The first users by id, as many as a request asks, read for many requests at once:
/// the first page of the longest ask answers every shorter one.
pub struct First;

impl crate::db::BatchRead for First {
    type Database = Db1;
    type Key = Limit;
    type Answer = Vec<User>;
    type Batch = Vec<User>;

    fn one(session: &mut Session<Read>, limit: Limit) -> Result<Vec<User>, DbError> {
        session.load(
            users::table
                .order(users::id.asc())
                .limit(limit.get())
                .select(User::as_select()),
        )
    }

    fn many(session: &mut Session<Read>, limits: &[Limit]) -> Result<Vec<User>, DbError> {
        match limits.iter().copied().max() {
            Some(longest) => Self::one(session, longest),
            None => Ok(Vec::new()),
        }
    }

    fn answer(users: &Self::Batch, limit: Limit) -> Vec<User> {
        users.iter().take(limit.count()).cloned().collect()
    }
}

/// Users with ids after `after`, in id order.
pub fn page<M: Access>(
    session: &mut Session<M>,
    after: AfterId,
    limit: Limit,
) -> Result<Page<User>, DbError> {
    let rows = session.load(
        users::table
            .filter(users::id.gt(after.get()))
            .order(users::id.asc())
            .limit(limit.get() + 1)
            .select(User::as_select()),
    )?;
    Ok(Page::from_rows(rows, limit.get(), |user: &User| {
        user.id.get()
    }))
}

/// Applies `changes`; `None` when there is no such user.
pub fn update(
    session: &mut Session,
    id: UserId,
    changes: &UserChanges,
) -> Result<Option<User>, WriteError> {
    let changeset = UserChangeset {
        email: changes.email.as_ref().map(|email| email.as_str()),
        name: changes.name.as_ref().map(|name| name.as_str()),
    };
    let update = || diesel::update(users::table.find(id)).set(&changeset);
    session
        .write_returning(
            // Positional, as in `insert`.
            update().returning(users::all_columns),
            |session| {
                // Read back by key whatever the count says: a backend without RETURNING
                // (MySQL) counts only rows whose values changed.
                session.execute(update())?;
                session.load_optional(users::table.find(id).select(User::as_select()))
            },
        )
        .map_err(email_taken)
}

/// Deletes the user; `false` when there was none.
pub fn delete(session: &mut Session, id: UserId) -> Result<bool, DbError> {
    let deleted = session.execute(diesel::delete(users::table.find(id)))?;
    Ok(deleted > 0)
}

/// Checks that the user exists and keeps it from being deleted until `session` ends:
/// the guarantee an order in db2 needs while it is being written.
///
/// PostgreSQL: `FOR KEY SHARE` conflicts with `DELETE` (and with changes of the key)
/// but not with other orders for the same user or with updates of name and email.
/// SQLite has no row locks; the session must be a write session, whose `BEGIN IMMEDIATE`
/// already holds the database's write lock, so no deletion can start meanwhile.
/// MySQL: `LOCK IN SHARE MODE`, which also makes a change of the user's name or email
/// wait for the order's commit (MySQL has no key-share mode). Diesel's `for_share`
/// writes `FOR SHARE`, which MariaDB rejects, hence the SQL text.
///
/// The one place the application names a backend: Diesel implements `for_key_share`
/// for PostgreSQL's query builder only, so the lock needs the concrete connection.
pub fn lock_existing(session: &mut Session, id: UserId) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let query = users::table.find(id).select(users::id);
    let found: Option<i64> = match session.connection() {
        AnyConnection::Postgresql(pg) => query.for_key_share().first(pg).optional(),
        AnyConnection::Sqlite(sqlite) => query.first(sqlite).optional(),
        AnyConnection::Mysql(mysql) => {
            diesel::sql_query("SELECT id FROM users WHERE id = ? LOCK IN SHARE MODE")
                .bind::<diesel::sql_types::BigInt, _>(id.get())
                .get_result::<Locked>(mysql)
                .optional()
                .map(|locked| locked.map(|row| row.id))
        }
    }
    .map_err(<Session>::error)?;
    Ok(found.is_some())
}

/// Which of `ids` are users: a primary-key lookup each.
pub fn existing<M: Access>(
    session: &mut Session<M>,
    ids: &[UserId],
) -> Result<Vec<UserId>, DbError> {
    session.load(users::table.filter(users::id.eq_any(ids)).select(users::id))
}
