//! On SQLite, this process's connections that hold the database's one write lock (or
//! are taking it), so that the lease is renewed without waiting for a lock the same
//! process holds.
//!
//! The lease's renewal is a write. Sent while one of this process's transactions holds
//! the lock, it would wait in SQLite's busy handler for the process itself and, after
//! the busy timeout, fail; the next try came a third of a lease later. Instead the
//! renewal waits here until the process's writers are done, and keeps new ones from
//! beginning until it has gone through, so it runs the moment the lock is free. While
//! it waits the lease may run out, but nobody can act on that meanwhile: every claim on
//! another instance's work writes to this database, and this process holds its lock.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::sync::{lock, wait, wait_timeout};

#[derive(Debug, Default)]
pub(crate) struct OwnWriters {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Write transactions of this process, from just before `BEGIN IMMEDIATE` to their end.
    holding: usize,
    /// A renewal waits for `holding` to reach 0, or runs: no transaction may begin.
    renewal: bool,
}

/// One write transaction of this process, counted until dropped (after its end).
#[derive(Debug)]
pub(crate) struct OwnWrite(Arc<OwnWriters>);

impl OwnWriters {
    /// Counts a write transaction about to begin; waits while a renewal is pending.
    pub(crate) fn enter(self: &Arc<Self>) -> OwnWrite {
        let mut state = self.lock();
        while state.renewal {
            state = wait(&self.changed, state);
        }
        state.holding += 1;
        OwnWrite(self.clone())
    }

    /// Runs `renew` once none of this process's write transactions is open, keeping new
    /// ones from beginning until it returns; `None` if they were not all done by
    /// `deadline` (then nothing ran).
    pub(crate) fn exclusively<T>(&self, deadline: Instant, renew: impl FnOnce() -> T) -> Option<T> {
        let mut state = self.lock();
        state.renewal = true;
        while state.holding > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.renewal = false;
                self.changed.notify_all();
                return None;
            }
            state = wait_timeout(&self.changed, state, left);
        }
        drop(state);
        let renewed = renew();
        self.lock().renewal = false;
        self.changed.notify_all();
        Some(renewed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for OwnWrite {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.holding -= 1;
        if state.holding == 0 {
            self.0.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::OwnWriters;

    #[test]
    fn a_renewal_runs_once_the_open_writes_end_and_before_new_ones() {
        let writers = Arc::new(OwnWriters::default());
        let open = writers.enter();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let renewal = {
            let (writers, order) = (writers.clone(), order.clone());
            std::thread::spawn(move || {
                let far = Instant::now() + Duration::from_secs(60);
                writers.exclusively(far, || order.lock().unwrap().push("renewal"))
            })
        };
        // The renewal is pending: a writer arriving now waits for it.
        while !writers.lock().renewal {
            std::thread::yield_now();
        }
        let late = {
            let (writers, order) = (writers.clone(), order.clone());
            std::thread::spawn(move || {
                let _write = writers.enter();
                order.lock().unwrap().push("late write");
            })
        };
        order.lock().unwrap().push("open write ends");
        drop(open);
        assert_eq!(renewal.join().unwrap(), Some(()));
        late.join().unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            ["open write ends", "renewal", "late write"]
        );
    }

    #[test]
    fn a_renewal_gives_up_at_its_deadline_and_lets_writers_in() {
        let writers = Arc::new(OwnWriters::default());
        let open = writers.enter();
        assert_eq!(writers.exclusively(Instant::now(), || ()), None);
        let another = writers.enter();
        drop((open, another));
        assert_eq!(writers.exclusively(Instant::now(), || 7), Some(7));
    }
}
