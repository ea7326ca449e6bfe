//! The layer's one retry policy: work whose connection turned out dead starts over.

use super::DbError;

/// How often work that found its connection dead (the server restarted, or terminated
/// the connection) starts over on another. A dead connection is discarded by the pool,
/// so each try takes another one or opens a new one: after as many tries as the pools
/// hold connections, plus one, every connection that was idle when the trouble began
/// has been tried, and a further failure is the database's, not a stale connection's.
/// This is what lets checkouts skip r2d2's validation query: the first statement of a
/// session validates the connection instead, at no extra round trip.
pub(crate) struct OnLostConnection {
    tries_left: u32,
}

impl OnLostConnection {
    /// For work on pools that hold at most `connections` connections.
    pub(crate) fn for_pools_of(connections: u32) -> Self {
        Self {
            tries_left: connections + 1,
        }
    }

    /// Whether to start over after `error` (logged as it is), counting the try.
    pub(crate) fn again(&mut self, error: &DbError) -> bool {
        if !matches!(error, DbError::ConnectionLost { .. }) || self.tries_left == 0 {
            return false;
        }
        log::debug!(
            "starting over on another connection: {}",
            super::chain(error)
        );
        self.tries_left -= 1;
        true
    }
}
