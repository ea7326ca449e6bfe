//! The application's error: every handler and workflow returns it, and
//! `http::error` turns it into a response in one place.

use crate::db::{Cause, DbError};
use crate::domain::UserId;
use crate::users;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed JSON, wrong JSON types, unknown fields, bad query or path parameters.
    #[error("{0}")]
    BadRequest(String),
    /// No such resource (the message names it) or no such route.
    #[error("{0}")]
    NotFound(String),
    /// `allow`: the methods the path takes, for the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// A conflict named by the code that knows which constraint it hit.
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
    UnknownUser(UserId),
    /// Authentication is on and the request carries no valid API key: the message says
    /// which of missing, malformed, unknown or revoked, never the token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A request with the same `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyKeyInUse,
    /// The `Idempotency-Key` was used before for a different method, path or body.
    #[error("this Idempotency-Key was used for a different request (method, path or body); use a new key for a new request")]
    IdempotencyKeyReused,
    /// The API key's scope does not allow the method.
    #[error("this API key's scope ({scope}) does not allow {method}")]
    Forbidden { scope: &'static str, method: String },
    /// A database could not serve the request now; the cause is logged, not shown.
    #[error("a database is unavailable; retry shortly")]
    Unavailable(#[source] DbError),
    /// The request was not answered within `REQUEST_TIMEOUT_MS`: a database hangs, or
    /// is that slow. Answered as `Unavailable` is; the cause is logged.
    #[error("a database is unavailable; retry shortly")]
    DeadlineExceeded(#[source] DeadlineExceeded),
    /// Anything else; the cause is logged, not shown.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl AppError {
    /// What goes to the log next to the client-facing message.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Unavailable(error) => Some(error),
            AppError::DeadlineExceeded(deadline) => Some(deadline),
            AppError::Internal(cause) => Some(cause.as_ref()),
            _ => None,
        }
    }
}

/// No answer within the request's deadline; a write may still complete.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the databases within {limit:?} (REQUEST_TIMEOUT_MS); a write may still complete")]
pub struct DeadlineExceeded {
    pub limit: std::time::Duration,
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable { .. } | DbError::ConnectionLost { .. } => {
                AppError::Unavailable(error)
            }
            DbError::NotFound => AppError::NotFound("not found".into()),
            // A conflict that reaches here was not named by its query: a bug, not the
            // client's doing.
            DbError::Conflict { .. } | DbError::Panicked | DbError::Other { .. } => {
                AppError::Internal(Box::new(error))
            }
            #[cfg(feature = "fault-injection")]
            DbError::Injected(_) => AppError::Internal(Box::new(error)),
        }
    }
}

impl From<users::WriteError> for AppError {
    fn from(error: users::WriteError) -> Self {
        match error {
            users::WriteError::EmailTaken => AppError::Conflict(error.to_string()),
            users::WriteError::Database(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn a_conflict_no_query_named_is_an_internal_error_that_keeps_its_cause() {
        let conflict = DbError::Conflict {
            database: "db2",
            cause: "duplicate key value violates unique constraint \"idempotency_keys_pkey\""
                .into(),
        };
        let error = AppError::from(conflict);
        assert_eq!(error.status_code().as_u16(), 500);
        assert_eq!(error.to_string(), "internal error");
        let logged = crate::db::chain(error.cause().expect("a cause"));
        assert!(logged.contains("idempotency_keys_pkey"), "{logged}");
    }

    #[test]
    fn a_taken_email_is_a_conflict_the_client_sees() {
        let error = AppError::from(users::WriteError::EmailTaken);
        assert_eq!(error.status_code().as_u16(), 409);
        assert_eq!(error.to_string(), "the email is already taken");
    }
}
