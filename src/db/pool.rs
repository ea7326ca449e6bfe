use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::backend::Manager;
use super::fault::Faults;
use super::key_lock::KeyLock;
use super::metrics::PoolMetrics;
use super::session::Begin;
use super::{
    context, Access, AnyConnection, Backend, Cause, ConnectionOptions, Database, DatabaseUrl,
    DbError, Session,
};

/// Sizing and timeouts of one database's pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    pub min_idle: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub checkout_timeout: Duration,
    pub connection: ConnectionOptions,
}

/// Connections in use and idle, for health checks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub connections: u32,
    pub idle: u32,
    pub max_size: u32,
}

/// The connection pool of database `D`. Cheap to clone; clones share the connections.
pub struct Pool<D: Database> {
    inner: r2d2::Pool<Manager>,
    /// One connection for the service's own upkeep (recovery, purges, health probes),
    /// beside the requests' ones: requests hold a permit per connection of `inner`, so
    /// upkeep taking one of those would leave an admitted request waiting inside r2d2 —
    /// and a probe would fail whenever requests hold every connection. See
    /// [`Pool::for_upkeep`].
    upkeep: r2d2::Pool<Manager>,
    backend: Backend,
    begin: Begin,
    /// Opens connections outside the pool, set up like the pool's.
    opener: std::sync::Arc<Manager>,
    /// One permit per connection: see [`Pool::admit`].
    permits: Arc<Semaphore>,
    /// On a single-writer backend: one permit, for the one writer it allows at a time.
    writer: Option<Arc<Semaphore>>,
    /// Permits for requests that use this database and the other one too: fewer than
    /// the connections, so that such requests, stuck waiting for the other database, never
    /// hold all of this one (see [`super::pair`]).
    paired: Arc<Semaphore>,
    checkout_timeout: Duration,
    metrics: PoolMetrics,
    _database: PhantomData<fn() -> D>,
}

impl<D: Database> Clone for Pool<D> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            upkeep: self.upkeep.clone(),
            backend: self.backend,
            begin: self.begin.clone(),
            opener: self.opener.clone(),
            permits: self.permits.clone(),
            writer: self.writer.clone(),
            paired: self.paired.clone(),
            checkout_timeout: self.checkout_timeout,
            metrics: self.metrics.clone(),
            _database: PhantomData,
        }
    }
}

impl<D: Database> Pool<D> {
    /// Builds the pool and checks that the database answers, so that a wrong URL stops
    /// the service at start-up instead of failing its first requests. Blocks.
    pub fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, DbError> {
        let unavailable = |doing: String, cause: Cause| DbError::Unavailable {
            database: D::NAME,
            cause: context(doing, cause),
        };
        url.prepare()
            .map_err(|e| unavailable(format!("cannot create the directory for {url}"), e.into()))?;
        let manager = Manager::new(url.clone(), settings.connection.clone());
        // One direct attempt first: an unreachable database fails start-up at once, with
        // the driver's own error, instead of after the checkout timeout of retries.
        let mut first = r2d2::ManageConnection::connect(&manager)
            .map_err(|e| unavailable(format!("cannot connect to {url}"), e.into()))?;
        first.check_server().map_err(|e| DbError::Other {
            database: D::NAME,
            cause: context(format!("{url}"), e),
        })?;
        drop(first);
        // r2d2 starts three threads per pool unless given some: the two share theirs.
        let threads = Arc::new(scheduled_thread_pool::ScheduledThreadPool::new(3));
        let builder = || {
            r2d2::Pool::builder()
                .connection_timeout(settings.checkout_timeout)
                // No `SELECT 1` before every checkout: a dead connection shows at the first
                // statement, and `retrying` then takes another (see there).
                .test_on_check_out(false)
                .error_handler(Box::new(ConnectionErrorLog(D::NAME)))
                .thread_pool(threads.clone())
        };
        let inner = builder()
            .max_size(settings.max_size)
            .min_idle(Some(settings.min_idle.min(settings.max_size)))
            .build_unchecked(manager.clone());
        let upkeep = builder()
            .max_size(1)
            .min_idle(Some(0))
            .build_unchecked(manager.clone());
        let single_writer = url.backend().features().single_writer;
        let pool = Self {
            inner,
            upkeep,
            backend: url.backend(),
            begin: Begin {
                faults: Faults::none(),
                statement: url.backend().begin_statement(&settings.connection).into(),
                own_writers: single_writer.then(Default::default),
            },
            opener: std::sync::Arc::new(manager),
            permits: Arc::new(Semaphore::new(settings.max_size as usize)),
            writer: single_writer.then(|| Arc::new(Semaphore::new(1))),
            paired: Arc::new(Semaphore::new(paired_share(settings.max_size))),
            checkout_timeout: settings.checkout_timeout,
            metrics: PoolMetrics::none(),
            _database: PhantomData,
        };
        pool.inner
            .get()
            .map_err(|e| unavailable(format!("cannot connect to {url}"), e.into()))?;
        Ok(pool)
    }

