//! The per-request deadline: every request is answered within `REQUEST_TIMEOUT_MS`,
//! even when a database hangs instead of refusing (a frozen server, a network that
//! drops packets), which no connection or statement timeout of ours can notice in time.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::error::{AppError, DeadlineExceeded};

/// Answers 503 `database_unavailable` with `Retry-After` when the request is not done
/// within `limit`. The request's blocking work is not stopped: it ends on its own
/// (statement timeout, libpq's TCP timeouts, or the database answering again) and its
/// session then rolls back as usual, or — for a write that had already reached its
/// commit — commits, which the 503's message does not exclude.
///
/// The answer is an `Err`, turned into the response by [`AppError`]'s one mapping: a
/// response of our own would need the request, which routing must own alone (actix
/// panics if it was cloned).
pub async fn answer_within(
    limit: Duration,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match tokio::time::timeout(limit, next.call(request)).await {
        Ok(response) => response,
        Err(_) => Err(AppError::DeadlineExceeded(DeadlineExceeded { limit }).into()),
    }
}
