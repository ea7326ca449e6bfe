use diesel::prelude::*;
use diesel_migrations::MigrationHarness;

use super::layer_schema::Present;
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

/// Which migrations of one database are applied, read without changing anything: where
/// a table of versions does not exist yet, nothing of it is applied (Diesel's
/// `applied_migrations` would create `__diesel_schema_migrations`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationState {
    /// The layer's own schema (`multidb_layer_migrations`).
    pub layer: Listing,
    /// The application's migrations (`__diesel_schema_migrations`).
    pub application: Listing,
}

/// Migrations by state, each in the order it applies, named as its directory is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
    /// Recorded as applied but not among this build's: a newer build migrated the
    /// database.
    pub unknown: Vec<String>,
}

impl MigrationState {
    /// Everything pending: a database that does not exist yet.
    pub fn nothing_applied<D: Database>(backend: Backend) -> Result<Self, DbError> {
        Self::of::<D>(backend, &[], &[])
    }

    pub fn pending(&self) -> usize {
        self.layer.pending.len() + self.application.pending.len()
    }

    fn of<D: Database>(
        backend: Backend,
        layer_applied: &[i64],
        application_applied: &[String],
    ) -> Result<Self, DbError> {
        let mut layer = Listing::default();
        for migration in backend.layer_migrations() {
            let name = format!("{:03}_{}", migration.version, migration.name);
            match layer_applied.contains(&migration.version) {
                true => layer.applied.push(name),
                false => layer.pending.push(name),
            }
        }
        let known: Vec<i64> = backend
            .layer_migrations()
            .iter()
            .map(|m| m.version)
            .collect();
        layer.unknown = layer_applied
            .iter()
            .filter(|version| !known.contains(version))
            .map(|version| format!("{version:03}"))
            .collect();

        let source = D::migrations(backend);
        // The list is the same whichever backend's type reads it.
        let migrations =
            diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&source)
                .map_err(|e| failed::<D>("cannot list the embedded migrations", e))?;
        let mut application = Listing::default();
        let mut versions = Vec::new();
        for migration in &migrations {
            let version = migration.name().version().to_string();
            match application_applied.contains(&version) {
                true => application.applied.push(migration.name().to_string()),
                false => application.pending.push(migration.name().to_string()),
            }
            versions.push(version);
        }
        application.unknown = application_applied
            .iter()
            .filter(|version| !versions.contains(version))
            .cloned()
            .collect();
        Ok(Self { layer, application })
    }
}

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

#[derive(QueryableByName)]
struct LayerVersion {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    version: i64,
}

/// The migration state of `pool`'s database: reads only. Blocks.
pub fn migration_state<D: Database>(pool: &Pool<D>) -> Result<MigrationState, DbError> {
    let backend = pool.backend();
    let mut conn = pool.connection()?;
    let read =
        |e: diesel::result::Error| failed::<D>("cannot read the migrations applied", e.into());
    let mut exists = |table: &str| {
        diesel::sql_query(backend.dialect().table_exists())
            .bind::<diesel::sql_types::Text, _>(table)
            .get_result::<Present>(&mut *conn)
            .map(|found| found.present)
    };
    let layer_table = exists("multidb_layer_migrations").map_err(read)?;
    let diesel_table = exists("__diesel_schema_migrations").map_err(read)?;
    let layer: Vec<i64> = listed::<LayerVersion>(
        &mut conn,
        layer_table,
        "SELECT version FROM multidb_layer_migrations ORDER BY version",
    )
    .map_err(read)?
    .into_iter()
    .map(|row| row.version)
    .collect();
    let application: Vec<String> = listed::<AppliedVersion>(
        &mut conn,
        diesel_table,
        "SELECT version FROM __diesel_schema_migrations ORDER BY version",
    )
    .map_err(read)?
    .into_iter()
    .map(|row| row.version)
    .collect();
    MigrationState::of::<D>(backend, &layer, &application)
}

/// The rows `sql` reads from a table of versions, or none where the table does not exist.
fn listed<R>(conn: &mut AnyConnection, table_exists: bool, sql: &str) -> QueryResult<Vec<R>>
where
    R: QueryableByName<<AnyConnection as diesel::Connection>::Backend> + 'static,
{
    if !table_exists {
        return Ok(Vec::new());
    }
    diesel::sql_query(sql).load(conn)
}
