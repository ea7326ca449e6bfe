//! Global transaction ids, built and read here only: `multidb:<lease>:<n>:<uuid>`. The
//! lease names the instance that owns the write while it lives (see `lease.rs`); `n`
//! and the UUID make the id unique across instances and restarts.

use std::fmt;

use crate::db::lease::LeaseId;

const PREFIX: &str = "multidb";

/// The longest gid: an XA transaction's gtrid holds 64 bytes.
const MAX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Gid(String);

impl Gid {
    /// A new gid, at most [`MAX_LEN`] bytes long: the random part is cut short for huge
    /// leases and counters (15 hex digits at the very least).
    pub(crate) fn new(lease: LeaseId, n: u64) -> Self {
        let mut gid = format!("{PREFIX}:{lease}:{n}:");
        let room = MAX_LEN.saturating_sub(gid.len());
        let unique = uuid::Uuid::new_v4().simple().to_string();
        gid.push_str(&unique[..room.min(unique.len())]);
        Self(gid)
    }

    /// A gid read back from a database; `None` if it is not one of ours.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let ours = parts.next() == Some(PREFIX)
            && parts.next()?.parse::<LeaseId>().is_ok()
            && parts.next()?.parse::<u64>().is_ok()
            && parts.next().is_some_and(|unique| !unique.is_empty())
            && parts.next().is_none();
        ours.then(|| Self(text.to_owned()))
    }

    /// The lease the gid was made under.
    pub(crate) fn owner(&self) -> LeaseId {
        self.0
            .split(':')
            .nth(1)
            .and_then(|lease| lease.parse().ok())
            .unwrap_or_default()
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// What every gid of ours starts with.
    pub(crate) fn any_prefix() -> String {
        format!("{PREFIX}:")
    }

    /// What every gid made under `lease` starts with.
    pub(crate) fn prefix_under(lease: LeaseId) -> String {
        format!("{PREFIX}:{lease}:")
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Gid;

    #[test]
    fn a_gid_reads_back_as_made_and_foreign_ids_are_refused() {
        let gid = Gid::new(42, 7);
        let read = Gid::parse(gid.as_str()).unwrap();
        assert_eq!((read.owner(), read), (42, gid.clone()));
        assert!(gid.as_str().starts_with(&Gid::prefix_under(42)));
        assert!(gid.as_str().starts_with(&Gid::any_prefix()));
        for foreign in [
            "",
            "filler_1",
            "multidb",
            "multidb:x:1:abc",
            "multidb:1:y:abc",
            "multidb:1:2:",
            "multidb:1:2:abc:more",
            "other:1:2:abc",
        ] {
            assert_eq!(Gid::parse(foreign), None, "{foreign}");
        }
    }

    /// Even the longest lease and counter leave a gid an XA gtrid can hold, with 15 hex
    /// digits of its random part.
    #[test]
    fn a_gid_fits_an_xa_gtrid() {
        assert_eq!(Gid::new(1, 2).as_str().len(), 8 + 4 + 32);
        let longest = Gid::new(i64::MAX, u64::MAX);
        assert_eq!(longest.as_str().len(), 64);
        assert_eq!(longest.as_str().rsplit(':').next().map(str::len), Some(15));
        assert!(Gid::parse(longest.as_str()).is_some());
    }
}
