//! db2, the orders database: its identity, its migrations and the schema of all its
//! tables, for every module that queries it (`orders`).

pub(crate) mod schema;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::db::Backend;

/// The orders database (`DATABASE_URL_2`).
pub struct Db2;

impl crate::db::Database for Db2 {
    const NAME: &'static str = "db2";
    fn migrations(backend: Backend) -> EmbeddedMigrations {
        const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations_db2/postgres");
        const SQLITE: EmbeddedMigrations = embed_migrations!("migrations_db2/sqlite");
        const MYSQL: EmbeddedMigrations = embed_migrations!("migrations_db2/mysql");
        match backend {
            Backend::Postgres => POSTGRES,
            Backend::Sqlite => SQLITE,
            Backend::Mysql => MYSQL,
        }
    }
    const OWN_TABLE: &'static str = "orders";
}

/// A session on the orders database; writing unless `Session<Read>`.
pub type Session<M = crate::db::Write> = crate::db::Session<Db2, M>;
