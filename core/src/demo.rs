//! The public demo: the app `demo` with a few rooms and endpoints, made at
//! start when `demo.enabled` (and kept if they exist; every demo room is a
//! presence room, so the chat shows who is online), a bot that posts in
//! `lobby` so the demo is never silent, and throwaway rooms visitors make
//! for themselves. The site shows them; clients join with the endpoint codes
//! like any others.
//!
//! The demo faces the internet, so it is bounded: throwaway rooms are
//! limited in number and rate (both hold under concurrent clicks: the
//! number is counted by the store in the transaction creating the room),
//! and deleted when their lifetime ends. A throwaway room's codes are
//! shown only to the visitor who made it: the page lists the throwaway
//! rooms named in the visitor's own cookie ([`VISITOR_COOKIE`]), and no
//! others. The names are random, so the cookie holds no secret but the
//! names themselves, and the server keeps nothing per visitor.
//!
//! The maker of a throwaway room may invite someone: an invite is a child
//! of the room's writer endpoint that works for one connection within
//! [`INVITE_LIFETIME`]. Invites are bounded per room in rate
//! ([`INVITES_PER_MINUTE`]), and in number by the room's
//! `endpoints_per_room` quota and its lifetime; the site offers them only
//! to the visitor whose cookie names the room.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use comms_protocol::Permission;
use governor::Quota;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::apps::Apps;
use crate::config::DemoConfig;
use crate::error::ServiceError;
use crate::input::{EndpointSpec, Meta};
use crate::limits::{ConnectionRateLimiter, KeyedBuckets};
use crate::names::{AppName, RoomName};
use crate::service::Service;
use crate::store::{AppRecord, AppStatus, EndpointLimits, EndpointRecord, NewRoom, Store};
use crate::time::now_ms;

/// Name of the demo app.
pub const DEMO_APP: &str = "demo";
/// The room the bot keeps busy.
pub const BOT_ROOM: &str = "lobby";

/// Rooms of the demo and their endpoints: `(permission, name in meta)`.
const ROOMS: &[(&str, &[(Permission, &str)])] = &[
    (
        BOT_ROOM,
        &[
            (Permission::ReadAndWrite, "Ann"),
            (Permission::ReadAndWrite, "Bob"),
            (Permission::Read, "Watcher"),
            (Permission::Moderate, "Moderator"),
        ],
    ),
    ("quiet", &[(Permission::ReadAndWrite, "Cleo"), (Permission::Read, "Dev")]),
];

/// `{"name": name}`, the meta of the demo's endpoints and bot.
fn named(name: &str) -> Meta {
    Meta::from_object(serde_json::Map::from_iter([("name".to_owned(), json!(name))]))
}

/// What the bot says, in turn.
const LINES: &[&str] = &[
    "Hello from the demo bot.",
    "Every message carries a seq: reconnect with after_seq to catch up.",
    "My name comes from my meta, stamped by the server.",
    "Open this room in two tabs and chat with yourself.",
];

/// Makes the demo app, rooms and endpoints that are missing.
///
/// # Errors
///
/// Store failures.
pub async fn prepare(store: &Arc<dyn Store>, apps: &Apps, service: &Service) -> Result<AppRecord, ServiceError> {
    let name = AppName::parse(DEMO_APP)?;
    let app = match store.app_by_name(&name).await? {
        Some(app) => app,
        None => match apps.create(DEMO_APP, AppStatus::Approved).await {
            Ok(created) => created.app,
            // Another node sharing the database made it first.
            Err(ServiceError::Conflict(_)) => {
                store.app_by_name(&name).await?.ok_or_else(|| ServiceError::NotFound("the demo app vanished".into()))?
            }
            Err(err) => return Err(err),
        },
    };
    for (room, endpoints) in ROOMS {
        let room = RoomName::parse(room)?;
        match service.create_room(&app, &NewRoom::new(room.clone(), true)).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(err) => return Err(err),
        }
        // By name, so a demo made by an older version gets the ones added
        // since.
        let existing = service.list_endpoints(&app, &room).await?;
        for (permission, name) in *endpoints {
            let meta = named(name);
            if existing.iter().any(|endpoint| endpoint.meta == meta.as_str()) {
                continue;
            }
            service.create_endpoint(&app, &room, EndpointSpec::plain(*permission, meta), None).await?;
        }
    }
    Ok(app)
}

