//! The store boundary: every SQL statement of comms lives behind [`Store`].
//!
//! Services and the broker hold an `Arc<dyn Store>` and never see SQL, so a
//! second backend (PostgreSQL) is a second implementation of this trait and
//! nothing else changes.
//!
//! # Layout
//!
//! - this module: the trait, the records it returns (each decoded from a
//!   row by a derived `sqlx::FromRow`), and [`StoreError`].
//! - `sql`: the one implementation of [`Store`] both backends share: every
//!   statement, written once, and the mapping of sqlx's errors.
//! - [`sqlite`]: the zero-config SQLite backend (WAL mode, migrations at
//!   start): its pools, its grouped room creations and its message writes.
//! - [`postgres`]: the PostgreSQL backend, for several nodes sharing one
//!   database (`DATABASE_URL=postgres://…`): its pool and its message writes.
//! - `tests`: the suite every backend must pass (a fresh PostgreSQL
//!   database per test comes from the `comms-testkit` crate).

pub mod postgres;
mod sql;
pub mod sqlite;
#[cfg(test)]
mod tests;
mod usage_records;
mod webhook_records;

use async_trait::async_trait;
use comms_protocol::usage::Granularity;
use comms_protocol::Permission;

use crate::names::{AppName, RoomName};
use crate::origins::AllowedOrigins;
use crate::quotas::QuotaOverrides;
use crate::secrets::{ApiKeyHash, MailedTokenHash};
use sql::Stored;
pub use usage_records::{AppUsageTotal, UsageCounts, UsageRow};
pub use webhook_records::{
    AttemptOutcome, DeliveryRecord, DueDelivery, EventTypes, FailingWebhook, Lease, NewEvent, NewWebhook, WebhookRecord,
};

/// Lifecycle of an app; only `approved` apps' keys and endpoints work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppStatus {
    /// Waiting for an admin.
    Pending,
    /// Keys and endpoints work.
    Approved,
    /// Refused by an admin.
    Rejected,
    /// Stopped by an admin.
    Suspended,
}

impl AppStatus {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Suspended => "suspended",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// An app row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppRecord {
    /// Row id.
    pub id: i64,
    /// Unique app name.
    pub name: String,
    /// Only `approved` apps' keys work.
    #[sqlx(try_from = "Stored")]
    pub status: AppStatus,
    /// The portal account owning the app; `None` for apps made with the CLI.
    pub owner_id: Option<i64>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Browser origins its pages may use the API and WebSocket from.
    #[sqlx(try_from = "Stored")]
    pub allowed_origins: AllowedOrigins,
    /// Quotas an admin set for this app; the others keep their default.
    #[sqlx(try_from = "Stored")]
    pub quotas: QuotaOverrides,
}

/// What a developer says about an app when requesting its key.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AppProfile {
    /// What the app is.
    pub description: String,
    /// Its web site, `http(s)://…`, or empty.
    pub website: String,
    /// What it will use comms for.
    pub intended_use: String,
}

/// What a new app is made of.
#[derive(Debug, Clone)]
pub struct NewApp {
    /// Unique name.
    pub name: AppName,
    /// Its first status.
    pub status: AppStatus,
    /// The portal account owning it; `None` for the command line.
    pub owner_id: Option<i64>,
    /// What its developer said about it.
    pub profile: AppProfile,
    /// Its first key; portal apps get theirs later, when approved.
    pub key: Option<ApiKeyHash>,
}

/// An app with counts, for listings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppSummary {
    /// The app.
    #[sqlx(flatten)]
    pub app: AppRecord,
    /// What its developer said about it.
    #[sqlx(flatten)]
    pub profile: AppProfile,
    /// Email of the owning account, if any.
    pub owner_email: Option<String>,
    /// Keys not revoked.
    #[sqlx(try_from = "i64")]
    pub active_keys: u64,
    /// Rooms the app has.
    #[sqlx(try_from = "i64")]
    pub rooms: u64,
}

/// Which apps a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppFilter {
    /// Every app (admins, the command line).
    All,
    /// The apps of one portal account.
    OwnedBy(i64),
    /// One app, by row id (the portal's page of an app).
    Id(i64),
}

