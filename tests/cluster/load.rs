//! A steady client load: threads sending requests in a loop until stopped, and what
//! each request got.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::harness::{Answer, Cluster};

/// One request's outcome: its answer, or the transport error in its way.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: Instant,
    pub what: String,
    pub answer: Result<Answer, String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(&self.answer, Ok(answer) if (200..300).contains(&answer.status))
    }

    /// 503 `database_unavailable` with `Retry-After`: the one acceptable failure while a
    /// database is away.
    pub fn is_clean_unavailable(&self) -> bool {
        matches!(&self.answer, Ok(answer)
            if answer.status == 503
                && answer.code() == Some("database_unavailable")
                && answer.retry_after.is_some())
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    threads: Vec<JoinHandle<()>>,
}

/// One step of a client: the request it sends, given its own counter.
pub type Step = fn(&Cluster, usize) -> (String, Result<Answer, String>);

impl Load {
    /// `clients` threads, each sending `step` requests through haproxy in a loop.
    pub fn start(cluster: &Arc<Cluster>, clients: usize, step: Step) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|client| {
                let (cluster, stop, outcomes) = (cluster.clone(), stop.clone(), outcomes.clone());
                std::thread::spawn(move || {
                    let mut n = client * 1_000_000;
                    // Bounded in count as well as by the stop flag.
                    while !stop.load(Ordering::Relaxed) && n < client * 1_000_000 + 100_000 {
                        let (what, answer) = step(&cluster, n);
                        outcomes.lock().unwrap().push(Outcome {
                            at: Instant::now(),
                            what,
                            answer,
                        });
                        n += 1;
                    }
                })
            })
            .collect();
        Self {
            stop,
            outcomes,
            threads,
        }
    }

    /// Stops the clients and returns every outcome.
    pub fn stop(mut self) -> Vec<Outcome> {
        self.halt();
        let outcomes = self.outcomes.lock().unwrap().clone();
        outcomes
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A test that fails while its load runs stops the clients too: they hold the cluster,
/// which is torn down only when the last of them lets go.
impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Describes outcomes that are not successes, for a failure message.
pub fn describe(outcomes: &[&Outcome]) -> String {
    outcomes
        .iter()
        .take(10)
        .map(|outcome| match &outcome.answer {
            Ok(answer) => format!("{}: {} {}", outcome.what, answer.status, answer.text),
            Err(error) => format!("{}: {error}", outcome.what),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
