use std::fmt;

/// A trimmed, lower-cased email address: 3–254 characters, exactly one `@` with text on
/// both sides, no whitespace. Lower-casing makes uniqueness case-insensitive.
///
/// ```
/// use multidb::domain::Email;
///
/// assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
/// assert!(Email::parse("ada@@example.com").is_err());
/// assert!(Email::parse("ada lovelace@example.com").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let length = email.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) {
            return Err(format!(
                "email must be {} to {} characters, got {length}",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            ));
        }
        if email.chars().any(char::is_whitespace) {
            return Err("email must not contain whitespace".into());
        }
        if email.chars().any(char::is_control) {
            return Err("email must not contain control characters".into());
        }
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(email))
            }
            _ => Err("email must contain exactly one @ with text on both sides".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A trimmed text of 1–200 characters without control characters (names, items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub const MAX_CHARS: usize = 200;

    /// `field` names the input in the error message.
    pub fn parse(field: &str, raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let length = text.chars().count();
        if length == 0 {
            return Err(format!("{field} must not be empty"));
        }
        if length > Self::MAX_CHARS {
            return Err(format!(
                "{field} must be at most {} characters, got {length}",
                Self::MAX_CHARS
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(format!("{field} must not contain control characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many of an item an order holds: 1–10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub const MIN: i32 = 1;
    pub const MAX: i32 = 10_000;

    pub fn parse(raw: i64) -> Result<Self, String> {
        match i32::try_from(raw) {
            Ok(quantity @ Self::MIN..=Self::MAX) => Ok(Self(quantity)),
            _ => Err(format!(
                "quantity must be between {} and {}, got {raw}",
                Self::MIN,
                Self::MAX
            )),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// An amount of money in cents: 0–1,000,000,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cents(i64);

impl Cents {
    pub const MIN: i64 = 0;
    pub const MAX: i64 = 1_000_000_000_000;

    pub fn parse(raw: i64) -> Result<Self, String> {
        if (Self::MIN..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(format!(
                "amount_cents must be between 0 and {}, got {raw}",
                Self::MAX
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert_eq!(Email::parse("a@b").unwrap().as_str(), "a@b");
        assert_eq!(Email::parse("Ünï@cödé.de").unwrap().as_str(), "ünï@cödé.de");
        for bad in [
            "",
            "ab",
            "@b",
            "a@",
            "ab",
            "a@b@c",
            "a b@c",
            "a@b\tc",
            "no-at-sign",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let local = "a".repeat(250);
        assert!(Email::parse(&format!("{local}@b.c")).is_ok()); // 254 characters
        assert!(Email::parse(&format!("{local}@b.cd")).is_err()); // 255
    }

    #[test]
    fn text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(Text::parse("name", "  Ada ").unwrap().as_str(), "Ada");
        assert!(Text::parse("name", "   ").is_err());
        assert!(Text::parse("name", &"é".repeat(200)).is_ok());
        assert!(Text::parse("name", &"é".repeat(201)).is_err());
        assert!(Text::parse("name", "a\u{7}b").is_err());
        assert!(Text::parse("name", "a\nb").is_err());
        assert!(Text::parse("name", "日本語 🎉").is_ok());
    }

    #[test]
    fn numbers_have_inclusive_bounds() {
        assert!(Quantity::parse(0).is_err());
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(10_000).unwrap().get(), 10_000);
        assert!(Quantity::parse(10_001).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
        assert!(Cents::parse(-1).is_err());
        assert_eq!(Cents::parse(0).unwrap().get(), 0);
        assert!(Cents::parse(Cents::MAX).is_ok());
        assert!(Cents::parse(Cents::MAX + 1).is_err());
    }
}
