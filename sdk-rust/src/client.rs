//! [`Client`]: the REST API with an app's key. The calls themselves are
//! generated from the OpenAPI document (see `generated.rs`); this module
//! holds what they share: the base address, the key, and turning answers
//! into values or [`Error`]s.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::generated::ErrorBody;

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A path segment, percent-encoded.
pub(crate) fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// A field of a `PATCH` body that is absent (`None`: left as it is), `null`
/// (`Some(None)`: cleared) or set; a plain `Option` would read `null` as
/// absent.
pub(crate) fn set_or_clear<'de, D, T>(value: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(value).map(Some)
}

/// How often a call carrying an `Idempotency-Key` is tried again after a
/// network failure or a 502, 503 or 504, and the first wait (doubled after
/// each try): a repeat with the same key publishes nothing new, so a
/// retry is always safe.
const RETRIES: u32 = 3;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);

/// A fresh `Idempotency-Key`: 128 random bits as 32 hex digits.
pub(crate) fn new_idempotency_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A comms REST client for one app. Cheap to clone; share one per app.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl Client {
    /// A client of the server at `base_url` (e.g. `https://comms.example.com`)
    /// sending `api_key` with every request.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] unless `base_url` is an `http://` or `https://`
    /// address.
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, Error> {
        Self::with_http_client(reqwest::Client::new(), base_url, api_key)
    }

    /// Like [`Client::new`], with your own `reqwest` client (timeouts,
    /// proxies).
    ///
    /// # Errors
    ///
    /// As [`Client::new`].
    pub fn with_http_client(http: reqwest::Client, base_url: &str, api_key: &str) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::InvalidUrl(format!("{base_url:?} is not an http:// or https:// address")));
        }
        Ok(Self { http, base: base.to_owned(), api_key: api_key.to_owned() })
    }

    /// The server's base address.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        query: Vec<(&'static str, String)>,
        headers: Vec<(&'static str, String)>,
        body: Option<&impl Serialize>,
        expected: u16,
    ) -> Result<reqwest::Response, Error> {
        let retries = if headers.iter().any(|(name, _)| *name == "Idempotency-Key") { RETRIES } else { 0 };
        let (mut delay, mut attempt) = (FIRST_RETRY_DELAY, 0);
        loop {
            let mut request =
                self.http.request(method.clone(), format!("{}{path}", self.base)).header("X-API-Key", &self.api_key);
            if !query.is_empty() {
                request = request.query(&query);
            }
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let retry = attempt < retries;
            match request.send().await {
                Ok(response) if response.status().as_u16() == expected => return Ok(response),
                Ok(response) if retry && is_transient(response.status()) => {}
                Ok(response) => return Err(api_error(response).await),
                Err(_) if retry => {}
                Err(err) => return Err(err.into()),
            }
            tokio::time::sleep(delay).await;
            (delay, attempt) = (delay * 2, attempt + 1);
        }
    }

    pub(crate) async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        query: Vec<(&'static str, String)>,
        headers: Vec<(&'static str, String)>,
        body: Option<&impl Serialize>,
        expected: u16,
    ) -> Result<T, Error> {
        let response = self.call(method, path, query, headers, body, expected).await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        serde_json::from_str(&text).map_err(|_| Error::Unexpected { status, body: text })
    }

    pub(crate) async fn call_empty(
        &self,
        method: Method,
        path: String,
        query: Vec<(&'static str, String)>,
        headers: Vec<(&'static str, String)>,
        body: Option<&impl Serialize>,
        expected: u16,
    ) -> Result<(), Error> {
        self.call(method, path, query, headers, body, expected).await.map(drop)
    }
}

/// An answer a proxy or a restarting server gives that may be gone on
/// the next try.
fn is_transient(status: StatusCode) -> bool {
    matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
}

async fn api_error(response: reqwest::Response) -> Error {
    let status = response.status();
    let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
        .then(|| response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.parse().ok())
        .flatten()
        .map(Duration::from_secs);
    let text = match response.text().await {
        Ok(text) => text,
        Err(err) => return Error::Http(err),
    };
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            Error::Api { status: status.as_u16(), code: body.error.code, message: body.error.message, retry_after }
        }
        Err(_) => Error::Unexpected { status: status.as_u16(), body: text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_bases_checked() {
        assert_eq!(segment("lobby-1.a_b~"), "lobby-1.a_b~");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert!(Client::new("comms.example.com", "k").is_err());
        assert_eq!(Client::new("http://h:1/", "k").unwrap().base_url(), "http://h:1");
    }

    #[test]
    fn patch_fields_tell_absent_from_null() {
        use crate::generated::UpdateEndpointRequest;

        let change =
            UpdateEndpointRequest { expires_at: Some(None), max_messages: Some(Some(5)), ..Default::default() };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(json, serde_json::json!({"expires_at": null, "max_messages": 5}), "absent fields are left out");
        let read: UpdateEndpointRequest = serde_json::from_value(json).unwrap();
        assert_eq!(read, change, "null reads back as Some(None), absent as None");
    }
}
