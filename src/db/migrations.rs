use diesel_migrations::MigrationHarness;

use super::{context, layer_schema, Cause, Database, DbError, Pool, Write};

/// Which migrations to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// The layer's own tables only (see `layer_schema`): applied at every start.
    LayerOnly,
    /// The layer's, then the application's pending migrations of the database.
    All,
}

/// Applies the pending migrations of database `D` in the dialect of its backend, in one
/// transaction, and returns the names of those applied. Blocks.
pub fn run_migrations<D: Database>(
    pool: &Pool<D>,
    which: Migrations,
) -> Result<Vec<String>, DbError> {
    let failed = |doing: &str, cause: Cause| DbError::Other {
        database: D::NAME,
        cause: context(doing, cause),
    };
    // A write session, which keeps other instances' migrations out until it ends (on a
    // single-writer backend its lock does; elsewhere the backend takes one). Without
    // fault points: those are for requests' sessions, and a test that arms
    // `db1.commit` means a request's commit, not the start-up's.
    let mut session = pool.begin_internal::<Write>()?;
    session
        .connection()
        .lock_for_migrations()
        .map_err(|e| failed("cannot lock for migrations", e.into()))?;
    let mut applied = layer_schema::apply(&mut session)?;
    if which == Migrations::All {
        let migrations = D::migrations(pool.backend());
        applied.extend(
            session
                .connection()
                .run_pending_migrations(migrations)
                .map_err(|e| failed("migration failed", e))?
                .iter()
                .map(|version| version.to_string()),
        );
    }
    session.commit()?;
    Ok(applied)
}
