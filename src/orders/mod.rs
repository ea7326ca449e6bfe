//! db2: the orders database — its identity, schema, model and queries.

mod model;
mod queries;
mod schema;

pub use model::{NewOrder, Order, OrderFilter, UserOrders};
pub use queries::{
    delete, delete_for_user, find, for_user, insert, page, user_orders_lock, SUMMARY_ORDERS,
};

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::db::Backend;

/// The orders database (`DATABASE_URL_2`).
pub struct Db2;

impl crate::db::Database for Db2 {
    const NAME: &'static str = "db2";
    fn migrations(backend: Backend) -> EmbeddedMigrations {
        const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations_db2/postgres");
        const SQLITE: EmbeddedMigrations = embed_migrations!("migrations_db2/sqlite");
        match backend {
            Backend::Postgres => POSTGRES,
            Backend::Sqlite => SQLITE,
        }
    }
    const OWN_TABLE: &'static str = "orders";
}

/// A session on the orders database; writing unless `Session<Read>`.
pub type Session<M = crate::db::Write> = crate::db::Session<Db2, M>;
