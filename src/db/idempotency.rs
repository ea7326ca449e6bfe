//! Idempotency keys: the stored answers of requests a client may retry (README, "Safe
//! retries"). A key's row is written by the transaction that does the request's work, in
//! the same database, so a crash leaves both or neither: a retry finds the answer, or
//! finds nothing and does the work. The table is the database layer's, in every
//! database, because the row must commit in the transaction of whichever database the
//! work writes; what the answer says is the caller's business. The layer stores an
//! [`Answer`] as three values a replayed response needs (a status, an optional location,
//! a body) and never reads them; the HTTP meaning (headers, JSON, which statuses are
//! stored) is the application's (`http/idempotency.rs`, `workflows/once.rs`), as is
//! when expired keys are deleted ([`purge_expired`], called on recovery's turns).

use std::time::Duration;

use chrono::NaiveDateTime;

use diesel::prelude::*;
use diesel::sql_types::Timestamp;
use sha2::{Digest, Sha256};

use super::{clock, Database, DbError, KeyLock, KeyLocks, LockMode, Pool, Session, Write};

diesel::table! {
    multidb_idempotency_keys (owner, idempotency_key) {
        owner -> Text,
        idempotency_key -> Text,
        fingerprint -> Text,
        status -> Integer,
        location -> Nullable<Text>,
        body -> Text,
        created_at -> Timestamp,
    }
}

/// The keys being used, as locks ("mdbk"): a request holds its key's lock until its
/// transaction ends, so a duplicate sent meanwhile waits for the answer.
const IN_USE: KeyLocks = KeyLocks::new(super::key_lock::IDEMPOTENCY_CLASS);

/// A request's idempotency key: who sent it, the key, and what the request was.
#[derive(Debug, Clone)]
pub struct Claim {
    owner: String,
    key: String,
    fingerprint: String,
    ttl: Duration,
}

/// A stored answer, replayed as it was first sent.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Answer {
    pub status: i32,
    pub location: Option<String>,
    pub body: String,
}

/// What a database knows of a claim's key.
#[derive(Debug)]
pub enum Earlier {
    /// Nothing (or only an expired answer, now deleted).
    Unused,
    /// The answer to the same request.
    Answered(Answer),
    /// The key was used for a different request.
    OtherRequest,
}

impl Claim {
    /// `owner` scopes the key (an API key's id, or one scope for everyone);
    /// `fingerprint` identifies the request (see [`fingerprint`]); answers older than
    /// `ttl` are forgotten.
    pub fn new(owner: String, key: String, fingerprint: String, ttl: Duration) -> Self {
        Self {
            owner,
            key,
            fingerprint,
            ttl,
        }
    }

    /// The lock a request takes on its key before it looks for an earlier answer, in the
    /// database where every request that may carry the key takes it. A 64-bit digest of
    /// owner and key, the same in every instance and version.
    pub fn lock(&self) -> KeyLock {
        let digest = Sha256::new()
            .chain_update(self.owner.as_bytes())
            .chain_update([0])
            .chain_update(self.key.as_bytes())
            .finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        IN_USE.key(i64::from_le_bytes(first), LockMode::Exclusive)
    }

    /// What `session`'s database knows of the key. An expired answer is deleted here,
    /// so that the key can be stored again. (Statically typed queries, which Diesel
    /// prepares once per connection: whether a row found has expired, which needs the
    /// database's clock, is asked only of a row found.)
    pub fn earlier<D: Database>(
        &self,
        session: &mut Session<D, Write>,
    ) -> Result<Earlier, DbError> {
        let found: Option<(String, Answer)> = session.load_optional(self.row().select((
            multidb_idempotency_keys::fingerprint,
            (
                multidb_idempotency_keys::status,
                multidb_idempotency_keys::location,
                multidb_idempotency_keys::body,
            ),
        )))?;
        let Some((fingerprint, answer)) = found else {
            return Ok(Earlier::Unused);
        };
        session.fault_point("idempotency_found")?;
        let expired = clock::timestamp_ago(session.backend(), self.ttl);
        let deleted = session.execute(diesel::delete(self.row().filter(
            multidb_idempotency_keys::created_at.lt(diesel::dsl::sql::<Timestamp>(&expired)),
        )))?;
        // Nothing deleted: the answer is live — unless the purge deleted it since the
        // lookup (it deletes only expired answers), which the key's lock does not stop.
        // Either way an expired answer counts as absent.
        let gone = deleted == 0
            && session
                .load_optional::<_, i32>(self.row().select(multidb_idempotency_keys::status))?
                .is_none();
        Ok(if deleted > 0 || gone {
            Earlier::Unused
        } else if fingerprint == self.fingerprint {
            Earlier::Answered(answer)
        } else {
            Earlier::OtherRequest
        })
    }

