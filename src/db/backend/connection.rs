//! One connection type for every backend, chosen per database URL at start-up, and the
//! r2d2 manager that opens it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;

use super::{mysql, postgres, sqlite, Backend};

/// A connection to either backend. Diesel's `MultiConnection` derive lets one query
/// builder expression run on both; backend-specific statements match on the variant.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
    Mysql(MysqlConnection),
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
        if raw.starts_with("mysql://") {
            return Ok(Self {
                backend: Backend::Mysql,
                target: raw.to_owned(),
            });
        }
        let target = match raw.strip_prefix("sqlite://") {
            Some(rest) => rest,
            None if raw.starts_with("file:") => raw,
            None => match raw.find("://") {
                Some(end) => {
                    return Err(format!(
                        "has unsupported scheme `{}` (use postgres://, postgresql://, mysql://, sqlite:// or a file path)",
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

    /// The file of a database kept in one (SQLite), when it is named by a plain path:
    /// whether it exists tells, without creating it, whether there is a database yet.
    pub fn file(&self) -> Option<&Path> {
        (self.backend.features().file_database && !self.target.starts_with("file:"))
            .then(|| Path::new(&self.target))
    }

    /// Creates the parent directory of a SQLite file path, so that the default
    /// `./data/…` works on a fresh checkout.
    pub fn prepare(&self) -> std::io::Result<()> {
        if !self.backend.features().file_database || self.target.starts_with("file:") {
            return Ok(());
        }
        match Path::new(&self.target).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
            _ => Ok(()),
        }
    }
}

/// Never print a server's password into a log line.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Sqlite => write!(f, "sqlite:{}", self.target),
            Backend::Postgres | Backend::Mysql => {
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
    /// What the driver is given (for PostgreSQL, the URL with libpq's settings for a
    /// silent server added).
    target: String,
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
        let target = match url.backend {
            Backend::Postgres => postgres::connection_target(&url.target),
            Backend::Sqlite | Backend::Mysql => url.target.clone(),
        };
        Self {
            target,
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
        Ok(match self.url.backend {
            Backend::Postgres => {
                AnyConnection::Postgresql(postgres::connect(&self.target, &self.options)?)
            }
            Backend::Sqlite => AnyConnection::Sqlite(sqlite::connect(&self.target, &self.options)?),
            Backend::Mysql => AnyConnection::Mysql(mysql::connect(&self.target, &self.options)?),
        })
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
        assert!(DatabaseUrl::parse("oracle://root@h/d")
            .unwrap_err()
            .contains("oracle"));
        // MySQL; the password never shows.
        let mysql = DatabaseUrl::parse("mysql://root:secret@h:3306/d").unwrap();
        assert_eq!(mysql.backend(), Backend::Mysql);
        assert_eq!(mysql.to_string(), "mysql://root@h:3306/d");
        assert!(DatabaseUrl::parse("  ").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }
}
