//! One connection type for both backends, chosen per database URL at start-up.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use diesel::connection::{CacheSize, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

/// A connection to either backend. Diesel's `MultiConnection` derive lets one query
/// builder expression run on both; backend-specific statements match on the variant.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// A database URL with its backend decided once, by scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// What the backend's driver is given: the URL for PostgreSQL, a path or `file:` URI
    /// for SQLite.
    target: String,
}

impl DatabaseUrl {
    /// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://`, `file:` and plain
    /// paths select SQLite. Any other `scheme://` is refused rather than taken for a path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is empty".into());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                target: raw.to_owned(),
            });
        }
        let target = match raw.strip_prefix("sqlite://") {
            Some(rest) => rest,
            None if raw.starts_with("file:") => raw,
            None => match raw.find("://") {
                Some(end) => {
                    return Err(format!(
                        "has unsupported scheme `{}` (use postgres://, postgresql://, sqlite:// or a file path)",
                        &raw[..end]
                    ))
                }
                None => raw,
            },
        };
        if target.is_empty() {
            return Err("names no SQLite file".into());
        }
        Ok(Self {
            backend: Backend::Sqlite,
            target: target.to_owned(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Creates the parent directory of a SQLite file path, so that the default
    /// `./data/…` works on a fresh checkout.
    pub fn prepare(&self) -> std::io::Result<()> {
        if self.backend != Backend::Sqlite || self.target.starts_with("file:") {
            return Ok(());
        }
        match Path::new(&self.target).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
            _ => Ok(()),
        }
    }
}

/// Never print a PostgreSQL password into a log line.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Sqlite => write!(f, "sqlite:{}", self.target),
            Backend::Postgres => {
                let (scheme, rest) = self.target.split_once("://").unwrap_or(("postgres", ""));
                match rest.rsplit_once('@') {
                    Some((credentials, host)) => {
                        let user = credentials.split(':').next().unwrap_or("");
                        write!(f, "{scheme}://{user}@{host}")
                    }
                    None => write!(f, "{scheme}://{rest}"),
                }
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// PostgreSQL `statement_timeout`: a runaway statement is cancelled instead of
    /// holding a pooled connection forever. Set with `SET LOCAL` in every transaction
    /// (see [`ConnectionOptions::postgres_begin`]), and for the whole session as well
    /// when `prepared_statements` is on.
    pub statement_timeout: Duration,
    /// SQLite `busy_timeout`: how long a writer waits for another writer's lock.
    pub busy_timeout: Duration,
    /// PostgreSQL: cache statements as named server-side prepared statements (faster);
    /// off behind a transaction-mode pooler such as PgBouncer 1.18, where the server
    /// connection changes between transactions. Off also means no session state at all:
    /// nothing is `SET` for the session, since it would land on one server connection
    /// and stay there for other clients.
    pub prepared_statements: bool,
    /// PostgreSQL `idle_in_transaction_session_timeout`, set in every transaction: a
    /// transaction left open by a process that froze (SIGSTOP, a paused VM) is ended by
    /// the server, and its locks with it.
    pub idle_in_transaction_timeout: Duration,
}

impl ConnectionOptions {
    /// What begins a transaction on PostgreSQL: `BEGIN` and the transaction's timeouts,
    /// in one round trip. `SET LOCAL` lasts exactly as long as the transaction, so it
    /// holds through PgBouncer in transaction mode and leaks to nobody.
    pub(crate) fn postgres_begin(&self) -> String {
        format!(
            "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}",
            self.statement_timeout.as_millis(),
            self.idle_in_transaction_timeout.as_millis()
        )
    }
}

/// libpq's settings that cut a connection whose server went silent — a host that
/// vanished, a network that drops packets — instead of waiting for TCP to give up
/// (hours). Each is added only when the URL does not set it.
const SILENT_SERVER_DEFAULTS: [(&str, &str); 6] = [
    ("connect_timeout", "5"),
    ("keepalives", "1"),
    ("keepalives_idle", "10"),
    ("keepalives_interval", "3"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "10000"),
];

/// `url` with [`SILENT_SERVER_DEFAULTS`] for the parameters it does not set. The query
/// starts at the first `?` after the credentials (libpq takes a password with an
/// unencoded `?`).
fn with_silent_server_defaults(url: &str) -> String {
    let after_credentials = url.rfind('@').map_or(0, |at| at + 1);
    let (base, query) = match url[after_credentials..].find('?') {
        Some(at) => url.split_at(after_credentials + at),
        None => (url, ""),
    };
    let query = query.trim_start_matches('?').trim_end_matches('&');
    let given: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .collect();
    let mut params: Vec<String> = (!query.is_empty())
        .then(|| query.to_owned())
        .into_iter()
        .collect();
    params.extend(
        SILENT_SERVER_DEFAULTS
            .iter()
            .filter(|(name, _)| !given.contains(name))
            .map(|(name, value)| format!("{name}={value}")),
    );
    format!("{base}?{}", params.join("&"))
}

/// The error of opening a connection, with the driver's own error as its source.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect")]
    Connect(#[source] diesel::ConnectionError),
    #[error("cannot set up the connection")]
    Setup(#[source] diesel::result::Error),
}

/// An r2d2 manager that picks the backend by URL scheme. Diesel's own manager for a
/// `MultiConnection` tries every backend in turn and so reports only "invalid connection
/// url" when a PostgreSQL server is down; this one keeps libpq's real error.
#[derive(Clone)]
pub(crate) struct Manager {
    url: DatabaseUrl,
    /// What libpq is given: the URL with [`SILENT_SERVER_DEFAULTS`].
    postgres_target: String,
    options: ConnectionOptions,
}

/// Shows the URL without its password, as [`DatabaseUrl`] does.
impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.url)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Manager {
    pub(crate) fn new(url: DatabaseUrl, options: ConnectionOptions) -> Self {
        Self {
            postgres_target: with_silent_server_defaults(&url.target),
            url,
            options,
        }
    }

    /// A connection outside the pool, set up like the pool's.
    pub(crate) fn open(&self) -> Result<AnyConnection, ConnectError> {
        r2d2::ManageConnection::connect(self)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<AnyConnection, ConnectError> {
        match self.url.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.postgres_target)
                    .map_err(ConnectError::Connect)?;
                if self.options.prepared_statements {
                    // For single-statement reads, which run outside a transaction.
                    let timeout_ms = self.options.statement_timeout.as_millis();
                    conn.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                        .map_err(ConnectError::Setup)?;
                } else {
                    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                }
                Ok(AnyConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(&self.url.target).map_err(ConnectError::Connect)?;
                // busy_timeout first: switching to WAL needs a lock another connection may hold.
                // WAL lets readers proceed while one writer writes; foreign_keys for any future
                // in-database references; synchronous stays FULL (the default) so a commit
                // that was acknowledged survives power loss.
                let busy_ms = self.options.busy_timeout.as_millis();
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;"
                ))
                .map_err(ConnectError::Setup)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1").map_err(ConnectError::Setup)
    }

    /// A connection returned while a transaction is still open (or its transaction
    /// manager is in error), or returned by a panicking thread, is thrown away rather
    /// than handed to the next request.
    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_select_backends() {
        let pg = DatabaseUrl::parse("postgres://u:secret@h:5432/d").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(pg.to_string(), "postgres://u@h:5432/d");
        let pg = DatabaseUrl::parse("postgresql://h/d").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        for sqlite in [
            "data/db1.sqlite",
            "sqlite://data/x.db",
            "file:x.db?mode=rwc",
            "/tmp/a",
        ] {
            assert_eq!(
                DatabaseUrl::parse(sqlite).unwrap().backend(),
                Backend::Sqlite
            );
        }
        assert!(DatabaseUrl::parse("mysql://root@h/d")
            .unwrap_err()
            .contains("mysql"));
        assert!(DatabaseUrl::parse("  ").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn silent_server_defaults_never_override_the_url() {
        let plain = with_silent_server_defaults("postgres://h/d");
        assert!(plain.starts_with("postgres://h/d?connect_timeout=5&keepalives=1&"));
        assert!(plain.ends_with("&tcp_user_timeout=10000"));
        let given =
            with_silent_server_defaults("postgres://h/d?sslmode=disable&tcp_user_timeout=500");
        assert!(given.starts_with("postgres://h/d?sslmode=disable&tcp_user_timeout=500&"));
        assert_eq!(given.matches("tcp_user_timeout").count(), 1);
        assert_eq!(given.matches("connect_timeout=5").count(), 1);
        let odd_password = with_silent_server_defaults("postgres://u:pa?ss@h/d");
        assert!(odd_password.starts_with("postgres://u:pa?ss@h/d?connect_timeout=5&"));
        for trailing in ["postgres://h/d?", "postgres://h/d?a=1&"] {
            let url = with_silent_server_defaults(trailing);
            assert!(!url.contains("?&") && !url.contains("&&"), "{url}");
        }
        let socket = with_silent_server_defaults("postgres:///d?host=/run/postgresql");
        assert!(socket.starts_with("postgres:///d?host=/run/postgresql&connect_timeout=5&"));
    }
}
