use std::collections::HashMap;

use serde_json::Value;

/// A response of any status, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub text: String,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts a 204 No Content: the status, and no body at all.
    #[track_caller]
    pub fn assert_no_content(&self) {
        assert_eq!(self.status, 204, "{}", self.text);
        assert!(self.text.is_empty(), "204 has no body: {}", self.text);
    }

    /// Asserts an API error response with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.body["code"], code,
            "unexpected code; body: {}",
            self.text
        );
        assert!(
            self.body["error"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "error message missing: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "errors are JSON"
        );
    }
}

/// Sends a request with `headers` (name, value) besides the body's content type.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Response {
    let request = headers
        .iter()
        .fold(agent.request(method, url), |request, (name, value)| {
            request.set(name, value)
        });
    let result = match body {
        Some((content_type, bytes)) => {
            let request = if content_type.is_empty() {
                request
            } else {
                request.set("Content-Type", content_type)
            };
            request.send_bytes(&bytes)
        }
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: transport error: {error}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            let value = response.header(&name)?.to_owned();
            Some((name.to_ascii_lowercase(), value))
        })
        .collect();
    let text = response.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        headers,
        text,
        body,
    }
}
