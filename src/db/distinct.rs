//! Refusing two pools that reach the same database.
//!
//! The two databases' migrations share version numbers and the one
//! `__diesel_schema_migrations` table, and the cross-database protocol needs two
//! independent transactions: pointed at one database, the service would start broken
//! (the second database's migrations look applied; two SQLite writers on one file wait
//! for each other). URLs cannot tell (`localhost` and `127.0.0.1`, `./a` and `a`, a
//! symbolic link), so the databases are asked.

use super::{backend, Database, DbError, Pool};

/// Why two pools may not be used together.
#[derive(Debug, thiserror::Error)]
pub enum DistinctError {
    #[error("{0} and {1} are the same database; they must be two separate databases")]
    Same(&'static str, &'static str),
    #[error("cannot tell whether they are the same database")]
    Unknown(#[source] DbError),
}

/// Fails, naming no URL, when `a` and `b` reach the same database: each backend knows
/// how to tell (see `backend::same_database`). Blocks.
pub fn ensure_distinct<A: Database, B: Database>(
    a: &Pool<A>,
    b: &Pool<B>,
) -> Result<(), DistinctError> {
    let unknown = |error| Err(DistinctError::Unknown(error));
    let (mut a_conn, mut b_conn) = match (a.connection(), b.connection()) {
        (Ok(a_conn), Ok(b_conn)) => (a_conn, b_conn),
        (Err(error), _) | (_, Err(error)) => return unknown(error),
    };
    match backend::same_database(&mut a_conn, &mut b_conn) {
        Ok(false) => Ok(()),
        Ok(true) => Err(DistinctError::Same(A::NAME, B::NAME)),
        Err(cause) => unknown(DbError::Other {
            database: A::NAME,
            cause,
        }),
    }
}
