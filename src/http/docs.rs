//! The API's own documentation: the OpenAPI document, serialized once at start-up, and
//! an interactive page for it (Swagger UI), whose files are compiled into the binary
//! (utoipa-swagger-ui's `vendored` feature), so that it works with no internet access.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header::{self, ContentType};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use utoipa_swagger_ui::Config;

use super::extract::NoQuery;
use super::openapi;
use crate::error::AppError;

const OPENAPI_PATH: &str = "/openapi.json";

/// What the documentation routes serve, built once for all workers.
pub struct Docs {
    openapi_json: Bytes,
    page: Arc<Config<'static>>,
}

impl Docs {
    pub fn new() -> Result<Self, serde_json::Error> {
        Ok(Self {
            openapi_json: openapi::json()?.into(),
            // No validator: Swagger UI would send the document to swagger.io's.
            page: Arc::new(Config::new([OPENAPI_PATH]).validator_url("none")),
        })
    }
}

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses((
        status = 200,
        description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json",
        body = Object,
    )),
)]
pub(super) async fn openapi_json(_: NoQuery, docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(docs.openapi_json.clone())
}

/// The interactive documentation page
///
/// Its files are relative to `/docs/`.
pub(super) async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// The interactive documentation page (Swagger UI), for `/openapi.json`
pub(super) async fn index(docs: web::Data<Docs>) -> Result<HttpResponse, AppError> {
    serve(&docs, "index.html")
}

/// A file of the documentation page: its scripts, styles and icons
pub(super) async fn file(
    docs: web::Data<Docs>,
    file: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    serve(&docs, &file)
}

fn serve(docs: &Docs, name: &str) -> Result<HttpResponse, AppError> {
    let file = utoipa_swagger_ui::serve(name, docs.page.clone())
        .map_err(|error| AppError::Internal(error.to_string().into()))?
        .ok_or_else(|| AppError::NotFound(format!("the documentation has no file {name}")))?;
    // Borrowed: a file as embedded, served without a copy.
    let body = match file.bytes {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .body(body))
}
