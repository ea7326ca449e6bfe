//! The whole suite, as one test binary: one build and one link of the crate, a module
//! per area. Every test starts the real application (or the real binary) against fresh
//! databases through `helpers`.

// A test fails by panicking: unwrap and expect are how it says what broke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod auth;
mod auth_outage;
mod check;
mod coalesced_reads;
mod command_line;
mod crash;
mod guard;
mod harness;
mod http_manners;
mod idempotency;
mod integrity;
mod logs;
mod migrate_status;
mod migrations;
mod mysql_server;
mod one_database_trouble;
mod openapi;
mod operations;
mod orders;
mod resilience;
mod retries_across_instances;
mod smoke;
mod upgrade;
mod users;
