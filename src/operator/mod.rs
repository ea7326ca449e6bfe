//! Commands an operator runs beside the service, which only read: which migrations each
//! database has (`multidb migrate status`, `multidb migrate --dry-run`) and whether the
//! two databases agree (`multidb check`).

pub mod check;
pub mod migrations;

use anyhow::Context;

use crate::config::{DatabaseSettings, Settings};
use crate::db::{self, Database, Pool};
use crate::db1::Db1;
use crate::db2::Db2;

/// A database as configured: its pool, or `None` where it does not exist yet (a SQLite
/// file not created), so that looking never creates it.
pub struct Opened<D: Database> {
    pub settings: DatabaseSettings,
    pub pool: Option<Pool<D>>,
}

impl<D: Database> Opened<D> {
    fn open(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let missing = settings.url.file().is_some_and(|file| !file.exists());
        let pool = if missing {
            None
        } else {
            Some(Pool::connect(&settings.url, &settings.pool)?)
        };
        Ok(Self {
            settings: settings.clone(),
            pool,
        })
    }
}

/// Both databases, opened without migrating and checked to be two different ones, each
/// the right one where it has been migrated.
pub fn open(settings: &Settings) -> anyhow::Result<(Opened<Db1>, Opened<Db2>)> {
    let db1 = Opened::<Db1>::open(&settings.db1).context("DATABASE_URL_1")?;
    let db2 = Opened::<Db2>::open(&settings.db2).context("DATABASE_URL_2")?;
    if let (Some(one), Some(two)) = (&db1.pool, &db2.pool) {
        db::ensure_distinct(one, two).context("DATABASE_URL_1 and DATABASE_URL_2")?;
        db::ensure_not_swapped(one, two).context("DATABASE_URL_1 and DATABASE_URL_2")?;
    }
    Ok((db1, db2))
}
