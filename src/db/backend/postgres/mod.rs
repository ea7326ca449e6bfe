//! PostgreSQL: a server, many writers at once, row and advisory locks, two-phase commit.
//! Everything the layer does differently on PostgreSQL is here; the rest of the layer
//! reaches it through [`super`]'s dispatch and [`FEATURES`].

pub(crate) mod error;

use std::time::Duration;

use diesel::connection::{CacheSize, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Text};

use super::{ConnectError, ConnectionOptions, Dialect, Features};
use crate::db::key_lock::{KeyLock, LockMode};
use crate::db::layer_schema::LayerMigration;

/// The layer's own tables (see `layer_schema`), in this backend's dialect.
pub(crate) const LAYER_MIGRATIONS: &[LayerMigration] = &[LayerMigration {
    version: 1,
    name: "layer_tables",
    up: include_str!("schema/001_layer_tables.sql"),
}];

pub(crate) const FEATURES: Features = Features {
    server: true,
    single_writer: false,
    key_locks: true,
    row_locks: true,
    two_phase_commit: true,
    returning: true,
    transactional_ddl: true,
    file_database: false,
    deadlock_free_upserts: true,
    writable_ctes: true,
};

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

/// What libpq is given for `url`: the URL with [`SILENT_SERVER_DEFAULTS`] for the
/// parameters it does not set. The query starts at the first `?` after the credentials
/// (libpq takes a password with an unencoded `?`).
pub(crate) fn connection_target(url: &str) -> String {
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

pub(crate) fn connect(
    target: &str,
    options: &ConnectionOptions,
) -> Result<PgConnection, ConnectError> {
    let mut conn = PgConnection::establish(target).map_err(ConnectError::Connect)?;
    if options.prepared_statements {
        // For single-statement reads, which run outside a transaction.
        let timeout_ms = options.statement_timeout.as_millis();
        conn.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
            .map_err(ConnectError::Setup)?;
    } else {
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
    }
    Ok(conn)
}

/// What begins a transaction: `BEGIN` and the transaction's timeouts, in one round trip.
/// `SET LOCAL` lasts exactly as long as the transaction, so it holds through PgBouncer
/// in transaction mode and leaks to nobody.
pub(crate) fn begin_statement(options: &ConnectionOptions) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {}; SET LOCAL idle_in_transaction_session_timeout = {}",
        options.statement_timeout.as_millis(),
        options.idle_in_transaction_timeout.as_millis()
    )
}

/// A key lock is a transaction-level advisory lock: no session state, so it works behind
/// PgBouncer in transaction mode, and it is released at commit or rollback, and when
/// the server ends the session.
pub(crate) fn key_lock_statement(lock: &KeyLock) -> String {
    let function = match lock.mode() {
        LockMode::Shared => "pg_advisory_xact_lock_shared",
        LockMode::Exclusive => "pg_advisory_xact_lock",
    };
    format!("SELECT {function}({}, {})", lock.class(), lock.key())
}

pub(crate) fn take_key_lock(conn: &mut PgConnection, lock: &KeyLock) -> QueryResult<()> {
    conn.batch_execute(&key_lock_statement(lock))
}

/// PostgreSQL takes no table lock before the first `CREATE`: instances migrating at
/// once are serialised by an advisory lock of the migrations' own.
pub(crate) fn lock_for_migrations(conn: &mut PgConnection) -> QueryResult<()> {
    conn.batch_execute("SELECT pg_advisory_xact_lock(7251977001)")
}

/// Checks what the layer needs of the server when a pool starts: English messages
/// (see [`error`]).
pub(crate) fn check_server(conn: &mut PgConnection) -> Result<(), error::EnglishRequired> {
    error::ensure_english_messages(conn)
}

/// First key of the advisory lock that the same-database probe takes.
const PROBE_LOCK_CLASS: i32 = crate::db::key_lock::PROBE_CLASS;

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Bool)]
    found: bool,
}

/// Whether `a` and `b` reach the same database: a transaction-level advisory lock on a
/// random key taken through `a` is looked for, in its own database, through `b`. Only
/// the same database of the same server shows it, whatever the URLs say (host names,
/// ports, a pooler in between).
pub(crate) fn same_database(a: &mut PgConnection, b: &mut PgConnection) -> QueryResult<bool> {
    let key = i32::from_ne_bytes(
        uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .unwrap_or_default(),
    ) & i32::MAX;
    a.transaction(|a| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind::<Integer, _>(PROBE_LOCK_CLASS)
            .bind::<Integer, _>(key)
            .execute(a)?;
        let found = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 2) AS found",
        )
        .bind::<BigInt, _>(i64::from(PROBE_LOCK_CLASS))
        .bind::<BigInt, _>(i64::from(key))
        .get_result::<Found>(b)?;
        // The transaction's end releases the lock.
        Ok(found.found)
    })
}

/// The two-phase verbs, as SQLAlchemy's dialects name them (`do_prepare_twophase`,
/// `do_commit_twophase`, `do_rollback_twophase`, `do_recover_twophase`).
pub(crate) mod two_phase {
    use super::*;

