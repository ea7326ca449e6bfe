//! The test harness: starts the real application, as `main` does, on a free port against
//! fresh databases of the chosen backends, and talks to it over HTTP.

mod child;
mod client;
mod databases;
pub mod metrics;
mod own_mariadb;
mod pages;
mod proxy;
mod servers;

pub use child::{start_up_outcome, ChildServer};
pub use client::{send, Response};
pub use databases::{
    admin_count, admin_execute, admin_pids, count, execute, execute_in, mysql_admin_execute,
    mysql_admin_url, owner_is_gone, postgres_admin_url, postgres_url_for, prepared_transactions,
    remove_leftovers, set_mysql_connections_allowed, Backend, ScratchDatabase, Stack, Storage,
};
pub use own_mariadb::OwnMariadb;
pub use pages::{
    concrete_path, get_object, get_page, id_of, ids_of, item_ids, items_of, keys_of, walk_pages,
};
pub use proxy::Proxy;
pub use servers::{needed, not_run, Server};

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use multidb::app::{Application, Databases};
use multidb::config::Settings;
use multidb::db::fault::Faults;
use serde_json::{json, Value};

/// A running application on fresh databases; stopping and cleaning up happen on drop.
pub struct TestApp {
    pub address: String,
    pub databases: Databases,
    /// The application's fault points (armed by tests in `fault-injection` builds).
    pub faults: Faults,
    agent: ureq::Agent,
    handle: ServerHandle,
    server: Option<JoinHandle<()>>,
    storage: Option<databases::Storage>,
    /// The proxy in front of one database, if any: dropped after the checks of `Drop`.
    _proxy: Option<std::sync::Arc<Proxy>>,
}

/// Waits for something another thread is doing: polls `check` every 10 ms until it
/// gives a value. The bound (30 s) is only reached when that thread hangs.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..3000 {
        if let Some(value) = check() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never happened: {what}");
}

/// Starts the application with default settings on `stack`.
pub fn spawn_app(stack: Stack) -> TestApp {
    spawn_app_with(stack, |_| {})
}

/// Starts the application on `stack` after `customize` has adjusted its settings.
pub fn spawn_app_with(stack: Stack, customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(databases::Storage::create(stack), None, customize)
}

/// Like [`spawn_app_with`], with db`n` (on PostgreSQL) reached through a [`Proxy`] that
/// the test can slow down or kill.
pub fn spawn_app_behind_proxy(
    stack: Stack,
    n: u8,
    customize: impl FnOnce(&mut Settings),
) -> (TestApp, std::sync::Arc<Proxy>) {
    let storage = databases::Storage::create(stack);
    let raw = storage.raw_url(n).to_owned();
    let authority = raw.rsplit_once('@').expect("a PostgreSQL URL").1;
    let upstream = &authority[..authority.find('/').unwrap_or(authority.len())];
    let upstream = if upstream.contains(':') {
        upstream.to_owned()
    } else {
        format!("{upstream}:5432")
    };
    let proxy = std::sync::Arc::new(Proxy::start(&upstream));
    let through = multidb::db::DatabaseUrl::parse(&proxy.url_through(&raw)).unwrap();
    let mut app = spawn_app_in(storage, Some((n, through)), customize);
    app._proxy = Some(proxy.clone());
    (app, proxy)
}

fn spawn_app_in(
    storage: databases::Storage,
    through: Option<(u8, multidb::db::DatabaseUrl)>,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut settings = Settings::from_lookup(|_| None).expect("default settings");
    settings.bind_address = "127.0.0.1:0".into();
    settings.workers = Some(2);
    // Only the start-up recovery pass, which ends before the server starts: a periodic
    // pass holds pool connections at moments of its own, and tests assert that every
    // connection is back in its pool. Periodic recovery is tested on the real binary
    // (tests/api/crash.rs, tests/cluster), and in process by the tests of expired
    // idempotency keys, which set a short interval and do not check the pools.
    settings.recovery_interval = Duration::from_secs(3600);
    settings.db1.url = storage.url(1);
    settings.db2.url = storage.url(2);
    match through {
        Some((1, url)) => settings.db1.url = url,
        Some((_, url)) => settings.db2.url = url,
        None => {}
    }
    customize(&mut settings);
    let faults = settings.faults.clone();

    let (started, startup) = mpsc::channel();
    let server = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match Application::build(&settings) {
                Ok(app) => {
                    let _ =
                        started.send(Ok((app.address(), app.handle(), app.databases().clone())));
                    let _ = app.run_until_stopped().await;
                }
                Err(error) => {
                    let _ = started.send(Err(error.to_string()));
                }
            }
        })
    });
    let (address, handle, databases) = startup
        .recv()
        .expect("server thread ended before reporting")
        .unwrap_or_else(|error| panic!("application failed to start: {error}"));
    TestApp {
        address: format!("http://{address}"),
        databases,
        faults,
        // A redirect is an answer to check (GET /docs), not to follow.
        agent: ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .redirects(0)
            .build(),
        handle,
        server: Some(server),
        storage: Some(storage),
        _proxy: None,
    }
}

