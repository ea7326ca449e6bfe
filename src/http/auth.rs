//! Who may call (README, "Authentication"): every route of the route table that is not
//! marked public is wrapped in [`require_key`] when `AUTH=required`. A route is
//! protected unless it is deliberately listed as public.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::HttpMessage;

use crate::api_keys::{self, Presented, Scope};
use crate::db::sync::lock;
use crate::db::{self, Database, DbError, Pool};
use crate::db1::Db1;
use crate::domain::timestamp;
use crate::error::AppError;

/// How long a key's row is trusted, counted from when the lookup that read it was
/// *sent*: a row read by a slow reply is no fresher than the request that asked for it.
/// So while db1 answers, a revocation reaches every instance within this (see README,
/// "Authentication"), inside the 5 seconds API.md promises.
const FRESH_FOR: Duration = Duration::from_secs(4);
/// `last_used_at` is written at most this often per key and instance: no database write
/// on every request.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Keys kept at most; beyond it those no longer of use go, then all (unknown ids are
/// kept too, and a client can send many).
const MAX_CACHED: usize = 10_000;

pub(super) const MISSING: &str = "authentication required: send `Authorization: Bearer <API key>`";
const MALFORMED: &str = "the bearer token is malformed";
const WRONG_SCHEME: &str =
    "the Authorization scheme is not Bearer: send `Authorization: Bearer <API key>`";

/// The token of an `Authorization: Bearer <token>` header, or why there is none. The
/// scheme's name is case-insensitive (RFC 9110 §11.1), and one or more spaces part it
/// from the token (§11.4); another scheme is named as the fault, not the token.
fn bearer_token(value: &actix_web::http::header::HeaderValue) -> Result<&str, &'static str> {
    let value = value.to_str().map_err(|_| MALFORMED)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(WRONG_SCHEME);
    }
    match token.trim_start_matches(' ') {
        "" => Err(MALFORMED),
        token => Ok(token),
    }
}
const INVALID: &str = "the API key is unknown or revoked";

/// Checks API keys against db1, with a short cache. Shared by every worker.
///
/// db1 is the key store, but most routes do not otherwise need it: while it cannot be
/// asked (down, or slow past its checkout timeout), a key this instance verified within
/// the last `offline_grace` keeps its last known state, so that the routes of db2 go on
/// serving; a key not verified in that time is answered 503, as the database it needs.
pub struct Authenticator {
    db1: Pool<Db1>,
    offline_grace: Duration,
    keys: Mutex<HashMap<String, Arc<Key>>>,
}

