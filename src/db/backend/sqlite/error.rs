//! SQLite's errors that Diesel reports without a kind of their own, told by their
//! message: SQLite's messages are fixed English text per result code (`sqlite3_errstr`),
//! never translated.

use crate::db::error::Class;

/// SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock this one needs.
const TRANSIENT: [&str; 3] = [
    "database is locked",
    "database table is locked",
    "database schema is locked",
];

pub(crate) fn class_of(message: &str) -> Option<Class> {
    TRANSIENT
        .iter()
        .any(|text| message.contains(text))
        .then_some(Class::Transient)
}

#[cfg(test)]
mod tests {
    #[test]
    fn locks_are_transient() {
        assert_eq!(
            super::class_of("database is locked"),
            Some(super::Class::Transient)
        );
        assert_eq!(super::class_of("no such table: users"), None);
    }
}
