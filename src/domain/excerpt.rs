use std::fmt;

/// A client's text quoted back in an error message or a log line, between backticks:
/// whole when short, otherwise its first characters and its length, so that mentioning
/// a 60 KB path segment costs a few dozen bytes.
///
/// ```
/// use multidb::domain::Excerpt;
///
/// assert_eq!(Excerpt("abc").to_string(), "`abc`");
/// let long = "x".repeat(60_000);
/// assert_eq!(Excerpt(&long).to_string(), format!("`{}…` (60000 bytes)", "x".repeat(32)));
/// ```
pub struct Excerpt<'a>(pub &'a str);

impl Excerpt<'_> {
    /// Texts up to this long are quoted whole.
    pub const WHOLE_BYTES: usize = 64;
    /// How much of a longer text is quoted.
    pub const PREFIX_BYTES: usize = 32;
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.len() <= Self::WHOLE_BYTES {
            return write!(f, "`{text}`");
        }
        write!(
            f,
            "`{}…` ({} bytes)",
            prefix(text, Self::PREFIX_BYTES),
            text.len()
        )
    }
}

/// At most `bytes` bytes of `text`, cut at a character boundary.
pub fn prefix(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary() {
        let text = format!("{}é{}", "a".repeat(31), "b".repeat(100));
        // `é` takes bytes 31 and 32: the cut falls inside it and moves before it.
        assert_eq!(prefix(&text, 32), "a".repeat(31));
        assert_eq!(
            Excerpt(&text).to_string(),
            format!("`{}…` (133 bytes)", "a".repeat(31))
        );
        let exactly = "y".repeat(Excerpt::WHOLE_BYTES);
        assert_eq!(Excerpt(&exactly).to_string(), format!("`{exactly}`"));
    }
}
