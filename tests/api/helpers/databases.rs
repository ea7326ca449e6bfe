use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use multidb::app::Databases;
use multidb::db::{Database, DatabaseUrl, Pool, Write};

use super::servers::{self, Server};

pub use multidb::db::Backend;

/// The backends of db1 and db2 for one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stack {
    pub db1: Backend,
    pub db2: Backend,
}

impl Stack {
    /// The stack of that name (`sqlite`, `postgres`, `postgres_sqlite`,
    /// `sqlite_postgres`); `None` where PostgreSQL is needed and not configured.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "sqlite" => Some(Self::sqlite()),
            "postgres" => Self::postgres(),
            "postgres_sqlite" => Self::postgres_sqlite(),
            "sqlite_postgres" => Self::sqlite_postgres(),
            "mysql" => Self::mysql(),
            "mysql_sqlite" => Self::mysql_sqlite(),
            "sqlite_mysql" => Self::sqlite_mysql(),
            "mysql_postgres" => Self::mysql_postgres(),
            "postgres_mysql" => Self::postgres_mysql(),
            other => panic!("no stack is named {other}"),
        }
    }

    pub fn sqlite() -> Self {
        Self {
            db1: Backend::Sqlite,
            db2: Backend::Sqlite,
        }
    }

    pub fn postgres() -> Option<Self> {
        Self::on(&[Server::Postgres], Backend::Postgres, Backend::Postgres)
    }

    /// SQLite users with PostgreSQL orders.
    pub fn sqlite_postgres() -> Option<Self> {
        Self::on(&[Server::Postgres], Backend::Sqlite, Backend::Postgres)
    }

    /// PostgreSQL users with SQLite orders.
    pub fn postgres_sqlite() -> Option<Self> {
        Self::on(&[Server::Postgres], Backend::Postgres, Backend::Sqlite)
    }

    /// MySQL/MariaDB for both.
    pub fn mysql() -> Option<Self> {
        Self::on(&[Server::Mysql], Backend::Mysql, Backend::Mysql)
    }

    /// MySQL users with SQLite orders.
    pub fn mysql_sqlite() -> Option<Self> {
        Self::on(&[Server::Mysql], Backend::Mysql, Backend::Sqlite)
    }

    /// SQLite users with MySQL orders.
    pub fn sqlite_mysql() -> Option<Self> {
        Self::on(&[Server::Mysql], Backend::Sqlite, Backend::Mysql)
    }

    /// MySQL users with PostgreSQL orders.
    pub fn mysql_postgres() -> Option<Self> {
        Self::on(
            &[Server::Mysql, Server::Postgres],
            Backend::Mysql,
            Backend::Postgres,
        )
    }

    /// PostgreSQL users with MySQL orders.
    pub fn postgres_mysql() -> Option<Self> {
        Self::on(
            &[Server::Mysql, Server::Postgres],
            Backend::Postgres,
            Backend::Mysql,
        )
    }

    /// The stack, where every server it needs can be had; otherwise `None`, and the test
    /// is counted as not run (see `servers`).
    fn on(needed: &[Server], db1: Backend, db2: Backend) -> Option<Self> {
        needed
            .iter()
            .all(|&server| servers::needed(server).is_some())
            .then_some(Self { db1, db2 })
    }

    pub fn backend(&self, n: u8) -> Backend {
        if n == 1 {
            self.db1
        } else {
            self.db2
        }
    }
}

pub fn mysql_admin_url() -> Option<String> {
    servers::url(Server::Mysql)
}

/// A connection to the MySQL test server as administrator.
fn mysql_admin() -> MysqlConnection {
    let url = mysql_admin_url().expect("MySQL test without a server");
    MysqlConnection::establish(&url).expect("connect to the test MySQL server")
}

