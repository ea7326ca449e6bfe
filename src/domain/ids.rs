use std::fmt;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;

use super::Excerpt;

/// An id read from a request: a path segment, a query parameter or a JSON number.
pub trait ParseId: Sized {
    /// Refuses anything but 1..=i64::MAX.
    fn new(raw: i64) -> Result<Self, String>;

    /// Parses a path segment or a query parameter; anything but 1..=i64::MAX in
    /// canonical decimal is refused.
    fn parse(raw: &str) -> Result<Self, String> {
        let value = integer(raw).ok_or_else(|| {
            format!(
                "must be a positive 64-bit integer in decimal digits, without sign, \
                 leading zeros, fraction or exponent; got {}",
                Excerpt(raw)
            )
        })?;
        Self::new(value)
    }
}

/// A 64-bit integer in a path segment or a query parameter, where one resource has one
/// URL: canonical decimal only (`16`, `0`, `-3`), never `16.0`, `1.6e1`, `016` or `+16`.
/// Anything else, or beyond 64 bits, is `None`. (JSON bodies count `16.0` as the integer
/// it is: see `http::extract::integer`.)
pub fn integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && raw != "-0";
    canonical.then(|| raw.parse().ok()).flatten()
}

/// `value` as an i64 if it is integral and within 64 bits.
pub fn integral(value: f64) -> Option<i64> {
    // 2^63 is exact as an f64; every integral f64 in [-2^63, 2^63) converts exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if value.fract() != 0.0 || !(-LIMIT..LIMIT).contains(&value) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // integral and in range: exact
    Some(value as i64)
}

fn positive(raw: i64) -> Result<i64, String> {
    if raw > 0 {
        Ok(raw)
    } else {
        Err(format!("must be a positive integer, got {raw}"))
    }
}

/// Declares the id type of one kind of row: a positive 64-bit integer, stored as
/// `BIGINT` and shown as a plain number, that cannot be passed where another kind's id
/// is meant.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = BigInt)]
        pub struct $name(i64);

        impl $name {
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl ParseId for $name {
            fn new(raw: i64) -> Result<Self, String> {
                positive(raw).map(Self)
            }
        }

        /// Named in the OpenAPI document, so every id of this kind refers to one rule.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                super::schema::id().into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<DB: Backend> ToSql<BigInt, DB> for $name
        where
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<BigInt, DB> for $name
        where
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                i64::from_sql(bytes).map(Self)
            }
        }
    };
}

typed_id! {
    /// The id of a user (db1's `users.id`, and db2's `orders.user_id`).
    ///
    /// ```compile_fail
    /// # use multidb::db::Session;
    /// # use multidb::{orders::Order, db1::Db1, users};
    /// fn delete_by_an_order_id(session: &mut Session<Db1>, order: &Order) {
    ///     let _ = users::delete(session, order.id); // an OrderId, not a UserId
    /// }
    /// ```
    ///
    /// ```
    /// # use multidb::db::Session;
    /// # use multidb::{orders::Order, db1::Db1, users};
    /// fn delete_the_orders_user(session: &mut Session<Db1>, order: &Order) {
    ///     let _ = users::delete(session, order.user_id);
    /// }
    /// ```
    UserId
}

typed_id! {
    /// The id of an order (db2's `orders.id`).
    OrderId
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Limit(u16);

impl Limit {
    pub const MAX: u16 = 500;

    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        match integer(raw).and_then(|limit| u16::try_from(limit).ok()) {
            Some(limit @ 1..=Self::MAX) => Ok(Self(limit)),
            _ => Err(format!(
                "limit must be an integer from 1 to {}, got {}",
                Self::MAX,
                Excerpt(raw)
            )),
        }
    }

    pub fn get(self) -> i64 {
        i64::from(self.0)
    }

    /// As a count of items.
    pub fn count(self) -> usize {
        usize::from(self.0)
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
            Some(raw) => integer(raw)
                .ok_or_else(|| {
                    format!(
                        "must be a positive 64-bit integer in decimal digits, got {}",
                        Excerpt(raw)
                    )
                })
                .and_then(positive)
                .map(Self)
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
        assert_eq!(UserId::parse("1").unwrap().get(), 1);
        assert_eq!(
            OrderId::parse("9223372036854775807").unwrap().get(),
            i64::MAX
        );
        for bad in ["0", "-1", "9223372036854775808", "abc", "", "1.5", " 1"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} accepted");
            assert!(AfterId::parse(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn url_integers_are_canonical_decimal() {
        assert_eq!(integer("16"), Some(16));
        assert_eq!(integer("0"), Some(0));
        assert_eq!(integer("-3"), Some(-3));
        assert_eq!(integer("9223372036854775807"), Some(i64::MAX));
        assert_eq!(integer("-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "16.0",
            "1e3",
            "016",
            "+16",
            "-0",
            "-",
            "",
            " 16",
            "16 ",
            "0x10",
            "9223372036854775808",
        ] {
            assert_eq!(integer(bad), None, "{bad:?} accepted");
        }
        for bad in ["0", "-1", "16.0"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} accepted");
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
