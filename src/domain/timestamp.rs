//! Creation times: stored as UTC without a zone (the one timestamp type both backends
//! share), at microsecond precision (PostgreSQL's), and shown as RFC 3339 with `Z`.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serializer;

#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicI64, Ordering};

/// How far this process's clock is set off, for tests (see `set_skew`).
#[cfg(feature = "fault-injection")]
static SKEW_MS: AtomicI64 = AtomicI64::new(0);

/// Now by this process's clock, rounded to what the databases store, so a created
/// resource reads back equal. Nothing that instances compare with each other uses it:
/// those times are the database's (`db::clock`).
pub fn now() -> NaiveDateTime {
    #[cfg(feature = "fault-injection")]
    let now = Utc::now() + chrono::Duration::milliseconds(SKEW_MS.load(Ordering::Relaxed));
    #[cfg(not(feature = "fault-injection"))]
    let now = Utc::now();
    now.naive_utc().trunc_subsecs(6)
}

/// Sets this process's clock off by `ms` (`MULTIDB_TEST_CLOCK_SKEW_MS`): a process
/// whose clock is wrong, for tests that show it cannot break anything shared.
#[cfg(feature = "fault-injection")]
pub fn set_skew(ms: i64) {
    SKEW_MS.store(ms, Ordering::Relaxed);
}

pub fn serialize<S: Serializer>(value: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let utc = DateTime::<Utc>::from_naive_utc_and_offset(*value, Utc);
    serializer.serialize_str(&utc.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}
