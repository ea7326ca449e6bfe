//! `multidb keys create|list|revoke`: API keys managed with the binary, on the database
//! the server uses (the same settings: `DATABASE_URL_1`, `.env`, `RUN_MIGRATIONS`).

use std::fmt::Write as _;

use chrono::NaiveDateTime;

use super::{create, list, revoke, ApiKey, Scope};
use crate::config::Settings;
use crate::db::{self, Pool, Read, Write};
use crate::db1::Db1;
use crate::domain::Text;

/// `multidb keys …`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token, once: only its hash is stored
    Create {
        /// What the key is for, shown by `keys list` (1 to 200 characters)
        #[arg(long)]
        name: String,
        /// `read` (GET only) or `write` (every method)
        #[arg(long, value_parser = parse_scope)]
        scope: Scope,
    },
    /// List the keys: id, name, scope, created, last used, revoked; never a token
    List {
        /// A JSON array instead of the table, for scripts
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every running instance refuses it within 5 seconds
    Revoke {
        /// The key's id (the 16 hexadecimal digits after `mdb_`)
        id: String,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).ok_or_else(|| format!("a scope is `read` or `write`, not `{text}`"))
}

/// What went wrong: the command line (exit 2) or the work (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs `command` and returns what it prints on stdout.
pub fn run(settings: &Settings, command: KeysCommand) -> Result<String, CommandError> {
    match command {
        KeysCommand::Create { name, scope } => {
            let name = Text::parse("--name", &name).map_err(CommandError::Usage)?;
            let pool = connect(settings)?;
            let mut session = pool.begin::<Write>().map_err(failed)?;
            let (key, token) = create(&mut session, name.as_str(), scope).map_err(failed)?;
            session.commit().map_err(failed)?;
            log::info!("created API key {} ({}, {})", key.id, key.name, key.scope);
            Ok(format!("{token}\n"))
        }
        KeysCommand::List { json } => {
            let pool = connect(settings)?;
            let mut session = pool.begin::<Read>().map_err(failed)?;
            let keys = list(&mut session).map_err(failed)?;
            Ok(if json { as_json(&keys) } else { table(&keys) })
        }
        KeysCommand::Revoke { id } => {
            let pool = connect(settings)?;
            let mut session = pool.begin::<Write>().map_err(failed)?;
            if !revoke(&mut session, &id).map_err(failed)? {
                return Err(CommandError::Failed(format!("no API key `{id}`")));
            }
            session.commit().map_err(failed)?;
            Ok(format!("revoked {id}\n"))
        }
    }
}

fn connect(settings: &Settings) -> Result<Pool<Db1>, CommandError> {
    let pool = Pool::<Db1>::connect(&settings.db1.url, &settings.db1.pool)
        .map_err(|error| CommandError::Failed(format!("DATABASE_URL_1: {}", db::chain(&error))))?;
    let which = if settings.run_migrations {
        db::Migrations::All
    } else {
        db::Migrations::LayerOnly
    };
    db::run_migrations(&pool, which)
        .map_err(|error| CommandError::Failed(format!("db1: migrations: {}", db::chain(&error))))?;
    Ok(pool)
}

fn failed(error: db::DbError) -> CommandError {
    CommandError::Failed(db::chain(&error))
}

fn time(at: Option<NaiveDateTime>) -> Option<String> {
    at.map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// One key per line under a header, in columns aligned for a person to read.
fn table(keys: &[ApiKey]) -> String {
    let header = ["ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"].map(str::to_owned);
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|key| {
            let or_dash = |at| time(at).unwrap_or_else(|| "-".to_owned());
            [
                key.id.clone(),
                key.name.clone(),
                key.scope.clone(),
                or_dash(Some(key.created_at)),
                or_dash(key.last_used_at),
                or_dash(key.revoked_at),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// A JSON array of the keys: what `table` shows, with `null` for times not yet reached.
fn as_json(keys: &[ApiKey]) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            serde_json::json!({
                "id": key.id,
                "name": key.name,
                "scope": key.scope,
                "created_at": time(Some(key.created_at)),
                "last_used_at": time(key.last_used_at),
                "revoked_at": time(key.revoked_at),
            })
        })
        .collect();
    format!("{}\n", serde_json::Value::Array(keys))
}