    /// Stores the answer to the claim's request; it commits with `session`. Dated by the
    /// database's clock, by the column's default.
    pub fn record<D: Database>(
        &self,
        session: &mut Session<D, Write>,
        answer: &Answer,
    ) -> Result<(), DbError> {
        let insert = diesel::insert_into(multidb_idempotency_keys::table).values((
            multidb_idempotency_keys::owner.eq(&self.owner),
            multidb_idempotency_keys::idempotency_key.eq(&self.key),
            multidb_idempotency_keys::fingerprint.eq(&self.fingerprint),
            multidb_idempotency_keys::status.eq(answer.status),
            multidb_idempotency_keys::location.eq(answer.location.as_deref()),
            multidb_idempotency_keys::body.eq(&answer.body),
        ));
        session.execute(insert).map(drop)
    }

    fn row(&self) -> diesel::dsl::Find<multidb_idempotency_keys::table, (&str, &str)> {
        multidb_idempotency_keys::table.find((self.owner.as_str(), self.key.as_str()))
    }
}

/// A hex SHA-256 over the parts of a request, each ended by a zero byte (which none of
/// them contains), so that no two different lists of parts give the same input.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    crate::hex::lower_hex(&hasher.finalize())
}

/// Answers are deleted by the purge this long after they expired (or one TTL, if that is
/// shorter): until then a request that finds one decides about it itself (and deletes
/// it). The grace makes it rare that the purge removes a row between a request's lookup
/// and its own expiry check; when it does, the request sees the row gone and counts the
/// answer as absent (see [`Claim::earlier`]).
const PURGE_GRACE: Duration = Duration::from_secs(60);

/// Rows deleted per statement (and transaction) by the purge, and statements per call:
/// a backlog (after an outage, or a TTL made shorter) is worked off a bounded batch at a
/// time, each well inside the statement timeout and, on SQLite, holding the write lock
/// only briefly; what is left waits for the next pass.
const PURGE_BATCH: i64 = 1_000;
const PURGE_BATCHES: usize = 100;

/// Deletes the answers that expired (`ttl`, plus a grace period) from `pool`'s database,
/// in batches; how many. Blocks.
pub fn purge_expired<D: Database>(pool: &Pool<D>, ttl: Duration) -> Result<usize, DbError> {
    let mut purged = 0;
    for _ in 0..PURGE_BATCHES {
        let mut session = pool.begin_internal::<Write>()?;
        let expired = clock::timestamp_ago(session.backend(), ttl + PURGE_GRACE.min(ttl));
        let expired = || {
            multidb_idempotency_keys::table.filter(
                multidb_idempotency_keys::created_at.lt(diesel::dsl::sql::<Timestamp>(&expired)),
            )
        };
        // The batch is the oldest PURGE_BATCH expired rows, bounded by the creation time of
        // the last of them (rows created at that same instant go too).
        let last_of_batch: Option<NaiveDateTime> = session.load_optional(
            expired()
                .select(multidb_idempotency_keys::created_at)
                .order(multidb_idempotency_keys::created_at.asc())
                .offset(PURGE_BATCH - 1)
                .limit(1),
        )?;
        let deleted = match last_of_batch {
            Some(last) => session.execute(diesel::delete(
                expired().filter(multidb_idempotency_keys::created_at.le(last)),
            )),
            None => session.execute(diesel::delete(expired())),
        }?;
        session.commit()?;
        purged += deleted;
        if last_of_batch.is_none() {
            break;
        }
    }
    Ok(purged)
}
