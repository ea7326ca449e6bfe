//! Who may call (README, "Authentication"): every route of the route table that is not
//! marked public is wrapped in [`require_key`] when `AUTH=required`. A route is
//! protected unless it is deliberately listed as public.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::Header;
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use actix_web_httpauth::headers::authorization::{Authorization, Bearer};

use crate::api_keys::{self, Presented, Scope};
use crate::db::{self, Pool};
use crate::domain::timestamp;
use crate::error::AppError;
use crate::users::Db1;

/// How long a key's row is trusted once read: a revocation reaches every instance within
/// this (plus one request), inside the 5 seconds API.md promises.
const FRESH_FOR: Duration = Duration::from_secs(4);
/// `last_used_at` is written at most this often per key and instance: no database write
/// on every request.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Rows kept at most; beyond it the stale ones go, then all (unknown ids are cached too,
/// and a client can send many).
const MAX_CACHED: usize = 10_000;

const MISSING: &str = "authentication required: send `Authorization: Bearer <API key>`";
const MALFORMED: &str = "the bearer token is malformed";
const INVALID: &str = "the API key is unknown or revoked";

/// Checks API keys against db1, with a short cache. Shared by every worker.
pub struct Authenticator {
    db1: Pool<Db1>,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    /// The key's row as read at `read_at`; `None` if there was no such key.
    row: Option<Row>,
    read_at: Instant,
    touched_at: Option<Instant>,
}

#[derive(Clone)]
struct Row {
    secret_sha256: String,
    scope: Option<Scope>,
    revoked: bool,
}

impl Authenticator {
    pub fn new(db1: Pool<Db1>) -> Arc<Self> {
        Arc::new(Self {
            db1,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The request's valid API key (its id) and its scope, or why there is none.
    async fn key_of(&self, request: &ServiceRequest) -> Result<(Caller, Scope), AppError> {
        if !request
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
        {
            return Err(AppError::Unauthorized(MISSING));
        }
        let header = Authorization::<Bearer>::parse(request)
            .map_err(|_| AppError::Unauthorized(MALFORMED))?;
        let token = header.as_ref().token();
        let presented = Presented::parse(token).ok_or(AppError::Unauthorized(MALFORMED))?;
        let row = self.row(presented.id).await?;
        match row {
            Some(row) if !row.revoked && presented.matches(&row.secret_sha256) => {
                self.touch(presented.id).await;
                let scope = row.scope.ok_or(AppError::Unauthorized(INVALID))?;
                Ok((Caller(presented.id.to_owned()), scope))
            }
            _ => Err(AppError::Unauthorized(INVALID)),
        }
    }

    /// The key's row, from the cache while fresh, else from db1.
    async fn row(&self, id: &str) -> Result<Option<Row>, AppError> {
        if let Some(cached) = self.cache().get(id) {
            if cached.read_at.elapsed() < FRESH_FOR {
                return Ok(cached.row.clone());
            }
        }
        let lookup = id.to_owned();
        let key = db::read(&self.db1, move |session| api_keys::find(session, &lookup)).await?;
        let row = key.map(|key| Row {
            scope: key.scope(),
            revoked: key.revoked_at.is_some(),
            secret_sha256: key.secret_sha256,
        });
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, cached| cached.read_at.elapsed() < FRESH_FOR);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        let touched_at = cache.get(id).and_then(|cached| cached.touched_at);
        cache.insert(
            id.to_owned(),
            Cached {
                row: row.clone(),
                read_at: Instant::now(),
                touched_at,
            },
        );
        Ok(row)
    }

    /// Records the key's use in db1 if this instance has not for a minute. Within the
    /// request that is due (one a minute per key): a write left running in the
    /// background would outlive a server that stops, holding its connection in an open
    /// transaction. A failure is logged and does not fail the request.
    async fn touch(&self, id: &str) {
        let due = match self.cache().get_mut(id) {
            Some(cached)
                if cached
                    .touched_at
                    .is_none_or(|at| at.elapsed() >= TOUCH_EVERY) =>
            {
                cached.touched_at = Some(Instant::now());
                true
            }
            _ => false,
        };
        if due {
            let (id, now) = (id.to_owned(), timestamp::now());
            let noted = db::write(&self.db1, move |s| api_keys::touch(s, &id, now)).await;
            if let Err(error) = noted {
                log::warn!("cannot note an API key's last use: {error}");
            }
        }
    }
}

/// The id of the API key a request was authenticated with, in the request's extensions:
/// what its idempotency keys are scoped to.
pub struct Caller(pub String);

/// A `read` key may use `GET` (and `HEAD`); a `write` key every method.
fn allows(scope: Scope, method: &Method) -> bool {
    scope == Scope::Write || method == Method::GET || method == Method::HEAD
}

/// Lets the request through if it carries a valid API key whose scope allows its
/// method: 401 (with `WWW-Authenticate: Bearer`) or 403 otherwise, through the one
/// error mapping.
pub async fn require_key(
    auth: Arc<Authenticator>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (caller, scope) = auth.key_of(&request).await?;
    if !allows(scope, request.method()) {
        return Err(AppError::Forbidden {
            scope: scope.as_str(),
            method: request.method().to_string(),
        }
        .into());
    }
    request.extensions_mut().insert(caller);
    next.call(request).await
}
