//! What the service tells its operators: Prometheus metrics, log lines a machine can
//! parse, and the request id that ties a request's lines together wherever they are
//! written.

mod log_format;
mod metrics;
pub mod request_scope;

pub use self::metrics::{Metrics, RequestMetrics, UNMATCHED};
pub use log_format::{init_logging, LogFormat, REQUEST_ID};
