//! Builds the application exactly as production runs it; `main` and the tests both
//! start it through [`Application::build`].

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;

use crate::config::{Auth, DatabaseSettings, Settings};
use crate::db::{self, Coalescer, CrossCommit, Database, Pool};
use crate::db1::Db1;
use crate::db2::Db2;
use crate::http::Authenticator;
use crate::telemetry::Metrics;
use crate::{orders, users};

/// The pools of both databases and the coordinator of writes to both.
#[derive(Clone)]
pub struct Databases {
    pub db1: Pool<Db1>,
    pub db2: Pool<Db2>,
    pub cross: CrossCommit<Db1, Db2>,
}

impl Databases {
    /// Both pools, checked and migrated ([`Pools::connect`]), then the coordinator of
    /// writes to both ([`Pools::coordinate`]). Blocks.
    pub fn connect(settings: &Settings, recorder: &dyn metrics::Recorder) -> anyhow::Result<Self> {
        Pools::connect(settings, recorder)?.coordinate(settings, recorder)
    }
}

/// Both databases' pools, checked to be two different databases, each the right one,
/// and migrated: all that `multidb migrate` does, and the first step of serving.
pub struct Pools {
    pub db1: Pool<Db1>,
    pub db2: Pool<Db2>,
}

impl Pools {
    /// Connects both pools and migrates them (the application's migrations if
    /// configured). The pools record into `recorder`. Blocks. A failure names the
    /// setting or the step, with every cause as its source.
    pub fn connect(settings: &Settings, recorder: &dyn metrics::Recorder) -> anyhow::Result<Self> {
        let db1 = connect_pool(&settings.db1)
            .context("DATABASE_URL_1")?
            .observed_by(recorder);
        let db2 = connect_pool(&settings.db2)
            .context("DATABASE_URL_2")?
            .observed_by(recorder);
        #[cfg(feature = "fault-injection")]
        let (db1, db2) = (
            db1.injecting(settings.faults.clone()),
            db2.injecting(settings.faults.clone()),
        );
        // Before migrations, which would otherwise take db2's for applied.
        db::ensure_distinct(&db1, &db2).context("DATABASE_URL_1 and DATABASE_URL_2")?;
        db::ensure_not_swapped(&db1, &db2).context("DATABASE_URL_1 and DATABASE_URL_2")?;
        // The layer's own tables always; the application's if configured.
        let which = if settings.run_migrations {
            db::Migrations::All
        } else {
            db::Migrations::LayerOnly
        };
        migrate(&db1, which)?;
        migrate(&db2, which)?;
        db::ensure_migrated(&db1).context("DATABASE_URL_1")?;
        db::ensure_migrated(&db2).context("DATABASE_URL_2")?;
        Ok(Self { db1, db2 })
    }

    /// Takes this instance's lease and resolves the cross-database writes a crash left
    /// in doubt, before anything else may touch them: what serving needs beyond the
    /// pools. The coordinator records into `recorder`. Blocks.
    pub fn coordinate(
        self,
        settings: &Settings,
        recorder: &dyn metrics::Recorder,
    ) -> anyhow::Result<Databases> {
        let Self { db1, db2 } = self;
        let cross = CrossCommit::new(
            db1.clone(),
            db2.clone(),
            crate::workflows::REDO,
            settings.instance_lease,
            recorder,
        )
        .context("cross-database commit")?;
        cross
            .recover()
            .context("recovery of cross-database writes")?;
        // The gauges from the start, not only from the first periodic look.
        if let Err(error) = cross.look_in_doubt() {
            log::warn!("cannot count the cross-database writes in doubt: {error}");
        }
        Ok(Databases { db1, db2, cross })
    }
}

fn connect_pool<D: Database>(database: &DatabaseSettings) -> Result<Pool<D>, db::DbError> {
    let pool = Pool::connect(&database.url, &database.pool)?;
    log::info!("{}: {} ({})", D::NAME, database.url, pool.backend());
    Ok(pool)
}

fn migrate<D: Database>(pool: &Pool<D>, which: db::Migrations) -> anyhow::Result<()> {
    let applied =
        db::run_migrations(pool, which).with_context(|| format!("{}: migrations", D::NAME))?;
    for version in &applied {
        log::info!("{}: applied migration {version}", D::NAME);
    }
    Ok(())
}

/// The running server, bound but not yet awaited.
pub struct Application {
    server: Server,
    address: SocketAddr,
    databases: Databases,
}

