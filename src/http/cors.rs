//! Cross-origin requests from browser applications, for the origins an operator allows
//! (`CORS_ALLOWED_ORIGINS`); none by default, when browsers keep other origins out.

use actix_cors::{Cors, CorsError};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, Uri};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::AppError;

/// `CORS_ALLOWED_ORIGINS`: unset or empty, none; `*`, any; otherwise a comma-separated
/// list of origins (`https://app.example.com`, `http://localhost:3000`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    #[default]
    None,
    Any,
    /// Each `scheme://host[:port]`, lower-case, as browsers send them in `Origin`.
    Some(Vec<String>),
}

impl AllowedOrigins {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
            return Ok(Self::None);
        };
        if raw == "*" {
            return Ok(Self::Any);
        }
        raw.split(',')
            .map(|origin| origin.trim())
            .filter(|origin| !origin.is_empty())
            .map(origin)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Some)
    }

    pub fn is_none(&self) -> bool {
        *self == Self::None
    }

    /// The middleware answering preflights and adding CORS headers, or `None` when no
    /// origin is allowed.
    pub fn middleware(&self) -> Option<Cors> {
        let cors = match self {
            Self::None => return None,
            Self::Any => Cors::default().allow_any_origin().send_wildcard(),
            Self::Some(origins) => origins
                .iter()
                .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin)),
        };
        Some(
            cors.allowed_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
            ])
            .allowed_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("idempotency-key"),
                header::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::HeaderName::from_static("x-request-id"),
                header::HeaderName::from_static("idempotent-replayed"),
            ])
            // Browsers cap it lower (Chromium: 2 hours); an hour spares most preflights.
            .max_age(3600),
        )
    }
}

/// One origin, checked and lower-cased: a browser's `Origin` has a scheme and a host, an
/// optional port and nothing else.
fn origin(text: &str) -> Result<String, String> {
    let refused = |why: &str| {
        format!("`{text}` is not an origin ({why}); for example `https://app.example.com`")
    };
    let uri: Uri = text.parse().map_err(|_| refused("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(refused("it needs http:// or https://")),
    }
    let authority = uri.authority().ok_or_else(|| refused("no host"))?;
    if authority.as_str().contains('@') {
        return Err(refused("an origin has no user name"));
    }
    if text.trim_end_matches('/').len() != text.len()
        || uri.path_and_query().is_some_and(|p| p.as_str() != "/")
    {
        return Err(refused("an origin has no path, not even `/`"));
    }
    Ok(format!(
        "{}://{}",
        uri.scheme_str().unwrap_or_default(),
        authority.as_str().to_ascii_lowercase()
    ))
}

/// A preflight actix-cors refused (an origin, method or header not allowed) as the
/// API's JSON error rather than its plain text.
pub async fn refusals_as_json(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let refusal = response
        .response()
        .error()
        .and_then(|error| error.as_error::<CorsError>())
        .map(|error| AppError::BadRequest(format!("CORS: {error}")));
    Ok(match refusal {
        Some(error) => {
            let (request, _) = response.into_parts();
            let mut answer = error.error_response();
            answer
                .headers_mut()
                .insert(header::VARY, header::HeaderValue::from_static("Origin"));
            ServiceResponse::new(request, answer)
        }
        None => response.map_into_boxed_body(),
    })
}

#[cfg(test)]
mod tests {
    use super::AllowedOrigins;

    #[test]
    fn origins_are_checked_and_lower_cased() {
        assert_eq!(AllowedOrigins::parse(None), Ok(AllowedOrigins::None));
        assert_eq!(AllowedOrigins::parse(Some(" ")), Ok(AllowedOrigins::None));
        assert_eq!(AllowedOrigins::parse(Some("*")), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse(Some("https://App.Example.com, http://localhost:3000")),
            Ok(AllowedOrigins::Some(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ]))
        );
        for wrong in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://app.example.com",
            "https://user@app.example.com",
            "https://app.example.com?x=1",
            "https://a.example.com, *",
        ] {
            assert!(
                AllowedOrigins::parse(Some(wrong)).is_err(),
                "{wrong} accepted"
            );
        }
    }
}
