//! What the database layer records for operators: waits for and timeouts of pool
//! connections, outcomes of cross-database commits, recovery's actions and what is left
//! in doubt. Recorded through the `metrics` facade into whichever recorder the
//! application gives (a Prometheus one in the service); the layer knows no exporter.
//!
//! Handles are registered once, when a pool or coordinator is built, so that recording
//! on a request's path is an atomic add, never a registry lookup.

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};

/// Seconds a request waited for its turn on a pool's connections (`{db}`).
pub const POOL_WAIT_SECONDS: &str = "db_pool_wait_seconds";
/// Requests that got no turn on a pool's connections within the checkout timeout.
pub const POOL_TIMEOUTS: &str = "db_pool_timeouts_total";
/// Batches of point reads (see `db::Coalescer`), and the requests they answered.
pub const READ_BATCHES: &str = "db_read_batches_total";
pub const BATCHED_READS: &str = "db_batched_reads_total";
/// Cross-database commits by `outcome`: `committed`, `rolled_back` (nothing written),
/// `in_doubt` (decided or possibly decided, but left for recovery to finish; 503).
pub const CROSS_COMMITS: &str = "cross_commit_total";
/// What recovery did, by `action`: `committed`, `rolled_back`, `redone`, `failed`.
pub const RECOVERY_ACTIONS: &str = "recovery_actions_total";
/// Cross-database writes in doubt (prepared, or decided and waiting for their redo), as
/// seen at this instance's last recovery look.
pub const IN_DOUBT: &str = "cross_commit_in_doubt";
/// Age in seconds of the oldest of them (0 when there is none).
pub const IN_DOUBT_OLDEST_SECONDS: &str = "cross_commit_in_doubt_oldest_seconds";

const HELP: [(&str, &str); 8] = [
    (
        POOL_WAIT_SECONDS,
        "Seconds a request waited for its turn on the pool's connections.",
    ),
    (
        POOL_TIMEOUTS,
        "Requests answered 503 because the pool gave no connection within the checkout timeout.",
    ),
    (
        READ_BATCHES,
        "Statements that read rows of one kind for requests that asked at the same moment.",
    ),
    (
        BATCHED_READS,
        "Point reads answered by such a statement (divided by the batches: the mean batch).",
    ),
    (
        CROSS_COMMITS,
        "Commits of writes to both databases, by outcome.",
    ),
    (
        RECOVERY_ACTIONS,
        "Cross-database writes resolved by recovery, by action.",
    ),
    (
        IN_DOUBT,
        "Cross-database writes left in doubt at this instance's last recovery look.",
    ),
    (
        IN_DOUBT_OLDEST_SECONDS,
        "Age of the oldest cross-database write in doubt at the last recovery look.",
    ),
];

/// Describes the layer's series to `recorder` (the HELP lines of the exposition).
pub fn describe(recorder: &dyn Recorder) {
    for (name, help) in HELP {
        let name = metrics::KeyName::from_const_str(name);
        if name.as_str().ends_with("_total") {
            recorder.describe_counter(name, None, help.into());
        } else if name.as_str() == POOL_WAIT_SECONDS {
            recorder.describe_histogram(name, Some(metrics::Unit::Seconds), help.into());
        } else {
            recorder.describe_gauge(name, None, help.into());
        }
    }
}

/// The metadata every series of the service registers with (the Prometheus exporter
/// reads none of it).
pub fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn key(name: &'static str, label: &'static str, value: &'static str) -> Key {
    Key::from_parts(name, vec![Label::from_static_parts(label, value)])
}

/// One pool's instruments.
#[derive(Clone)]
pub(crate) struct PoolMetrics {
    pub wait: Histogram,
    pub timeouts: Counter,
    pub read_batches: Counter,
    pub batched_reads: Counter,
}

impl PoolMetrics {
    pub fn new(recorder: &dyn Recorder, database: &'static str) -> Self {
        Self {
            wait: recorder.register_histogram(&key(POOL_WAIT_SECONDS, "db", database), &metadata()),
            timeouts: recorder.register_counter(&key(POOL_TIMEOUTS, "db", database), &metadata()),
            read_batches: recorder
                .register_counter(&key(READ_BATCHES, "db", database), &metadata()),
            batched_reads: recorder
                .register_counter(&key(BATCHED_READS, "db", database), &metadata()),
        }
    }

    /// Records nothing: for pools built before an application gives a recorder.
    pub fn none() -> Self {
        Self {
            wait: Histogram::noop(),
            timeouts: Counter::noop(),
            read_batches: Counter::noop(),
            batched_reads: Counter::noop(),
        }
    }

    /// A batch of point reads answering `requests` requests.
    pub fn record_batch(&self, requests: usize) {
        self.read_batches.increment(1);
        self.batched_reads.increment(requests as u64);
    }
}

/// The cross-database coordinator's instruments.
pub(crate) struct CrossCommitMetrics {
    pub committed: Counter,
    pub rolled_back: Counter,
    pub in_doubt: Counter,
    pub recovery_committed: Counter,
    pub recovery_rolled_back: Counter,
    pub recovery_redone: Counter,
    pub recovery_failed: Counter,
    pub in_doubt_now: Gauge,
    pub in_doubt_oldest_seconds: Gauge,
}

impl CrossCommitMetrics {
    pub fn new(recorder: &dyn Recorder) -> Self {
        let counter =
            |name, label, value| recorder.register_counter(&key(name, label, value), &metadata());
        let gauge =
            |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &metadata());
        Self {
            committed: counter(CROSS_COMMITS, "outcome", "committed"),
            rolled_back: counter(CROSS_COMMITS, "outcome", "rolled_back"),
            in_doubt: counter(CROSS_COMMITS, "outcome", "in_doubt"),
            recovery_committed: counter(RECOVERY_ACTIONS, "action", "committed"),
            recovery_rolled_back: counter(RECOVERY_ACTIONS, "action", "rolled_back"),
            recovery_redone: counter(RECOVERY_ACTIONS, "action", "redone"),
            recovery_failed: counter(RECOVERY_ACTIONS, "action", "failed"),
            in_doubt_now: gauge(IN_DOUBT),
            in_doubt_oldest_seconds: gauge(IN_DOUBT_OLDEST_SECONDS),
        }
    }
}
