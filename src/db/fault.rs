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
}

/// The set of armed fault points, shared by the pools of one application.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    #[cfg(feature = "fault-injection")]
    armed: std::sync::Arc<Vec<(String, FaultAction)>>,
}

impl Faults {
    /// No fault armed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Arms the given points, e.g. `("db2.commit", FaultAction::Panic)`.
    #[cfg(feature = "fault-injection")]
    pub fn armed(points: Vec<(String, FaultAction)>) -> Self {
        Self {
            armed: std::sync::Arc::new(points),
        }
    }

    /// Parses `point=error,point=panic` (the `MULTIDB_FAULTS` variable).
    #[cfg(feature = "fault-injection")]
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut points = Vec::new();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (point, action) = rule
                .split_once('=')
                .ok_or_else(|| format!("`{rule}` is not point=action"))?;
            let action = match action.trim() {
                "error" => FaultAction::Error,
                "panic" => FaultAction::Panic,
                other => return Err(format!("unknown fault action `{other}`")),
            };
            points.push((point.trim().to_owned(), action));
        }
        Ok(Self::armed(points))
    }

    /// Called by the database layer at each named step; the point's name is
    /// `{database}.{step}`, e.g. `db2.commit`.
    #[inline]
    pub fn hit(&self, database: &str, step: &str) -> Result<(), DbError> {
        #[cfg(feature = "fault-injection")]
        for (armed, action) in self.armed.iter() {
            if armed.split_once('.') == Some((database, step)) {
                log::warn!("fault injected at {armed}: {action:?}");
                match action {
                    FaultAction::Error => return Err(DbError::Injected(armed.clone())),
                    FaultAction::Panic => panic!("fault injected at {armed}"),
                }
            }
        }
        let _ = (database, step);
        Ok(())
    }
}
