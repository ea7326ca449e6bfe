//! Extractor configuration and small parsers, so that every malformed input becomes
//! the API's JSON error instead of actix's plain-text default.

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::mime;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use utoipa::IntoParams;

use super::MAX_BODY_BYTES;
use crate::domain::{prefix, schema, AfterId, Excerpt, Limit, ParseId};
use crate::error::AppError;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .error_handler(|error, _request| json_error(error).into())
}

/// A JSON request body sent as exactly `application/json` (parameters such as
/// `charset` allowed), parsed, with its text. actix's `Json` also takes `text/json` and
/// any `+json` type; the API promises 415 for those.
pub struct JsonBody<T>(pub T, Box<RawValue>);

impl<T> JsonBody<T> {
    /// The body as sent: the request's fingerprint is taken from it.
    pub fn raw(&self) -> &RawValue {
        &self.1
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = matches!(
            request.mime_type(),
            Ok(Some(mime)) if mime.type_() == mime::APPLICATION && mime.subtype() == mime::JSON && mime.suffix().is_none()
        );
        if !is_json {
            return Box::pin(std::future::ready(Err(
                AppError::UnsupportedMediaType.into()
            )));
        }
        let body = web::Json::<Box<RawValue>>::from_request(request, payload);
        Box::pin(async move {
            let raw = body.await?.into_inner();
            // serde's derived structs also accept an array of the fields in order.
            if !raw.get().starts_with('{') {
                return Err(
                    AppError::BadRequest("request body must be a JSON object".into()).into(),
                );
            }
            serde_json::from_str(raw.get())
                .map(|value| JsonBody(value, raw))
                .map_err(|error| AppError::BadRequest(format!("invalid JSON body: {error}")).into())
        })
    }
}

fn json_error(error: JsonPayloadError) -> AppError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            AppError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            }
        }
        JsonPayloadError::ContentType => AppError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(error)
            if error.is_eof() && error.line() == 1 && error.column() == 0 =>
        {
            AppError::BadRequest("request body is empty; a JSON object is required".into())
        }
        JsonPayloadError::Deserialize(error) => {
            AppError::BadRequest(format!("invalid JSON body: {error}"))
        }
        other => AppError::BadRequest(format!("cannot read request body: {other}")),
    }
}

/// The longest query-string error message given back: serde's names the parameter,
/// which a client may have made as long as the whole URL.
const MAX_QUERY_ERROR_BYTES: usize = 300;

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _request| {
        let message = match error {
            QueryPayloadError::Deserialize(error) => error.to_string(),
            other => other.to_string(),
        };
        let shown = prefix(&message, MAX_QUERY_ERROR_BYTES);
        let cut = if shown.len() < message.len() {
            "…"
        } else {
            ""
        };
        AppError::BadRequest(format!("invalid query: {shown}{cut}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, _request| {
        AppError::BadRequest(format!("invalid path: {error}")).into()
    })
}

/// Parses an `{id}` path segment: a positive 64-bit integer in canonical decimal, or 400.
pub fn path_id<I: ParseId>(raw: &str) -> Result<I, AppError> {
    I::parse(raw).map_err(|e| AppError::BadRequest(format!("id {e}")))
}

/// `?limit=&after_id=`, kept as text so that the domain parsers word the errors.
/// Any other parameter is refused, as an unknown body field is: `?userId=1` must not
/// quietly list everyone's orders.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(schema_with = schema::limit)]
    pub limit: Option<String>,
    #[param(schema_with = schema::after_id)]
    pub after_id: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<(AfterId, Limit), AppError> {
        page(self.limit.as_deref(), self.after_id.as_deref())
    }
}

/// A page's `limit` and `after_id` parameters, parsed.
pub fn page(limit: Option<&str>, after_id: Option<&str>) -> Result<(AfterId, Limit), AppError> {
    let limit = Limit::parse(limit).map_err(AppError::BadRequest)?;
    let after = AfterId::parse(after_id).map_err(AppError::BadRequest)?;
    Ok((after, limit))
}

/// The query of an operation that takes no parameters: any is refused as unknown, as
/// an unknown body field is, rather than quietly ignored.
pub struct NoQuery;

impl FromRequest for NoQuery {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = request.query_string();
        let first = query.split('&').find(|pair| !pair.is_empty());
        std::future::ready(match first {
            None => Ok(NoQuery),
            Some(pair) => {
                let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                Err(AppError::BadRequest(format!(
                    "unknown query parameter {}: this operation takes none",
                    Excerpt(name)
                )))
            }
        })
    }
}

/// For optional body fields: absent is `None`, but an explicit `null` is a wrong type
/// rather than a silent no-op.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For integer body fields: any JSON number without a fractional part, as JSON and
/// JSON Schema count integers (`2`, `2.0` and `2e0` are the same number, and some
/// encoders write every number with a fraction); `2.5` is a wrong type, and a number
/// beyond 64 bits is refused like the integer literal it stands for.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct Integer;

    impl serde::de::Visitor<'_> for Integer {
        type Value = i64;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an integer")
        }

        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| {
                E::invalid_value(serde::de::Unexpected::Unsigned(value), &"a 64-bit integer")
            })
        }

        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<i64, E> {
            if value.fract() != 0.0 || !value.is_finite() {
                return Err(E::invalid_type(serde::de::Unexpected::Float(value), &self));
            }
            crate::domain::integral(value).ok_or_else(|| {
                E::invalid_value(serde::de::Unexpected::Float(value), &"a 64-bit integer")
            })
        }
    }

    deserializer.deserialize_any(Integer)
}

/// Collects the broken rules of one body, so that the client learns all of them at once.
#[derive(Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// Keeps the parsed value, or records why it was refused.
    pub fn check<T>(&mut self, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|problem| self.0.push(problem)).ok()
    }

    /// The error for a body where some `check` returned `None`.
    pub fn into_error(self) -> AppError {
        AppError::Validation(self.0.join("; "))
    }
}
