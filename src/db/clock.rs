//! The database's clock: every time that instances compare with each other — leases,
//! recovery turns, the age of a decision — is read and compared by the database that
//! stores it, never by an instance. Instances on different machines disagree about the
//! time; the one database they share gives them all the same one. (A step of that
//! clock, say by NTP, can expire leases early or late: that costs liveness, not
//! correctness, which rests on the decision row.)

use super::Backend;

/// SQL for "now" in milliseconds since the epoch, by the server's clock: the time of the
/// statement, not of the start of its transaction.
pub(crate) fn now_ms(backend: Backend) -> &'static str {
    backend.dialect().now_ms()
}

/// SQL for "now" as a `TIMESTAMP` in UTC, comparable with the `created_at` columns.
pub(crate) fn now_timestamp(backend: Backend) -> &'static str {
    backend.dialect().now_timestamp()
}

/// SQL for the `TIMESTAMP` in UTC `age` ago, to the millisecond.
pub(crate) fn timestamp_ago(backend: Backend, age: std::time::Duration) -> String {
    backend.dialect().timestamp_ago(age)
}

/// SQL for the age in seconds, by the server's clock, of the oldest UTC `TIMESTAMP` in
/// `column` of the rows selected (an aggregate; 0 when there are none).
pub(crate) fn seconds_since_oldest(backend: Backend, column: &str) -> String {
    backend.dialect().seconds_since_oldest(column)
}
