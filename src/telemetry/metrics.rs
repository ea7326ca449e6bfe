//! The service's Prometheus metrics: one registry per application (not a process-wide
//! recorder, so that several applications in one process — the tests — keep their
//! own counts), rendered by the service itself at `GET /metrics`.
//!
//! `metrics` is the facade the database layer records into; `metrics-exporter-prometheus`
//! keeps the registry and writes the text exposition format. Its HTTP listener and push
//! gateway are left out: the service already has an HTTP server.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use metrics::{Counter, Histogram, Key, Label, Recorder};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::db::metrics::metadata;
use crate::db::{self, PoolStatus};

const REQUESTS: &str = "http_requests_total";
const REQUEST_SECONDS: &str = "http_request_duration_seconds";
const POOL_CONNECTIONS: &str = "db_pool_connections";
const POOL_MAX_CONNECTIONS: &str = "db_pool_max_connections";
const BUILD_INFO: &str = "multidb_build_info";

/// The `route` of requests that matched no route: never the raw path, which a client
/// could vary without end.
pub const UNMATCHED: &str = "unmatched";

/// From 100 µs, where a read on an idle machine lands, to the 30 s of a checkout
/// timeout; about two buckets per factor of ten in between.
const SECONDS_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// How often the recorded samples of histograms are folded into their buckets when
/// nobody scrapes: keeps memory flat between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// An application's metrics registry.
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    /// The `process_*` series (resident memory, CPU, file descriptors, threads), read
    /// from /proc at each scrape.
    process: metrics_process::Collector,
}

impl Metrics {
    pub fn new() -> Result<Self, BuildError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), &SECONDS_BUCKETS)?
            .set_buckets_for_metric(
                Matcher::Full(db::metrics::POOL_WAIT_SECONDS.into()),
                &SECONDS_BUCKETS,
            )?
            .build_recorder();
        describe(&recorder);
        db::metrics::describe(&recorder);
        let process = metrics_process::Collector::default();
        // The collector records through the `metrics` macros: into this registry, not a
        // process-wide one.
        metrics::with_local_recorder(&recorder, || process.describe());
        recorder
            .register_gauge(
                &Key::from_parts(
                    BUILD_INFO,
                    vec![Label::from_static_parts(
                        "version",
                        env!("CARGO_PKG_VERSION"),
                    )],
                ),
                &metadata(),
            )
            .set(1.0);
        Ok(Self {
            recorder: Arc::new(recorder),
            process,
        })
    }

    /// Where the database layer records.
    pub fn recorder(&self) -> &dyn Recorder {
        self.recorder.as_ref()
    }

    /// Instruments for the requests one HTTP worker serves.
    pub fn for_requests(&self) -> RequestMetrics {
        RequestMetrics {
            recorder: self.recorder.clone(),
            seen: RefCell::default(),
        }
    }

    /// Folds recorded samples into their buckets every few seconds, for as long as the
    /// actix system runs.
    pub fn spawn_upkeep(&self) {
        let handle = self.recorder.handle();
        actix_web::rt::spawn(async move {
            let mut every = actix_web::rt::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
    }

    /// The exposition, with the pool gauges read from `pools` now (their counters, held
    /// in memory: no database is asked).
    pub fn render(&self, pools: &[(&'static str, PoolStatus)]) -> Vec<u8> {
        for (database, status) in pools {
            let in_use = status.connections.saturating_sub(status.idle);
            let gauge = |name: &'static str, labels: Vec<Label>| {
                self.recorder
                    .register_gauge(&Key::from_parts(name, labels), &metadata())
            };
            let db = Label::from_static_parts("db", database);
            gauge(
                POOL_CONNECTIONS,
                vec![db.clone(), Label::from_static_parts("state", "idle")],
            )
            .set(f64::from(status.idle));
            gauge(
                POOL_CONNECTIONS,
                vec![db.clone(), Label::from_static_parts("state", "in_use")],
            )
            .set(f64::from(in_use));
            gauge(POOL_MAX_CONNECTIONS, vec![db]).set(f64::from(status.max_size));
        }
        metrics::with_local_recorder(self.recorder.as_ref(), || self.process.collect());
        let mut text = Vec::with_capacity(16 * 1024);
        // Writing into a Vec cannot fail.
        let _ = self.recorder.handle().render_to_write(&mut text);
        text
    }
}

fn describe(recorder: &PrometheusRecorder) {
    let name = metrics::KeyName::from_const_str;
    recorder.describe_counter(
        name(REQUESTS),
        None,
        "HTTP requests answered, by method, route template and status.".into(),
    );
    recorder.describe_histogram(
        name(REQUEST_SECONDS),
        Some(metrics::Unit::Seconds),
        "Seconds from a request's arrival to its answer, by method and route template.".into(),
    );
    recorder.describe_gauge(
        name(POOL_CONNECTIONS),
        None,
        "Open connections of a database's pool, idle or in use.".into(),
    );
    recorder.describe_gauge(
        name(POOL_MAX_CONNECTIONS),
        None,
        "The most connections a database's pool opens.".into(),
    );
    recorder.describe_gauge(
        name(BUILD_INFO),
        None,
        "Always 1; `version` is the running build's.".into(),
    );
}

/// One HTTP worker's request instruments. Each worker is one thread, so the handles it
/// has used are kept here without a lock, and a request costs a short scan and two
/// atomic updates instead of hashing into the shared registry. The entries are bounded: route templates, known methods (any other is `OTHER`) and
/// status codes.
pub struct RequestMetrics {
    recorder: Arc<PrometheusRecorder>,
    seen: RefCell<Vec<Route>>,
}

struct Route {
    method: &'static str,
    route: &'static str,
    duration: Histogram,
    by_status: Vec<(u16, Counter)>,
}

impl Route {
    fn register(recorder: &PrometheusRecorder, method: &'static str, route: &'static str) -> Self {
        let labels = vec![
            Label::from_static_parts("method", method),
            Label::from_static_parts("route", route),
        ];
        Self {
            method,
            route,
            duration: recorder
                .register_histogram(&Key::from_parts(REQUEST_SECONDS, labels), &metadata()),
            by_status: Vec::new(),
        }
    }

    fn answered(&mut self, recorder: &PrometheusRecorder, status: u16) -> &Counter {
        let index = match self.by_status.iter().position(|(seen, _)| *seen == status) {
            Some(index) => index,
            None => {
                let labels = vec![
                    Label::from_static_parts("method", self.method),
                    Label::from_static_parts("route", self.route),
                    Label::new("status", status.to_string()),
                ];
                let counter =
                    recorder.register_counter(&Key::from_parts(REQUESTS, labels), &metadata());
                self.by_status.push((status, counter));
                self.by_status.len() - 1
            }
        };
        &self.by_status[index].1
    }
}

impl RequestMetrics {
    /// Counts one answered request. `route` is the template the request matched, or
    /// `None` for a request no route matched.
    pub fn record(
        &self,
        method: &Method,
        route: Option<&'static str>,
        status: u16,
        took: Duration,
    ) {
        let method = method_label(method);
        let route = route.unwrap_or(UNMATCHED);
        let mut seen = self.seen.borrow_mut();
        let index = match seen
            .iter()
            .position(|seen| seen.route == route && seen.method == method)
        {
            Some(index) => index,
            None => {
                seen.push(Route::register(&self.recorder, method, route));
                seen.len() - 1
            }
        };
        let entry = &mut seen[index];
        entry.duration.record(took);
        entry.answered(&self.recorder, status).increment(1);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}
