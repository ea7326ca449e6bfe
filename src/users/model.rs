use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::schema::users;
use crate::domain::{schema, timestamp, Email, Text, UserId};

/// A user as stored and as shown: `{"id","email","name","created_at"}`. Read by field
/// name (`Selectable`), checked against the table for both backends at compile time.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: UserId,
    #[schema(schema_with = schema::email)]
    pub email: String,
    #[schema(schema_with = schema::text)]
    pub name: String,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(schema_with = schema::timestamp)]
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
