//! The reusable database layer: typed pools, the session guard, the blocking runner,
//! migrations, cross-database commit, key locks and fault points. Nothing in here knows about users or orders; a database
//! is identified only by a type implementing [`Database`].

mod admission;
mod backend;
mod clock;
mod coalesce;
mod cross_commit;
mod decisions;
mod distinct;
mod error;
pub mod fault;
mod holding;
pub mod idempotency;
mod identity;
mod key_lock;
mod layer_schema;
mod lease;
pub mod metrics;
mod migrations;
mod own_writers;
mod pair;
mod pool;
mod retry;
mod runner;
mod session;
pub(crate) mod sync;
pub mod window;

pub use backend::{AnyConnection, Backend, ConnectionOptions, DatabaseUrl, Features};
pub use coalesce::{BatchRead, Coalescer};
pub use cross_commit::{
    in_doubt, CrossCommit, InDoubt, Owner, Recovery, Redo, RedoRecord, UnitOfWork, Work,
    MAX_IDLE_IN_TRANSACTION,
};
pub use decisions::redo_pending;
pub use distinct::{ensure_distinct, DistinctError};
pub use error::{chain, context, Cause, DbError};
pub use holding::{write_a_holding_b, write_b_holding_a};
pub use identity::{ensure_migrated, ensure_not_swapped, IdentityError};
pub use key_lock::{
    class_is_free as key_lock_class_is_free, KeyLock, KeyLocks, LockMode, RESERVED_CLASSES,
};
pub use lease::MAX_LEASE;
pub use migrations::{migration_state, run_migrations, Listing, MigrationState, Migrations};
pub use pool::{Pool, PoolSettings, PoolStatus};
pub use runner::{blocking, read, write};
pub use session::{Access, Read, Session, Write};

use diesel_migrations::EmbeddedMigrations;

/// A database the service talks to. Implemented by zero-sized marker types, so that a
/// `Pool<Db1>` and a `Session<Db2>` are different types and a query written for one
/// database does not compile against the other's session.
pub trait Database: Send + Sync + 'static {
    /// Short name used in logs, errors and health reports ("db1").
    const NAME: &'static str;
    /// The application's migrations for this database, in the dialect of `backend`.
    fn migrations(backend: Backend) -> EmbeddedMigrations;
    /// A table that only this database has, by which it is recognised (see
    /// [`ensure_not_swapped`]).
    const OWN_TABLE: &'static str;
}
