//! Extractors that answer with our error JSON (`docs/protocol.md#errors`)
//! when they fail: the API-key check, JSON bodies, query strings, paths, and
//! the public WebSocket base.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use comms_core::config::ServerConfig;
use comms_core::error::ServiceError;
use comms_core::forwarded::{ClientAddr, ForwardedHeaders};
use comms_core::store::{AppRecord, AppStatus, KeyOwner};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::refusals::RequestApp;
use crate::state::AppState;

/// The approved app whose API key the request carries, in `X-API-Key` or
/// `Authorization: Bearer`, asked from a page the app allows (its
/// `Origin`, if any, is in the app's allow-list). Also takes one request
/// from the app's rate limit.
pub struct AuthApp {
    /// The app.
    pub app: AppRecord,
    /// Row id of the key presented.
    pub key_id: i64,
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        return Some(key);
    }
    bearer_token(headers)
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for AuthApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = presented_key(&parts.headers).ok_or(ApiError(ServiceError::Forbidden))?;
        let ip = client_addr(parts, &state.config.server).ip;
        state.failed_auth.admit(ip)?;
        let owner = state.authenticator.owner(key).await?;
        if let (Some(owner), Some(request_app)) = (&owner, parts.extensions.get::<RequestApp>()) {
            request_app.set(owner.app.id);
        }
        let Some(KeyOwner { app, key_id }) = owner.filter(|owner| owner.app.status == AppStatus::Approved) else {
            return Err(state.failed_auth.failed(ip, ServiceError::Forbidden).into());
        };
        let origin = browser_origin(&parts.headers);
        if !app.allowed_origins.permits(origin) {
            return Err(ApiError(ServiceError::OriginNotAllowed(origin.unwrap_or_default().to_owned())));
        }
        state.api_limiter.check(app.id).map_err(|retry_after| ApiError(ServiceError::RateLimited { retry_after }))?;
        Ok(Self { app, key_id })
    }
}

/// The `Origin` header browsers send with cross-site requests and
/// WebSocket handshakes; one that is not text counts as present and empty,
/// so it matches no allow-list.
pub fn browser_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).map(|value| value.to_str().unwrap_or_default())
}

/// The `Origin` of the page opening a WebSocket, for the app's allow-list;
/// `None` without one, or for this server's own site, whose pages (the
/// demo, the portal's chat) may open any app's endpoints.
pub struct ForeignOrigin(pub Option<String>);

impl FromRequestParts<AppState> for ForeignOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(origin) = browser_origin(&parts.headers) else { return Ok(Self(None)) };
        let own = own_site(parts, &state.config.server);
        Ok(Self((!own.is_some_and(|own| own.eq_ignore_ascii_case(origin))).then(|| origin.to_owned())))
    }
}

/// `scheme://host[:port]` of this server's site: from `public_url`, else
/// as the request reached it.
fn own_site(parts: &Parts, server: &ServerConfig) -> Option<String> {
    if let Some((scheme, rest)) = server.public_url.split_once("://") {
        let host = rest.split('/').next().unwrap_or_default();
        return Some(format!("{scheme}://{host}"));
    }
    let client = client_addr(parts, server);
    Some(format!("{}://{}", if client.https { "https" } else { "http" }, client.host?))
}

/// A JSON object body. The `Content-Type` is not checked, so `curl -d` works
/// as people expect; a body that is not a JSON object is `400 invalid`, one
/// over `limits.max_body_bytes` is `413 too_large`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await?;
        parse_json_object(&bytes).map(Self)
    }
}

/// Parses a body that must be a JSON object.
///
/// # Errors
///
/// `400 invalid` naming what was wrong.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let starts_as_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|err| ApiError::invalid(format!("malformed JSON body: {err}")))
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the request body is over the size limit")
        } else {
            ApiError::invalid(rejection.body_text())
        }
    }
}

/// A query string; a malformed one is `400 invalid`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

/// Path parameters; undecodable ones are `400 invalid`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

/// `ws://host[:port]` or `wss://…`: where clients reach this server's
/// WebSocket. From `server.public_url` when set, else from the request's
/// [`ClientAddr`].
pub struct WsBase(pub comms_core::config::WsBase);

impl FromRequestParts<AppState> for WsBase {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(state.config.server.ws_base(Some(&client_addr(parts, &state.config.server)))))
    }
}

/// Where the request really comes from: [`client_addr`] as an extractor.
pub struct Client(pub ClientAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(parts, &state.config.server)))
    }
}

/// Where a request really comes from (see `comms_core::forwarded`): the
/// peer address, and forwarding headers if the peer is a trusted proxy.
pub fn client_addr(parts: &Parts, server: &ServerConfig) -> ClientAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
    server.client_addr(
        peer,
        ForwardedHeaders {
            forwarded_for: header("x-forwarded-for"),
            forwarded_proto: header("x-forwarded-proto"),
            forwarded_host: header("x-forwarded-host"),
            host: header("host"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn key_from_either_header() {
        assert_eq!(presented_key(&headers(&[("x-api-key", " k1 ")])), Some("k1"));
        assert_eq!(presented_key(&headers(&[("authorization", "Bearer k2")])), Some("k2"));
        assert_eq!(presented_key(&headers(&[("authorization", "bearer k3")])), Some("k3"));
        assert_eq!(presented_key(&headers(&[("authorization", "Basic k4")])), None);
        assert_eq!(presented_key(&headers(&[("x-api-key", "")])), None);
        assert_eq!(presented_key(&headers(&[("x-api-key", ""), ("authorization", "Bearer k5")])), Some("k5"));
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn bodies_must_be_objects() {
        use comms_protocol::rest::CreateRoomRequest;
        let body: CreateRoomRequest = parse_json_object(br#" {"name": "x"}"#).unwrap();
        assert_eq!(body.name, "x");
        for bad in [&b"[\"x\"]"[..], b"", b"{", b"\"x\"", b"{\"other\": 1}"] {
            assert!(parse_json_object::<CreateRoomRequest>(bad).is_err());
        }
    }
}
