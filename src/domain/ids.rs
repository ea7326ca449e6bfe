use std::fmt;

/// A resource id: a positive 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(i64);

impl Id {
    pub fn new(raw: i64) -> Result<Self, String> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(format!("must be a positive integer, got {raw}"))
        }
    }

    /// Parses a path or query segment; anything but 1..=i64::MAX is refused.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value: i64 = raw
            .parse()
            .map_err(|_| format!("must be a positive 64-bit integer, got `{raw}`"))?;
        Self::new(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A page size: 1–500, 50 when not given.
///
/// ```
/// use multidb::domain::Limit;
///
/// assert_eq!(Limit::parse(None).unwrap().get(), 50);
/// assert_eq!(Limit::parse(Some("500")).unwrap().get(), 500);
/// assert!(Limit::parse(Some("0")).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u16);

impl Limit {
    pub const MAX: u16 = 500;

    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        match raw.parse::<u16>() {
            Ok(limit @ 1..=Self::MAX) => Ok(Self(limit)),
            _ => Err(format!(
                "limit must be an integer from 1 to {}, got `{raw}`",
                Self::MAX
            )),
        }
    }

    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(50)
    }
}

/// Where a page starts: after this id (exclusive), or at the beginning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AfterId(i64);

impl AfterId {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw {
            None => Ok(Self(0)),
            Some(raw) => Id::parse(raw)
                .map(|id| Self(id.get()))
                .map_err(|e| format!("after_id {e}")),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_i64() {
        assert_eq!(Id::parse("1").unwrap().get(), 1);
        assert_eq!(Id::parse("9223372036854775807").unwrap().get(), i64::MAX);
        for bad in ["0", "-1", "9223372036854775808", "abc", "", "1.5", " 1"] {
            assert!(Id::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn limits_default_to_50_and_stay_within_1_to_500() {
        assert_eq!(Limit::parse(None).unwrap().get(), 50);
        assert_eq!(Limit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("500")).unwrap().get(), 500);
        for bad in ["0", "501", "-1", "x", ""] {
            assert!(Limit::parse(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }
}
