//! Admission: a request's turn on a database's connections, given on the async side
//! before any blocking thread is taken, apart from the pool that hands out the
//! connections (as tower keeps its concurrency limit apart from the service it guards).
//!
//! Requests queue here in FIFO order instead of on r2d2's condition variable inside
//! blocking threads: a burst larger than the pool then occupies no blocking thread while
//! it waits, and is served in arrival order (this took the p99 of `GET /users/{id}` at
//! 32 concurrent requests from hundreds of ms to single-digit ms; see BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::metrics::PoolMetrics;
use super::DbError;

/// The turns on one database's connections. Cheap to clone; clones share the turns.
#[derive(Clone)]
pub(crate) struct Admissions {
    database: &'static str,
    /// One permit per connection of the pool.
    connections: Arc<Semaphore>,
    /// On a single-writer backend: one permit, for the one writer it allows at a time.
    writer: Option<Arc<Semaphore>>,
    /// Permits for requests that use this database and the other one too: fewer than
    /// the connections, so that such requests, stuck waiting for the other database,
    /// never hold all of this one (see [`super::pair`]).
    paired: Arc<Semaphore>,
    checkout_timeout: Duration,
    metrics: PoolMetrics,
}

/// A request's turn to use a pool (and, for a single writer, the database's one write
/// slot), held until the work on the blocking thread is done.
#[derive(Debug)]
pub(crate) struct Admission {
    _writer: Option<OwnedSemaphorePermit>,
    _connection: OwnedSemaphorePermit,
}

impl Admissions {
    pub(crate) fn new(
        database: &'static str,
        connections: u32,
        single_writer: bool,
        checkout_timeout: Duration,
    ) -> Self {
        Self {
            database,
            connections: Arc::new(Semaphore::new(connections as usize)),
            writer: single_writer.then(|| Arc::new(Semaphore::new(1))),
            paired: Arc::new(Semaphore::new(paired_share(connections))),
            checkout_timeout,
            metrics: PoolMetrics::none(),
        }
    }

    /// Records waits and timeouts into `metrics` (see [`super::metrics`]).
    pub(crate) fn observed_by(&mut self, metrics: PoolMetrics) {
        self.metrics = metrics;
    }

    /// Waits, without blocking a thread, until this request may use one of the pool's
    /// connections; 503 after the checkout timeout.
    pub(crate) async fn admit(&self) -> Result<Admission, DbError> {
        self.admit_by(self.deadline()).await
    }

    pub(crate) async fn admit_by(&self, deadline: Instant) -> Result<Admission, DbError> {
        let connection = self.acquire(&self.connections, deadline).await?;
        self.record_wait(deadline);
        Ok(Admission {
            _writer: None,
            _connection: connection,
        })
    }

    /// Like [`admit`](Self::admit), for a session that will write. On a single-writer
    /// backend (SQLite), writers first queue for that one place here, in order, instead
    /// of polling the file lock in SQLite's busy handler, whose sleeps made the p99 of
    /// `POST /orders` on SQLite 0.7–2 s under load (see BENCHMARKS.md).
    pub(crate) async fn admit_write(&self) -> Result<Admission, DbError> {
        self.admit_write_by(self.deadline()).await
    }

    pub(crate) async fn admit_write_by(&self, deadline: Instant) -> Result<Admission, DbError> {
        let writer = match &self.writer {
            Some(writer) => Some(self.acquire(writer, deadline).await?),
            None => None,
        };
        let connection = self.acquire(&self.connections, deadline).await?;
        self.record_wait(deadline);
        Ok(Admission {
            _writer: writer,
            _connection: connection,
        })
    }

    /// On a single-writer backend, this process's one write slot (see
    /// [`admit_write`](Self::admit_write)), for a write on a connection outside the pool;
    /// `None` on a backend with many writers.
    pub(crate) async fn admit_write_if_single_writer(
        &self,
    ) -> Result<Option<OwnedSemaphorePermit>, DbError> {
        match &self.writer {
            Some(writer) => Ok(Some(self.acquire(writer, self.deadline()).await?)),
            None => Ok(None),
        }
    }

    /// This database's share of requests that use both databases (see `paired`).
    pub(crate) async fn admit_paired(
        &self,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, DbError> {
        self.acquire(&self.paired, deadline).await
    }

    /// When a wait for this pool that starts now must give up. Every wait of a request
    /// for this pool (its share, the write slot, a connection) runs to the same deadline,
    /// so the time since the deadline was set is the request's whole wait.
    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.checkout_timeout
    }

    /// One sample of `db_pool_wait_seconds` for a request admitted now, which has waited
    /// since its `deadline` was set.
    fn record_wait(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        self.metrics
            .wait
            .record(self.checkout_timeout.saturating_sub(left));
    }

    async fn acquire(
        &self,
        semaphore: &Arc<Semaphore>,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, DbError> {
        match tokio::time::timeout_at(deadline, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(DbError::Unavailable {
                database: self.database,
                cause: "the pool is closed".into(),
            }),
            Err(_elapsed) => {
                self.metrics.timeouts.increment(1);
                self.metrics.wait.record(self.checkout_timeout);
                Err(DbError::Unavailable {
                    database: self.database,
                    cause: format!("no connection free within {:?}", self.checkout_timeout).into(),
                })
            }
        }
    }
}

/// How many of a pool's `max_size` connections requests that use both databases may
/// hold at once: all but a quarter (at least one, since a pool of one cannot keep any back).
fn paired_share(max_size: u32) -> usize {
    let kept_back = max_size.div_ceil(4);
    max_size.saturating_sub(kept_back).max(1) as usize
}

#[cfg(test)]
mod tests {
    #[test]
    fn requests_on_both_databases_leave_a_quarter_of_each_pool() {
        let shares: Vec<usize> = [1, 2, 3, 4, 5, 8, 10, 100]
            .into_iter()
            .map(super::paired_share)
            .collect();
        assert_eq!(shares, [1, 1, 2, 3, 3, 6, 7, 75]);
    }
}
