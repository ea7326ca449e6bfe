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

use super::{AnyConnection, Backend, Database, Pool, Write};

/// First key of the advisory lock that the same-database probe takes ("mdb2").
const PROBE_LOCK_CLASS: i32 = 0x6D64_6232;

/// Fails, naming no URL, when `a` and `b` reach the same database. Blocks.
pub fn ensure_distinct<A: Database, B: Database>(a: &Pool<A>, b: &Pool<B>) -> Result<(), String> {
    let same = match (a.backend(), b.backend()) {
        (Backend::Postgres, Backend::Postgres) => same_postgres_database(a, b)?,
        (Backend::Sqlite, Backend::Sqlite) => same_sqlite_file(a, b)?,
        _ => false,
    };
    if same {
        return Err(format!(
            "{} and {} are the same database; they must be two separate databases",
            A::NAME,
            B::NAME
        ));
    }
    Ok(())
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
) -> Result<bool, String> {
    let key = i32::from_ne_bytes(
        uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .unwrap_or_default(),
    ) & i32::MAX;
    let mut holder = a.begin_internal::<Write>().map_err(|e| e.to_string())?;
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind::<Integer, _>(PROBE_LOCK_CLASS)
        .bind::<Integer, _>(key)
        .execute(holder.connection())
        .map_err(|e| format!("{}: cannot check its identity: {e}", A::NAME))?;
    let mut probe = b.connection().map_err(|e| e.to_string())?;
    let found = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 2) AS found",
    )
    .bind::<BigInt, _>(i64::from(PROBE_LOCK_CLASS))
    .bind::<BigInt, _>(i64::from(key))
    .get_result::<Found>(&mut *probe)
    .map_err(|e| format!("{}: cannot check its identity: {e}", B::NAME))?;
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
fn same_sqlite_file<A: Database, B: Database>(a: &Pool<A>, b: &Pool<B>) -> Result<bool, String> {
    let (a_file, b_file) = (main_file(a)?, main_file(b)?);
    // An in-memory database has no file, and is private to its connection.
    if a_file.is_empty() || b_file.is_empty() {
        return Ok(false);
    }
    let identity = |file: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(file)
            .map(|meta| (meta.dev(), meta.ino()))
            .map_err(|e| format!("cannot inspect the SQLite file {file}: {e}"))
    };
    Ok(identity(&a_file)? == identity(&b_file)?)
}

fn main_file<D: Database>(pool: &Pool<D>) -> Result<String, String> {
    let mut conn = pool.connection().map_err(|e| e.to_string())?;
    let AnyConnection::Sqlite(sqlite) = &mut *conn else {
        return Ok(String::new());
    };
    let files = diesel::sql_query("SELECT name, file FROM pragma_database_list")
        .load::<AttachedFile>(sqlite)
        .map_err(|e| format!("{}: cannot find its file: {e}", D::NAME))?;
    Ok(files
        .into_iter()
        .find(|attached| attached.name == "main")
        .map(|attached| attached.file)
        .unwrap_or_default())
}