    /// `PREPARE TRANSACTION gid`: the transaction then belongs to the server, not to
    /// the connection; its locks stay until `COMMIT PREPARED` or `ROLLBACK PREPARED`,
    /// from any connection.
    pub(crate) fn prepare(conn: &mut PgConnection, gid: &str) -> QueryResult<()> {
        diesel::sql_query(format!("PREPARE TRANSACTION '{gid}'"))
            .execute(conn)
            .map(drop)
    }

    /// `COMMIT PREPARED` or `ROLLBACK PREPARED`; `Ok(false)` when no transaction of that
    /// gid is prepared (someone else finished it).
    pub(crate) fn finish(conn: &mut PgConnection, gid: &str, commit: bool) -> QueryResult<bool> {
        let verb = if commit { "COMMIT" } else { "ROLLBACK" };
        match diesel::sql_query(format!("{verb} PREPARED '{gid}'")).execute(conn) {
            Ok(_) => Ok(true),
            Err(error) if error::is_unknown_prepared_transaction(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    #[derive(QueryableByName)]
    struct PreparedGid {
        #[diesel(sql_type = Text)]
        gid: String,
    }

    /// The gids prepared in this database that start with `prefix`, oldest first.
    pub(crate) fn recover(conn: &mut PgConnection, prefix: &str) -> QueryResult<Vec<String>> {
        diesel::sql_query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() \
             AND starts_with(gid, $1) ORDER BY prepared",
        )
        .bind::<Text, _>(prefix)
        .load::<PreparedGid>(conn)
        .map(|rows| rows.into_iter().map(|row| row.gid).collect())
    }

    #[derive(QueryableByName)]
    struct InDoubt {
        #[diesel(sql_type = BigInt)]
        count: i64,
        #[diesel(sql_type = Double)]
        oldest_seconds: f64,
    }

    /// How many gids starting with `prefix` are prepared, and the age of the oldest by
    /// the server's clock.
    pub(crate) fn count(conn: &mut PgConnection, prefix: &str) -> QueryResult<(i64, f64)> {
        diesel::sql_query(
            "SELECT count(*) AS count, \
             COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(prepared)), 0)::float8 AS oldest_seconds \
             FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)",
        )
        .bind::<Text, _>(prefix)
        .get_result::<InDoubt>(conn)
        .map(|found| (found.count, found.oldest_seconds))
    }

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }

    /// Why this server cannot prepare, if it cannot: `max_prepared_transactions = 0`.
    pub(crate) fn unavailable(conn: &mut PgConnection) -> QueryResult<Option<String>> {
        let setting =
            diesel::sql_query("SELECT current_setting('max_prepared_transactions') AS value")
                .get_result::<Setting>(conn)?;
        Ok((setting.value.trim() == "0").then(|| {
            "PostgreSQL with max_prepared_transactions = 0: two-phase commit is off, so writes to both databases are refused with 503 until the server is restarted with max_prepared_transactions > 0".to_owned()
        }))
    }
}

/// The database's clock and catalog in PostgreSQL's SQL. `clock_timestamp()`, not
/// `now()`: the time of the statement, not of the start of its transaction.
pub(crate) struct Postgres;

impl Dialect for Postgres {
    fn now_ms(&self) -> &'static str {
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    }

    fn now_timestamp(&self) -> &'static str {
        "(clock_timestamp() AT TIME ZONE 'UTC')"
    }

    fn timestamp_ago(&self, age: Duration) -> String {
        format!(
            "((clock_timestamp() - interval '{} milliseconds') AT TIME ZONE 'UTC')",
            age.as_millis()
        )
    }

    fn seconds_since_oldest(&self, column: &str) -> String {
        format!(
            "COALESCE(EXTRACT(EPOCH FROM (clock_timestamp() AT TIME ZONE 'UTC') - min({column})), 0)::float8"
        )
    }

    fn table_exists(&self) -> &'static str {
        "SELECT to_regclass($1) IS NOT NULL AS present"
    }

    fn last_insert_id(&self) -> &'static str {
        "lastval()"
    }
}

#[cfg(test)]
mod tests {
    use super::connection_target;

    #[test]
    fn silent_server_defaults_never_override_the_url() {
        let plain = connection_target("postgres://h/d");
        assert!(plain.starts_with("postgres://h/d?connect_timeout=5&keepalives=1&"));
        assert!(plain.ends_with("&tcp_user_timeout=10000"));
        let given = connection_target("postgres://h/d?sslmode=disable&tcp_user_timeout=500");
        assert!(given.starts_with("postgres://h/d?sslmode=disable&tcp_user_timeout=500&"));
        assert_eq!(given.matches("tcp_user_timeout").count(), 1);
        assert_eq!(given.matches("connect_timeout=5").count(), 1);
        let odd_password = connection_target("postgres://u:pa?ss@h/d");
        assert!(odd_password.starts_with("postgres://u:pa?ss@h/d?connect_timeout=5&"));
        for trailing in ["postgres://h/d?", "postgres://h/d?a=1&"] {
            let url = connection_target(trailing);
            assert!(!url.contains("?&") && !url.contains("&&"), "{url}");
        }
        let socket = connection_target("postgres:///d?host=/run/postgresql");
        assert!(socket.starts_with("postgres:///d?host=/run/postgresql&connect_timeout=5&"));
    }
}
