//! Creation times: stored as UTC without a zone (the one timestamp type both backends
//! share), at microsecond precision (PostgreSQL's), and shown as RFC 3339 with `Z`.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serializer;

/// Now, rounded to what the databases store, so a created resource reads back equal.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

pub fn serialize<S: Serializer>(value: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let utc = DateTime::<Utc>::from_naive_utc_and_offset(*value, Utc);
    serializer.serialize_str(&utc.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}
