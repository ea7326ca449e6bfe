//! MySQL's and MariaDB's errors that Diesel reports without a kind of its own, told by
//! their message. Diesel keeps only the message of such an error, not its number; the
//! message is the server's English text, because every connection sets
//! `lc_messages = 'en_US'` for its session (see `connect`), whatever the server's
//! default language.

use crate::db::error::Class;

/// Worth retrying later: a lock wait or a statement that ran past its timeout (1205,
/// 1969 on MariaDB, 3024 on MySQL), a server that has no connection to give (1040), or
/// an XA transaction begun under an XID that a session the server has not yet seen end
/// still holds (1440 XAER_DUPID, after a retry on a lost connection).
const TRANSIENT: [&str; 5] = [
    "Lock wait timeout exceeded",
    "max_statement_time exceeded",
    "maximum statement execution time exceeded",
    "Too many connections",
    "XAER_DUPID",
];

/// The connection is gone (client errors 2006 — "MySQL server has gone away" from
/// MySQL's client library, "Server has gone away" from MariaDB's —, 2013; server 1927
/// after `KILL`, 1053 during shutdown).
const CONNECTION_LOST: [&str; 6] = [
    "server has gone away",
    "Server has gone away",
    "Lost connection to",
    "Connection was killed",
    "Server shutdown in progress",
    "Can't connect to",
];

pub(crate) fn class_of(message: &str) -> Option<Class> {
    let has = |texts: &[&str]| texts.iter().any(|text| message.contains(text));
    if has(&CONNECTION_LOST) {
        Some(Class::ConnectionLost)
    } else if has(&TRANSIENT) {
        Some(Class::Transient)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{class_of, Class};

    #[test]
    fn timeouts_are_transient_and_lost_connections_lost() {
        assert_eq!(
            class_of("Lock wait timeout exceeded; try restarting transaction"),
            Some(Class::Transient)
        );
        assert_eq!(
            class_of("Query execution was interrupted (max_statement_time exceeded)"),
            Some(Class::Transient)
        );
        assert_eq!(
            class_of("MySQL server has gone away"),
            Some(Class::ConnectionLost)
        );
        assert_eq!(
            class_of("Server has gone away"),
            Some(Class::ConnectionLost)
        );
        assert_eq!(class_of("Table 'd.users' doesn't exist"), None);
    }
}
