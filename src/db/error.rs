use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong in the database layer, in terms a caller can act on. The cause
/// strings are for the log only; the HTTP layer shows the client a clean message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time, the connection was lost, a statement ran
    /// past its timeout, or the database stayed locked: worth retrying later.
    #[error("{database} unavailable: {cause}")]
    Unavailable {
        database: &'static str,
        cause: String,
    },
    /// The connection was found dead (server restarted, backend terminated): another
    /// connection may well work, so idempotent work is retried on one.
    #[error("{database} connection lost: {cause}")]
    ConnectionLost {
        database: &'static str,
        cause: String,
    },
    /// A unique constraint was violated.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    /// The row the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// A closure on a blocking thread panicked; its session was rolled back on unwind.
    #[error("database work panicked")]
    Panicked,
    /// A fault injected by a test at a named point.
    #[error("fault injected at {0}")]
    Injected(String),
    /// Anything else; a bug or an unexpected database state.
    #[error("{database}: {cause}")]
    Other {
        database: &'static str,
        cause: String,
    },
}

impl DbError {
    /// Classifies a Diesel error raised while working on `database`.
    pub fn from_diesel(database: &'static str, error: DieselError) -> Self {
        match &error {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::Conflict(info.message().to_owned())
            }
            DieselError::DatabaseError(kind, info) if is_connection_lost(kind, info.message()) => {
                DbError::ConnectionLost {
                    database,
                    cause: error.to_string(),
                }
            }
            DieselError::DatabaseError(kind, info) if is_transient(kind, info.message()) => {
                DbError::Unavailable {
                    database,
                    cause: error.to_string(),
                }
            }
            DieselError::BrokenTransactionManager => DbError::Unavailable {
                database,
                cause: error.to_string(),
            },
            _ => DbError::Other {
                database,
                cause: error.to_string(),
            },
        }
    }
}

/// Errors that mean the connection itself is gone.
fn is_connection_lost(kind: &DatabaseErrorKind, message: &str) -> bool {
    if matches!(kind, DatabaseErrorKind::ClosedConnection) {
        return true;
    }
    let message = message.to_ascii_lowercase();
    [
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "could not receive data from server",
        "could not send data to server",
        "connection to server",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Errors that say "the database could not serve this now" rather than "this request
/// is wrong": a serialization failure or deadlock, a cancelled statement, a lock.
fn is_transient(kind: &DatabaseErrorKind, message: &str) -> bool {
    if matches!(kind, DatabaseErrorKind::SerializationFailure) {
        return true;
    }
    let message = message.to_ascii_lowercase();
    [
        "database is locked",
        "database is busy",
        "canceling statement due to statement timeout",
        "deadlock detected",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_and_locks_are_unavailable() {
        assert!(is_transient(
            &DatabaseErrorKind::Unknown,
            "database is locked"
        ));
        assert!(is_transient(
            &DatabaseErrorKind::Unknown,
            "canceling statement due to statement timeout"
        ));
        assert!(is_connection_lost(&DatabaseErrorKind::ClosedConnection, ""));
        assert!(is_connection_lost(
            &DatabaseErrorKind::Unknown,
            "terminating connection due to administrator command"
        ));
        assert!(!is_connection_lost(
            &DatabaseErrorKind::Unknown,
            "database is locked"
        ));
        assert!(!is_transient(&DatabaseErrorKind::Unknown, "syntax error"));
    }
}
