//! All settings, read once at start-up from the environment (and `.env`). Defaults live
//! here and nowhere else; a bad value is an error that names its variable.

use std::time::Duration;

#[cfg(feature = "fault-injection")]
use crate::db::fault::Faults;
use crate::db::{ConnectionOptions, DatabaseUrl, PoolSettings};
use crate::http::AllowedOrigins;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `BIND_ADDRESS`; port 0 picks a free port (tests).
    pub bind_address: String,
    pub db1: DatabaseSettings,
    pub db2: DatabaseSettings,
    /// `RUN_MIGRATIONS`: apply pending migrations at start-up.
    pub run_migrations: bool,
    /// `RECOVERY_INTERVAL_MS`: how often cross-database writes left in doubt are resolved.
    pub recovery_interval: Duration,
    /// `INSTANCE_LEASE_MS`: how long this instance's lease lasts without renewal; its
    /// writes left in doubt are resolved by other instances only after that.
    pub instance_lease: Duration,
    /// `REQUEST_TIMEOUT_MS`: every request is answered within this, if need be with 503.
    pub request_timeout: Duration,
    /// `AUTH`: whether every route but the public ones needs an API key.
    pub auth: Auth,
    /// `AUTH_OFFLINE_GRACE_SECONDS`: while db1 (the key store) cannot be asked, how long
    /// after its last successful lookup a key keeps its last known state; 0 turns it off.
    pub auth_offline_grace: Duration,
    /// `IDEMPOTENCY_TTL_HOURS`: how long the answer to a request sent with an
    /// `Idempotency-Key` is replayed.
    pub idempotency_ttl: Duration,
    /// `CORS_ALLOWED_ORIGINS`: the origins whose browser applications may call the API.
    pub cors_allowed_origins: AllowedOrigins,
    /// `HTTP_WORKERS`: actix workers; `None` is one per core.
    pub workers: Option<usize>,
    /// Armed fault points (`MULTIDB_FAULTS`). Test builds only: release builds have no
    /// fault points, nor a field to arm them.
    #[cfg(feature = "fault-injection")]
    pub faults: Faults,
    /// How far this process's own clock is set off (`MULTIDB_TEST_CLOCK_SKEW_MS`): for
    /// tests of instances whose clocks disagree. Test builds only.
    #[cfg(feature = "fault-injection")]
    pub clock_skew_ms: i64,
}

/// `AUTH`: `required` or `off`. Unset, it is `off` only when the service listens on a
/// loopback address, so that a service other machines can reach is never open by
/// accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Required,
    Off,
}

impl Auth {
    fn from_setting(raw: Option<&str>, bind_address: &str) -> Result<Self, String> {
        match raw.map(|raw| raw.trim().to_ascii_lowercase()).as_deref() {
            None => Ok(if is_loopback(bind_address) {
                Self::Off
            } else {
                Self::Required
            }),
            Some("required") => Ok(Self::Required),
            Some("off") => Ok(Self::Off),
            Some(other) => Err(format!("`{other}` is neither `required` nor `off`")),
        }
    }
}

/// Whether `BIND_ADDRESS` (`host:port`) is on 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback(bind_address: &str) -> bool {
    let host = match bind_address.rsplit_once(':') {
        Some((host, _port)) => host,
        None => bind_address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub pool: PoolSettings,
}