/// A portal account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountRecord {
    /// Row id.
    pub id: i64,
    /// Lower-case email address.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// May use the admin area.
    pub is_admin: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Whether the owner showed they read mail sent to `email` (followed a
    /// confirmation or reset link); only then may they register apps.
    pub email_verified: bool,
    /// Raised by a password reset: a session that logged in with an older
    /// value is over.
    pub session_epoch: i64,
}

/// What a new portal account is made of.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    /// Lower-case email address.
    pub email: &'a str,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// May use the admin area.
    pub is_admin: bool,
    /// Whether the address counts as confirmed from the start (admins made
    /// on the command line by the operator).
    pub email_verified: bool,
}

/// What a link mailed to an account's owner lets them do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// Confirm that they read mail sent to the account's address.
    ConfirmEmail,
    /// Choose a new password (which also confirms the address).
    ResetPassword,
}

impl TokenPurpose {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmEmail => "confirm_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A stored token of a mailed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountToken {
    /// The account it acts on.
    pub account_id: i64,
    /// Milliseconds since the epoch after which it no longer works.
    pub expires_at: i64,
}

/// One line of the audit log: who did what to which app.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub at: i64,
    /// The account's email, or `cli`.
    pub actor: String,
    /// What was done, e.g. `approved` or `key_issued`.
    pub action: String,
    /// The app's name (kept after the app is deleted).
    pub app_name: String,
    /// More about it, or empty.
    pub detail: String,
}

/// A room row with its endpoint count.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoomRecord {
    /// Row id.
    pub id: i64,
    /// The app owning the room.
    pub app_id: i64,
    /// Name, unique per app.
    pub name: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Endpoints of the room.
    #[sqlx(try_from = "i64")]
    pub endpoint_count: u64,
    /// Whether the room tracks its members.
    pub presence: bool,
}

/// What a new room is made of.
#[derive(Debug, Clone)]
pub struct NewRoom {
    /// Name, unique per app.
    pub name: RoomName,
    /// Whether the room tracks its members (set once, at creation).
    pub presence: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The webhook events its creation sends, written with it.
    pub events: Vec<NewEvent>,
}

impl NewRoom {
    /// A room created now, sending no events yet (the service adds them).
    pub fn new(name: RoomName, presence: bool) -> Self {
        Self { name, presence, created_at: crate::time::now_ms(), events: Vec::new() }
    }
}

/// What a new endpoint is made of; codes and ids are drawn by the caller.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// The room the endpoint joins.
    pub room_id: i64,
    /// The public id other clients see as sender.
    pub public_id: String,
    /// The secret code clients connect with.
    pub code: String,
    /// What the endpoint may do.
    pub permission: Permission,
    /// JSON object text.
    pub meta: String,
    /// The API key it is created with (a child: its parent's); `None`
    /// from the portal or the demo.
    pub key_id: Option<i64>,
    /// Its own limits.
    pub limits: EndpointLimits,
    /// Whether its holder may mint children.
    pub can_delegate: bool,
    /// The endpoint that minted it, for a child.
    pub parent: Option<Lineage>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The webhook events its creation sends, written with it.
    pub events: Vec<NewEvent>,
}

/// Where a child endpoint sits in its delegation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lineage {
    /// Row id of the parent.
    pub parent_id: i64,
    /// The child's chain length: its parent's plus one.
    pub depth: i64,
}

/// An endpoint's own limits: chosen at creation, and all but `single_use`
/// changeable afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointLimits {
    /// Live connections at once; `None`: only the app's socket quotas.
    pub max_connections: Option<u64>,
    /// Whether the code works for one connection only.
    pub single_use: bool,
    /// Milliseconds since the epoch from which the code no longer works.
    pub expires_at: Option<i64>,
    /// Messages it may ever publish; `None`: unlimited.
    pub max_messages: Option<u64>,
}

/// What an endpoint update writes: everything an app may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// What the endpoint may do.
    pub permission: Permission,
    /// JSON object text.
    pub meta: String,
    /// Its limits; `single_use` is not written.
    pub limits: EndpointLimits,
}

