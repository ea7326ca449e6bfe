//! What the service tells its operators: Prometheus metrics, and log lines a machine can
//! parse, each naming the request it was written for (see [`crate::request_scope`]).

mod log_format;
mod metrics;

pub use self::metrics::{Metrics, RequestMetrics, UNMATCHED};
pub use log_format::{init_logging, LogFormat, REQUEST_ID};