/// A setting that could not be used, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, which returns a variable's value if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let bind_address = env.string("BIND_ADDRESS", "127.0.0.1:8080");
        Ok(Self {
            auth: Auth::from_setting(env.get("AUTH").as_deref(), &bind_address)
                .map_err(|problem| invalid("AUTH", problem))?,
            auth_offline_grace: Duration::from_secs(env.number(
                "AUTH_OFFLINE_GRACE_SECONDS",
                300,
                0,
                86_400,
            )?),
            bind_address,
            cors_allowed_origins: AllowedOrigins::parse(env.get("CORS_ALLOWED_ORIGINS").as_deref())
                .map_err(|problem| invalid("CORS_ALLOWED_ORIGINS", problem))?,
            db1: env.database(1, "data/db1.sqlite")?,
            db2: env.database(2, "data/db2.sqlite")?,
            run_migrations: env.flag("RUN_MIGRATIONS", true)?,
            workers: env.optional_number("HTTP_WORKERS", 1, 1024)?,
            recovery_interval: env.millis_between(
                "RECOVERY_INTERVAL_MS",
                10_000,
                100,
                3_600_000,
            )?,
            instance_lease: env.millis_between(
                "INSTANCE_LEASE_MS",
                10_000,
                300,
                u64::try_from(crate::db::MAX_LEASE.as_millis()).unwrap_or(u64::MAX),
            )?,
            request_timeout: env.millis("REQUEST_TIMEOUT_MS", 10_000)?,
            idempotency_ttl: env.hours("IDEMPOTENCY_TTL_HOURS", 24.0)?,
            #[cfg(feature = "fault-injection")]
            faults: env.faults()?,
            #[cfg(feature = "fault-injection")]
            clock_skew_ms: env.clock_skew_ms()?,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    fn optional_number<T: TryFrom<u64>>(
        &self,
        name: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|raw| {
                raw.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|value| (min..=max).contains(value))
                    .and_then(|value| T::try_from(value).ok())
                    .ok_or_else(|| {
                        invalid(
                            name,
                            format!("`{raw}` is not a whole number from {min} to {max}"),
                        )
                    })
            })
            .transpose()
    }

    fn number<T: TryFrom<u64>>(
        &self,
        name: &str,
        default: T,
        min: u64,
        max: u64,
    ) -> Result<T, ConfigError> {
        Ok(self.optional_number(name, min, max)?.unwrap_or(default))
    }

    fn millis(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        self.millis_between(name, default, 1, 3_600_000)
    }

    fn millis_between(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, min, max)
            .map(Duration::from_millis)
    }

    /// A positive number of hours, fractions allowed (`0.5`), up to a year; kept to the
    /// millisecond.
    fn hours(&self, name: &str, default: f64) -> Result<Duration, ConfigError> {
        const MAX_HOURS: f64 = 24.0 * 366.0;
        let Some(raw) = self.get(name) else {
            return Ok(Duration::from_secs_f64(default * 3600.0));
        };
        let millis = raw
            .trim()
            .parse::<f64>()
            .ok()
            .map(|hours| (hours * 3_600_000.0).round())
            .filter(|millis| (1.0..=MAX_HOURS * 3_600_000.0).contains(millis));
        // In range and whole (NaN is not in range): the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        millis
            .map(|millis| Duration::from_millis(millis as u64))
            .ok_or_else(|| {
                invalid(
                    name,
                    format!("`{raw}` is not a positive number of hours, at most {MAX_HOURS}"),
                )
            })
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(raw) => match raw.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(invalid(name, format!("`{raw}` is not true or false"))),
            },
        }
    }

    /// `DATABASE_URL_n` and the `DBn_*` pool settings.
    fn database(&self, n: u8, default_url: &str) -> Result<DatabaseSettings, ConfigError> {
        let url_name = format!("DATABASE_URL_{n}");
        let url = DatabaseUrl::parse(&self.string(&url_name, default_url))
            .map_err(|problem| invalid(&url_name, problem))?;
        let name = |suffix: &str| format!("DB{n}_{suffix}");
        let max_size: u32 = self.number(&name("POOL_SIZE"), default_pool_size(), 1, 1000)?;
        let min_idle: u32 = self
            .optional_number(&name("POOL_MIN_IDLE"), 0, 1000)?
            .unwrap_or(max_size.min(2));
        if min_idle > max_size {
            return Err(invalid(
                &name("POOL_MIN_IDLE"),
                format!(
                    "{min_idle} is larger than {} ({max_size})",
                    name("POOL_SIZE")
                ),
            ));
        }
        let checkout_timeout = self.millis(&name("CHECKOUT_TIMEOUT_MS"), 2_000)?;
        let statement_timeout = self.millis(&name("STATEMENT_TIMEOUT_MS"), 5_000)?;
        let busy_timeout = self.millis(&name("BUSY_TIMEOUT_MS"), 5_000)?;
        Ok(DatabaseSettings {
            url,
            pool: PoolSettings {
                max_size,
                min_idle,
                checkout_timeout,
                connection: ConnectionOptions {
                    statement_timeout,
                    busy_timeout,
                    prepared_statements: self.flag(&name("PREPARED_STATEMENTS"), true)?,
                    // Longer than anything the service itself does while it keeps a
                    // transaction open: waiting for the other database's connection and
                    // write lock, and a statement; but never longer than the bound that
                    // keeps a frozen coordinator from outliving the decisions.
                    idle_in_transaction_timeout: (statement_timeout
                        + checkout_timeout
                        + busy_timeout)
                        .min(crate::db::MAX_IDLE_IN_TRANSACTION),
                },
            },
        })
    }

    #[cfg(feature = "fault-injection")]
    fn faults(&self) -> Result<Faults, ConfigError> {
        match self.get("MULTIDB_FAULTS") {
            None => Ok(Faults::none()),
            Some(spec) => {
                Faults::parse(&spec).map_err(|problem| invalid("MULTIDB_FAULTS", problem))
            }
        }
    }

    #[cfg(feature = "fault-injection")]
    fn clock_skew_ms(&self) -> Result<i64, ConfigError> {
        const NAME: &str = "MULTIDB_TEST_CLOCK_SKEW_MS";
        const DAY_MS: i64 = 24 * 3600 * 1000;
        self.get(NAME).map_or(Ok(0), |raw| {
            raw.trim()
                .parse::<i64>()
                .ok()
                .filter(|ms| ms.abs() <= DAY_MS)
                .ok_or_else(|| {
                    invalid(
                        NAME,
                        format!("`{raw}` is not a whole number from -{DAY_MS} to {DAY_MS}"),
                    )
                })
        })
    }
}

