//! `multidb migrate status` and `multidb migrate --dry-run`: each database's migrations,
//! applied and pending, read without applying or creating anything.

use std::fmt::Write as _;

use serde::Serialize;

use super::Opened;
use crate::config::Settings;
use crate::db::{migration_state, Database, DbError, MigrationState};
use crate::db1::Db1;
use crate::db2::Db2;

/// One database's migrations.
#[derive(Debug, Serialize)]
pub struct DatabaseMigrations {
    /// `db1` or `db2`.
    pub name: &'static str,
    pub backend: String,
    /// The URL without its password.
    pub url: String,
    /// False for a SQLite file not created yet: everything is pending.
    pub exists: bool,
    #[serde(flatten)]
    pub state: MigrationState,
}

impl DatabaseMigrations {
    fn read<D: Database>(opened: &Opened<D>) -> Result<Self, DbError> {
        let backend = opened.settings.url.backend();
        let state = match &opened.pool {
            Some(pool) => migration_state(pool)?,
            None => MigrationState::nothing_applied::<D>(backend)?,
        };
        Ok(Self {
            name: D::NAME,
            backend: backend.to_string(),
            url: opened.settings.url.to_string(),
            exists: opened.pool.is_some(),
            state,
        })
    }
}

/// Both databases' migrations. Blocks.
pub fn status(settings: &Settings) -> anyhow::Result<Vec<DatabaseMigrations>> {
    let (db1, db2) = super::open(settings)?;
    Ok(read_both(&db1, &db2)?)
}

/// The migrations of both databases opened. Blocks.
pub fn read_both(db1: &Opened<Db1>, db2: &Opened<Db2>) -> Result<Vec<DatabaseMigrations>, DbError> {
    Ok(vec![
        DatabaseMigrations::read::<Db1>(db1)?,
        DatabaseMigrations::read::<Db2>(db2)?,
    ])
}

/// Every migration with its state, database by database, for a person.
pub fn status_text(databases: &[DatabaseMigrations]) -> String {
    let mut text = String::new();
    for database in databases {
        let _ = writeln!(
            text,
            "{} ({}, {}){}: {} pending",
            database.name,
            database.backend,
            database.url,
            if database.exists {
                ""
            } else {
                ", not created yet"
            },
            database.state.pending()
        );
        for (part, listing) in [
            ("layer", &database.state.layer),
            ("application", &database.state.application),
        ] {
            for (state, names) in [
                ("applied", &listing.applied),
                ("pending", &listing.pending),
                ("unknown", &listing.unknown),
            ] {
                for name in names {
                    let _ = writeln!(text, "  {state:<8} {part:<12} {name}");
                }
            }
        }
    }
    if databases.iter().any(|database| {
        !database.state.layer.unknown.is_empty() || !database.state.application.unknown.is_empty()
    }) {
        text.push_str("unknown: recorded as applied but not in this build; a newer build migrated the database\n");
    }
    text
}

/// What `multidb migrate` would apply, for a person.
pub fn dry_run_text(databases: &[DatabaseMigrations]) -> String {
    let mut text = String::new();
    for database in databases {
        let pending: Vec<String> = database
            .state
            .layer
            .pending
            .iter()
            .map(|name| format!("layer {name}"))
            .chain(database.state.application.pending.iter().cloned())
            .collect();
        if pending.is_empty() {
            let _ = writeln!(text, "{}: nothing to apply", database.name);
            continue;
        }
        let _ = writeln!(text, "{}: would apply {}", database.name, pending.len());
        for name in pending {
            let _ = writeln!(text, "  {name}");
        }
    }
    text.push_str("nothing was applied (--dry-run)\n");
    text
}
