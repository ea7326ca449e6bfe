//! Refusing two pools that reach the same database.
//!
//! The two databases' migrations share version numbers and the one
//! `__diesel_schema_migrations` table, and the cross-database protocol needs two
//! independent transactions: pointed at one database, the service would start broken
//! (the second database's migrations look applied; two SQLite writers on one file wait
//! for each other). URLs cannot tell (`localhost` and `127.0.0.1`, `./a` and `a`, a
//! symbolic link), so the databases are asked.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text};

use super::{context, AnyConnection, Backend, Database, DbError, Pool, Session, Write};

/// First key of the advisory lock that the same-database probe takes ("mdb2").
const PROBE_LOCK_CLASS: i32 = 0x6D64_6232;

/// Why two pools may not be used together.
#[derive(Debug, thiserror::Error)]
pub enum DistinctError {
    #[error("{0} and {1} are the same database; they must be two separate databases")]
    Same(&'static str, &'static str),
    #[error("cannot tell whether they are the same database")]
    Unknown(#[source] DbError),
}

/// Fails, naming no URL, when `a` and `b` reach the same database. Blocks.
pub fn ensure_distinct<A: Database, B: Database>(
    a: &Pool<A>,
    b: &Pool<B>,
) -> Result<(), DistinctError> {
    let same = match (a.backend(), b.backend()) {
        (Backend::Postgres, Backend::Postgres) => same_postgres_database(a, b),
        (Backend::Sqlite, Backend::Sqlite) => same_sqlite_file(a, b),
        _ => Ok(false),
    };
    match same {
        Ok(false) => Ok(()),
        Ok(true) => Err(DistinctError::Same(A::NAME, B::NAME)),
        Err(error) => Err(DistinctError::Unknown(error)),
    }
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Bool)]
    found: bool,
}

/// Takes a transaction-level advisory lock on a random key through `a`, and looks for
/// it, in its own database, through `b`: only the same database of the same server
/// shows it.
fn same_postgres_database<A: Database, B: Database>(
    a: &Pool<A>,
    b: &Pool<B>,
) -> Result<bool, DbError> {
    let key = i32::from_ne_bytes(
        uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .unwrap_or_default(),
    ) & i32::MAX;
    let mut holder = a.begin_internal::<Write>()?;
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind::<Integer, _>(PROBE_LOCK_CLASS)
        .bind::<Integer, _>(key)
        .execute(holder.connection())
        .map_err(Session::<A>::error)?;
    let mut probe = b.connection()?;
    let found = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 2) AS found",
    )
    .bind::<BigInt, _>(i64::from(PROBE_LOCK_CLASS))
    .bind::<BigInt, _>(i64::from(key))
    .get_result::<Found>(&mut *probe)
    .map_err(|e| DbError::from_diesel(B::NAME, e))?;
    // Dropping `holder` rolls back, releasing the lock.
    Ok(found.found)
}

#[derive(QueryableByName)]
struct AttachedFile {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    file: String,
}

/// Compares the files SQLite itself opened (after `./`, `..` and symbolic links are
/// resolved), by device and inode, so that hard links count as the same file too.
fn same_sqlite_file<A: Database, B: Database>(a: &Pool<A>, b: &Pool<B>) -> Result<bool, DbError> {
    let (a_file, b_file) = (main_file(a)?, main_file(b)?);
    // An in-memory database has no file, and is private to its connection.
    if a_file.is_empty() || b_file.is_empty() {
        return Ok(false);
    }
    let identity = |file: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(file)
            .map(|meta| (meta.dev(), meta.ino()))
            .map_err(|e| DbError::Other {
                database: "sqlite",
                cause: context(format!("cannot inspect the SQLite file {file}"), e),
            })
    };
    Ok(identity(&a_file)? == identity(&b_file)?)
}

fn main_file<D: Database>(pool: &Pool<D>) -> Result<String, DbError> {
    let mut conn = pool.connection()?;
    let AnyConnection::Sqlite(sqlite) = &mut *conn else {
        return Ok(String::new());
    };
    let files = diesel::sql_query("SELECT name, file FROM pragma_database_list")
        .load::<AttachedFile>(sqlite)
        .map_err(|e| DbError::from_diesel(D::NAME, e))?;
    Ok(files
        .into_iter()
        .find(|attached| attached.name == "main")
        .map(|attached| attached.file)
        .unwrap_or_default())
}