/// Two connections per core: the database shares the machine's cores, and measured on
/// 2 cores, pools larger than that only added waiting (p99 of `GET /users/{id}` at 32
/// concurrent requests: 4 ms with 4 connections, 30–45 ms with 10; see BENCHMARKS.md).
fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    u32::try_from(cores.saturating_mul(2)).map_or(1000, |size| size.min(1000))
}

fn invalid(variable: &str, problem: String) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn auth_defaults_by_bind_address() {
        let auth = |vars: &[(&str, &str)]| settings(vars).map(|s| s.auth);
        assert_eq!(auth(&[]).unwrap(), Auth::Off);
        for loopback in [
            "127.0.0.1:8080",
            "127.1.2.3:80",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST:1",
        ] {
            assert_eq!(
                auth(&[("BIND_ADDRESS", loopback)]).unwrap(),
                Auth::Off,
                "{loopback}"
            );
        }
        for open in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:80",
            "192.168.1.2:8080",
            "example.com:80",
        ] {
            assert_eq!(
                auth(&[("BIND_ADDRESS", open)]).unwrap(),
                Auth::Required,
                "{open}"
            );
        }
        assert_eq!(
            auth(&[("BIND_ADDRESS", "0.0.0.0:8080"), ("AUTH", "off")]).unwrap(),
            Auth::Off
        );
        assert_eq!(auth(&[("AUTH", "Required")]).unwrap(), Auth::Required);
        let error = auth(&[("AUTH", "maybe")]).unwrap_err();
        assert_eq!(error.variable, "AUTH");
    }

    #[test]
    fn defaults_are_embedded_sqlite_on_localhost() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.bind_address, "127.0.0.1:8080");
        assert_eq!(settings.db1.url.backend(), crate::db::Backend::Sqlite);
        assert_eq!(settings.db2.url.to_string(), "sqlite:data/db2.sqlite");
        assert_eq!(settings.db1.pool.max_size, default_pool_size());
        assert_eq!(settings.db1.pool.checkout_timeout, Duration::from_secs(2));
        assert!(settings.run_migrations);
    }

    #[test]
    fn settings_for_several_instances() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.instance_lease, Duration::from_secs(10));
        assert_eq!(defaults.request_timeout, Duration::from_secs(10));
        assert!(defaults.db1.pool.connection.prepared_statements);
        // statement 5 s + checkout 2 s + busy 5 s.
        assert_eq!(
            defaults.db2.pool.connection.idle_in_transaction_timeout,
            Duration::from_secs(12)
        );
        let long = settings(&[
            ("DB2_STATEMENT_TIMEOUT_MS", "3600000"),
            ("DB2_PREPARED_STATEMENTS", "false"),
        ])
        .unwrap();
        assert!(!long.db2.pool.connection.prepared_statements);
        assert_eq!(
            long.db2.pool.connection.idle_in_transaction_timeout,
            crate::db::MAX_IDLE_IN_TRANSACTION
        );
        for wrong in ["299", "600001"] {
            let error = settings(&[("INSTANCE_LEASE_MS", wrong)]).unwrap_err();
            assert_eq!(error.variable, "INSTANCE_LEASE_MS");
        }
        assert_eq!(
            settings(&[("INSTANCE_LEASE_MS", "600000")])
                .unwrap()
                .instance_lease,
            crate::db::MAX_LEASE
        );
        // A recovery interval of 1 ms would run recovery in a near-busy loop.
        for wrong in ["1", "99"] {
            let error = settings(&[("RECOVERY_INTERVAL_MS", wrong)]).unwrap_err();
            assert_eq!(error.variable, "RECOVERY_INTERVAL_MS");
        }
        let error = settings(&[("DB1_PREPARED_STATEMENTS", "sometimes")]).unwrap_err();
        assert_eq!(error.variable, "DB1_PREPARED_STATEMENTS");
    }

    #[test]
    fn idempotency_answers_are_kept_for_hours_fractions_allowed() {
        let ttl =
            |value: &str| settings(&[("IDEMPOTENCY_TTL_HOURS", value)]).map(|s| s.idempotency_ttl);
        assert_eq!(
            settings(&[]).unwrap().idempotency_ttl,
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(ttl("0.5").unwrap(), Duration::from_secs(1800));
        assert_eq!(ttl(" 48 ").unwrap(), Duration::from_secs(48 * 3600));
        assert_eq!(ttl("0.0001").unwrap(), Duration::from_millis(360));
        for wrong in ["0", "-1", "0.0000001", "NaN", "inf", "1e9", "a day"] {
            let error = ttl(wrong).unwrap_err();
            assert_eq!(error.variable, "IDEMPOTENCY_TTL_HOURS", "{wrong}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        let error = settings(&[("DB2_POOL_SIZE", "ten")]).unwrap_err();
        assert_eq!(error.variable, "DB2_POOL_SIZE");
        let error = settings(&[("DATABASE_URL_1", "oracle://x")]).unwrap_err();
        assert_eq!(error.variable, "DATABASE_URL_1");
        let error = settings(&[("DB1_POOL_SIZE", "2"), ("DB1_POOL_MIN_IDLE", "3")]).unwrap_err();
        assert_eq!(error.variable, "DB1_POOL_MIN_IDLE");
        assert_eq!(
            settings(&[("DB1_POOL_SIZE", "1")])
                .unwrap()
                .db1
                .pool
                .min_idle,
            1
        );
        let error = settings(&[("RUN_MIGRATIONS", "maybe")]).unwrap_err();
        assert!(error.to_string().starts_with("invalid RUN_MIGRATIONS"));
        assert!(settings(&[("DB1_CHECKOUT_TIMEOUT_MS", "0")]).is_err());
    }
}
