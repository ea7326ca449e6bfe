//! Recognising which database a pool reaches, before the service serves.
//!
//! The two databases' migrations share version numbers, so a database migrated with the
//! other's migrations (the diesel CLI pointed at the wrong directory), or the two URLs
//! swapped, look migrated to Diesel and fail only at the first request. Each database
//! names a table that only it has ([`Database::OWN_TABLE`]): a pool must not reach a
//! database holding the other's, and, once migrated, must hold its own.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use super::{Database, DbError, Pool};

#[derive(QueryableByName)]
struct Present {
    #[diesel(sql_type = Bool)]
    present: bool,
}

/// Why a pool is not talking to the database it is configured for.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{this} reaches {other}'s database (it has {other}'s table `{table}`): are the two URLs swapped, or were {other}'s migrations applied to it?")]
    Other {
        this: &'static str,
        other: &'static str,
        table: &'static str,
    },
    #[error("{this} has no table `{table}`: it is not migrated (run `multidb migrate`, or start with RUN_MIGRATIONS=true)")]
    NotMigrated {
        this: &'static str,
        table: &'static str,
    },
    #[error("cannot tell which database {0} reaches")]
    Unknown(&'static str, #[source] DbError),
}

/// Fails when `a` holds `B`'s table or `b` holds `A`'s: before migrations, which would
/// otherwise add one database's tables to the other's. Blocks.
pub fn ensure_not_swapped<A: Database, B: Database>(
    a: &Pool<A>,
    b: &Pool<B>,
) -> Result<(), IdentityError> {
    refuse_table_of::<A, B>(a)?;
    refuse_table_of::<B, A>(b)
}

/// Fails when `pool`'s database lacks its own table: after migrations. Blocks.
pub fn ensure_migrated<D: Database>(pool: &Pool<D>) -> Result<(), IdentityError> {
    match has_table(pool, D::OWN_TABLE) {
        Ok(true) => Ok(()),
        Ok(false) => Err(IdentityError::NotMigrated {
            this: D::NAME,
            table: D::OWN_TABLE,
        }),
        Err(error) => Err(IdentityError::Unknown(D::NAME, error)),
    }
}

fn refuse_table_of<This: Database, Other: Database>(
    pool: &Pool<This>,
) -> Result<(), IdentityError> {
    match has_table(pool, Other::OWN_TABLE) {
        Ok(false) => Ok(()),
        Ok(true) => Err(IdentityError::Other {
            this: This::NAME,
            other: Other::NAME,
            table: Other::OWN_TABLE,
        }),
        Err(error) => Err(IdentityError::Unknown(This::NAME, error)),
    }
}

fn has_table<D: Database>(pool: &Pool<D>, table: &str) -> Result<bool, DbError> {
    let sql = pool.backend().dialect().table_exists();
    let mut conn = pool.connection()?;
    diesel::sql_query(sql)
        .bind::<Text, _>(table)
        .get_result::<Present>(&mut *conn)
        .map(|row| row.present)
        .map_err(|e| DbError::from_diesel(D::NAME, e))
}
