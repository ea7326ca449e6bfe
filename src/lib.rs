//! multidb: one REST API over two databases, each with its own pool, migrations and
//! sessions, kept consistent with each other.
//!
//! - [`db`]: the reusable database layer (typed pools, the session guard, the blocking
//!   runner, units of work over two databases, migrations). It knows no tables.
//! - [`db1`] and [`db2`]: each database's identity, migrations and schema.
//! - [`users`] (db1), [`api_keys`] (db1) and [`orders`] (db2): models and queries.
//! - [`workflows`]: operations that span both databases and keep them consistent.
//! - [`http`]: routes and the mapping of [`error::AppError`] to responses.
//! - [`telemetry`]: metrics and the log format; [`request_scope`]: the request a piece
//!   of code runs for, carried to the blocking threads of the database layer.
//! - [`config`] and [`app`]: settings from the environment, and the server built from them.
//! - [`operator`]: what an operator runs beside the service (migration status, the
//!   integrity check); it only reads.

pub mod api_keys;
pub mod app;
pub mod config;
pub mod db;
pub mod db1;
pub mod db2;
pub mod domain;
pub mod error;
pub mod hex;
pub mod http;
pub mod operator;
pub mod orders;
pub mod request_scope;
pub mod telemetry;
pub mod users;
pub mod workflows;
