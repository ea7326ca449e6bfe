//! Two-phase commit by XA. What differs from PostgreSQL's verbs:
//!
//! - The global transaction is named when it **begins** (`XA START`), not when it is
//!   prepared: a session that is to be prepared begins as a *branch* ([`begin_statement`]).
//! - A branch is ended with `XA END` before `XA PREPARE` or `XA ROLLBACK`; a plain
//!   `ROLLBACK` is refused while it is active (XAER_RMFAIL), so a branch rolls back by
//!   [`rollback`].
//! - After `XA PREPARE` the transaction stays attached to the connection until that
//!   connection finishes it or goes away: another connection's `XA COMMIT` meanwhile
//!   answers XAER_NOTA, as for a transaction that does not exist. [`finish`] tells the two
//!   apart by `XA RECOVER`, which lists attached transactions too. So the coordinator
//!   settles on the preparing connection, and a connection left holding a prepared
//!   transaction is discarded, never handed out again (see `Session`). A coordinator
//!   that hangs holding one does not hold it forever: MariaDB ends a session idle in a
//!   transaction after its `idle_transaction_timeout` — prepared XA ones too (checked on
//!   10.11) — which the service sets on every connection, and the transaction is then
//!   detached for recovery to finish.
//! - An XID is a gtrid and a bqual of at most 64 bytes each; `XA RECOVER` lists every
//!   XID of the server, whichever database it wrote to. The gid is the gtrid, the
//!   database's name the bqual, which tells this database's XIDs from others' ([`xid`]).
//! - `XA RECOVER` gives no time: the age of what is in doubt is that of the oldest
//!   transaction no connection holds (`information_schema.innodb_trx`, thread 0), which
//!   after a crash or a coordinator's disconnect is exactly the prepared ones.
//!
//! MariaDB releases a prepared branch's shared and gap locks at `XA PREPARE`
//! (MDEV-26682); the exclusive locks of its writes stay. The branch the layer prepares
//! is the deletion of a user, whose row it locks exclusively by deleting it, so the
//! shared lock that `POST /orders` takes on that row still waits until the deletion is
//! finished.

use diesel::connection::{
    AnsiTransactionManager, SimpleConnection, TransactionDepthChange, TransactionManager,
    TransactionManagerStatus,
};
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Binary, Double, Text};

/// The longest gtrid (and bqual) XA takes, in bytes.
pub(crate) const PART: usize = 64;

/// The XID of `gid` in the database named `scope`, as hex literals (no quoting to get
/// wrong): the gid is the gtrid, the database's name the bqual. `XA RECOVER` lists every
/// XID of the server, whichever database it wrote to, and so another deployment's on
/// the same server: the bqual tells this database's own (see [`recover`]).
fn xid(gid: &str, scope: &str) -> String {
    debug_assert!(gid.len() <= PART && scope.len() <= PART);
    format!("X'{}',X'{}'", hex(gid), hex(scope))
}

fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// The name that tells this database's XIDs from others' on the server (see [`xid`]).
pub(crate) fn scope(conn: &mut MysqlConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Current {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        database: Option<String>,
    }
    let current =
        diesel::sql_query("SELECT DATABASE() AS `database`").get_result::<Current>(conn)?;
    Ok(current.database.unwrap_or_default())
}

/// What begins a write transaction that is a branch of the global transaction `gid`.
/// (`XA START` inside a transaction fails: it is the transaction's begin.)
pub(crate) fn begin_statement(gid: &str, scope: &str) -> String {
    format!("XA START {}", xid(gid, scope))
}

/// Tells Diesel the transaction it begun is over, ended by XA verbs it does not know.
fn leave_transaction(conn: &mut MysqlConnection) -> QueryResult<()> {
    match AnsiTransactionManager::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(status) => {
            status.change_transaction_depth(TransactionDepthChange::DecreaseDepth)
        }
        TransactionManagerStatus::InError => Err(DieselError::BrokenTransactionManager),
    }
}