/// What this instance knows of one key id, and the one lookup of it that may be in
/// flight: requests that find the row stale wait for that lookup's answer instead of
/// each asking db1 (single flight).
#[derive(Default)]
struct Key {
    known: Mutex<Known>,
    lookup: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Known {
    /// The row as last read; `None` if there was no such key (or nothing was read yet).
    row: Option<Row>,
    /// When the lookup that read `row` was sent; `None` if none succeeded.
    verified_at: Option<Instant>,
    /// When the last lookup that found db1 unavailable ended.
    failed_at: Option<Instant>,
    touched_at: Option<Instant>,
}

#[derive(Clone)]
struct Row {
    secret_sha256: String,
    scope: Option<Scope>,
    revoked: bool,
}

/// The answer a request goes by: a row read by a lookup sent at `verified_at`.
struct Verdict {
    row: Option<Row>,
    /// db1 answered the lookup this verdict rests on recently: a last-use note may go.
    db1_answers: bool,
}

impl Authenticator {
    pub fn new(db1: Pool<Db1>, offline_grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            db1,
            offline_grace,
            keys: Mutex::new(HashMap::new()),
        })
    }

    fn keys(&self) -> MutexGuard<'_, HashMap<String, Arc<Key>>> {
        lock(&self.keys)
    }

    /// The request's valid API key (its id) and its scope, or why there is none.
    async fn key_of(&self, request: &ServiceRequest) -> Result<(Caller, Scope), AppError> {
        let Some(header) = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
        else {
            return Err(AppError::Unauthorized(MISSING));
        };
        let token = bearer_token(header).map_err(AppError::Unauthorized)?;
        let presented = Presented::parse(token).ok_or(AppError::Unauthorized(MALFORMED))?;
        let key = self.key(presented.id);
        let verdict = self.verdict(&key, presented.id).await?;
        match verdict.row {
            Some(row) if !row.revoked && presented.matches(&row.secret_sha256) => {
                if verdict.db1_answers {
                    self.touch(&key, presented.id).await;
                }
                let scope = row.scope.ok_or(AppError::Unauthorized(INVALID))?;
                Ok((Caller(presented.id.to_owned()), scope))
            }
            _ => Err(AppError::Unauthorized(INVALID)),
        }
    }

    /// The entry of key `id`, made if there is none.
    fn key(&self, id: &str) -> Arc<Key> {
        let mut keys = self.keys();
        if let Some(key) = keys.get(id) {
            return key.clone();
        }
        if keys.len() >= MAX_CACHED {
            let grace = FRESH_FOR.max(self.offline_grace);
            keys.retain(|_, key| {
                Arc::strong_count(key) > 1
                    || lock(&key.known)
                        .verified_at
                        .is_some_and(|at| at.elapsed() < grace)
            });
            if keys.len() >= MAX_CACHED {
                keys.retain(|_, key| Arc::strong_count(key) > 1);
            }
        }
        keys.entry(id.to_owned()).or_default().clone()
    }

    /// The row to go by: the cached one while fresh; else a lookup's, made by this request
    /// or by the one already in flight for the key (waited for, at most as long as a
    /// checkout of db1); else, while db1 cannot be asked, the last row verified within
    /// the offline grace.
    async fn verdict(&self, key: &Key, id: &str) -> Result<Verdict, AppError> {
        let arrived = Instant::now();
        if let Some(verdict) = fresh(&lock(&key.known)) {
            return Ok(verdict);
        }
        let deadline = self.db1.admissions().deadline();
        let looked_up = match tokio::time::timeout_at(deadline, key.lookup.lock()).await {
            Ok(_in_flight) => {
                // Whoever held the lookup before may have answered for this request too.
                let failed_since_arrival = {
                    let known = lock(&key.known);
                    if let Some(verdict) = fresh(&known) {
                        return Ok(verdict);
                    }
                    known.failed_at.is_some_and(|at| at >= arrived)
                };
                if failed_since_arrival {
                    Err(unavailable("the key's lookup in db1 failed just now"))
                } else {
                    self.look_up(key, id).await
                }
            }
            Err(_elapsed) => Err(unavailable(
                "the key's lookup in db1 did not end within the checkout timeout",
            )),
        };
        match looked_up {
            Ok(verdict) => Ok(verdict),
            Err(error) if is_unavailable(&error) => self.offline(key).ok_or(error.into()),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads the key's row from db1 and keeps it, stamped with when it was asked for.
    async fn look_up(&self, key: &Key, id: &str) -> Result<Verdict, DbError> {
        let sent = Instant::now();
        let lookup = id.to_owned();
        let found = db::read(&self.db1, move |session| api_keys::find(session, &lookup)).await;
        let mut known = lock(&key.known);
        match found {
            Ok(found) => {
                known.row = found.map(|key| Row {
                    scope: key.scope(),
                    revoked: key.revoked_at.is_some(),
                    secret_sha256: key.secret_sha256,
                });
                known.verified_at = Some(sent);
                Ok(Verdict {
                    row: known.row.clone(),
                    db1_answers: true,
                })
            }
            Err(error) => {
                if is_unavailable(&error) {
                    known.failed_at = Some(Instant::now());
                }
                Err(error)
            }
        }
    }

    /// The verdict while db1 cannot be asked: the last row verified within the grace.
    fn offline(&self, key: &Key) -> Option<Verdict> {
        let known = lock(&key.known);
        let verified_at = known.verified_at?;
        (verified_at.elapsed() < self.offline_grace).then(|| {
            log::debug!(
                "db1 cannot be asked: the key's row verified {:?} ago is used",
                verified_at.elapsed()
            );
            Verdict {
                row: known.row.clone(),
                db1_answers: false,
            }
        })
    }

    /// Records the key's use in db1 if this instance has not for a minute, and db1
    /// answered the key's last lookup. Within the request that is due (one a minute per
    /// key): a write left running in the background would outlive a server that stops,
    /// holding its connection in an open transaction. A failure is logged and does not
    /// fail the request.
    async fn touch(&self, key: &Key, id: &str) {
        let due = {
            let mut known = lock(&key.known);
            let due = known
                .touched_at
                .is_none_or(|at| at.elapsed() >= TOUCH_EVERY);
            if due {
                known.touched_at = Some(Instant::now());
            }
            due
        };
        if due {
            let (id, now) = (id.to_owned(), timestamp::now());
            let noted = db::write(&self.db1, move |s| api_keys::touch(s, &id, now)).await;
            if let Err(error) = noted {
                if is_unavailable(&error) {
                    lock(&key.known).failed_at = Some(Instant::now());
                }
                log::warn!("cannot note an API key's last use: {error}");
            }
        }
    }
}

/// The cached verdict, if the row is fresh.
fn fresh(known: &Known) -> Option<Verdict> {
    let verified_at = known.verified_at?;
    (verified_at.elapsed() < FRESH_FOR).then(|| Verdict {
        row: known.row.clone(),
        db1_answers: known.failed_at.is_none_or(|failed| failed < verified_at),
    })
}

fn is_unavailable(error: &DbError) -> bool {
    matches!(
        error,
        DbError::Unavailable { .. } | DbError::ConnectionLost { .. }
    )
}

fn unavailable(why: &'static str) -> DbError {
    DbError::Unavailable {
        database: Db1::NAME,
        cause: why.into(),
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
    // OPTIONS tells only which methods a path takes, and a browser sends its CORS
    // preflight without credentials.
    if request.method() == Method::OPTIONS {
        return next.call(request).await;
    }
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

#[cfg(test)]
mod tests {
    use super::{bearer_token, MALFORMED, WRONG_SCHEME};
    use actix_web::http::header::HeaderValue;

    #[test]
    fn the_scheme_is_case_insensitive_and_a_wrong_one_is_named() {
        let token =
            |text: &'static str| bearer_token(&HeaderValue::from_static(text)).map(str::to_owned);
        for accepted in [
            "Bearer mdb_x",
            "bearer mdb_x",
            "BEARER mdb_x",
            "Bearer   mdb_x",
        ] {
            assert_eq!(token(accepted).as_deref(), Ok("mdb_x"), "{accepted}");
        }
        for wrong in [
            "Basic mdb_x",
            "mdb_x",
            "Bearer-ish mdb_x",
            "Bearermdb_x",
            "",
        ] {
            assert_eq!(token(wrong), Err(WRONG_SCHEME), "{wrong}");
        }
        for malformed in ["Bearer", "Bearer ", "bearer    "] {
            assert_eq!(token(malformed), Err(MALFORMED), "{malformed}");
        }
        let not_text = HeaderValue::from_bytes(b"Bearer \xff").unwrap();
        assert_eq!(bearer_token(&not_text), Err(MALFORMED));
    }
}
