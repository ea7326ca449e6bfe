//! The application's error: every handler and workflow returns it, and
//! `http::error` turns it into a response in one place.

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed JSON, wrong JSON types, unknown fields, bad query or path parameters.
    #[error("{0}")]
    BadRequest(String),
    /// No such resource (the message names it) or no such route.
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("request body must be JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// Well-formed input whose values break the input rules.
    #[error("{0}")]
    Validation(String),
    #[error("user {0} does not exist")]
    UnknownUser(i64),
    /// A database could not serve the request now; the cause is logged, not shown.
    #[error("a database is unavailable; retry shortly")]
    Unavailable { cause: String },
    /// Anything else; the cause is logged, not shown.
    #[error("internal error")]
    Internal { cause: String },
}

impl AppError {
    /// What goes to the log next to the client-facing message.
    pub fn cause(&self) -> Option<&str> {
        match self {
            AppError::Unavailable { cause } | AppError::Internal { cause } => Some(cause),
            _ => None,
        }
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable { .. } | DbError::ConnectionLost { .. } => AppError::Unavailable {
                cause: error.to_string(),
            },
            // The only unique constraint the service has is on users' emails.
            DbError::Conflict(_) => AppError::Conflict("the email is already taken".into()),
            DbError::NotFound => AppError::NotFound("not found".into()),
            DbError::Panicked | DbError::Injected(_) | DbError::Other { .. } => {
                AppError::Internal {
                    cause: error.to_string(),
                }
            }
        }
    }
}