/// Phase one: `XA END` and `XA PREPARE` of the branch open on `conn`. The prepared
/// transaction stays attached to `conn` (see the module).
pub(crate) fn prepare(conn: &mut MysqlConnection, gid: &str, scope: &str) -> QueryResult<()> {
    let xid = xid(gid, scope);
    conn.batch_execute(&format!("XA END {xid}; XA PREPARE {xid}"))?;
    leave_transaction(conn)
}

/// Rolls back the branch open on `conn`, not yet prepared. `XA END` may have been done
/// already (a failed prepare), so its failure is not one; `XA ROLLBACK`'s is, and the
/// caller then discards the connection, whose end rolls the branch back.
pub(crate) fn rollback(conn: &mut MysqlConnection, gid: &str, scope: &str) -> QueryResult<()> {
    let xid = xid(gid, scope);
    let _ = conn.batch_execute(&format!("XA END {xid}"));
    conn.batch_execute(&format!("XA ROLLBACK {xid}"))?;
    leave_transaction(conn)
}

/// Whether `error` is XAER_NOTA: the server has no transaction of that XID that this
/// connection may finish. (Diesel keeps no error number for statements sent as text; the
/// XA standard's name of the error is in MariaDB's and MySQL's message alike.)
fn is_unknown_xid(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(_, info) if info.message().contains("XAER_NOTA"))
}

/// Phase two: `XA COMMIT` or `XA ROLLBACK` of the prepared `gid`; `Ok(false)` when it is
/// no longer prepared (finished elsewhere). One still attached to another connection
/// is an error: it is not this connection's to finish yet.
pub(crate) fn finish(
    conn: &mut MysqlConnection,
    gid: &str,
    scope: &str,
    commit: bool,
) -> QueryResult<bool> {
    let verb = if commit { "COMMIT" } else { "ROLLBACK" };
    match conn.batch_execute(&format!("XA {verb} {}", xid(gid, scope))) {
        Ok(()) => Ok(true),
        Err(error) if is_unknown_xid(&error) => {
            if recover(conn, gid, scope)?
                .iter()
                .any(|listed| listed == gid)
            {
                Err(DieselError::QueryBuilderError(
                    format!("{gid} is still held by the connection that prepared it").into(),
                ))
            } else {
                Ok(false)
            }
        }
        Err(error) => Err(error),
    }
}

#[derive(QueryableByName)]
struct Listed {
    #[diesel(sql_type = BigInt)]
    gtrid_length: i64,
    #[diesel(sql_type = Binary)]
    data: Vec<u8>,
}

/// The gids prepared in the database named `scope` that start with `prefix`. `XA
/// RECOVER` lists every XID of the server, in no order of age; `data` is the gtrid and
/// the bqual joined.
pub(crate) fn recover(
    conn: &mut MysqlConnection,
    prefix: &str,
    scope: &str,
) -> QueryResult<Vec<String>> {
    Ok(diesel::sql_query("XA RECOVER")
        .load::<Listed>(conn)?
        .into_iter()
        .filter_map(|listed| {
            let split = usize::try_from(listed.gtrid_length).ok()?;
            let (gtrid, bqual) = listed.data.split_at_checked(split)?;
            (bqual == scope.as_bytes() && gtrid.starts_with(prefix.as_bytes()))
                .then(|| String::from_utf8(gtrid.to_vec()).ok())
                .flatten()
        })
        .collect())
}

#[derive(QueryableByName)]
struct OldestDetached {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// How many gids starting with `prefix` are prepared, and the age in seconds of the
/// oldest transaction that no connection holds (see the module): the server's, which
/// another deployment's on the same server can make older than ours. The age needs the
/// PROCESS privilege; without it, it is reported as 0.
pub(crate) fn count(
    conn: &mut MysqlConnection,
    prefix: &str,
    scope: &str,
) -> QueryResult<(i64, f64)> {
    let prepared = recover(conn, prefix, scope)?;
    let count = i64::try_from(prepared.len()).unwrap_or(i64::MAX);
    if count == 0 {
        return Ok((0, 0.0));
    }
    let oldest = diesel::sql_query(
        "SELECT CAST(COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(trx_started), NOW(6)), 0) / 1000000.0 AS DOUBLE) AS seconds \
         FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = 0",
    )
    .get_result::<OldestDetached>(conn)
    .map_or(0.0, |oldest| oldest.seconds);
    Ok((count, oldest))
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = BigInt)]
    galera: i64,
    #[diesel(sql_type = Text)]
    version: String,
}