impl TestApp {
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Response {
        self.request(
            "POST",
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }

    pub fn patch(&self, path: &str, body: Value) -> Response {
        self.request(
            "PATCH",
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }

    /// Any request; `body` is a content type and raw bytes.
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Response {
        self.request_with(method, path, &[], body)
    }

    /// Any request, with `headers` (name, value) too, e.g. `Authorization`.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        client::send(
            &self.agent,
            method,
            &format!("{}{path}", self.address),
            headers,
            body,
        )
    }

    /// Creates a user and returns it, asserting the 201.
    pub fn create_user(&self, email: &str, name: &str) -> Value {
        let response = self.post("/users", json!({ "email": email, "name": name }));
        assert_eq!(
            response.status, 201,
            "creating user {email}: {}",
            response.text
        );
        response.body
    }

    /// An order for `user_id` to create: one "book" for 100 cents unless told otherwise,
    /// e.g. `app.order(ada).item("pen").quantity(2).cents(250).create()`.
    pub fn order(&self, user_id: i64) -> OrderRequest<'_> {
        OrderRequest {
            app: self,
            user_id,
            item: "book".to_owned(),
            quantity: 1,
            amount_cents: 100,
        }
    }

    /// Rows in db1's `users`, read directly from the database.
    pub fn count_users(&self) -> i64 {
        databases::count(&self.databases.db1, "users")
    }

    /// Rows in db2's `orders`, read directly from the database.
    pub fn count_orders(&self) -> i64 {
        databases::count(&self.databases.db2, "orders")
    }

    /// The PostgreSQL database name of db`n`, when db`n` is on PostgreSQL.
    pub fn postgres_database(&self, n: u8) -> Option<String> {
        self.storage
            .as_ref()
            .and_then(|storage| storage.postgres_name(n))
    }

    /// Asserts that every connection of both pools is back, idle, in its pool.
    #[track_caller]
    pub fn assert_pools_idle(&self) {
        let (db1, db2) = (self.databases.db1.status(), self.databases.db2.status());
        assert_eq!(
            db1.idle, db1.connections,
            "db1 connections still out: {db1:?}"
        );
        assert_eq!(
            db2.idle, db2.connections,
            "db2 connections still out: {db2:?}"
        );
    }

    /// Sessions left `idle in transaction` on this test's PostgreSQL and MySQL databases.
    pub fn idle_in_transaction(&self) -> i64 {
        let quoted = |names: Vec<String>| {
            names
                .iter()
                .map(|name| format!("'{name}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let postgres: Vec<String> = (1..=2).filter_map(|n| self.postgres_database(n)).collect();
        let mysql: Vec<String> = (1..=2).filter_map(|n| self.mysql_database(n)).collect();
        let mut idle = 0;
        if !postgres.is_empty() {
            idle += databases::admin_count(&format!(
                "SELECT COUNT(*) AS count FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname IN ({})",
                quoted(postgres)
            ));
        }
        if !mysql.is_empty() {
            idle += databases::mysql_idle_in_transaction(&quoted(mysql));
        }
        idle
    }

    /// The MySQL database name of db`n`, when db`n` is on MySQL.
    /// The prepared transactions left in either database (see [`Storage::prepared_transactions`]).
    pub fn prepared_transactions(&self) -> Vec<String> {
        self.storage
            .as_ref()
            .map(Storage::prepared_transactions)
            .unwrap_or_default()
    }

    pub fn mysql_database(&self, n: u8) -> Option<String> {
        self.storage
            .as_ref()
            .and_then(|storage| storage.mysql_name(n))
    }

    /// Orders whose user does not exist in db1: must always be zero.
    pub fn orphan_orders(&self) -> Vec<i64> {
        databases::orphan_orders(&self.databases)
    }

    /// Users whose order totals are not the count and sum of their orders: must always
    /// be none.
    pub fn totals_disagreeing(&self) -> Vec<String> {
        databases::totals_disagreeing(&self.databases)
    }
}

impl TestApp {
    /// What must hold after every test, on every stack: no order references a missing
    /// user, each user's order totals are the count and sum of their orders, every
    /// connection is back in its pool, and PostgreSQL has no session idle in
    /// transaction and no prepared transaction left. Returns what does not hold.
    fn broken_invariants(&self) -> Vec<String> {
        let mut broken = Vec::new();
        let orphans = self.orphan_orders();
        if !orphans.is_empty() {
            broken.push(format!("orders of missing users: {orphans:?}"));
        }
        let totals = self.totals_disagreeing();
        if !totals.is_empty() {
            broken.push(format!(
                "order totals that disagree with the orders: {totals:?}"
            ));
        }
        for status in [self.databases.db1.status(), self.databases.db2.status()] {
            if status.idle != status.connections {
                broken.push(format!("connections still out of a pool: {status:?}"));
            }
        }
        let idle_in_transaction = self.idle_in_transaction();
        if idle_in_transaction != 0 {
            let mysql: Vec<String> = (1..=2).filter_map(|n| self.mysql_database(n)).collect();
            broken.push(format!(
                "{idle_in_transaction} sessions idle in transaction {}",
                databases::mysql_transactions(&mysql)
            ));
        }
        let prepared = self.prepared_transactions();
        if !prepared.is_empty() {
            broken.push(format!("prepared transactions left: {prepared:?}"));
        }
        broken
    }
}

/// Stops the application and checks [`TestApp::broken_invariants`], so that no test can
/// forget them; a test that is already failing is not checked again.
impl Drop for TestApp {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        // Once the server's thread has ended, no request or recovery pass holds anything.
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        let broken = if std::thread::panicking() {
            Vec::new()
        } else {
            self.broken_invariants()
        };
        if let Some(storage) = self.storage.take() {
            storage.remove();
        }
        assert!(broken.is_empty(), "after the test: {}", broken.join("; "));
    }
}

/// Generates one `#[test]` per stack for each named function `fn name(stack: Stack)`:
/// each backend for both databases (SQLite, PostgreSQL, MySQL), and each mix of two.
macro_rules! on_every_stack {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::helpers::Stack::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::postgres() { super::$name(stack) } } )*
        }
        mod postgres_sqlite {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::postgres_sqlite() { super::$name(stack) } } )*
        }
        mod sqlite_postgres {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::sqlite_postgres() { super::$name(stack) } } )*
        }
        mod mysql {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::mysql() { super::$name(stack) } } )*
        }
        mod mysql_sqlite {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::mysql_sqlite() { super::$name(stack) } } )*
        }
        mod sqlite_mysql {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::sqlite_mysql() { super::$name(stack) } } )*
        }
        mod mysql_postgres {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::mysql_postgres() { super::$name(stack) } } )*
        }
        mod postgres_mysql {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::postgres_mysql() { super::$name(stack) } } )*
        }
    };
}

