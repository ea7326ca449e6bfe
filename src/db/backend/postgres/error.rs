//! PostgreSQL's errors that Diesel reports without a kind of their own. Diesel keeps the
//! SQLSTATE to itself except for the classes it names, so the rest are told by their
//! primary message — which the server writes in its `lc_messages` language. A pool on
//! PostgreSQL therefore starts only when the server answers in English
//! ([`ensure_english_messages`]); every message below is PostgreSQL's (or libpq's) own
//! text, with the SQLSTATE it comes with.

use diesel::connection::SimpleConnection;
use diesel::result::Error as DieselError;

use crate::db::error::Class;

/// The connection is gone (class 08, 57P01–57P03, 25P03 and recovery conflicts end the
/// session; libpq's own messages for a connection that broke).
const CONNECTION_LOST: [&str; 10] = [
    // 57P01 admin_shutdown, 57P02 crash_shutdown, 25P03 idle-in-transaction timeout,
    // 57P04 database dropped, 40001 recovery conflicts that end the session.
    "terminating connection",
    // 57P03 cannot_connect_now.
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    // libpq.
    "server closed the connection",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    "connection to server",
];

/// The server could not do it now; the same request may succeed later.
const TRANSIENT: [&str; 8] = [
    // 40P01 deadlock_detected.
    "deadlock detected",
    // 57014 query_canceled (statement timeout, pg_cancel_backend), 55P03
    // lock_not_available (lock timeout), 40001 conflict with recovery on a standby.
    "canceling statement due to",
    // 55P03 lock_not_available (NOWAIT, SKIP LOCKED misses are not errors).
    "could not obtain lock",
    // 53200 out_of_memory: every slot of max_prepared_transactions in use.
    "maximum number of prepared transactions reached",
    // 53200 out_of_memory: the shared lock table is full.
    "out of shared memory",
    // 53300 too_many_connections.
    "sorry, too many clients already",
    "remaining connection slots are reserved",
    "too many connections for",
];

/// The class of a PostgreSQL message, if it is one of those above.
pub(crate) fn class_of(message: &str) -> Option<Class> {
    if CONNECTION_LOST.iter().any(|text| message.contains(text)) {
        Some(Class::ConnectionLost)
    } else if TRANSIENT.iter().any(|text| message.contains(text)) {
        Some(Class::Transient)
    } else {
        None
    }
}

/// Whether `COMMIT PREPARED` / `ROLLBACK PREPARED` failed because no transaction of
/// that gid is prepared (42704 undefined_object): someone else finished it.
pub(crate) fn is_unknown_prepared_transaction(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(_, info)
            if info.message().starts_with("prepared transaction with identifier")
                && info.message().ends_with("does not exist")
    )
}

/// The message PostgreSQL gives for `SELECT 1/0` in English.
const DIVISION_BY_ZERO: &str = "division by zero";

/// Checks that the server writes its messages in English, by asking it for an error
/// whose English text is known: classification reads them (see the module). An
/// operator whose server speaks another language sets `lc_messages = 'C'` for the
/// service's role or database; the error says how.
pub(crate) fn ensure_english_messages(
    conn: &mut impl SimpleConnection,
) -> Result<(), EnglishRequired> {
    match conn.batch_execute("SELECT 1/0") {
        Err(DieselError::DatabaseError(_, info)) if info.message() == DIVISION_BY_ZERO => Ok(()),
        Err(DieselError::DatabaseError(_, info)) => Err(EnglishRequired {
            seen: info.message().to_owned(),
        }),
        Err(other) => Err(EnglishRequired {
            seen: other.to_string(),
        }),
        Ok(()) => Err(EnglishRequired {
            seen: "no error at all".to_owned(),
        }),
    }
}

/// The server's messages are not in English.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server writes its error messages in another language than English (asked for a division by zero, it said \"{seen}\"); multidb tells transient errors by PostgreSQL's English messages: set lc_messages = 'C' for the service's role or database (as a superuser: ALTER ROLE <role> SET lc_messages = 'C'), or in postgresql.conf"
)]
pub struct EnglishRequired {
    seen: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transient_class_the_service_meets_is_transient() {
        for message in [
            "deadlock detected",
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "canceling statement due to user request",
            "canceling statement due to conflict with recovery",
            "maximum number of prepared transactions reached",
            "out of shared memory",
            "sorry, too many clients already",
            "remaining connection slots are reserved for non-replication superuser connections",
            "too many connections for role \"multidb\"",
        ] {
            assert_eq!(class_of(message), Some(Class::Transient), "{message}");
        }
    }

    #[test]
    fn sessions_the_server_ended_are_lost_connections() {
        for message in [
            "terminating connection due to administrator command",
            "terminating connection due to idle-in-transaction timeout",
            "terminating connection due to conflict with recovery",
            "the database system is shutting down",
            "server closed the connection unexpectedly",
        ] {
            assert_eq!(class_of(message), Some(Class::ConnectionLost), "{message}");
        }
        assert_eq!(class_of("syntax error at or near \"x\""), None);
        assert_eq!(class_of("database is locked"), None);
    }
}