/// Starts the bot: a message in [`BOT_ROOM`] every `interval`, as the app
/// with the meta `{"name": "demo bot"}`. Abort the handle to stop it.
pub fn spawn_bot(service: Service, app: AppRecord, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let room = RoomName::parse(BOT_ROOM).expect("the bot's room name is valid");
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        for line in LINES.iter().cycle() {
            tick.tick().await;
            let Ok(payload) = serde_json::value::to_raw_value(&json!({ "text": line })) else { continue };
            if let Err(err) = service.publish_as_app(&app, &room, payload, named("demo bot"), None).await {
                tracing::warn!(error = %err, "the demo bot could not post");
            }
        }
    })
}

/// Names of throwaway rooms start with this.
pub const THROWAWAY_PREFIX: &str = "tmp-";

/// A throwaway room and the codes of its two endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throwaway {
    /// The room's name.
    pub room: String,
    /// Code of the `read_and_write` endpoint.
    pub writer: String,
    /// Code of the `read` endpoint.
    pub reader: String,
}

/// The cookie naming a visitor's throwaway rooms, separated by `.`.
pub const VISITOR_COOKIE: &str = "comms_demo_rooms";
/// Rooms a visitor's cookie names at most (the oldest are forgotten).
const REMEMBERED: usize = 20;

/// The throwaway rooms the `Cookie` header `cookies` names as the
/// visitor's; anything else in it is ignored.
pub fn visitor_rooms(cookies: &str) -> Vec<String> {
    let value =
        cookies.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(name, _)| *name == VISITOR_COOKIE);
    value
        .map(|(_, rooms)| rooms.split('.'))
        .into_iter()
        .flatten()
        .filter(|room| room.starts_with(THROWAWAY_PREFIX) && RoomName::parse(room).is_ok())
        .map(str::to_owned)
        .collect()
}

/// The `Set-Cookie` value remembering `rooms` (newest last) for the
/// visitor, for as long as a throwaway room lives.
pub fn visitor_cookie(rooms: &[String], lifetime: Duration) -> String {
    let kept = &rooms[rooms.len().saturating_sub(REMEMBERED)..];
    format!(
        "{VISITOR_COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
        kept.join("."),
        lifetime.as_secs().max(1)
    )
}

/// How long an invite to a throwaway room works.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Invites one throwaway room may mint per minute.
pub const INVITES_PER_MINUTE: u32 = 10;

/// Makes throwaway rooms, and invites to them, within the configured bounds.
pub struct Throwaways {
    rate: ConnectionRateLimiter,
    /// Invites, per room name.
    invites: KeyedBuckets<String>,
    max_rooms: usize,
    lifetime: Duration,
}

