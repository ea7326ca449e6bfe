use diesel_migrations::MigrationHarness;

use super::{context, layer_schema, AnyConnection, Backend, Cause, Database, DbError, Pool, Write};

/// Which migrations to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// The layer's own tables only (see `layer_schema`): applied at every start.
    LayerOnly,
    /// The layer's, then the application's pending migrations of the database.
    All,
}

/// Applies the pending migrations of database `D` in the dialect of its backend and
/// returns the names of those applied: in one transaction where DDL is transactional,
/// else one statement after the other (each safe to run again). Blocks.
pub fn run_migrations<D: Database>(
    pool: &Pool<D>,
    which: Migrations,
) -> Result<Vec<String>, DbError> {
    if !pool.features().transactional_ddl {
        // DDL commits implicitly: no transaction can hold the migrations' lock. A
        // connection of the migrations' own holds a session lock instead, released when
        // it closes at the end of this block, on every path.
        let mut conn = pool.open_dedicated()?;
        conn.lock_for_migrations()
            .map_err(|e| failed::<D>("cannot lock for migrations", e.into()))?;
        return apply_all::<D>(&mut conn, pool.backend(), which);
    }
    // A write session, which keeps other instances' migrations out until it ends (on a
    // single-writer backend its lock does; elsewhere the backend takes one). Without
    // fault points: those are for requests' sessions, and a test that arms
    // `db1.commit` means a request's commit, not the start-up's.
    let mut session = pool.begin_internal::<Write>()?;
    session
        .connection()
        .lock_for_migrations()
        .map_err(|e| failed::<D>("cannot lock for migrations", e.into()))?;
    let applied = apply_all::<D>(session.connection(), pool.backend(), which)?;
    session.commit()?;
    Ok(applied)
}

fn failed<D: Database>(doing: &str, cause: Cause) -> DbError {
    DbError::Other {
        database: D::NAME,
        cause: context(doing, cause),
    }
}

/// The layer's schema, then (with [`Migrations::All`]) the application's migrations.
fn apply_all<D: Database>(
    conn: &mut AnyConnection,
    backend: Backend,
    which: Migrations,
) -> Result<Vec<String>, DbError> {
    let mut applied = layer_schema::apply::<D>(conn)?;
    if which == Migrations::All {
        applied.extend(
            conn.run_pending_migrations(D::migrations(backend))
                .map_err(|e| failed::<D>("migration failed", e))?
                .iter()
                .map(|version| version.to_string()),
        );
    }
    Ok(applied)
}
