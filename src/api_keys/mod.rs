//! API keys, kept in db1: who may call the API, and with which scope (see README,
//! "Authentication"). Created, listed and revoked by `multidb keys`; checked by
//! `http::auth` on every request to a route that is not public.

pub mod command;
mod token;

pub use token::{mint, Minted, Presented};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::{Access, Database, DbError};
use crate::db1::schema::api_keys;
use crate::db1::{Db1, Session};
use crate::domain::timestamp;

/// What a key may do: `read` may use `GET`, `write` every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// A key as stored: never its token.
#[derive(Debug, Clone, Queryable)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub secret_sha256: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ApiKey {
    pub fn scope(&self) -> Option<Scope> {
        Scope::parse(&self.scope)
    }
}

/// Stores a new key and returns it with its token, which exists nowhere else.
pub fn create(
    session: &mut Session,
    name: &str,
    scope: Scope,
) -> Result<(ApiKey, String), DbError> {
    let minted = mint().map_err(|error| DbError::Other {
        database: Db1::NAME,
        cause: format!("no random bytes from the operating system: {error}").into(),
    })?;
    // Every value is known before the insert (the id is minted here), so nothing needs
    // to be read back: no RETURNING, which not every backend has.
    let key = ApiKey {
        id: minted.id,
        name: name.to_owned(),
        scope: scope.as_str().to_owned(),
        secret_sha256: minted.secret_sha256,
        created_at: timestamp::now(),
        last_used_at: None,
        revoked_at: None,
    };
    session.execute(diesel::insert_into(api_keys::table).values((
        api_keys::id.eq(&key.id),
        api_keys::name.eq(&key.name),
        api_keys::scope.eq(&key.scope),
        api_keys::secret_sha256.eq(&key.secret_sha256),
        api_keys::created_at.eq(key.created_at),
    )))?;
    Ok((key, minted.token))
}

pub fn find<M: Access>(session: &mut Session<M>, id: &str) -> Result<Option<ApiKey>, DbError> {
    session.load_optional(api_keys::table.find(id.to_owned()))
}

/// Every key, oldest first.
pub fn list<M: Access>(session: &mut Session<M>) -> Result<Vec<ApiKey>, DbError> {
    session.load(api_keys::table.order((api_keys::created_at.asc(), api_keys::id.asc())))
}

/// Revokes a key; `false` if there is no such key. Revoking twice keeps the first time.
pub fn revoke(session: &mut Session, id: &str) -> Result<bool, DbError> {
    let found: Option<String> =
        session.load_optional(api_keys::table.find(id).select(api_keys::id))?;
    if found.is_none() {
        return Ok(false);
    }
    session.execute(
        diesel::update(
            api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(timestamp::now())),
    )?;
    Ok(true)
}

/// Notes that a key was used at `at` (called at most once a minute per key).
pub fn touch(session: &mut Session, id: &str, at: NaiveDateTime) -> Result<(), DbError> {
    session
        .execute(diesel::update(api_keys::table.find(id)).set(api_keys::last_used_at.eq(at)))
        .map(drop)
}
