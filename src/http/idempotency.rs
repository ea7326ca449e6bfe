//! `Idempotency-Key` on the requests that create (README, "Safe retries"): the header is
//! read and checked here, the request's fingerprint taken, and stored answers sent back
//! as they were first sent. What is stored, where, and under which locks is the
//! workflows' business (`workflows::once`).

use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::auth::Caller;
use crate::db::idempotency::{self, Answer, Claim};
use crate::error::AppError;
use crate::workflows::{Created, Once};

pub(super) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The longest key accepted, in characters (all visible ASCII).
pub(super) const MAX_KEY_LENGTH: usize = 255;

/// How long answers are replayed (`IDEMPOTENCY_TTL_HOURS`): app data.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Duration);

/// The request's `Idempotency-Key`, if it has one, as a claim on an answer to it;
/// `answer` says what a success answers, and is stored. 400 for a key that is not 1–255
/// visible ASCII characters, or for two keys.
pub(super) fn once<T>(
    request: &HttpRequest,
    body: &RawValue,
    answer: fn(&T) -> Result<Answer, AppError>,
) -> Result<Option<Once<T>>, AppError> {
    let mut keys = request.headers().get_all(IDEMPOTENCY_KEY);
    let Some(key) = keys.next() else {
        return Ok(None);
    };
    if keys.next().is_some() {
        return Err(AppError::BadRequest(
            "send one Idempotency-Key header, not several".into(),
        ));
    }
    let key = parse_key(key.as_bytes())?;
    let owner = request
        .extensions()
        .get::<Caller>()
        .map_or_else(String::new, |caller| caller.0.clone());
    let ttl = request
        .app_data::<Retention>()
        .ok_or_else(|| AppError::Internal("no idempotency retention configured".into()))?
        .0;
    let fingerprint = idempotency::fingerprint(&[
        request.method().as_str().as_bytes(),
        request.path().as_bytes(),
        canonical_json(body)?.as_bytes(),
    ]);
    Ok(Some(Once::new(
        Claim::new(owner, key, fingerprint, ttl),
        answer,
    )))
}

fn parse_key(raw: &[u8]) -> Result<String, AppError> {
    let visible = |byte: &u8| (b'!'..=b'~').contains(byte);
    if raw.is_empty() || raw.len() > MAX_KEY_LENGTH || !raw.iter().all(visible) {
        return Err(AppError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (no spaces)"
        )));
    }
    // Visible ASCII is UTF-8.
    Ok(raw.iter().map(|&byte| char::from(byte)).collect())
}

/// The body as JSON with object keys in order and no spaces, so that a retry whose
/// encoder orders or spaces its fields differently is the same request.
fn canonical_json(body: &RawValue) -> Result<String, AppError> {
    let value: Value = serde_json::from_str(body.get())
        .map_err(|error| AppError::BadRequest(format!("invalid JSON body: {error}")))?;
    let mut canonical = String::with_capacity(body.get().len());
    write_canonical(&value, &mut canonical);
    Ok(canonical)
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            out.push('{');
            for (n, (key, value)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The answer `201 Created` with `location` and `value` as its body, as it is stored
/// and sent.
pub(super) fn created<T: Serialize>(location: String, value: &T) -> Result<Answer, AppError> {
    let body = serde_json::to_string(value).map_err(|error| AppError::Internal(error.into()))?;
    Ok(Answer {
        status: i32::from(StatusCode::CREATED.as_u16()),
        location: Some(location),
        body,
    })
}

/// The answer to a create: a new resource as JSON with its `Location` (a request without
/// a key), or a stored answer byte for byte as stored, with `Idempotent-Replayed: true`
/// when it answered an earlier request.
pub(super) fn respond<T, B: Serialize>(
    created: Created<T>,
    location: fn(&T) -> String,
    body: fn(T) -> B,
) -> Result<HttpResponse, AppError> {
    let (answer, replayed) = match created {
        Created::New(value) => {
            return Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, location(&value)))
                .json(body(value)))
        }
        Created::Stored(answer) => (answer, false),
        Created::Replayed(answer) => (answer, true),
    };
    let corrupt = |what: &str| AppError::Internal(format!("stored answer: bad {what}").into());
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .ok_or_else(|| corrupt("status"))?;
    let mut response = HttpResponse::build(status);
    response.content_type(header::ContentType::json());
    if let Some(location) = answer.location {
        let location = HeaderValue::try_from(location).map_err(|_| corrupt("location"))?;
        response.insert_header((header::LOCATION, location));
    }
    if replayed {
        response.insert_header((REPLAYED, HeaderValue::from_static("true")));
    }
    Ok(response.body(answer.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        let raw = RawValue::from_string(text.to_owned()).unwrap();
        canonical_json(&raw).unwrap()
    }

    #[test]
    fn key_order_and_spaces_do_not_change_the_request() {
        assert_eq!(
            canonical(r#"{ "name": "Ann", "email" : "a@b.c", "n": [1, {"z": 1, "a": "\u00e9"}] }"#),
            r#"{"email":"a@b.c","n":[1,{"a":"é","z":1}],"name":"Ann"}"#
        );
        assert_ne!(canonical(r#"{"a": 1}"#), canonical(r#"{"a": 2}"#));
        assert_ne!(canonical(r#"{"a": "1"}"#), canonical(r#"{"a": 1}"#));
    }

    #[test]
    fn method_path_and_body_each_tell_requests_apart() {
        let of = |method: &str, path: &str, body: &str| {
            idempotency::fingerprint(&[method.as_bytes(), path.as_bytes(), body.as_bytes()])
        };
        let first = of("POST", "/users", "{}");
        assert_eq!(first, of("POST", "/users", "{}"));
        assert_ne!(first, of("PUT", "/users", "{}"));
        assert_ne!(first, of("POST", "/orders", "{}"));
        assert_ne!(first, of("POST", "/users", "{ }"));
        // Parts are delimited: moving a byte from one part to the next is another request.
        assert_ne!(of("POST", "/users/", "1"), of("POST", "/users", "/1"));
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        for good in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "!~",
            &"k".repeat(255),
        ] {
            assert_eq!(parse_key(good.as_bytes()).unwrap(), good);
        }
        for bad in ["", " ", "a b", "tab\there", "é", "\u{7f}", &"k".repeat(256)] {
            assert!(parse_key(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
