use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db1::schema::users;
use crate::domain::{Email, Text, UserId};

/// A user as stored. Read by field name (`Selectable`), checked against the table for
/// both backends at compile time; the API shows it as `http::bodies::UserBody`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

/// A validated new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: Text,
}

/// A validated partial update: `None` leaves the column as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<Email>,
    pub name: Option<Text>,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
pub(super) struct UserChangeset<'a> {
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
}