    /// This pool, stopping at the fault points armed in `faults` (test builds only).
    /// Call before the pool is cloned, as [`Pool::observed_by`].
    #[cfg(feature = "fault-injection")]
    pub fn injecting(mut self, faults: Faults) -> Self {
        self.begin.faults = faults;
        self
    }

    /// This pool, recording its waits and timeouts into `recorder` (see
    /// [`super::metrics`]). Call before the pool is cloned: clones made earlier keep
    /// recording nothing.
    pub fn observed_by(mut self, recorder: &dyn metrics::Recorder) -> Self {
        self.metrics = PoolMetrics::new(recorder, D::NAME);
        self
    }

    /// Waits, without blocking a thread, until this request may use one of the pool's
    /// connections; 503 after the checkout timeout. Requests queue here in FIFO order,
    /// on the async side, instead of on r2d2's condition variable inside blocking
    /// threads: a burst larger than the pool then occupies no blocking thread while it
    /// waits, and is served in arrival order (this took the p99 of `GET /users/{id}` at
    /// 32 concurrent requests from hundreds of ms to single-digit ms; see BENCHMARKS.md).
    pub(crate) async fn admit(&self) -> Result<Admission, DbError> {
        self.admit_by(self.deadline()).await
    }

    /// This request's turn on this pool's connections and its share of them for work on
    /// both databases, if both are free now, without waiting (and without passing
    /// anyone queued: a released permit goes to the first waiter, never to a try).
    pub(crate) fn try_admit_paired(&self) -> Option<(Admission, OwnedSemaphorePermit)> {
        let share = self.paired.clone().try_acquire_owned().ok()?;
        let connection = self.permits.clone().try_acquire_owned().ok()?;
        Some((
            Admission {
                _writer: None,
                _connection: connection,
            },
            share,
        ))
    }

    pub(crate) async fn admit_by(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<Admission, DbError> {
        let connection = self.acquire(&self.permits, deadline).await?;
        self.record_wait(deadline);
        Ok(Admission {
            _writer: None,
            _connection: connection,
        })
    }

    /// Like [`admit`](Self::admit), for a session that will write. On SQLite, which
    /// allows one writer at a time, writers first queue for that one place here, in
    /// order, instead of polling the file lock in SQLite's busy handler, whose sleeps
    /// made the p99 of `POST /orders` on SQLite 0.7–2 s under load (see BENCHMARKS.md).
    pub(crate) async fn admit_write(&self) -> Result<Admission, DbError> {
        self.admit_write_by(self.deadline()).await
    }

    /// When a wait for this pool that starts now must give up. Every wait of a request
    /// for this pool (its share, the SQLite write slot, a connection) runs to the same
    /// deadline, so the time since the deadline was set is the request's whole wait.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.checkout_timeout
    }