impl Throwaways {
    /// Bounds from the demo's config.
    pub fn new(config: &DemoConfig) -> Self {
        // Per minute, as a per-second rate with the minute's worth as burst.
        let per_second = config.throwaways_per_minute.div_ceil(60).max(1);
        Self {
            rate: ConnectionRateLimiter::new(per_second, config.throwaways_per_minute),
            invites: KeyedBuckets::new(Quota::per_minute(
                NonZeroU32::new(INVITES_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
            max_rooms: config.max_throwaway_rooms,
            lifetime: config.throwaway_lifetime,
        }
    }

    /// How long a throwaway room lives.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Makes a room with a `read_and_write` and a `read` endpoint.
    ///
    /// # Errors
    ///
    /// `RateLimited` when too many were made lately or too many exist;
    /// store failures.
    pub async fn create(&self, service: &Service, app: &AppRecord) -> Result<Throwaway, ServiceError> {
        let busy = || ServiceError::RateLimited { retry_after: Duration::from_secs(60) };
        if !self.rate.allow() {
            return Err(busy());
        }
        let room = RoomName::parse(&format!("{THROWAWAY_PREFIX}{}", &crate::secrets::endpoint_code()[..10]))?;
        // The demo's own rooms and at most `max_rooms` throwaway ones,
        // counted in the transaction that creates the room.
        let at_most = (ROOMS.len() + self.max_rooms) as u64;
        let new = NewRoom::new(room.clone(), true);
        match service.create_room_at_most(app, &new, Some(at_most)).await {
            Err(ServiceError::QuotaExceeded(_)) => return Err(busy()),
            other => other?,
        };
        // The maker mints invite links from the writer's code.
        let writer_spec =
            EndpointSpec { can_delegate: true, ..EndpointSpec::plain(Permission::ReadAndWrite, named("Writer")) };
        let writer = service.create_endpoint(app, &room, writer_spec, None).await?;
        let reader =
            service.create_endpoint(app, &room, EndpointSpec::plain(Permission::Read, named("Reader")), None).await?;
        Ok(Throwaway { room: room.to_string(), writer: writer.code, reader: reader.code })
    }

    /// Mints an invite to the throwaway room `room`: a `read_and_write`
    /// child of its writer named `Guest`, single use, working for
    /// [`INVITE_LIFETIME`]. Whether the visitor asking made the room is
    /// the caller's to check.
    ///
    /// # Errors
    ///
    /// `NotFound` for a room that is not a throwaway room of `app` (or has
    /// no writer); `RateLimited` past [`INVITES_PER_MINUTE`] for the room;
    /// `QuotaExceeded` when the room has its `endpoints_per_room`; store
    /// failures.
    pub async fn invite(
        &self,
        service: &Service,
        app: &AppRecord,
        room: &RoomName,
    ) -> Result<EndpointRecord, ServiceError> {
        let missing = || ServiceError::NotFound(format!("room {room} is not a throwaway room"));
        if !room.as_str().starts_with(THROWAWAY_PREFIX) {
            return Err(missing());
        }
        let endpoints = service.list_endpoints(app, room).await?;
        let writer = endpoints.iter().find(|endpoint| endpoint.can_delegate && endpoint.parent_id.is_none());
        let writer = writer.ok_or_else(missing)?;
        // Counted only for rooms that exist, so made-up names cannot crowd
        // out the real rooms' buckets.
        self.invites.check(&room.to_string()).map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        let lifetime = i64::try_from(INVITE_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let limits = EndpointLimits { single_use: true, expires_at: Some(now_ms() + lifetime), ..Default::default() };
        let spec = EndpointSpec { limits, ..EndpointSpec::plain(Permission::ReadAndWrite, named("Guest")) };
        let parent = service.delegating_parent(&writer.code).await?;
        service.create_child(&parent, spec).await
    }
}

/// Starts the sweeper that deletes throwaway rooms older than `lifetime`,
/// looking every minute (or every `lifetime`, if shorter). Abort the handle
/// to stop it.
pub fn spawn_sweeper(service: Service, app: AppRecord, lifetime: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(lifetime.min(Duration::from_secs(60)));
        loop {
            tick.tick().await;
            let rooms = match service.list_rooms(&app).await {
                Ok(rooms) => rooms,
                Err(err) => {
                    tracing::warn!(error = %err, "the demo sweeper could not list rooms");
                    continue;
                }
            };
            let now = chrono::Utc::now();
            for room in rooms.iter().filter(|room| room.name.starts_with(THROWAWAY_PREFIX)) {
                let created =
                    chrono::DateTime::parse_from_rfc3339(&room.created_at).map(|t| t.with_timezone(&chrono::Utc));
                let expired = created.is_ok_and(|created| (now - created).to_std().is_ok_and(|age| age >= lifetime));
                if expired {
                    let deleted = match RoomName::parse(&room.name) {
                        Ok(name) => service.delete_room(&app, &name).await,
                        Err(err) => Err(err.into()),
                    };
                    if let Err(err) = deleted {
                        tracing::warn!(error = %err, room = %room.name, "the demo sweeper could not delete a room");
                    }
                }
            }
        }
    })
}