/// An app found by one of its keys, and which key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyOwner {
    /// The app.
    #[sqlx(flatten)]
    pub app: AppRecord,
    /// Row id of the key that matched.
    pub key_id: i64,
}

/// A change to an app, as recorded with it (see [`Store::app_changes_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct AppChange {
    /// Increasing (on PostgreSQL, ids of transactions still running may
    /// commit after higher ones).
    pub id: i64,
    /// The app that changed (it may be deleted since).
    pub app_id: i64,
}

/// An endpoint deleted together with the key it was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RevokedEndpoint {
    /// Row id of its room.
    pub room_id: i64,
    /// Row id of the endpoint.
    pub id: i64,
}

/// An endpoint row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EndpointRecord {
    /// Row id.
    pub id: i64,
    /// The public id other clients see as sender.
    pub public_id: String,
    /// The secret code clients connect with.
    pub code: String,
    /// Row id of the room.
    pub room_id: i64,
    /// Name of the room.
    pub room_name: String,
    /// Whether the room tracks its members.
    pub room_presence: bool,
    /// What the endpoint may do.
    #[sqlx(try_from = "Stored")]
    pub permission: Permission,
    /// JSON object text.
    pub meta: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Live connections it may have at once (at least 1, as the store keeps
    /// it); `None`: only the socket quotas. See [`EndpointRecord::limits`].
    pub max_connections: Option<i64>,
    /// Whether the code works for one connection only.
    pub single_use: bool,
    /// When a single-use code was claimed by its connection.
    pub used_at: Option<i64>,
    /// Milliseconds since the epoch from which the code no longer works.
    pub expires_at: Option<i64>,
    /// Messages it may ever publish; `None`: unlimited.
    pub max_messages: Option<i64>,
    /// Messages published through it, as counted in the store (a node adds
    /// what it has not written yet: see [`crate::sent`]).
    pub messages_sent: i64,
    /// Whether its holder may mint children.
    pub can_delegate: bool,
    /// Row id of the endpoint that minted it.
    pub parent_id: Option<i64>,
    /// Public id of the endpoint that minted it.
    pub parent_public_id: Option<String>,
    /// Its delegation chain's length: 1 for an endpoint the app made.
    pub depth: i64,
    /// Raised by every change, so nodes apply only an endpoint's newest state.
    pub revision: i64,
    /// The API key it was created with (a child: its parent's).
    pub key_id: Option<i64>,
}

impl EndpointRecord {
    /// The endpoint's own limits.
    pub fn limits(&self) -> EndpointLimits {
        EndpointLimits {
            max_connections: self.max_connections.and_then(|n| u64::try_from(n).ok()),
            single_use: self.single_use,
            expires_at: self.expires_at,
            max_messages: self.max_messages.and_then(|n| u64::try_from(n).ok()),
        }
    }

    /// What an app may change of it, as it is now.
    pub fn settings(&self) -> EndpointSettings {
        EndpointSettings { permission: self.permission, meta: self.meta.clone(), limits: self.limits() }
    }

    /// Whether the code has stopped working at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

/// An endpoint found by its code, with what a WebSocket join must check.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EndpointAccess {
    /// The endpoint.
    #[sqlx(flatten)]
    pub endpoint: EndpointRecord,
    /// Only an approved app's endpoints may be joined.
    #[sqlx(try_from = "Stored")]
    pub app_status: AppStatus,
    /// Browser origins the app's endpoints may be joined from.
    #[sqlx(try_from = "Stored")]
    pub allowed_origins: AllowedOrigins,
    /// Row id of the endpoint's app, which its sockets count against.
    pub app_id: i64,
    /// The app's own quotas, for its socket quotas.
    #[sqlx(try_from = "Stored")]
    pub app_quotas: QuotaOverrides,
}