impl Application {
    /// Connects and migrates the databases, binds the listener and builds the server.
    /// Must be called inside an actix system (`#[actix_web::main]` or `System::new()`).
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        #[cfg(feature = "fault-injection")]
        if settings.clock_skew_ms != 0 {
            crate::domain::timestamp::set_skew(settings.clock_skew_ms);
            log::warn!(
                "this process's clock is set off by {} ms (MULTIDB_TEST_CLOCK_SKEW_MS)",
                settings.clock_skew_ms
            );
        }
        // The port first: a second copy started by mistake on the same address stops
        // here, before it migrates anything or takes a lease. Connections that arrive
        // meanwhile wait in the listen queue until the server runs.
        let listener = TcpListener::bind(&settings.bind_address)
            .with_context(|| format!("BIND_ADDRESS: cannot listen on {}", settings.bind_address))?;
        let address = listener.local_addr().context("BIND_ADDRESS")?;
        let metrics = Metrics::new().context("metrics")?;
        let databases = Databases::connect(settings, metrics.recorder())?;

        let idempotency_ttl = settings.idempotency_ttl;
        databases
            .cross
            .spawn_periodic_recovery(settings.recovery_interval, move |db1, db2| {
                purge_expired_keys(db1, idempotency_ttl);
                purge_expired_keys(db2, idempotency_ttl);
            });
        metrics.spawn_upkeep();
        let metrics = web::Data::new(metrics);
        let db1 = web::Data::new(databases.db1.clone());
        let db2 = web::Data::new(databases.db2.clone());
        // Reads batched across requests (see `db::Coalescer`), shared by the workers.
        let users_by_id = web::Data::new(Coalescer::<users::ById>::new(databases.db1.clone()));
        let first_users = web::Data::new(Coalescer::<users::First>::new(databases.db1.clone()));
        let first_orders = web::Data::new(Coalescer::<orders::First>::new(databases.db2.clone()));
        let cross = web::Data::new(databases.cross.clone());
        let docs = web::Data::new(crate::http::Docs::new().context("the OpenAPI document")?);
        let request_timeout = settings.request_timeout;
        let retention = crate::http::Retention(settings.idempotency_ttl);
        let auth = match settings.auth {
            Auth::Required => Some(Authenticator::new(
                databases.db1.clone(),
                settings.auth_offline_grace,
            )),
            Auth::Off => {
                if !crate::config::is_loopback(&settings.bind_address) {
                    log::warn!(
                        "AUTH=off on {}, which other machines can reach: anyone who can reach it may read and delete every user",
                        settings.bind_address
                    );
                }
                None
            }
        };
        let cors_origins = settings.cors_allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            let cors = cors_origins.middleware();
            let cors_on = cors.is_some();
            // Per worker: each worker thread keeps the request instruments it has used.
            let requests = std::rc::Rc::new(metrics.for_requests());
            App::new()
                .wrap(middleware::Condition::new(
                    cors_on,
                    cors.unwrap_or_default(),
                ))
                .wrap(middleware::Condition::new(
                    cors_on,
                    middleware::from_fn(crate::http::cors_refusals_as_json),
                ))
                .wrap(middleware::from_fn(move |request, next| {
                    crate::http::answer_within(request_timeout, request, next)
                }))
                .wrap(middleware::from_fn(move |request, next| {
                    crate::http::observe_requests(requests.clone(), request, next)
                }))
                .app_data(metrics.clone())
                .app_data(db1.clone())
                .app_data(db2.clone())
                .app_data(users_by_id.clone())
                .app_data(first_users.clone())
                .app_data(first_orders.clone())
                .app_data(cross.clone())
                .app_data(docs.clone())
                .app_data(retention)
                .configure(|config| crate::http::routes(config, auth.as_ref()))
        })
        // In-flight requests get this long to finish after SIGTERM/SIGINT.
        .shutdown_timeout(30);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).context("BIND_ADDRESS")?.run();
        log::info!(
            "{}",
            match settings.auth {
                Auth::Required => "every route but /health and the operations endpoints needs an API key (AUTH=required)",
                Auth::Off => "no API key is asked for (AUTH=off)",
            }
        );
        // Last, and alone on its line: scripts read the port from it (.ci/lib/server.sh).
        log::info!("listening on http://{address}");
        Ok(Self {
            server,
            address,
            databases,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn databases(&self) -> &Databases {
        &self.databases
    }

    /// Stops the server: `handle().stop(true)` finishes in-flight requests first.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped by a signal (SIGTERM, SIGINT) or by the handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Deletes the idempotency keys of `pool`'s database that expired, on an instance's
/// recovery turn (so one instance at a time). A failure is logged and left for the next
/// turn: expired keys count as unused anyway.
fn purge_expired_keys<D: Database>(pool: &Pool<D>, ttl: std::time::Duration) {
    match db::idempotency::purge_expired(pool, ttl) {
        Ok(0) => {}
        Ok(purged) => log::debug!("{}: deleted {purged} expired idempotency keys", D::NAME),
        Err(error) => log::warn!(
            "{}: cannot delete expired idempotency keys: {error}",
            D::NAME
        ),
    }
}
