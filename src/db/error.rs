use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The error that led to another, kept whole so that the log can show the chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What was being done, with the error that stopped it: a cause that adds context.
#[derive(Debug, thiserror::Error)]
#[error("{doing}")]
pub struct Context {
    doing: String,
    #[source]
    source: Cause,
}

/// `doing`, failed because of `source`.
pub fn context(doing: impl Into<String>, source: impl Into<Cause>) -> Cause {
    Box::new(Context {
        doing: doing.into(),
        source: source.into(),
    })
}

/// What went wrong in the database layer, in terms a caller can act on. Causes are kept
/// as sources, for the log; the HTTP layer shows the client only a clean message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time, the connection was lost, a statement ran
    /// past its timeout, or the database stayed locked: worth retrying later.
    #[error("{database} unavailable")]
    Unavailable {
        database: &'static str,
        #[source]
        cause: Cause,
    },
    /// The connection was found dead (server restarted, backend terminated): another
    /// connection may well work, so idempotent work is retried on one.
    #[error("{database} connection lost")]
    ConnectionLost {
        database: &'static str,
        #[source]
        cause: Cause,
    },
    /// A unique constraint was violated. Only the query that hit it knows what that
    /// means for the client (see `users::insert`); anywhere else it is a bug.
    #[error("a unique constraint of {database} was violated")]
    Conflict {
        database: &'static str,
        #[source]
        cause: Cause,
    },
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
    #[error("{database} failed")]
    Other {
        database: &'static str,
        #[source]
        cause: Cause,
    },
}

impl DbError {
    /// The database the error happened on, where one is named.
    pub fn database(&self) -> Option<&'static str> {
        match self {
            DbError::Unavailable { database, .. }
            | DbError::ConnectionLost { database, .. }
            | DbError::Conflict { database, .. }
            | DbError::Other { database, .. } => Some(database),
            DbError::NotFound | DbError::Panicked | DbError::Injected(_) => None,
        }
    }

    /// Classifies a Diesel error raised while working on `database`.
    pub fn from_diesel(database: &'static str, error: DieselError) -> Self {
        match &error {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                DbError::Conflict {
                    database,
                    cause: error.into(),
                }
            }
            DieselError::DatabaseError(kind, info) if is_connection_lost(kind, info.message()) => {
                DbError::ConnectionLost {
                    database,
                    cause: error.into(),
                }
            }
            DieselError::DatabaseError(kind, info) if is_transient(kind, info.message()) => {
                DbError::Unavailable {
                    database,
                    cause: error.into(),
                }
            }
            DieselError::BrokenTransactionManager => DbError::Unavailable {
                database,
                cause: error.into(),
            },
            _ => DbError::Other {
                database,
                cause: error.into(),
            },
        }
    }
}

/// `error` and each of its sources, joined by ": ", on one line: for logs.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
    fn a_chain_shows_every_cause_on_one_line() {
        let error = DbError::Unavailable {
            database: "db1",
            cause: context("no connection free", "server closed\nthe connection"),
        };
        assert_eq!(
            chain(&error),
            "db1 unavailable: no connection free: server closed the connection"
        );
    }

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
