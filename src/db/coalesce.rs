//! Reads of many requests in one statement: the hand-off to a blocking thread, the
//! connection and the round trip to the database shared by the requests that want a
//! read of the same kind at the same moment, as DataLoader batches the loads of a tick
//! and Prisma the `findUnique` calls of one.
//!
//! Opportunistic: a request never waits for a batch to fill. The first request that
//! finds no batch forming starts one, with a task of its own that waits for the
//! database's admission and a blocking thread; once it has both, it takes the batch and
//! reads it. Requests that arrive meanwhile join the batch. At low load the batch holds
//! the one request and is read at once, by the same statement as without batching;
//! under load, while the earlier batches hold the connections, the next one gathers
//! whoever arrives. Every answer reflects the database after its request arrived (a
//! batch is read after the last request joined it), and nothing is kept once a batch
//! is answered: no cache.
//!
//! A request that goes away (its client, its deadline) leaves the batch to the others;
//! the task is not the request's, so it still answers them. A connection found dead
//! is replaced and the batch read again, as any read is; an error reaches every
//! request of the batch.

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::error::SharedError;
use super::runner::read_admitted;
use super::sync::lock;
use super::{blocking, Database, DbError, Pool, Session};

/// A kind of read that many requests can share: by a key, one statement for a batch of
/// keys.
pub trait BatchRead: Send + Sync + 'static {
    type Database: Database;
    type Key: Copy + Eq + Hash + Send + 'static;
    /// What a request gets.
    type Answer: Clone + Send + 'static;
    /// What a batch read.
    type Batch;
    /// The answer for `key` alone: the statement a batch of one key runs.
    fn one(
        session: &mut Session<Self::Database, super::Read>,
        key: Self::Key,
    ) -> Result<Self::Answer, DbError>;
    /// What answers every one of `keys` (distinct, more than one): one statement.
    fn many(
        session: &mut Session<Self::Database, super::Read>,
        keys: &[Self::Key],
    ) -> Result<Self::Batch, DbError>;
    /// The answer for `key`, one of those `many` read for.
    fn answer(batch: &Self::Batch, key: Self::Key) -> Self::Answer;
}

/// The most requests one batch answers; one more starts a batch of its own. Above the
/// connections a busy pool holds, so that it is rarely reached.
const MOST_PER_BATCH: usize = 128;

type Reply<R> = Result<<R as BatchRead>::Answer, DbError>;
type Waiter<R> = (<R as BatchRead>::Key, oneshot::Sender<Reply<R>>);

/// What a request found: a batch forming with room for it, a full one (it reads alone),
/// or none (it starts one).
enum Joined {
    Forming,
    NoRoom,
    Started,
}

/// Batches the reads of one kind on one pool. Cheap to clone; the clones share
/// the batch that is forming.
pub struct Coalescer<R: BatchRead> {
    pool: Pool<R::Database>,
    forming: Arc<Mutex<Option<Vec<Waiter<R>>>>>,
}

impl<R: BatchRead> Clone for Coalescer<R> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            forming: self.forming.clone(),
        }
    }
}

impl<R: BatchRead> Coalescer<R> {
    pub fn new(pool: Pool<R::Database>) -> Self {
        Self {
            pool,
            forming: Arc::new(Mutex::new(None)),
        }
    }

    /// The answer for `key`, read in a batch with whichever requests join it.
    pub async fn read(&self, key: R::Key) -> Result<R::Answer, DbError> {
        let (answer, answered) = oneshot::channel();
        let joined = {
            let mut forming = lock(&self.forming);
            match forming.as_mut() {
                Some(waiters) if waiters.len() < MOST_PER_BATCH => {
                    waiters.push((key, answer));
                    Joined::Forming
                }
                Some(_) => Joined::NoRoom,
                None => {
                    *forming = Some(vec![(key, answer)]);
                    Joined::Started
                }
            }
        };
        let starts_batch = match joined {
            Joined::Forming => false,
            Joined::Started => true,
            Joined::NoRoom => {
                return super::read(&self.pool, move |session| R::one(session, key)).await;
            }
        };
        if starts_batch {
            actix_web::rt::spawn(self.clone().answer_batch());
        }
        // The task answers every waiter it takes, whatever happens to it: a dropped
        // sender can only be a panic of this module.
        answered.await.unwrap_or(Err(DbError::Panicked))
    }

    /// Waits for a turn on the pool, then takes the batch formed meanwhile and reads it.
    async fn answer_batch(self) {
        let admission = match self.pool.admissions().admit().await {
            Ok(admission) => admission,
            Err(error) => return answer_all::<R>(self.take(), Err(error)),
        };
        let outcome = blocking(move || -> Result<(), DbError> {
            // `{database}.read_batch`: a test holds the batch open here for others to join.
            if let Err(fault) = self.pool.faults().hit(R::Database::NAME, "read_batch") {
                answer_all::<R>(self.take(), Err(fault));
                return Ok(());
            }
            let waiters = self.take();
            if waiters.iter().all(|(_, answer)| answer.is_closed()) {
                return Ok(());
            }
            let mut keys: Vec<R::Key> = waiters.iter().map(|(key, _)| *key).collect();
            distinct(&mut keys);
            self.pool.metrics().record_batch(waiters.len());
            let read = read_admitted(&self.pool, admission, &|session| match keys[..] {
                [key] => R::one(session, key).map(Read::One),
                _ => R::many(session, &keys).map(Read::Many),
            });
            answer_all::<R>(waiters, read);
            Ok(())
        })
        .await;
        // Only a panic gets here, after the waiters' senders were dropped with it.
        if let Err(error) = outcome {
            log::error!("a batch of {} reads failed: {error}", R::Database::NAME);
        }
    }

    fn take(&self) -> Vec<Waiter<R>> {
        lock(&self.forming).take().unwrap_or_default()
    }
}

/// Removes repeated keys, keeping the first of each.
fn distinct<K: Eq + Hash + Copy>(keys: &mut Vec<K>) {
    if keys.len() > 1 {
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        keys.retain(|key| seen.insert(*key));
    }
}

/// What a batch read: the answer for its one key, or what answers each of its keys.
enum Read<R: BatchRead> {
    One(R::Answer),
    Many(R::Batch),
}

/// Gives each waiter its answer, or the error.
fn answer_all<R: BatchRead>(waiters: Vec<Waiter<R>>, read: Result<Read<R>, DbError>) {
    // A waiter that went away needs no answer: sending to it fails, and is let go.
    match read {
        Ok(Read::One(answer)) => {
            for (_, waiter) in waiters {
                let _ = waiter.send(Ok(answer.clone()));
            }
        }
        Ok(Read::Many(batch)) => {
            for (key, waiter) in waiters {
                let _ = waiter.send(Ok(R::answer(&batch, key)));
            }
        }
        Err(error) => {
            let error = SharedError::new(error);
            for (_, waiter) in waiters {
                let _ = waiter.send(Err(error.copy()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::distinct;

    #[test]
    fn repeated_keys_are_read_once_in_the_order_first_asked() {
        let mut keys = vec![7, 3, 7, 9, 3, 3];
        distinct(&mut keys);
        assert_eq!(keys, [7, 3, 9]);
        let mut one = vec![5];
        distinct(&mut one);
        assert_eq!(one, [5]);
    }
}
