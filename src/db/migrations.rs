use diesel::connection::SimpleConnection;
use diesel_migrations::MigrationHarness;

use super::{context, AnyConnection, Backend, Cause, Database, DbError, Pool, Write};

/// Applies the pending migrations of database `D` in the dialect of its backend and
/// returns the names of those applied. Blocks.
pub fn run_migrations<D: Database>(pool: &Pool<D>) -> Result<Vec<String>, DbError> {
    let migrations = match pool.backend() {
        Backend::Postgres => D::POSTGRES_MIGRATIONS,
        Backend::Sqlite => D::SQLITE_MIGRATIONS,
    };
    // A write session: on SQLite it holds the write lock, so two instances starting
    // together do not both try to create the tables.
    let failed = |doing: &str, cause: Cause| DbError::Other {
        database: D::NAME,
        cause: context(doing, cause),
    };
    // Without fault points: those are for requests' sessions, and a test that arms
    // `db1.commit` means a request's commit, not the start-up's.
    let mut session = pool.begin_internal::<Write>()?;
    if let AnyConnection::Postgresql(pg) = session.connection() {
        // PostgreSQL takes no table lock before the first CREATE: serialize instances here.
        pg.batch_execute("SELECT pg_advisory_xact_lock(7251977001)")
            .map_err(|e| failed("cannot lock for migrations", e.into()))?;
    }
    let applied = session
        .connection()
        .run_pending_migrations(migrations)
        .map_err(|e| failed("migration failed", e))?
        .iter()
        .map(|version| version.to_string())
        .collect();
    session.commit()?;
    Ok(applied)
}
