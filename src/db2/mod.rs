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

// `orders.user_id` is also the key of its user's totals. No SQL foreign key says so (the
// totals row is written with the user's first order, in the same transaction), so
// `diesel print-schema` does not write this into schema.rs.
diesel::joinable!(schema::orders -> schema::user_order_totals (user_id));
// For `multidb check`'s comparison of each user's orders with their totals.
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    schema::orders::user_id,
    schema::user_order_totals::order_count,
    schema::user_order_totals::total_cents,
);

/// A session on the orders database; writing unless `Session<Read>`.
pub type Session<M = crate::db::Write> = crate::db::Session<Db2, M>;
