//! The input rules of this module's types as OpenAPI schemas, built from the constants
//! their parsers check, so that the document (`GET /openapi.json`) states the rules the
//! service applies and no others. Lengths count characters (Unicode code points), as
//! the parsers do.

use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, Type};

use super::{Cents, Email, Limit, Quantity, Text};

/// What `str::trim` removes and `char::is_whitespace` finds (Unicode White_Space), as the
/// body of a character class in the syntax ECMA-262 and the regex crate share.
const WHITESPACE: &str = r"\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// What `char::is_control` finds (the Cc category).
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

fn integer(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A positive 64-bit id (see `ParseId`): the ids of users and orders.
pub fn id() -> Object {
    integer(KnownFormat::Int64).minimum(Some(1)).build()
}

/// `after_id`: where a page starts (exclusive), any positive 64-bit integer.
pub fn after_id() -> Object {
    integer(KnownFormat::Int64)
        .minimum(Some(1))
        .description(Some(
            "Start after this id (exclusive): the `next_after_id` of the previous page. \
             Absent: from the first.",
        ))
        .build()
}

/// `limit`: a page size.
pub fn limit() -> Object {
    integer(KnownFormat::Int32)
        .minimum(Some(1))
        .maximum(Some(Limit::MAX))
        .default(Some(Limit::default().get().into()))
        .description(Some("How many items at most."))
        .build()
}

pub fn quantity() -> Object {
    integer(KnownFormat::Int32)
        .minimum(Some(Quantity::MIN))
        .maximum(Some(Quantity::MAX))
        .build()
}

pub fn cents() -> Object {
    integer(KnownFormat::Int64)
        .minimum(Some(Cents::MIN))
        .maximum(Some(Cents::MAX))
        .description(Some("An amount of money in cents."))
        .build()
}

/// A creation time: RFC 3339 in UTC (`Z`).
pub fn timestamp() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// The part of an email address on either side of its one `@`.
fn email_part() -> String {
    format!("[^{WHITESPACE}{CONTROL}@]+")
}

/// An email address as given: trimmed, then lower-cased, then checked. Its length after
/// trimming (at most `Email::MAX_CHARS`) is said in words: no pattern both regular-
/// expression dialects accept can count it beside the structure.
pub fn email_input() -> Object {
    let part = email_part();
    string()
        .min_length(Some(Email::MIN_CHARS))
        .pattern(Some(format!(
            "^[{WHITESPACE}]*{part}@{part}[{WHITESPACE}]*$"
        )))
        .description(Some(format!(
            "Trimmed and lower-cased, then {} to {} characters: exactly one `@` with text on \
             both sides, no whitespace or control characters. Unique regardless of case.",
            Email::MIN_CHARS,
            Email::MAX_CHARS
        )))
        .build()
}

/// An email address as stored: trimmed and lower-case.
pub fn email() -> Object {
    let part = email_part();
    string()
        .min_length(Some(Email::MIN_CHARS))
        .max_length(Some(Email::MAX_CHARS))
        .pattern(Some(format!("^{part}@{part}$")))
        .description(Some("Lower-case; unique regardless of case."))
        .build()
}

/// A text as stored: no whitespace at either end, no control characters, 1 to
/// `Text::MAX_CHARS` characters.
fn text_pattern() -> String {
    format!(
        "[^{WHITESPACE}{CONTROL}](?:[^{CONTROL}]{{0,{}}}[^{WHITESPACE}{CONTROL}])?",
        Text::MAX_CHARS - 2
    )
}

/// A name or item as given: its length counts once trimmed, so the pattern, not
/// `maxLength`, bounds it.
pub fn text_input() -> Object {
    string()
        .min_length(Some(1))
        .pattern(Some(format!(
            "^[{WHITESPACE}]*{}[{WHITESPACE}]*$",
            text_pattern()
        )))
        .description(Some(format!(
            "Trimmed, then 1 to {} characters without control characters.",
            Text::MAX_CHARS
        )))
        .build()
}

/// A name or item as stored: trimmed.
pub fn text() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(Text::MAX_CHARS))
        .pattern(Some(format!("^{}$", text_pattern())))
        .build()
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    fn pattern(schema: Object) -> Regex {
        Regex::new(schema.pattern.as_deref().expect("a pattern")).expect("a valid pattern")
    }

    fn length_fits(schema: &Object, value: &str) -> bool {
        let length = value.chars().count();
        schema.min_length.is_none_or(|min| length >= min)
            && schema.max_length.is_none_or(|max| length <= max)
    }

    /// Inputs at every edge of the text and email rules: trimming (White_Space, including
    /// U+0085, but not U+FEFF), control characters inside and at the ends, lengths
    /// counted in characters, several `@`.
    fn samples() -> Vec<String> {
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "ab",
            "a b",
            "a\tb",
            "\ta\n",
            "a\u{7}",
            "\u{85}a\u{85}",
            "a\u{85}b",
            "\u{feff}a\u{feff}",
            "\u{a0}a",
            "a\u{3000}",
            "日本語 🎉",
            "a@b",
            " A@B ",
            "@b",
            "a@",
            "a@b@c",
            "a b@c",
            "a@b\tc",
            "a\u{0}@b",
            "\u{2028}x@y\u{2029}",
            "Ünï@cödé.de",
            "no-at-sign",
            "a@\u{feff}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [198, 199, 200, 201] {
            samples.push("é".repeat(n));
            samples.push(format!("  {}\t", "x".repeat(n)));
            samples.push(format!("a{}b", " ".repeat(n)));
        }
        for n in [249, 250, 251] {
            samples.push(format!("{}@b.c", "a".repeat(n)));
            samples.push(format!(" {}@b.c ", "a".repeat(n)));
        }
        samples
    }

    #[test]
    fn text_schemas_accept_what_text_parse_accepts() {
        let (input, stored) = (pattern(text_input()), pattern(text()));
        for sample in samples() {
            let parsed = Text::parse("name", &sample);
            let described = input.is_match(&sample) && length_fits(&text_input(), &sample);
            assert_eq!(parsed.is_ok(), described, "{sample:?}: {parsed:?}");
            if let Ok(parsed) = parsed {
                assert!(stored.is_match(parsed.as_str()), "{parsed:?}");
                assert!(length_fits(&text(), parsed.as_str()), "{parsed:?}");
            }
        }
    }

    /// The input schema cannot bound the trimmed length (see `email_input`): besides that
    /// rule, it accepts exactly what `Email::parse` accepts.
    #[test]
    fn email_schemas_accept_what_email_parse_accepts() {
        let (input, stored) = (pattern(email_input()), pattern(email()));
        for sample in samples() {
            let parsed = Email::parse(&sample);
            let too_long = sample.trim().to_lowercase().chars().count() > Email::MAX_CHARS;
            let described = input.is_match(&sample) && length_fits(&email_input(), &sample);
            assert_eq!(
                parsed.is_ok(),
                described && !too_long,
                "{sample:?}: {parsed:?}"
            );
            if let Ok(parsed) = parsed {
                assert!(stored.is_match(parsed.as_str()), "{parsed:?}");
                assert!(length_fits(&email(), parsed.as_str()), "{parsed:?}");
            }
        }
    }

    #[test]
    fn number_schemas_state_the_parsers_bounds() {
        // As the document shows them: `Number` compares signed and unsigned as unequal.
        let bounds = |schema: Object, min: i64, max: i64| {
            let shown = |number| serde_json::to_value(number).unwrap();
            (shown(schema.minimum), shown(schema.maximum))
                == (serde_json::json!(min), serde_json::json!(max))
        };
        let (min, max) = (i64::from(Quantity::MIN), i64::from(Quantity::MAX));
        assert!(bounds(quantity(), min, max));
        assert!(Quantity::parse(min).is_ok() && Quantity::parse(max).is_ok());
        assert!(Quantity::parse(min - 1).is_err() && Quantity::parse(max + 1).is_err());
        assert!(bounds(cents(), Cents::MIN, Cents::MAX));
        assert!(Cents::parse(Cents::MIN).is_ok() && Cents::parse(Cents::MAX).is_ok());
        assert!(Cents::parse(Cents::MIN - 1).is_err() && Cents::parse(Cents::MAX + 1).is_err());
        assert!(bounds(limit(), 1, Limit::MAX.into()));
        assert_eq!(limit().default, Some(Limit::default().get().into()));
    }
}
