//! Log lines a person can read and a machine can parse: `log` + `env_logger`, with the
//! records' key-value fields written out, and the current request's id added to every
//! line written on its behalf (see [`crate::request_scope`]).
//!
//! - `LOG_FORMAT=text` (the default): `[time LEVEL target] message key=value …`, a value
//!   quoted (JSON string escapes) when it holds a space, `"`, `=` or a control character.
//! - `LOG_FORMAT=json`: one JSON object per line, `{"ts","level","target","msg", fields…}`.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};
use serde_json::{Map, Value as Json};

use crate::request_scope;

/// The field naming the request a line was written for.
pub const REQUEST_ID: &str = "request_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT") {
            Err(std::env::VarError::NotPresent) => Self::parse(None),
            Ok(value) => Self::parse(Some(&value)),
            Err(std::env::VarError::NotUnicode(_)) => Err("LOG_FORMAT: not valid UTF-8".to_owned()),
        }
    }

    /// The format a `LOG_FORMAT` value names (any case); unset is `text`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value
            .map(|value| value.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(_) => Err(format!(
                "LOG_FORMAT: `{}` is neither `text` nor `json`",
                value.unwrap_or_default()
            )),
        }
    }
}

/// Installs the process's logger: levels from `RUST_LOG` (default `info`), lines in
/// `format`, to stderr.
pub fn init_logging(format: LogFormat) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |out, record| {
            let timestamp = out.timestamp_micros().to_string();
            let line = match format {
                LogFormat::Text => text_line(&timestamp, record),
                LogFormat::Json => json_line(&timestamp, record),
            };
            out.write_all(line.as_bytes())
        })
        .init();
}

/// The record's fields, then the current request's id unless the record names one.
fn fields(record: &log::Record<'_>) -> Vec<(String, Json)> {
    let mut fields = Fields(Vec::new());
    let _ = record.key_values().visit(&mut fields);
    if record.key_values().get(Key::from_str(REQUEST_ID)).is_none() {
        request_scope::with_current(|id| {
            if let Some(id) = id {
                fields.0.push((REQUEST_ID.to_owned(), Json::from(id)));
            }
        });
    }
    fields.0
}

struct Fields(Vec<(String, Json)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((key.as_str().to_owned(), json_of(&value)));
        Ok(())
    }
}

/// Numbers and booleans stay what they are; anything else becomes its `Display`.
fn json_of(value: &Value<'_>) -> Json {
    if let Some(n) = value.to_u64() {
        Json::from(n)
    } else if let Some(n) = value.to_i64() {
        Json::from(n)
    } else if let Some(b) = value.to_bool() {
        Json::from(b)
    } else if let Some(x) = value.to_f64() {
        serde_json::Number::from_f64(x).map_or_else(|| Json::from(x.to_string()), Json::Number)
    } else if let Some(s) = value.to_borrowed_str() {
        Json::from(s)
    } else {
        Json::from(value.to_string())
    }
}

fn text_line(timestamp: &str, record: &log::Record<'_>) -> String {
    let mut line = format!(
        "[{timestamp} {:<5} {}] {}",
        record.level(),
        record.target(),
        record.args()
    );
    for (key, value) in fields(record) {
        line.push(' ');
        line.push_str(&key);
        line.push('=');
        match value {
            Json::String(text) if needs_quotes(&text) => {
                line.push_str(&Json::String(text).to_string())
            }
            Json::String(text) => line.push_str(&text),
            other => line.push_str(&other.to_string()),
        }
    }
    line.push('\n');
    line
}

fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c.is_control())
}

fn json_line(timestamp: &str, record: &log::Record<'_>) -> String {
    let mut object = Map::new();
    object.insert("ts".into(), Json::from(timestamp));
    object.insert("level".into(), Json::from(record.level().as_str()));
    object.insert("target".into(), Json::from(record.target()));
    object.insert("msg".into(), Json::from(record.args().to_string()));
    for (key, value) in fields(record) {
        // The four above come first and are not overwritten by a field of the same name.
        object.entry(key).or_insert(value);
    }
    let mut line = Json::Object(object).to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_record<T>(f: impl FnOnce(&log::Record<'_>) -> T) -> T {
        let fields: [(&str, Value<'_>); 4] = [
            ("status", Value::from(503u16)),
            ("route", Value::from("/users/{id}")),
            ("cause", Value::from("db1: connection refused \"x\"")),
            ("duration_ms", Value::from(1.25f64)),
        ];
        let args = format_args!("request");
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Error)
            .target("multidb::http")
            .key_values(&fields)
            .build();
        f(&record)
    }

    #[test]
    fn a_json_line_is_one_object_with_typed_fields_and_the_request_id() {
        let _entered = request_scope::Entered::new(Some(std::sync::Arc::from("req-9")));
        let line = with_record(|record| json_line("2026-11-25T00:00:00.000000Z", record));
        assert!(
            line.ends_with('\n') && !line.trim_end().contains('\n'),
            "{line}"
        );
        let parsed: Json = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["msg"], "request");
        assert_eq!(parsed["level"], "ERROR");
        assert_eq!(parsed["status"], 503);
        assert_eq!(parsed["duration_ms"], 1.25);
        assert_eq!(parsed["route"], "/users/{id}");
        assert_eq!(parsed["request_id"], "req-9");
    }

    #[test]
    fn a_text_line_quotes_only_the_values_that_need_it() {
        let line = with_record(|record| text_line("T", record));
        assert_eq!(
            line,
            "[T ERROR multidb::http] request status=503 route=/users/{id} cause=\"db1: connection refused \\\"x\\\"\" duration_ms=1.25\n"
        );
    }

    #[test]
    fn an_unknown_format_is_refused_by_name() {
        assert_eq!(
            LogFormat::parse(Some("xml")),
            Err("LOG_FORMAT: `xml` is neither `text` nor `json`".to_owned())
        );
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
    }
}