/// The oldest servers whose prepared XA transactions survive their connection's end:
/// MariaDB 10.5.2 (MDEV-742) and MySQL 5.7.7. Before them a disconnect rolls a prepared
/// transaction back, and a decided write could lose its first half.
const DURABLE_PREPARE_SINCE: [(&str, (u32, u32, u32)); 2] =
    [("MariaDB", (10, 5, 2)), ("MySQL", (5, 7, 7))];

/// The server's `(major, minor, patch)` from its `VERSION()` (`10.11.19-MariaDB-…`).
fn version_of(text: &str) -> Option<(u32, u32, u32)> {
    let mut numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|part| part.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

/// Why a server of `version` keeps no prepared transaction past its connection, if so.
fn prepare_not_durable(version: &str) -> Option<String> {
    let (vendor, since) = if version.contains("MariaDB") {
        DURABLE_PREPARE_SINCE[0]
    } else {
        DURABLE_PREPARE_SINCE[1]
    };
    let older = version_of(version).is_none_or(|found| found < since);
    older.then(|| {
        format!(
            "{vendor} {version}, older than {}.{}.{}, which rolls a prepared XA transaction back when its connection ends: writes to both databases are refused with 503",
            since.0, since.1, since.2
        )
    })
}

/// Why this server cannot take part in XA, if it cannot: too old to keep a prepared
/// transaction past its connection, a Galera node (XA is not supported there), `XA
/// RECOVER` refused (MySQL 8 needs `XA_RECOVER_ADMIN`), or a database name too long for
/// a bqual.
pub(crate) fn unavailable(conn: &mut MysqlConnection, scope: &str) -> QueryResult<Option<String>> {
    if scope.len() > PART {
        return Ok(Some(format!(
            "a database whose name is longer than {PART} bytes, which an XA transaction's branch qualifier cannot hold: writes to both databases are refused with 503"
        )));
    }
    let setting = diesel::sql_query(
        "SELECT CAST(COUNT(*) AS SIGNED) AS galera, VERSION() AS version \
         FROM information_schema.global_variables \
         WHERE variable_name = 'WSREP_ON' AND variable_value = 'ON'",
    )
    .get_result::<Setting>(conn)?;
    if let Some(why) = prepare_not_durable(&setting.version) {
        return Ok(Some(why));
    }
    if setting.galera > 0 {
        return Ok(Some(
            "a Galera cluster node (wsrep_on = ON), where XA transactions are not supported: writes to both databases are refused with 503".to_owned(),
        ));
    }
    Ok(diesel::sql_query("XA RECOVER")
        .load::<Listed>(conn)
        .err()
        .map(|error| {
            format!("a server that refuses XA RECOVER ({error}): grant XA_RECOVER_ADMIN (MySQL 8); writes to both databases are refused with 503")
        }))
}

#[cfg(test)]
mod tests {
    use super::{prepare_not_durable, xid};

    #[test]
    fn servers_that_drop_a_prepared_transaction_with_its_connection_are_refused() {
        for old in [
            "10.4.32-MariaDB",
            "10.5.1-MariaDB-log",
            "5.7.6-log",
            "nonsense",
        ] {
            assert!(prepare_not_durable(old).is_some(), "{old}");
        }
        for durable in [
            "10.11.19-MariaDB-0+deb12u1",
            "10.5.2-MariaDB",
            "8.0.36",
            "5.7.7",
        ] {
            assert_eq!(prepare_not_durable(durable), None, "{durable}");
        }
    }

    #[test]
    fn the_gid_is_the_gtrid_and_the_database_the_bqual() {
        assert_eq!(xid("m:1", "db"), "X'6d3a31',X'6462'");
        assert_eq!(xid("a'b", ""), "X'612762',X''");
    }
}
