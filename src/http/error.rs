use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;

/// Every error is this: `{"error": …, "code": …}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(super) struct ErrorBody {
    /// For a person. Never carries SQL, connection strings or stack traces: the cause
    /// of a server error is logged with the request's `X-Request-Id`.
    error: String,
    code: ErrorCode,
}

/// What went wrong, for programs; which codes a status carries is said by each response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ErrorCode {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    UnknownUser,
    Unauthorized,
    Forbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    DatabaseUnavailable,
    Internal,
}

impl AppError {
    /// Each error's status and code, in one table so that the two cannot drift apart.
    pub(super) fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            AppError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
            }
            AppError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            AppError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
            }
            AppError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            AppError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
            ),
            AppError::UnknownUser(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::UnknownUser),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            AppError::Forbidden { .. } => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            AppError::IdempotencyKeyInUse => (StatusCode::CONFLICT, ErrorCode::IdempotencyKeyInUse),
            AppError::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
            ),
            AppError::Unavailable(_) | AppError::DeadlineExceeded(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseUnavailable,
            ),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

/// The one place where errors become responses: `{"error": …, "code": …}`. The message
/// is the error's `Display`, which never carries a database cause (see `AppError::cause`).
impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = self.status_and_code();
        let mut response = HttpResponse::build(status);
        match self {
            AppError::Unavailable(_)
            | AppError::DeadlineExceeded(_)
            | AppError::IdempotencyKeyInUse => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            AppError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            AppError::Unauthorized(_) => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.to_string(),
            code,
        })
    }
}
