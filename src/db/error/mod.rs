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

/// A cause shared by the copies of one error (see [`shared`]): shows as the original.
#[derive(Debug)]
struct SharedCause(std::sync::Arc<Cause>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// One error for each of the requests that waited on the work that failed
/// (`super::coalesce`): each [`copy`](SharedError::copy) is of the same kind and
/// database, with the same cause.
pub(crate) enum SharedError {
    WithCause {
        rebuild: fn(&'static str, Cause) -> DbError,
        database: &'static str,
        cause: std::sync::Arc<Cause>,
    },
    NotFound,
    Panicked,
    #[cfg(feature = "fault-injection")]
    Injected(String),
}

impl SharedError {
    pub(crate) fn new(error: DbError) -> Self {
        let (rebuild, database, cause): (fn(&'static str, Cause) -> DbError, _, _) = match error {
            DbError::Unavailable { database, cause } => (
                |database, cause| DbError::Unavailable { database, cause },
                database,
                cause,
            ),
            DbError::ConnectionLost { database, cause } => (
                |database, cause| DbError::ConnectionLost { database, cause },
                database,
                cause,
            ),
            DbError::Conflict { database, cause } => (
                |database, cause| DbError::Conflict { database, cause },
                database,
                cause,
            ),
            DbError::Other { database, cause } => (
                |database, cause| DbError::Other { database, cause },
                database,
                cause,
            ),
            DbError::NotFound => return Self::NotFound,
            DbError::Panicked => return Self::Panicked,
            #[cfg(feature = "fault-injection")]
            DbError::Injected(point) => return Self::Injected(point),
        };
        Self::WithCause {
            rebuild,
            database,
            cause: std::sync::Arc::new(cause),
        }
    }

    pub(crate) fn copy(&self) -> DbError {
        match self {
            Self::WithCause {
                rebuild,
                database,
                cause,
            } => rebuild(database, Box::new(SharedCause(cause.clone()))),
            Self::NotFound => DbError::NotFound,
            Self::Panicked => DbError::Panicked,
            #[cfg(feature = "fault-injection")]
            Self::Injected(point) => DbError::Injected(point.clone()),
        }
    }
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
    /// A fault injected by a test at a named point: test builds only.
    #[cfg(feature = "fault-injection")]
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
            DbError::NotFound | DbError::Panicked => None,
            #[cfg(feature = "fault-injection")]
            DbError::Injected(_) => None,
        }
    }

    /// Classifies a Diesel error raised while working on `database`: by the kind Diesel
    /// read from the backend's error code where it has one, else by the backend's
    /// message (see [`Class`]).
    pub fn from_diesel(database: &'static str, error: DieselError) -> Self {
        let class = match &error {
            DieselError::NotFound => return DbError::NotFound,
            DieselError::DatabaseError(kind, info) => classify(kind, info.message()),
            DieselError::BrokenTransactionManager => Class::Transient,
            _ => Class::Other,
        };
        let cause = error.into();
        match class {
            Class::Conflict => DbError::Conflict { database, cause },
            Class::ConnectionLost => DbError::ConnectionLost { database, cause },
            Class::Transient => DbError::Unavailable { database, cause },
            Class::Other => DbError::Other { database, cause },
        }
    }
}

/// What a database error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A unique constraint was violated.
    Conflict,
    /// The connection is gone: another one may work.
    ConnectionLost,
    /// The database could not do it now; the same request may succeed later.
    Transient,
    /// Anything else.
    Other,
}

/// The class of an error the database reported. Diesel reads the backend's error code
/// for the kinds it names; the rest are told by the message, which each backend's module
/// knows: SQLite's never changes language, and PostgreSQL's is checked to be English
/// when each pool starts (see `backend::postgres::error`).
pub(crate) fn classify(kind: &DatabaseErrorKind, message: &str) -> Class {
    match kind {
        DatabaseErrorKind::UniqueViolation => Class::Conflict,
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
            Class::ConnectionLost
        }
        DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ReadOnlyTransaction => {
            Class::Transient
        }
        _ => super::backend::class_of_message(message).unwrap_or(Class::Other),
    }
}

/// Whether the database answered the statement that failed with `error` (so it took
/// effect, or certainly did not), rather than the connection failing on the way.
pub(crate) fn answered_by_server(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(kind, info) if classify(kind, info.message()) != Class::ConnectionLost
    )
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
    fn kinds_diesel_reads_from_error_codes_come_first() {
        for (kind, message, class) in [
            (
                DatabaseErrorKind::SerializationFailure,
                "anything",
                Class::Transient,
            ),
            (
                DatabaseErrorKind::ReadOnlyTransaction,
                "anything",
                Class::Transient,
            ),
            (
                DatabaseErrorKind::ClosedConnection,
                "",
                Class::ConnectionLost,
            ),
            (
                DatabaseErrorKind::UniqueViolation,
                "database is locked",
                Class::Conflict,
            ),
            (
                DatabaseErrorKind::Unknown,
                "syntax error at or near \"x\"",
                Class::Other,
            ),
        ] {
            assert_eq!(classify(&kind, message), class, "{kind:?} {message}");
        }
    }
}
