//! Named fault points for tests. With the `fault-injection` feature off (every normal
//! build) [`Faults`] is empty and [`Faults::hit`] compiles to nothing.

use super::DbError;

/// What an armed fault point does when reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Return an error, as a failing statement would.
    Error,
    /// Panic, as a bug would.
    Panic,
    /// Wait this many milliseconds, then go on: a slow step, for in-flight tests.
    Sleep(u64),
    /// Announce the point on stderr (`multidb fault pause: <point>`) and stop there,
    /// for a test to kill the process at exactly that step.
    Pause,
}

/// The armed fault points of one application, shared by its pools. Tests arm and
/// disarm them while the application runs.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: std::sync::Arc<std::sync::Mutex<Vec<(String, FaultAction)>>>,
}

impl Faults {
    /// No fault armed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Arms `point` (`{database}.{step}`, e.g. `db2.commit`), replacing its action.
    #[cfg(feature = "fault-injection")]
    pub fn arm(&self, point: &str, action: FaultAction) {
        let mut armed = super::sync::lock(&self.armed);
        armed.retain(|(armed_point, _)| armed_point != point);
        armed.push((point.to_owned(), action));
    }

    /// Disarms every point.
    #[cfg(feature = "fault-injection")]
    pub fn disarm_all(&self) {
        super::sync::lock(&self.armed).clear();
    }

    /// Parses `point=error,point=panic,point=pause,point=sleep:500` (the `MULTIDB_FAULTS` variable).
    #[cfg(feature = "fault-injection")]
    pub fn parse(spec: &str) -> Result<Self, String> {
        let faults = Self::none();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (point, action) = rule
                .split_once('=')
                .ok_or_else(|| format!("`{rule}` is not point=action"))?;
            let action = match action.trim() {
                "error" => FaultAction::Error,
                "panic" => FaultAction::Panic,
                "pause" => FaultAction::Pause,
                other => match other.strip_prefix("sleep:").map(str::parse) {
                    Some(Ok(millis)) => FaultAction::Sleep(millis),
                    _ => return Err(format!("unknown fault action `{other}`")),
                },
            };
            faults.arm(point.trim(), action);
        }
        Ok(faults)
    }

    /// Called by the database layer at each named step; the point's name is
    /// `{database}.{step}`.
    #[inline]
    pub fn hit(&self, database: &str, step: &str) -> Result<(), DbError> {
        #[cfg(feature = "fault-injection")]
        {
            let action = super::sync::lock(&self.armed)
                .iter()
                .find(|(point, _)| point.split_once('.') == Some((database, step)))
                .map(|(_, action)| *action);
            if let Some(action) = action {
                log::warn!("fault injected at {database}.{step}: {action:?}");
                match action {
                    FaultAction::Error => {
                        return Err(DbError::Injected(format!("{database}.{step}")))
                    }
                    FaultAction::Panic => panic!("fault injected at {database}.{step}"),
                    FaultAction::Sleep(millis) => {
                        std::thread::sleep(std::time::Duration::from_millis(millis))
                    }
                    FaultAction::Pause => {
                        eprintln!("multidb fault pause: {database}.{step}");
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(3600));
                        }
                    }
                }
            }
        }
        let _ = (database, step);
        Ok(())
    }
}