pub fn mysql_admin_execute(sql: &str) {
    mysql_admin()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Transactions left open on the MySQL databases `quoted` (a list of quoted names): those
/// idle between statements now and still, the same ones, a moment later. The service's
/// own background work (a recovery pass's session between two statements) moves on; a
/// transaction left open on a pooled connection does not.
pub fn mysql_idle_in_transaction(quoted: &str) -> i64 {
    #[derive(QueryableByName, PartialEq)]
    struct Trx {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let idle = || {
        diesel::sql_query(format!(
            "SELECT CAST(t.trx_id AS CHAR) AS id FROM information_schema.innodb_trx t \
             JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
             WHERE p.command = 'Sleep' AND p.db IN ({quoted})"
        ))
        .load::<Trx>(&mut mysql_admin())
        .expect("list idle MySQL transactions")
    };
    let first = idle();
    if first.is_empty() {
        return 0;
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let later = idle();
    let still = first.iter().filter(|trx| later.contains(trx)).count();
    i64::try_from(still).unwrap_or(i64::MAX)
}

/// What the transactions open on the MySQL databases `names` are doing, for a message.
pub fn mysql_transactions(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    // Read through `Debug`, into the message.
    #[allow(dead_code)]
    #[derive(QueryableByName, Debug)]
    struct Open {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        started: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        command: Option<String>,
        #[diesel(sql_type = BigInt)]
        rows_locked: i64,
        #[diesel(sql_type = BigInt)]
        rows_modified: i64,
    }
    let list = names
        .iter()
        .map(|name| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    diesel::sql_query(format!(
        "SELECT t.trx_state AS state, CAST(t.trx_started AS CHAR) AS started, p.command AS command, \
         CAST(t.trx_rows_locked AS SIGNED) AS rows_locked, \
         CAST(t.trx_rows_modified AS SIGNED) AS rows_modified \
         FROM information_schema.innodb_trx t \
         JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
         WHERE p.db IN ({list})"
    ))
    .load::<Open>(&mut mysql_admin())
    .map(|open| format!("{open:?}"))
    .unwrap_or_else(|e| e.to_string())
}

pub fn postgres_admin_url() -> Option<String> {
    servers::url(Server::Postgres)
}

/// `admin_url` with its database name replaced.
pub fn postgres_url_for(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

const MYSQL_TEST_PASSWORD: &str = "test-password";

/// The URL of the MySQL database `name` on the server of `admin_url`, as its own user
/// (of the same name, see `Storage::create`).
fn mysql_url_for(admin_url: &str, name: &str) -> String {
    let scheme_end = admin_url.find("://").map_or(0, |i| i + 3);
    let rest = &admin_url[scheme_end..];
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split(['/', '?']).next().unwrap_or(host);
    format!(
        "{}{name}:{MYSQL_TEST_PASSWORD}@{host}/{name}",
        &admin_url[..scheme_end]
    )
}

/// Locks the MySQL test database `name`'s user out and ends its connections, or lets it
/// in again: the database "goes away" for the service and comes back, as
/// `ALLOW_CONNECTIONS` does on PostgreSQL.
pub fn set_mysql_connections_allowed(name: &str, allowed: bool) {
    let lock = if allowed { "UNLOCK" } else { "LOCK" };
    mysql_admin_execute(&format!("ALTER USER '{name}'@'%' ACCOUNT {lock}"));
    if !allowed {
        #[derive(QueryableByName)]
        struct Connection {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut admin = mysql_admin();
        let connections = diesel::sql_query(format!(
            "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist WHERE user = '{name}'"
        ))
        .load::<Connection>(&mut admin)
        .expect("list the connections of a MySQL test user");
        for connection in connections {
            // One that ended meanwhile is no error.
            let _ = admin.batch_execute(&format!("KILL CONNECTION {}", connection.id));
        }
    }
}

fn unique_name(n: u8) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "multidb_test_{}_{}_{nanos}_db{n}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn admin_execute(sql: &str) {
    let mut admin = admin();
    admin
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs a `SELECT COUNT(*) AS count …` on the PostgreSQL server as administrator.
pub fn admin_count(sql: &str) -> i64 {
    let mut admin = admin();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut admin)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .count
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// Runs a `SELECT pid …` on the PostgreSQL server as administrator.
pub fn admin_pids(sql: &str) -> Vec<i32> {
    let mut admin = admin();
    diesel::sql_query(sql)
        .load::<Pid>(&mut admin)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|row| row.pid)
        .collect()
}

/// Runs `sql` in a committed write session of `pool`, bypassing the service's API.
pub fn execute<D: Database>(pool: &Pool<D>, sql: &str) {
    let mut session = pool.begin::<Write>().expect("test session");
    session
        .connection()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    session.commit().expect("commit a test session");
}

/// The fresh databases of one test: SQLite files in a temporary directory, or
/// PostgreSQL databases with unique names. Removed when the test ends.
pub struct Storage {
    directory: PathBuf,
    postgres: Vec<String>,
    mysql: Vec<String>,
    urls: [String; 2],
}

/// What a killed test run left behind — databases and directories whose names carry the
/// pid of a process that is gone — is removed once, before this run creates its own.
fn remove_leftovers_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(remove_leftovers);
}

/// Removes every test database and directory whose owning process is gone.
pub fn remove_leftovers() {
    if postgres_admin_url().is_some() {
        let mut admin = admin();
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            datname: String,
        }
        let names = diesel::sql_query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'multidb\\_test\\_%'",
        )
        .load::<Name>(&mut admin)
        .expect("list test databases");
        for name in names.into_iter().map(|row| row.datname) {
            if owner_is_gone(&name) {
                // An outage test may have been killed with its database refusing connections.
                admin_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"));
                for gid in prepared_transactions(&name) {
                    execute_in(&name, &format!("ROLLBACK PREPARED '{gid}'"));
                }
                admin_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
    if mysql_admin_url().is_some() {
        #[derive(QueryableByName)]
        struct Schema {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let names = diesel::sql_query(
            "SELECT schema_name AS name FROM information_schema.schemata \
             WHERE schema_name LIKE 'multidb\\_test\\_%'",
        )
        .load::<Schema>(&mut mysql_admin())
        .expect("list MySQL test databases");
        for name in names.into_iter().map(|row| row.name) {
            if owner_is_gone(&name) {
                drop_mysql_database(&name);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if owner_is_gone(&name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Whether `name` is one of the harness's (`multidb_test_<pid>_…`, `multidb-…-<pid>`) and
/// the process `pid` no longer runs. A pid reused by another process keeps its leftovers
/// for a later run: never remove what might be in use.
pub fn owner_is_gone(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("multidb_test_")
        .or_else(|| name.strip_prefix("multidb-"))
    else {
        return false;
    };
    rest.split(['_', '-'])
        .find_map(|part| part.parse::<u32>().ok())
        .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

impl Storage {
    pub fn create(stack: Stack) -> Self {
        remove_leftovers_once();
        let directory = std::env::temp_dir().join(unique_name(0));
        let mut postgres = Vec::new();
        let mut mysql = Vec::new();
        let mut url = |n: u8| match stack.backend(n) {
            Backend::Mysql => {
                // A user of its own, as a deployment has, which an outage test can lock out.
                let name = unique_name(n);
                mysql_admin_execute(&format!(
                    "CREATE DATABASE {name}; \
                     CREATE USER '{name}'@'%' IDENTIFIED BY '{MYSQL_TEST_PASSWORD}'; \
                     GRANT ALL ON {name}.* TO '{name}'@'%'"
                ));
                let admin_url = mysql_admin_url().expect("MySQL test without a server");
                mysql.push(name.clone());
                mysql_url_for(&admin_url, &name)
            }
            Backend::Sqlite => {
                std::fs::create_dir_all(&directory).expect("create test directory");
                directory
                    .join(format!("db{n}.sqlite"))
                    .display()
                    .to_string()
            }
            Backend::Postgres => {
                let name = unique_name(n);
                admin_execute(&format!("CREATE DATABASE {name}"));
                let admin_url = postgres_admin_url().expect("PostgreSQL test without a server");
                postgres.push(name.clone());
                postgres_url_for(&admin_url, &name)
            }
        };
        let urls = [url(1), url(2)];
        Self {
            directory,
            postgres,
            mysql,
            urls,
        }
    }

    /// The URL as given to the service, password included.
    pub fn raw_url(&self, n: u8) -> &str {
        &self.urls[usize::from(n - 1)]
    }

    pub fn postgres_names(&self) -> &[String] {
        &self.postgres
    }

    /// The prepared transactions left in either database, on whichever server holds them.
    pub fn prepared_transactions(&self) -> Vec<String> {
        let postgres = self
            .postgres
            .iter()
            .flat_map(|name| prepared_transactions(name));
        let mysql = self
            .mysql
            .iter()
            .flat_map(|name| mysql_prepared_transactions(name));
        postgres.chain(mysql).collect()
    }

    pub fn url(&self, n: u8) -> DatabaseUrl {
        DatabaseUrl::parse(&self.urls[usize::from(n - 1)]).expect("test database URL")
    }

    /// The PostgreSQL database name of db`n`, if it is on PostgreSQL.
    pub fn postgres_name(&self, n: u8) -> Option<String> {
        let url = &self.urls[usize::from(n - 1)];
        url.starts_with("postgres")
            .then(|| url.rsplit('/').next().unwrap_or("").to_owned())
    }

    /// The MySQL database name of db`n`, if it is on MySQL.
    pub fn mysql_name(&self, n: u8) -> Option<String> {
        let url = &self.urls[usize::from(n - 1)];
        url.starts_with("mysql")
            .then(|| url.rsplit('/').next().unwrap_or("").to_owned())
    }

    /// Runs `sql` on db`n` directly, whatever its backend, bypassing the service.
    pub fn execute(&self, n: u8, sql: &str) {
        if self.mysql_name(n).is_some() {
            return MysqlConnection::establish(self.raw_url(n))
                .expect("connect to a MySQL test database")
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        match self.postgres_name(n) {
            Some(name) => execute_in(&name, sql),
            // Waiting for the service's own writers, as any writer would (the default
            // busy timeout of a connection is 0: "database is locked" at once).
            None => SqliteConnection::establish(self.raw_url(n))
                .expect("open a test SQLite file")
                .batch_execute(&format!("PRAGMA busy_timeout = 10000; {sql}"))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    pub fn remove(self) {
        for name in &self.postgres {
            // A prepared transaction would keep DROP DATABASE from succeeding.
            for gid in prepared_transactions(name) {
                execute_in(name, &format!("ROLLBACK PREPARED '{gid}'"));
            }
            admin_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        for name in &self.mysql {
            drop_mysql_database(name);
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

#[derive(QueryableByName)]
struct Gid {
    #[diesel(sql_type = diesel::sql_types::Text)]
    gid: String,
}

/// A connection to the test server's administration database (the one its URL names).
fn admin() -> PgConnection {
    let admin_url = postgres_admin_url().expect("PostgreSQL test without a server");
    PgConnection::establish(&admin_url).expect("connect to the test PostgreSQL server")
}

/// A connection to `database` on the test server, as its administrator.
fn connect_to(database: &str) -> PgConnection {
    let admin_url = postgres_admin_url().expect("PostgreSQL test without a server");
    PgConnection::establish(&postgres_url_for(&admin_url, database))
        .expect("connect to a test database")
}

/// Prepared transactions left in a test database.
pub fn prepared_transactions(database: &str) -> Vec<String> {
    diesel::sql_query("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
        .load::<Gid>(&mut connect_to(database))
        .expect("list prepared transactions")
        .into_iter()
        .map(|row| row.gid)
        .collect()
}

/// The XA transactions prepared on the MySQL server for `database` (their branch
/// qualifier is the database's name), as gids.
pub fn mysql_prepared_transactions(database: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Listed {
        #[diesel(sql_type = BigInt)]
        gtrid_length: i64,
        #[diesel(sql_type = diesel::sql_types::Binary)]
        data: Vec<u8>,
    }
    diesel::sql_query("XA RECOVER")
        .load::<Listed>(&mut mysql_admin())
        .expect("XA RECOVER")
        .into_iter()
        .filter_map(|listed| {
            let (gtrid, bqual) = listed
                .data
                .split_at(usize::try_from(listed.gtrid_length).unwrap());
            (bqual == database.as_bytes()).then(|| String::from_utf8_lossy(gtrid).into_owned())
        })
        .collect()
}

/// Drops a MySQL test database, rolling back first what is prepared for it (a prepared
/// transaction's locks would keep `DROP DATABASE` waiting).
fn drop_mysql_database(name: &str) {
    let hex = |text: &str| -> String { text.bytes().map(|b| format!("{b:02x}")).collect() };
    for gid in mysql_prepared_transactions(name) {
        mysql_admin_execute(&format!("XA ROLLBACK X'{}',X'{}'", hex(&gid), hex(name)));
    }
    mysql_admin_execute(&format!(
        "DROP DATABASE IF EXISTS {name}; DROP USER IF EXISTS '{name}'@'%'"
    ));
}

pub fn execute_in(database: &str, sql: &str) {
    connect_to(database)
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Rows in `table`, read through a write session (rolled back): raw SQL is not a read
/// session's to run.
pub fn count<D: Database>(pool: &Pool<D>, table: &str) -> i64 {
    let mut session = pool.begin::<Write>().expect("test session");
    diesel::sql_query(format!("SELECT COUNT(*) AS count FROM {table}"))
        .get_result::<Count>(session.connection())
        .expect("count rows")
        .count
}

fn ids<D: Database>(pool: &Pool<D>, sql: &str) -> Vec<i64> {
    let mut session = pool.begin::<Write>().expect("test session");
    diesel::sql_query(sql)
        .load::<IdRow>(session.connection())
        .expect("load ids")
        .into_iter()
        .map(|row| row.id)
        .collect()
}

/// Order ids whose `user_id` is not a user in db1.
pub fn orphan_orders(databases: &Databases) -> Vec<i64> {
    let users: HashSet<i64> = ids(&databases.db1, "SELECT id FROM users")
        .into_iter()
        .collect();
    let mut session = databases.db2.begin::<Write>().expect("test session");
    #[derive(QueryableByName)]
    struct OrderRow {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = BigInt)]
        user_id: i64,
    }
    diesel::sql_query("SELECT id, user_id FROM orders")
        .load::<OrderRow>(session.connection())
        .expect("load orders")
        .into_iter()
        .filter(|order| !users.contains(&order.user_id))
        .map(|order| order.id)
        .collect()
}

/// Users whose row in `user_order_totals` is not the count and sum of their orders (a
/// user without orders may have a row of zeros or none), described.
pub fn totals_disagreeing(databases: &Databases) -> Vec<String> {
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Totals {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        order_count: i64,
        #[diesel(sql_type = BigInt)]
        total_cents: i64,
    }
    #[derive(QueryableByName)]
    struct OrderAmount {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        amount_cents: i64,
    }
    let mut session = databases.db2.begin::<Write>().expect("test session");
    // Summed in Rust: each backend types SUM differently.
    let mut from_orders: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for order in diesel::sql_query("SELECT user_id, amount_cents FROM orders")
        .load::<OrderAmount>(session.connection())
        .expect("load orders")
    {
        let entry = from_orders.entry(order.user_id).or_default();
        entry.0 += 1;
        entry.1 += order.amount_cents;
    }
    let recorded: std::collections::BTreeMap<i64, (i64, i64)> =
        diesel::sql_query("SELECT user_id, order_count, total_cents FROM user_order_totals")
            .load::<Totals>(session.connection())
            .expect("load totals")
            .into_iter()
            .map(|row| (row.user_id, (row.order_count, row.total_cents)))
            .collect();
    let mut users: Vec<i64> = from_orders.keys().chain(recorded.keys()).copied().collect();
    users.sort_unstable();
    users.dedup();
    users
        .into_iter()
        .filter_map(|user| {
            let orders = from_orders.get(&user).copied().unwrap_or((0, 0));
            let totals = recorded.get(&user).copied();
            let agree = totals == Some(orders) || (orders == (0, 0) && totals.is_none());
            (!agree).then(|| format!("user {user}: orders {orders:?}, totals {totals:?}"))
        })
        .collect()
}

/// A database of its own on one of the PostgreSQL servers with special settings that
/// `.ci/test-with-postgres` starts beside the main one (named by `var`), dropped when
/// this is. `None` — the test skips — where `var` is unset, except under CI.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// Its URL, as given to the service.
    pub url: String,
}

impl ScratchDatabase {
    pub fn on_server(server: Server, tag: &str) -> Option<Self> {
        let admin_url = servers::needed(server)?;
        let name = format!("multidb_test_{tag}_{}", std::process::id());
        let scratch = Self {
            url: postgres_url_for(&admin_url, &name),
            admin_url,
            name,
        };
        scratch.admin(&format!("DROP DATABASE IF EXISTS {}", scratch.name));
        scratch.admin(&format!("CREATE DATABASE {}", scratch.name));
        Some(scratch)
    }

    fn admin(&self, sql: &str) {
        PgConnection::establish(&self.admin_url)
            .unwrap_or_else(|e| panic!("{}: {e}", self.admin_url))
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        self.admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
