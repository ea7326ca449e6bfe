//! The database's clock: every time that instances compare with each other — leases,
//! recovery turns, the age of a decision — is read and compared by the database that
//! stores it, never by an instance. Instances on different machines disagree about the
//! time; the one database they share gives them all the same one. (A step of that
//! clock, say by NTP, can expire leases early or late: that costs liveness, not
//! correctness, which rests on the decision row.)

use super::Backend;

/// SQL for "now" in milliseconds since the epoch, by the server's clock.
/// PostgreSQL's `clock_timestamp()`, not `now()`: the time of the statement, not of the
/// start of its transaction.
pub(crate) fn now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// SQL for "now" as a `TIMESTAMP` in UTC, comparable with the `created_at` columns.
pub(crate) fn now_timestamp(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(clock_timestamp() AT TIME ZONE 'UTC')",
        Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
    }
}

/// SQL for the `TIMESTAMP` in UTC `seconds` ago.
pub(crate) fn timestamp_seconds_ago(backend: Backend, seconds: u64) -> String {
    match backend {
        Backend::Postgres => {
            format!("((clock_timestamp() - interval '{seconds} seconds') AT TIME ZONE 'UTC')")
        }
        Backend::Sqlite => format!("strftime('%Y-%m-%d %H:%M:%f', 'now', '-{seconds} seconds')"),
    }
}

/// SQL for the `TIMESTAMP` in UTC `age` ago, to the millisecond.
pub(crate) fn timestamp_millis_ago(backend: Backend, age: std::time::Duration) -> String {
    let millis = age.as_millis();
    match backend {
        Backend::Postgres => {
            format!("((clock_timestamp() - interval '{millis} milliseconds') AT TIME ZONE 'UTC')")
        }
        Backend::Sqlite => format!(
            "strftime('%Y-%m-%d %H:%M:%f', 'now', '-{}.{:03} seconds')",
            millis / 1000,
            millis % 1000
        ),
    }
}

/// SQL for the age in seconds, by the server's clock, of the oldest UTC `TIMESTAMP` in
/// `column` of the rows selected (an aggregate; 0 when there are none).
pub(crate) fn seconds_since_oldest(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Postgres => format!(
            "COALESCE(EXTRACT(EPOCH FROM (clock_timestamp() AT TIME ZONE 'UTC') - min({column})), 0)::float8"
        ),
        Backend::Sqlite => {
            format!("COALESCE((julianday('now') - julianday(min({column}))) * 86400.0, 0.0)")
        }
    }
}
