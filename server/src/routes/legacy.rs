//! The original Django server's API under `/main/…`, kept working for
//! existing clients. Every path takes GET and POST, with or without the
//! trailing slash, and answers `{"status": "success" | "failure",
//! "message": …, …data}` with the REST API's statuses, except that a
//! successful delete is `200` so it can carry the body. The work itself is
//! done by the same service calls as the REST API.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, MethodRouter};
use axum::{Json, Router};
use comms_core::input::{parse_permission, EndpointSpec, Meta};
use comms_core::names::RoomName;
use comms_core::store::NewRoom;
use comms_protocol::legacy::{LegacyResponse, LegacyStatus};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, AuthApp, WsBase};
use crate::state::AppState;

/// Routes of the legacy API.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for (path, handler) in [
        ("/main/create_room/{room}", get(create_room).post(create_room)),
        ("/main/delete_room/{room}", get(delete_room).post(delete_room)),
        ("/main/list_rooms", get(list_rooms).post(list_rooms)),
        ("/main/add_endpoint/{room}/{permission}", get(add_endpoint).post(add_endpoint)),
        ("/main/delete_endpoint/{room}/{code}", get(delete_endpoint).post(delete_endpoint)),
        ("/main/list_endpoints/{room}", get(list_endpoints).post(list_endpoints)),
    ] as [(&str, MethodRouter<AppState>); 6]
    {
        router = router.route(path, handler.clone()).route(&format!("{path}/"), handler);
    }
    router.route("/main/{*rest}", any(unknown_route))
}

/// Any other `/main/…` path: checked for a key first, like the real ones,
/// then answered with the failure envelope.
async fn unknown_route(auth: Result<AuthApp, ApiError>) -> Failure {
    match auth {
        Ok(_) => Failure(ApiError::not_found("no such legacy route")),
        Err(err) => Failure(err),
    }
}

/// A successful legacy answer.
struct Success {
    status: StatusCode,
    message: &'static str,
    /// The data fields beside `status` and `message`. Serialized straight
    /// to text, never through `serde_json::Value`, so stored meta and
    /// payloads go out byte for byte whatever their shape.
    data: BTreeMap<&'static str, Box<RawValue>>,
}

impl IntoResponse for Success {
    fn into_response(self) -> Response {
        let body = LegacyResponse {
            status: LegacyStatus::Success,
            message: self.message.to_owned(),
            error: None,
            data: self.data,
        };
        (self.status, Json(body)).into_response()
    }
}

/// A failed legacy answer: the envelope plus the REST error object.
struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl From<comms_core::error::ServiceError> for Failure {
    fn from(err: comms_core::error::ServiceError) -> Self {
        Self(ApiError(err))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let error = self.0.body().error;
        let body = LegacyResponse {
            status: LegacyStatus::Failure,
            message: error.message.clone(),
            error: Some(error),
            data: BTreeMap::<&str, Box<RawValue>>::new(),
        };
        let mut response = (self.0.status(), Json(body)).into_response();
        self.0.finish(&mut response);
        response
    }
}

type Reply = Result<Success, Failure>;

/// A data field's value as JSON text.
fn raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("API views always serialize")
}

#[tracing::instrument(skip_all)]
async fn create_room(
    State(state): State<AppState>,
    auth: Result<AuthApp, ApiError>,
    path: Result<ApiPath<RoomName>, ApiError>,
) -> Reply {
    let (AuthApp { app, .. }, ApiPath(room)) = (auth?, path?);
    // The original API has no way to ask for presence.
    let room = state.service.create_room(&app, &NewRoom::new(room, false)).await?;
    Ok(Success { status: StatusCode::CREATED, message: "room created", data: BTreeMap::from([("room", raw(&room))]) })
}

#[tracing::instrument(skip_all)]
async fn delete_room(
    State(state): State<AppState>,
    auth: Result<AuthApp, ApiError>,
    path: Result<ApiPath<RoomName>, ApiError>,
) -> Reply {
    let (AuthApp { app, .. }, ApiPath(room)) = (auth?, path?);
    state.service.delete_room(&app, &room).await?;
    Ok(Success { status: StatusCode::OK, message: "room deleted", data: BTreeMap::new() })
}

#[tracing::instrument(skip_all)]
async fn list_rooms(State(state): State<AppState>, auth: Result<AuthApp, ApiError>) -> Reply {
    let AuthApp { app, .. } = auth?;
    let rooms = state.service.list_rooms(&app).await?;
    Ok(Success { status: StatusCode::OK, message: "rooms listed", data: BTreeMap::from([("rooms", raw(&rooms))]) })
}

/// Meta of a legacy `add_endpoint`: the `meta` key of a JSON object body,
/// else the `meta` query parameter holding URL-encoded JSON. Bodies that are
/// not JSON objects (old clients posting forms) are ignored.
fn legacy_meta(body: &[u8], query: &HashMap<String, String>) -> Result<Option<Box<RawValue>>, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        #[derive(serde::Deserialize)]
        struct MetaBody {
            meta: Option<Box<RawValue>>,
        }
        let parsed: MetaBody = crate::extract::parse_json_object(body)?;
        if parsed.meta.is_some() {
            return Ok(parsed.meta);
        }
    }
    match query.get("meta") {
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|err| ApiError::invalid(format!("meta is not valid JSON: {err}"))),
        None => Ok(None),
    }
}

#[tracing::instrument(skip_all)]
async fn add_endpoint(
    State(state): State<AppState>,
    auth: Result<AuthApp, ApiError>,
    WsBase(ws_base): WsBase,
    path: Result<ApiPath<(RoomName, String)>, ApiError>,
    query: Result<ApiQuery<HashMap<String, String>>, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let (AuthApp { app, key_id }, ApiPath((room, permission)), ApiQuery(query)) = (auth?, path?, query?);
    let body = body.map_err(ApiError::from)?;
    let meta = Meta::parse(legacy_meta(&body, &query)?.as_deref(), &state.config.limits)?;
    // The original API has no way to ask for limits.
    let spec = EndpointSpec::plain(parse_permission(&permission)?, meta);
    let record = state.service.create_endpoint(&app, &room, spec, Some(key_id)).await?;
    let endpoint = state.service.endpoint_view(record, &ws_base).await?;
    Ok(Success {
        status: StatusCode::CREATED,
        message: "endpoint added",
        data: BTreeMap::from([("code", raw(&endpoint.code)), ("endpoint", raw(&endpoint))]),
    })
}

#[tracing::instrument(skip_all)]
async fn delete_endpoint(
    State(state): State<AppState>,
    auth: Result<AuthApp, ApiError>,
    path: Result<ApiPath<(RoomName, String)>, ApiError>,
) -> Reply {
    let (AuthApp { app, .. }, ApiPath((room, code))) = (auth?, path?);
    state.service.delete_endpoint(&app, &room, &code).await?;
    Ok(Success { status: StatusCode::OK, message: "endpoint deleted", data: BTreeMap::new() })
}

#[tracing::instrument(skip_all)]
async fn list_endpoints(
    State(state): State<AppState>,
    auth: Result<AuthApp, ApiError>,
    WsBase(ws_base): WsBase,
    path: Result<ApiPath<RoomName>, ApiError>,
) -> Reply {
    let (AuthApp { app, .. }, ApiPath(room)) = (auth?, path?);
    let records = state.service.list_endpoints(&app, &room).await?;
    let endpoints = state.service.endpoint_views(records, &ws_base).await?;
    Ok(Success {
        status: StatusCode::OK,
        message: "endpoints listed",
        data: BTreeMap::from([("endpoints", raw(&endpoints))]),
    })
}
