//! `multidb keys create|list|revoke`: API keys managed with the binary, on the database
//! the server uses (the same settings: `DATABASE_URL_1`, `.env`, `RUN_MIGRATIONS`).

use std::fmt::Write as _;

use chrono::NaiveDateTime;

use super::{create, list, revoke, ApiKey, Scope};
use crate::config::Settings;
use crate::db::{self, Pool, Read, Write};
use crate::db1::Db1;
use crate::domain::Text;

pub const USAGE: &str = "multidb keys create --name NAME --scope read|write
                             prints the new key's token, once: only its hash is stored
multidb keys list            id, name, scope, created, last used, revoked; never a token
multidb keys revoke ID       every running instance refuses the key within 5 seconds";

/// What went wrong: the command line (exit 2) or the work (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}\nusage:\n{USAGE}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs `keys ARGS…` and returns what it prints on stdout.
pub fn run(settings: &Settings, args: &[String]) -> Result<String, CommandError> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["create", rest @ ..] => {
            let (name, scope) = create_options(rest)?;
            let pool = connect(settings)?;
            let mut session = pool.begin::<Write>().map_err(failed)?;
            let (key, token) = create(&mut session, name.as_str(), scope).map_err(failed)?;
            session.commit().map_err(failed)?;
            log::info!("created API key {} ({}, {})", key.id, key.name, key.scope);
            Ok(format!("{token}\n"))
        }
        ["list"] => {
            let pool = connect(settings)?;
            let mut session = pool.begin::<Read>().map_err(failed)?;
            Ok(table(&list(&mut session).map_err(failed)?))
        }
        ["revoke", id] => {
            let pool = connect(settings)?;
            let mut session = pool.begin::<Write>().map_err(failed)?;
            if !revoke(&mut session, id).map_err(failed)? {
                return Err(CommandError::Failed(format!("no API key `{id}`")));
            }
            session.commit().map_err(failed)?;
            Ok(format!("revoked {id}\n"))
        }
        _ => Err(CommandError::Usage(format!(
            "unknown keys command `{}`",
            args.join(" ")
        ))),
    }
}

fn create_options(args: &[&str]) -> Result<(Text, Scope), CommandError> {
    let (mut name, mut scope) = (None, None);
    let mut rest = args.iter();
    while let Some(option) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| CommandError::Usage(format!("{option} needs a value")))?;
        match *option {
            "--name" => name = Some(Text::parse("name", value).map_err(CommandError::Usage)?),
            "--scope" => {
                scope = Some(Scope::parse(value).ok_or_else(|| {
                    CommandError::Usage(format!("--scope is read or write, not `{value}`"))
                })?)
            }
            other => return Err(CommandError::Usage(format!("unknown option `{other}`"))),
        }
    }
    match (name, scope) {
        (Some(name), Some(scope)) => Ok((name, scope)),
        _ => Err(CommandError::Usage(
            "both --name and --scope are needed".into(),
        )),
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

/// One key per line, tab-separated under a header.
fn table(keys: &[ApiKey]) -> String {
    let time = |at: Option<NaiveDateTime>| {
        at.map_or_else(
            || "-".to_owned(),
            |at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    };
    let mut out = String::from("ID\tNAME\tSCOPE\tCREATED\tLAST USED\tREVOKED\n");
    for key in keys {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            key.id,
            key.name,
            key.scope,
            time(Some(key.created_at)),
            time(key.last_used_at),
            time(key.revoked_at)
        );
    }
    out
}