/// One `#[test]` per backend, both databases on it: SQLite, PostgreSQL, MySQL.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        on_both_backends!($($name),*);
        mod mysql {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::mysql() { super::$name(stack) } } )*
        }
    };
}

/// Like [`on_every_stack!`] but SQLite+SQLite and PostgreSQL+PostgreSQL only, for tests
/// that are about one backend's behaviour rather than the mix.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::helpers::Stack::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { if let Some(stack) = $crate::helpers::Stack::postgres() { super::$name(stack) } } )*
        }
    };
}

/// One `#[test]` per named stack for each function `fn name(stack: Stack)`, for tests
/// that apply to some mixes only: `on_stacks!([postgres, postgres_sqlite] => f, g);`
/// makes `f::postgres`, `f::postgres_sqlite`, `g::postgres`, `g::postgres_sqlite`.
macro_rules! on_stacks {
    ($stacks:tt => $($name:ident),* $(,)?) => {
        $( on_stacks!(@one $stacks $name); )*
    };
    (@one [$($stack:ident),*] $name:ident) => {
        mod $name {
            $(
                #[test]
                fn $stack() {
                    if let Some(stack) = $crate::helpers::Stack::named(stringify!($stack)) {
                        super::$name(stack)
                    }
                }
            )*
        }
    };
}

/// An order being described for [`TestApp::order`].
pub struct OrderRequest<'a> {
    app: &'a TestApp,
    user_id: i64,
    item: String,
    quantity: i64,
    amount_cents: i64,
}

impl OrderRequest<'_> {
    pub fn item(mut self, item: &str) -> Self {
        self.item = item.to_owned();
        self
    }

    pub fn quantity(mut self, quantity: i64) -> Self {
        self.quantity = quantity;
        self
    }

    pub fn cents(mut self, amount_cents: i64) -> Self {
        self.amount_cents = amount_cents;
        self
    }

    /// Creates the order and returns it, asserting the 201.
    pub fn create(self) -> Value {
        let Self {
            app,
            user_id,
            item,
            quantity,
            amount_cents,
        } = self;
        let response = app.post(
            "/orders",
            json!({ "user_id": user_id, "item": item, "quantity": quantity, "amount_cents": amount_cents }),
        );
        assert_eq!(
            response.status, 201,
            "creating order for user {user_id}: {}",
            response.text
        );
        response.body
    }
}
