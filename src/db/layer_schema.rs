//! The layer's own tables — decisions, leases, the recovery turn, idempotency keys —
//! owned and versioned by the layer and applied to every database it manages, apart
//! from the application's migrations: as Diesel keeps `__diesel_schema_migrations` to
//! itself, Oban versions its tables with `Oban.Migration`, and a Django app ships its
//! own migrations. One copy per backend (`backend/<vendor>/schema/`); the versions
//! applied are in `multidb_layer_migrations`. The diesel CLI, pointed at the
//! application's migration directories, never sees them.
//!
//! They are applied whenever the service starts (whatever `RUN_MIGRATIONS` says of the
//! application's) and by `multidb migrate`, in the same write session as the
//! application's migrations, under the same lock against other instances.
//!
//! **Upgrading from before the layer owned its tables.** Databases migrated by multidb
//! until December 2026 have these tables already, created by four application
//! migrations recorded in `__diesel_schema_migrations`. The first version of the layer's
//! schema creates only what does not exist (every statement `IF NOT EXISTS` or `DO
//! NOTHING`), so nothing is lost and nothing applied twice; and the layer takes those
//! four versions out of Diesel's table, which then lists only the application's
//! migrations — as the diesel CLI's `migration revert` needs, since it looks the latest
//! applied version up in the directory it is given.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text, Timestamp};

use super::{clock, context, AnyConnection, Database, DbError};

/// One version of the layer's schema, in one backend's dialect.
pub(crate) struct LayerMigration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    /// Statements run as one batch, in the migrations' transaction.
    pub(crate) up: &'static str,
}

/// The versions of the application migrations that created the layer's tables before
/// the layer owned them (Diesel's form of `2026-11-24-000002_create_decisions` & co.).
const ADOPTED_APPLICATION_VERSIONS: [&str; 4] = [
    "20261124000002",
    "20261125000001",
    "20261126000001",
    "20261128000001",
];

diesel::table! {
    /// The layer's schema versions applied to this database.
    multidb_layer_migrations (version) {
        version -> BigInt,
        name -> Text,
        applied_at -> Timestamp,
    }
}

/// The answer of a dialect's `table_exists` query.
#[derive(QueryableByName)]
pub(crate) struct Present {
    #[diesel(sql_type = Bool)]
    pub(crate) present: bool,
}

/// Applies the layer's versions not yet applied, on `conn` (which holds the migrations'
/// lock: in a transaction where DDL is transactional, else for the connection's life),
/// and returns their names. Blocks.
pub(crate) fn apply<D: Database>(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    let backend = conn.backend();
    let failed = |doing: String, cause: diesel::result::Error| DbError::Other {
        database: D::NAME,
        cause: context(doing, cause),
    };
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS multidb_layer_migrations (\
             version BIGINT PRIMARY KEY NOT NULL, \
             name TEXT NOT NULL, \
             applied_at TIMESTAMP NOT NULL)",
    )
    .map_err(|e| failed("cannot create multidb_layer_migrations".into(), e))?;
    let applied: Vec<i64> = multidb_layer_migrations::table
        .select(multidb_layer_migrations::version)
        .load(conn)
        .map_err(|e| failed("cannot read multidb_layer_migrations".into(), e))?;
    let mut names = Vec::new();
    for migration in backend.layer_migrations() {
        if applied.contains(&migration.version) {
            continue;
        }
        let label = format!("layer {:03}_{}", migration.version, migration.name);
        conn.batch_execute(migration.up)
            .map_err(|e| failed(format!("{label} failed"), e))?;
        diesel::insert_into(multidb_layer_migrations::table)
            .values((
                multidb_layer_migrations::version.eq(migration.version),
                multidb_layer_migrations::name.eq(migration.name),
                multidb_layer_migrations::applied_at
                    .eq(diesel::dsl::sql::<Timestamp>(clock::now_timestamp(backend))),
            ))
            .execute(conn)
            .map_err(|e| failed(format!("cannot record {label}"), e))?;
        names.push(label);
    }
    forget_adopted_versions(conn, backend).map_err(|e| {
        failed(
            "cannot take the layer's former migrations out of __diesel_schema_migrations".into(),
            e,
        )
    })?;
    Ok(names)
}

/// Takes [`ADOPTED_APPLICATION_VERSIONS`] out of Diesel's table, where there is one.
fn forget_adopted_versions(
    conn: &mut super::AnyConnection,
    backend: super::Backend,
) -> QueryResult<()> {
    let diesel_table = diesel::sql_query(backend.dialect().table_exists())
        .bind::<Text, _>("__diesel_schema_migrations")
        .get_result::<Present>(conn)?;
    if !diesel_table.present {
        return Ok(());
    }
    let listed = ADOPTED_APPLICATION_VERSIONS
        .iter()
        .map(|version| format!("'{version}'"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.batch_execute(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version IN ({listed})"
    ))
}
