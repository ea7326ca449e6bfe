use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::admission::Admissions;
use super::backend::Manager;
use super::fault::Faults;
use super::metrics::PoolMetrics;
use super::retry::OnLostConnection;
use super::session::{Begin, Opening};
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
    /// Requests' turns on the connections, taken before a blocking thread is (see
    /// [`super::admission`]).
    admissions: Admissions,
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
            admissions: self.admissions.clone(),
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
        let two_phase_scope = first
            .two_phase_scope()
            .map_err(|e| DbError::from_diesel(D::NAME, e))?;
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
                two_phase_scope: two_phase_scope.into(),
            },
            opener: std::sync::Arc::new(manager),
            admissions: Admissions::new(
                D::NAME,
                settings.max_size,
                single_writer,
                settings.checkout_timeout,
            ),
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
        self.admissions.observed_by(self.metrics.clone());
        self
    }

    /// Requests' turns on this pool's connections.
    pub(crate) fn metrics(&self) -> &PoolMetrics {
        &self.metrics
    }

    pub(crate) fn admissions(&self) -> &Admissions {
        &self.admissions
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

    /// What tells this database's prepared transactions from others' on its server
    /// (see `AnyConnection::two_phase_scope`).
    pub(crate) fn two_phase_scope(&self) -> &str {
        &self.begin.two_phase_scope
    }

    /// Takes a connection and, for a [`Write`](super::Write) session, begins a
    /// transaction on it. Blocks: call it on a blocking thread (see [`super::read`],
    /// [`super::write`], [`super::blocking`]).
    pub fn begin<M: Access>(&self) -> Result<Session<D, M>, DbError> {
        self.begin_opening(Opening::Plain)
    }

    /// Like [`begin`](Self::begin), the transaction begun as `opening` says. Blocks.
    pub(crate) fn begin_opening<M: Access>(
        &self,
        opening: Opening<'_>,
    ) -> Result<Session<D, M>, DbError> {
        self.retrying(|| Session::begin_opening(self.connection()?, &self.begin, opening))
    }

    /// Like [`begin_opening`](Self::begin_opening), on a connection already taken from
    /// this pool; if that one turns out dead, on another. Blocks.
    pub(crate) fn begin_on<M: Access>(
        &self,
        conn: r2d2::PooledConnection<Manager>,
        opening: Opening<'_>,
    ) -> Result<Session<D, M>, DbError> {
        match Session::begin_opening(conn, &self.begin, opening) {
            Err(DbError::ConnectionLost { .. }) => self.begin_opening(opening),
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
    /// (see [`OnLostConnection`]).
    pub(crate) fn retrying<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut policy = OnLostConnection::for_pools_of(self.max_size());
        loop {
            match attempt() {
                Err(error) if policy.again(&error) => {}
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

/// Logs a failed connection attempt as one line naming the database.
#[derive(Debug)]
struct ConnectionErrorLog(&'static str);

impl<E: std::error::Error + 'static> r2d2::HandleError<E> for ConnectionErrorLog {
    fn handle_error(&self, error: E) {
        log::warn!("{}: {}", self.0, super::chain(&error));
    }
}