    /// One sample of `db_pool_wait_seconds` for a request admitted now, which has waited
    /// since its `deadline` was set.
    fn record_wait(&self, deadline: tokio::time::Instant) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.metrics
            .wait
            .record(self.checkout_timeout.saturating_sub(left));
    }

    /// The sample of a request admitted without waiting (see [`try_admit_paired`]).
    ///
    /// [`try_admit_paired`]: Self::try_admit_paired
    pub(crate) fn record_no_wait(&self) {
        self.metrics.wait.record(0.0);
    }

    pub(crate) async fn admit_write_by(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<Admission, DbError> {
        let writer = match &self.writer {
            Some(writer) => Some(self.acquire(writer, deadline).await?),
            None => None,
        };
        let connection = self.acquire(&self.permits, deadline).await?;
        self.record_wait(deadline);
        Ok(Admission {
            _writer: writer,
            _connection: connection,
        })
    }

    /// On SQLite, this process's one write slot (see [`admit_write`](Self::admit_write)),
    /// for a write on a connection outside the pool; `None` on a backend with many
    /// writers.
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
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, DbError> {
        self.acquire(&self.paired, deadline).await
    }

    async fn acquire(
        &self,
        semaphore: &Arc<Semaphore>,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, DbError> {
        match tokio::time::timeout_at(deadline, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(DbError::Unavailable {
                database: D::NAME,
                cause: "the pool is closed".into(),
            }),
            Err(_elapsed) => {
                self.metrics.timeouts.increment(1);
                self.metrics.wait.record(self.checkout_timeout);
                Err(DbError::Unavailable {
                    database: D::NAME,
                    cause: format!("no connection free within {:?}", self.checkout_timeout).into(),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What this pool's backend can do.
    pub fn features(&self) -> &'static super::Features {
        self.backend.features()
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.begin.faults
    }

    /// How this pool's sessions begin.
    pub(crate) fn session_begin(&self) -> &Begin {
        &self.begin
    }

    /// A connection with no transaction begun, for statements that must run outside
    /// one (`COMMIT PREPARED`). Blocks.
    pub(crate) fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        self.inner.get().map_err(|e| self.checkout_failed(e))
    }

    /// r2d2 gave no connection within its timeout: none was free, or none could be
    /// opened (r2d2 keeps trying until the timeout and reports the last error).
    fn checkout_failed(&self, error: r2d2::Error) -> DbError {
        self.metrics.timeouts.increment(1);
        DbError::Unavailable {
            database: D::NAME,
            cause: error.into(),
        }
    }

    /// An idle connection, if the pool has one at hand; never waits, so the async side
    /// may call it.
    pub(crate) fn idle_connection(&self) -> Option<r2d2::PooledConnection<Manager>> {
        self.inner.try_get()
    }

    /// A connection, waiting at most until `deadline`. Blocks.
    pub(crate) fn connection_by(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.inner
            .get_timeout(left.max(Duration::from_millis(1)))
            .map_err(|e| self.checkout_failed(e))
    }

    /// A connection of its own, outside the pool, for as long as the caller keeps it.
    pub(crate) fn open_dedicated(&self) -> Result<AnyConnection, DbError> {
        self.opener.open().map_err(|e| DbError::Unavailable {
            database: D::NAME,
            cause: e.into(),
        })
    }

    /// Takes a connection and, for a [`Write`](super::Write) session, begins a
    /// transaction on it. Blocks: call it on a blocking thread (see [`super::read`],
    /// [`super::write`], [`super::blocking`]).
    pub fn begin<M: Access>(&self) -> Result<Session<D, M>, DbError> {
        self.begin_holding(None)
    }

    /// Like [`begin`](Self::begin), taking `lock` as the transaction begins. Blocks.
    pub(crate) fn begin_holding<M: Access>(
        &self,
        lock: Option<&KeyLock>,
    ) -> Result<Session<D, M>, DbError> {
        self.retrying(|| Session::begin_holding(self.connection()?, &self.begin, lock))
    }

    /// Like [`begin`](Self::begin), on a connection already taken from this pool; if that
    /// one turns out dead, on another. Blocks.
    pub(crate) fn begin_on<M: Access>(
        &self,
        conn: r2d2::PooledConnection<Manager>,
        lock: Option<&KeyLock>,
    ) -> Result<Session<D, M>, DbError> {
        match Session::begin_holding(conn, &self.begin, lock) {
            Err(DbError::ConnectionLost { .. }) => self.begin_holding(lock),
            begun => begun,
        }
    }

    /// A session for the database layer's own bookkeeping (decisions, recovery): no
    /// fault point fires in it, since it may run while unwinding from one. Blocks.
    pub(crate) fn begin_internal<M: Access>(&self) -> Result<Session<D, M>, DbError> {
        let begin = self.begin.without_faults();
        self.retrying(|| Session::begin(self.connection()?, &begin))
    }

    /// Runs `attempt` again while it fails because its connection turned out to be dead
    /// (the server restarted, or the connection was terminated). Such a connection is
    /// discarded by the pool, so each try takes another one, or opens a new one. This
    /// is what lets checkouts skip r2d2's validation query: the first statement of a
    /// session validates the connection instead, at no extra round trip.
    pub(crate) fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut tries_left = self.inner.max_size() + 1;
        loop {
            match attempt() {
                Err(error @ DbError::ConnectionLost { .. }) if tries_left > 0 => {
                    log::debug!("{}: retrying on another connection: {error}", D::NAME);
                    tries_left -= 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// This pool as the service's own upkeep sees it: every connection it takes comes
    /// from the one kept for upkeep, outside the requests' connections and permits. So
    /// an admitted request never waits for a connection that recovery or a probe holds,
    /// and they never wait for the requests'; the price is one more connection to the
    /// database per instance, opened when needed. Upkeep takes one connection of a
    /// database at a time (recovery never holds two of one pool at once), so one is
    /// enough; its tasks wait for each other, up to the checkout timeout.
    pub(crate) fn for_upkeep(&self) -> Self {
        Self {
            inner: self.upkeep.clone(),
            ..self.clone()
        }
    }

    /// Checks that a connection for upkeep can be had and answers within `timeout`,
    /// whatever requests hold. Blocks.
    pub fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        use diesel::connection::SimpleConnection;
        let mut conn = self
            .upkeep
            .get_timeout(timeout)
            .map_err(|e| DbError::Unavailable {
                database: D::NAME,
                cause: e.into(),
            })?;
        conn.batch_execute("SELECT 1").map_err(|e| {
            super::session::discard_if_lost(&mut conn, DbError::from_diesel(D::NAME, e))
        })
    }

    /// The most connections the pool opens (without taking the pool's lock, as
    /// [`status`](Self::status) does).
    pub fn max_size(&self) -> u32 {
        self.inner.max_size()
    }

    pub fn status(&self) -> PoolStatus {
        let state = self.inner.state();
        PoolStatus {
            connections: state.connections,
            idle: state.idle_connections,
            max_size: self.inner.max_size(),
        }
    }
}

/// How many of a pool's `max_size` connections requests that use both databases may
/// hold at once: all but a quarter (at least one, since a pool of one cannot keep any back).
fn paired_share(max_size: u32) -> usize {
    let kept_back = max_size.div_ceil(4);
    max_size.saturating_sub(kept_back).max(1) as usize
}

/// Logs a failed connection attempt as one line naming the database.
#[derive(Debug)]
struct ConnectionErrorLog(&'static str);

impl<E: std::error::Error + 'static> r2d2::HandleError<E> for ConnectionErrorLog {
    fn handle_error(&self, error: E) {
        log::warn!("{}: {}", self.0, super::chain(&error));
    }
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

/// A request's turn to use a pool (and, for a SQLite writer, the database's one write
/// slot), held until the work on the blocking thread is done.
#[derive(Debug)]
pub(crate) struct Admission {
    _writer: Option<OwnedSemaphorePermit>,
    _connection: OwnedSemaphorePermit,
}