/// A retained message as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredMessage {
    /// Row id of the room.
    pub room_id: i64,
    /// Per-room sequence number.
    #[sqlx(try_from = "i64")]
    pub seq: u64,
    /// Message id.
    pub id: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Public endpoint id of the sender, or `app`.
    pub sender_id: String,
    /// JSON object text.
    pub sender_meta: String,
    /// JSON text as the sender gave it; `null` once redacted.
    pub payload: String,
    /// Public id of the sender's parent, for a child endpoint.
    pub sender_parent: Option<String>,
    /// When it was redacted, in milliseconds since the epoch.
    pub redacted_at: Option<i64>,
    /// The nonce key it was published under (see [`NonceKey`](crate::message::NonceKey)).
    pub nonce: Option<String>,
}

/// A room's retained history as loaded at start or on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomHistory {
    /// Highest seq that may have been handed out in the room: the stored
    /// `last_seq`, or the reserved block's end after a crash.
    pub last_seq: u64,
    /// Retained messages, oldest first.
    pub messages: Vec<StoredMessage>,
}

/// `url` with its password (in the user part or a `password=` parameter)
/// replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once("password=") {
        Some((before, after)) => {
            let rest = after.find(['&', '#']).map_or("", |end| &after[end..]);
            format!("{before}password=***{rest}")
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Why a store call failed.
///
/// sqlx's own error type stays inside the store: callers see what they may
/// act on (a conflict, a missing parent, an outage) and an opaque cause for
/// the rest.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the row (room name or app name taken).
    #[error("already exists")]
    Conflict,
    /// The row it belongs to (a room) was deleted meanwhile.
    #[error("the room it belongs to does not exist")]
    ParentMissing,
    /// The database refused the connection, a statement or a migration.
    #[error(transparent)]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// The data folder could not be created.
    #[error("data folder: {0}")]
    DataDir(#[from] std::io::Error),
    /// A write shared with other requests (a group commit) failed; the
    /// log has the cause.
    #[error("a grouped write failed")]
    BatchFailed,
    /// The database could not be reached: no connection within the pool's
    /// timeout, a closed pool, or a broken connection.
    #[error("the database is unavailable")]
    Unavailable,
    /// A stored value is not one this version understands.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The row was not created: its parent already holds the most rows a
    /// count quota allows.
    #[error("the count quota is full")]
    Full,
}

/// Every query comms makes. Implementations are cheap to share behind an
/// `Arc` and safe to call from any task.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Runs a trivial query, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates an app, with its first API key if it has one; with an
    /// owner, only while they own fewer than `at_most` apps.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the name is taken, [`StoreError::Full`]
    /// when the owner has `at_most` apps already.
    async fn create_app(&self, new: NewApp, at_most: Option<u64>) -> Result<AppRecord, StoreError>;
    /// Finds an app by name.
    async fn app_by_name(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError>;
    /// The apps `filter` selects, oldest first, with counts.
    async fn list_apps(&self, filter: AppFilter) -> Result<Vec<AppSummary>, StoreError>;
    /// Changes recorded after `after_id` (every write below that changes an
    /// app records one in its own transaction), oldest first.
    async fn app_changes_after(&self, after_id: i64) -> Result<Vec<AppChange>, StoreError>;
    /// The id of the newest recorded change, 0 when none is.
    async fn last_app_change(&self) -> Result<i64, StoreError>;
    /// Deletes the changes recorded before `before_ms`.
    async fn prune_app_changes(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Replaces the app's quota overrides.
    async fn set_app_quotas(&self, app_id: i64, quotas: &QuotaOverrides) -> Result<(), StoreError>;
    /// Changes an app's status.
    async fn set_app_status(&self, app_id: i64, status: AppStatus) -> Result<(), StoreError>;
    /// Replaces the app's allow-list of browser origins.
    async fn set_allowed_origins(&self, app_id: i64, origins: &AllowedOrigins) -> Result<(), StoreError>;
    /// Revokes every active key of the app and stores `new` as its only key;
    /// with `with_endpoints`, also deletes every endpoint created with a key
    /// it revokes, and returns them.
    async fn replace_api_keys(
        &self,
        app_id: i64,
        new: ApiKeyHash,
        with_endpoints: bool,
    ) -> Result<Vec<RevokedEndpoint>, StoreError>;
    /// Revokes every active key of the app; how many were.
    async fn revoke_api_keys(&self, app_id: i64) -> Result<u64, StoreError>;
    /// Deletes an app with its keys, rooms, endpoints and history.
    async fn delete_app(&self, app_id: i64) -> Result<(), StoreError>;

    /// Creates a portal account.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the email is taken.
    async fn create_account(&self, new: NewAccount<'_>) -> Result<AccountRecord, StoreError>;
    /// Finds an account by its lower-case email.
    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// Finds an account by id.
    async fn account_by_id(&self, id: i64) -> Result<Option<AccountRecord>, StoreError>;
    /// Stores the token of a link mailed to the account's owner, and
    /// deletes every expired token (of any account), so the table holds
    /// only links that still work.
    async fn insert_account_token(
        &self,
        account_id: i64,
        purpose: TokenPurpose,
        hash: MailedTokenHash,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The stored token, if any (expired or not), without using it up.
    async fn account_token(
        &self,
        purpose: TokenPurpose,
        hash: MailedTokenHash,
    ) -> Result<Option<AccountToken>, StoreError>;
    /// Deletes the token and answers what it was; `None` when it is not
    /// stored (never was, or already taken: of two uses at once, one gets it).
    async fn take_account_token(
        &self,
        purpose: TokenPurpose,
        hash: MailedTokenHash,
    ) -> Result<Option<AccountToken>, StoreError>;
    /// Marks the account's address confirmed and deletes its other
    /// confirmation tokens.
    async fn confirm_email(&self, account_id: i64) -> Result<(), StoreError>;
    /// Replaces the account's password, marks its address confirmed (its
    /// owner read a mail sent there), ends its sessions (raises
    /// `session_epoch`) and deletes every token of it; the account as it is
    /// now, or `None` if it is gone.
    async fn reset_password(&self, account_id: i64, password_hash: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// The server's secret `name`: the stored one, or `candidate`, stored
    /// now, when there is none yet. Of several nodes starting at once, the
    /// first one's candidate is the one every node gets.
    async fn server_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError>;
    /// Appends to the audit log.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The newest `limit` audit entries, newest first.
    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
    /// The app owning an active (not revoked) key, whatever its status.
    async fn app_by_key(&self, key: ApiKeyHash) -> Result<Option<KeyOwner>, StoreError>;

    /// Creates a room, only while the app has fewer than `at_most` rooms.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the app already has a room of that
    /// name, [`StoreError::Full`] when it has `at_most` rooms already.
    async fn create_room(&self, app_id: i64, room: &NewRoom, at_most: Option<u64>) -> Result<RoomRecord, StoreError>;
    /// Finds one of the app's rooms by name.
    async fn room(&self, app_id: i64, name: &RoomName) -> Result<Option<RoomRecord>, StoreError>;
    /// Finds a room by row id, whichever app owns it.
    async fn room_by_id(&self, room_id: i64) -> Result<Option<RoomRecord>, StoreError>;
    /// The app's rooms, oldest first.
    async fn list_rooms(&self, app_id: i64) -> Result<Vec<RoomRecord>, StoreError>;
    /// Deletes a room with its endpoints and history, writing `events` in
    /// the same transaction; the id of the deleted room, or `None` (and no
    /// events) if the app had no such room.
    async fn delete_room(&self, app_id: i64, name: &RoomName, events: &[NewEvent]) -> Result<Option<i64>, StoreError>;

    /// Creates an endpoint, only while its room has fewer than `at_most`.
    ///
    /// # Errors
    ///
    /// [`StoreError::ParentMissing`] when the room is gone,
    /// [`StoreError::Full`] when it has `at_most` endpoints already.
    async fn create_endpoint(&self, new: NewEndpoint, at_most: Option<u64>) -> Result<EndpointRecord, StoreError>;
    /// A room's endpoints, oldest first.
    async fn list_endpoints(&self, room_id: i64) -> Result<Vec<EndpointRecord>, StoreError>;
    /// The endpoints of every room of the app, oldest first: one query for
    /// a page that shows all of them.
    async fn list_app_endpoints(&self, app_id: i64) -> Result<Vec<EndpointRecord>, StoreError>;
    /// An endpoint of the room, by code.
    async fn endpoint_in_room(&self, room_id: i64, code: &str) -> Result<Option<EndpointRecord>, StoreError>;
    /// Every endpoint minted from this one, at any depth, parents before
    /// their children.
    async fn descendants(&self, endpoint_id: i64) -> Result<Vec<EndpointRecord>, StoreError>;
    /// Writes an endpoint's settings and raises its revision; the endpoint
    /// as it is now, or `None` once it is gone.
    async fn update_endpoint(
        &self,
        endpoint_id: i64,
        settings: &EndpointSettings,
    ) -> Result<Option<EndpointRecord>, StoreError>;
    /// Deletes an endpoint of the room by code with every endpoint minted
    /// from it, writing `events` of app `app_id` in the same transaction;
    /// their row ids, the endpoint's first, empty (and no events) if there
    /// was no such endpoint.
    async fn delete_endpoint(
        &self,
        room_id: i64,
        code: &str,
        app_id: i64,
        events: &[NewEvent],
    ) -> Result<Vec<i64>, StoreError>;
    /// An endpoint by row id with its app's status, `None` once the
    /// endpoint is gone: what a joining socket reads again after
    /// registering.
    async fn endpoint_by_id(&self, endpoint_id: i64) -> Result<Option<EndpointAccess>, StoreError>;
    /// Counts one message against the endpoint's `max_messages`: `true`
    /// if it was below, `false` (nothing counted) if it is spent.
    async fn spend_budget(&self, endpoint_id: i64) -> Result<bool, StoreError>;
    /// Gives back a message [`Store::spend_budget`] counted but that was
    /// not published.
    async fn refund_budget(&self, endpoint_id: i64) -> Result<(), StoreError>;
    /// Adds published messages to endpoints' `messages_sent`:
    /// `(endpoint row id, messages)` pairs.
    async fn add_messages_sent(&self, counts: &[(i64, u64)]) -> Result<(), StoreError>;
    /// Marks stored messages of the room redacted at `at_ms`: their payload
    /// becomes `null`.
    async fn redact_messages(&self, room_id: i64, seqs: &[u64], at_ms: i64) -> Result<(), StoreError>;
    /// Finds an endpoint by code, for a WebSocket join.
    async fn endpoint_by_code(&self, code: &str) -> Result<Option<EndpointAccess>, StoreError>;
    /// Claims a single-use endpoint for its one connection: `true` for the
    /// one caller that claims it, `false` once it was claimed.
    async fn claim_single_use(&self, endpoint_id: i64) -> Result<bool, StoreError>;

    /// Appends published messages in one transaction, moves each room's
    /// `last_seq` forward and drops all but the newest `keep_per_room`
    /// messages of the rooms touched. Messages of rooms deleted meanwhile
    /// are skipped. In the same transaction, each message becomes a
    /// `message.created` event for the webhooks of its app that receive it.
    async fn append_messages(&self, batch: &[StoredMessage], keep_per_room: usize) -> Result<(), StoreError>;
    /// Loads the newest `limit` messages of a room created at or after
    /// `since_ms`, and its `last_seq`; `None` if the room does not exist.
    async fn load_history(&self, room_id: i64, limit: usize, since_ms: i64) -> Result<Option<RoomHistory>, StoreError>;
    /// Deletes messages created before `before_ms`; how many went.
    async fn prune_history(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Records that seqs up to `up_to` may be handed out in the room.
    async fn reserve_seq(&self, room_id: i64, up_to: u64) -> Result<(), StoreError>;
    /// Lowers the room's reservation to `last_seq` if that is the stored
    /// `last_seq` (all history written), so the next load continues without
    /// a gap. Called on clean shutdown and when a room leaves memory.
    async fn release_seq_reservation(&self, room_id: i64, last_seq: u64) -> Result<(), StoreError>;

    /// Writes events of app `app_id` that no other change carries (presence,
    /// occupancy) into the outbox.
    async fn record_events(&self, app_id: i64, events: &[NewEvent]) -> Result<(), StoreError>;
    /// Writes events of the app owning room `room_id` into the outbox.
    async fn record_room_events(&self, room_id: i64, events: &[NewEvent]) -> Result<(), StoreError>;
    /// Endpoints whose `expires_at` is `now_ms` or earlier and whose expiry
    /// was not announced yet, with their app's id, at most `limit`.
    async fn unannounced_expiries(&self, now_ms: i64, limit: u64) -> Result<Vec<(i64, EndpointRecord)>, StoreError>;
    /// Marks the expiry at `expires_at` of the endpoint announced and writes
    /// `events` of app `app_id`, in one transaction: `true` for the one
    /// caller (of every node) that marks it, `false` once it was marked or
    /// its expiry changed.
    async fn announce_expiry(
        &self,
        endpoint_id: i64,
        expires_at: i64,
        app_id: i64,
        events: &[NewEvent],
    ) -> Result<bool, StoreError>;

    /// Creates a webhook, only while the app has fewer than `at_most`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] when it has `at_most` webhooks already.
    async fn create_webhook(&self, new: NewWebhook, at_most: Option<u64>) -> Result<WebhookRecord, StoreError>;
    /// The app's webhooks, oldest first.
    async fn list_webhooks(&self, app_id: i64) -> Result<Vec<WebhookRecord>, StoreError>;
    /// One of the app's webhooks by public id.
    async fn webhook(&self, app_id: i64, public_id: &str) -> Result<Option<WebhookRecord>, StoreError>;
    /// Deletes one of the app's webhooks with its deliveries; whether it
    /// existed.
    async fn delete_webhook(&self, app_id: i64, public_id: &str) -> Result<bool, StoreError>;
    /// The webhook's newest `limit` deliveries, newest first.
    async fn webhook_deliveries(&self, webhook_id: i64, limit: u64) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Makes a delivery of the webhook pending again, due at `now_ms`, with
    /// a new series of retries; whether the webhook has that delivery.
    async fn redeliver(&self, webhook_id: i64, delivery_id: i64, now_ms: i64) -> Result<bool, StoreError>;
    /// The apps with deliveries due at `now_ms` and not leased.
    async fn apps_with_due_deliveries(&self, now_ms: i64) -> Result<Vec<i64>, StoreError>;
    /// Leases an app's due deliveries (see [`Lease`]) for one attempt each,
    /// oldest due first; of two nodes leasing at once, each row goes to one.
    async fn lease_deliveries(&self, lease: Lease) -> Result<Vec<DueDelivery>, StoreError>;
    /// Records what attempts came to and ends their leases.
    async fn finish_attempts(&self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError>;
    /// Deletes at most `limit` of the deliveries that ended (delivered or
    /// failed) before `before_ms`, those that ended first; how many went.
    /// Callers prune in such slices, each its own short statement, so that
    /// a large outbox never holds the writer (and the history behind it)
    /// for long.
    async fn prune_deliveries(&self, before_ms: i64, limit: u64) -> Result<u64, StoreError>;
    /// Webhooks with failed or retrying deliveries, most failures first.
    async fn failing_webhooks(&self, limit: u64) -> Result<Vec<FailingWebhook>, StoreError>;

    // Usage.

    /// Adds what apps did on node `node` to their rows of the minute
    /// starting at `minute_start`, and of its hour and day: counts add up,
    /// `connections_peak` keeps the higher. Apps deleted meanwhile are
    /// skipped.
    async fn add_usage(&self, node: &str, minute_start: i64, counts: &[(i64, UsageCounts)]) -> Result<(), StoreError>;
    /// The app's rows of `granularity` for periods starting in
    /// `from_ms..to_ms`, every node's, oldest first.
    async fn usage(
        &self,
        app_id: i64,
        granularity: Granularity,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError>;
    /// The apps that sent and received the most messages in the hours
    /// starting from `since_ms`, busiest first.
    async fn busiest_apps(&self, since_ms: i64, limit: u64) -> Result<Vec<AppUsageTotal>, StoreError>;
    /// Deletes rows of `granularity` for periods that started before
    /// `before_ms`; how many went.
    async fn prune_usage(&self, granularity: Granularity, before_ms: i64) -> Result<u64, StoreError>;
}
