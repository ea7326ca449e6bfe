//! db1, the users database: its identity, its migrations and the schema of all its
//! tables, for every module that queries it (`users`, `api_keys`).

pub(crate) mod schema;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::db::Backend;

/// The users database (`DATABASE_URL_1`).
pub struct Db1;

impl crate::db::Database for Db1 {
    const NAME: &'static str = "db1";
    fn migrations(backend: Backend) -> EmbeddedMigrations {
        const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations_db1/postgres");
        const SQLITE: EmbeddedMigrations = embed_migrations!("migrations_db1/sqlite");
        const MYSQL: EmbeddedMigrations = embed_migrations!("migrations_db1/mysql");
        match backend {
            Backend::Postgres => POSTGRES,
            Backend::Sqlite => SQLITE,
            Backend::Mysql => MYSQL,
        }
    }
    const OWN_TABLE: &'static str = "users";
}

/// A session on the users database; writing unless `Session<Read>`.
pub type Session<M = crate::db::Write> = crate::db::Session<Db1, M>;
