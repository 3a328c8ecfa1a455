//! The one implementation of [`Store`] that SQLite and PostgreSQL share.
//!
//! Both backends have the same schema, and `$N` placeholders work on both
//! engines (SQLite reads `$1` as a named parameter, which sqlx binds by its
//! number), so almost every statement has a single text (the few that bind
//! hundreds of values spell them per backend, see [`Parameters`], and a
//! list of ids goes as one JSON array, see [`Backend::ids_in_json`]). [`Store`] is
//! therefore implemented once, generically over a [`Backend`]: the backend
//! says which pool reads and which writes, and does itself the two jobs the
//! engines really do differently: creating rooms (SQLite groups pending
//! creations into one commit, `sqlite/room_batch.rs`) and appending messages
//! (SQLite 500 rows a statement on its single writer; PostgreSQL with arrays, taking
//! row locks in id order). Generic code was chosen over a table of statement
//! constants wired up once per backend because each statement then sits with
//! its binds and its row type, and neither is written twice; the price is
//! one `where` clause listing what the driver must bind and decode.
//!
//! Rows become records through the `sqlx::FromRow` derived on each record;
//! a stored value this version does not understand (an unknown status, a
//! negative count) fails decoding, which [`StoreError`] reports as
//! [`StoreError::Corrupt`].
//!
//! Portable SQL on purpose: `CAST(x AS BIGINT)` rather than PostgreSQL's
//! `x::BIGINT`, and comparisons rather than `MAX`/`GREATEST`, whose spelling
//! differs between the two engines.

use std::collections::BTreeMap;

use async_trait::async_trait;
use comms_protocol::Permission;
use sqlx::database::Database;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use comms_protocol::usage::Granularity;
use comms_protocol::webhook::{DeliveryState, EventType};

use super::{
    AccountRecord, AccountToken, AppChange, AppFilter, AppRecord, AppStatus, AppSummary, AppUsageTotal, AttemptOutcome,
    AuditEntry, DeliveryRecord, DueDelivery, EndpointAccess, EndpointRecord, EndpointSettings, EventTypes,
    FailingWebhook, KeyOwner, Lease, NewAccount, NewApp, NewEndpoint, NewEvent, NewRoom, NewWebhook, RevokedEndpoint,
    RoomHistory, RoomRecord, Store, StoreError, StoredMessage, TokenPurpose, UsageCounts, UsageRow, WebhookRecord,
};
use crate::names::{AppName, RoomName};
use crate::origins::AllowedOrigins;
use crate::quotas::QuotaOverrides;
use crate::secrets::{ApiKeyHash, MailedTokenHash};
use crate::time::now_ms;

/// What a backend brings to the shared [`Store`] implementation.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Database;

    /// Connections for statements that only read.
    fn reader(&self) -> &Pool<Self::Db>;
    /// Connections for statements that write (on SQLite, its one writer).
    fn writer(&self) -> &Pool<Self::Db>;
    /// How many rows a statement changed (sqlx has no trait for it).
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    /// What follows `SELECT … WHERE id = $1` to lock the row a count quota
    /// counts under, so creations racing for its last slot take turns:
    /// PostgreSQL's ` FOR NO KEY UPDATE`; nothing on SQLite, whose single
    /// writer already runs them one after the other.
    const LOCK_ROW: &'static str;

    /// How a statement of many rows writes its parameters (see
    /// [`Parameters`]).
    const MANY_PARAMETERS: Parameters;

    /// A subquery yielding the integers of a JSON array bound as text at
    /// parameter `n`: one statement for a list of ids of any length.
    fn ids_in_json(n: usize) -> String;

    /// [`Store::create_room`].
    async fn create_room(&self, app_id: i64, room: &NewRoom, at_most: Option<u64>) -> Result<RoomRecord, StoreError>;
    /// [`Store::append_messages`].
    async fn append_messages(&self, batch: &[StoredMessage], keep_per_room: usize) -> Result<(), StoreError>;
}

/// How a statement of many rows spells its parameters.
///
/// SQLite finds a numbered parameter's name by scanning all of the
/// statement's (a profile of 6000-parameter inserts showed a fifth of the
/// server's time in that scan), so there anonymous `?`, bound in order, are
/// used; PostgreSQL has only numbered ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parameters {
    /// `$1, $2, …`.
    Numbered,
    /// `?, ?, …`, one per value in the statement's order.
    Anonymous,
}

impl Parameters {
    /// The placeholder of the `n`th value bound (from 1).
    fn placeholder(self, n: usize) -> String {
        match self {
            Self::Numbered => format!("${n}"),
            Self::Anonymous => "?".to_owned(),
        }
    }
}

/// `ids` as the JSON array text [`Backend::ids_in_json`] reads.
pub(in crate::store) fn json_array(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", ids.join(","))
}

/// A text column holding a value in its stored form; records name it in
/// `#[sqlx(try_from = "Stored")]` so the value is parsed while decoding.
#[derive(sqlx::Type)]
#[sqlx(transparent)]
pub struct Stored(pub String);

// A stored value that does not parse fails decoding with a text saying
// which (sqlx makes it a column decode error, see `From<sqlx::Error>`).

impl TryFrom<Stored> for AppStatus {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("app status {text:?}"))
    }
}

impl TryFrom<Stored> for Permission {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("endpoint permission {text:?}"))
    }
}

impl TryFrom<Stored> for QuotaOverrides {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        Self::parse(&text).map_err(|err| format!("quota overrides {text:?}: {err}"))
    }
}

impl TryFrom<Stored> for AllowedOrigins {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        Self::parse(text.split_whitespace()).map_err(|err| format!("allowed origins {text:?}: {err}"))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => Self::Unavailable,
            sqlx::Error::ColumnDecode { index, source } => Self::Corrupt(format!("{index}: {source}")),
            other => Self::Database(Box::new(other)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Database(Box::new(err))
    }
}

/// `err` as a [`StoreError`], where a refused constraint is an answer: a
/// unique one is [`StoreError::Conflict`], a foreign key
/// [`StoreError::ParentMissing`].
pub fn refused_or(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::ParentMissing,
        _ => err.into(),
    }
}

/// A count or seq as PostgreSQL's BIGINT and SQLite's INTEGER hold it,
/// saturating.
fn stored_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// [`stored_count`] of a `usize`.
fn stored_int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What a statement inserting rooms returns: each new room as a
/// [`RoomRecord`], with no endpoints yet.
pub const NEW_ROOM_COLUMNS: &str = "id, app_id, name, created_at, CAST(0 AS BIGINT) AS endpoint_count, presence";

/// Inserts one room with its webhook events, only while the app has fewer
/// than `at_most` rooms; `lock_row` is the backend's [`Backend::LOCK_ROW`].
///
/// # Errors
///
/// [`StoreError::Conflict`] when the app has a room of that name,
/// [`StoreError::ParentMissing`] when the app is gone, [`StoreError::Full`]
/// when it has `at_most` rooms.
pub async fn insert_room<DB: Database>(
    pool: &Pool<DB>,
    app_id: i64,
    room: &NewRoom,
    at_most: Option<u64>,
    lock_row: &str,
) -> Result<RoomRecord, StoreError>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> RoomRecord: FromRow<'r, DB::Row>,
{
    let sql = format!(
        "INSERT INTO rooms (app_id, name, created_at, presence) VALUES ($1, $2, $3, $4) RETURNING {NEW_ROOM_COLUMNS}"
    );
    let insert = sqlx::query_as(&sql).bind(app_id).bind(room.name.as_str()).bind(room.created_at).bind(room.presence);
    let mut tx = pool.begin().await?;
    if let Some(at_most) = at_most {
        ensure_below(&mut *tx, ROOMS_OF_APP, app_id, at_most, lock_row).await?;
    }
    let created = insert.fetch_one(&mut *tx).await.map_err(refused_or)?;
    insert_events(&mut *tx, Scope::App(app_id), &room.events).await?;
    tx.commit().await?;
    Ok(created)
}

/// Whose webhooks an event goes to.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// The app with this row id.
    App(i64),
    /// The app owning the room with this row id.
    Room(i64),
}

/// Writes `events` into the outbox: for each, one delivery row per webhook
/// of `scope`'s app that receives its type, due at once. Runs inside the
/// caller's transaction, so an event exists exactly when its change does.
pub async fn insert_events<DB: Database>(
    conn: &mut DB::Connection,
    scope: Scope,
    events: &[NewEvent],
) -> Result<(), StoreError>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let (app, scope_id) = match scope {
        Scope::App(id) => ("$5", id),
        Scope::Room(id) => ("(SELECT app_id FROM rooms WHERE id = $5)", id),
    };
    let sql = format!(
        "INSERT INTO webhook_deliveries (webhook_id, app_id, event_id, event_type, body, created_at, \
           next_attempt_at, series_started_at) \
         SELECT id, app_id, $1, $2, $3, $4, $4, $4 FROM webhooks WHERE app_id = {app} AND events LIKE $6"
    );
    for event in events {
        sqlx::query(&sql)
            .bind(event.id.as_str())
            .bind(event.event_type.as_str())
            .bind(event.body.as_str())
            .bind(event.created_at)
            .bind(scope_id)
            .bind(EventTypes::pattern(event.event_type))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Outbox rows one insert writes (8 parameters each: well under either
/// engine's limit). Each statement costs a trip to SQLite's writer thread,
/// so a batch of messages goes in a few.
const ROWS_PER_INSERT: usize = 500;

/// A webhook that receives a batch's `message.created` events: (room id,
/// room name, webhook id, app id), as [`message_webhooks_sql`] finds them.
pub type MessageWebhook = (i64, String, i64, i64);

/// The query finding the [`MessageWebhook`]s of a batch's rooms, given how
/// its two parameters are spelled: the events pattern
/// ([`message_webhooks_pattern`]) and the subquery listing the room ids.
pub fn message_webhooks_sql(pattern: &str, room_ids: &str) -> String {
    format!(
        "SELECT r.id, r.name, w.id, w.app_id FROM webhooks w JOIN rooms r ON r.app_id = w.app_id \
         WHERE w.events LIKE {pattern} AND r.id IN ({room_ids})"
    )
}

/// The events pattern [`message_webhooks_sql`] is bound to.
pub fn message_webhooks_pattern() -> String {
    EventTypes::pattern(EventType::MessageCreated)
}

/// The ids of the rooms of `batch`, as the JSON array
/// [`message_webhooks_sql`]'s room list reads.
fn batch_room_ids(batch: &[StoredMessage]) -> String {
    let mut room_ids: Vec<i64> = batch.iter().map(|message| message.room_id).collect();
    room_ids.sort_unstable();
    room_ids.dedup();
    json_array(&room_ids)
}

/// Writes the `message.created` events of `batch` (being appended in the
/// caller's transaction) for the webhooks that receive them: one query per
/// batch finds the batch's rooms' webhooks (and is all there is while none
/// receives messages), then [`insert_message_events_for`].
pub async fn insert_message_events<B: Backend>(
    conn: &mut <B::Db as Database>::Connection,
    batch: &[StoredMessage],
) -> Result<(), StoreError>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> MessageWebhook: FromRow<'r, <B::Db as Database>::Row>,
{
    let sql = message_webhooks_sql("$1", &B::ids_in_json(2));
    let webhooks: Vec<MessageWebhook> =
        sqlx::query_as(&sql).bind(message_webhooks_pattern()).bind(batch_room_ids(batch)).fetch_all(&mut *conn).await?;
    insert_message_events_for::<B>(conn, batch, webhooks).await
}

/// Writes the `message.created` events of `batch` for `webhooks`, found by
/// [`message_webhooks_sql`] in the caller's transaction: one insert per
/// [`ROWS_PER_INSERT`] deliveries, its parameters spelled as the backend
/// reads them fastest. Nothing to write (no webhook receives messages) costs
/// no statement.
pub async fn insert_message_events_for<B: Backend>(
    conn: &mut <B::Db as Database>::Connection,
    batch: &[StoredMessage],
    mut webhooks: Vec<MessageWebhook>,
) -> Result<(), StoreError>
where
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
{
    webhooks.sort_unstable_by_key(|(room_id, ..)| *room_id);
    let parameters = B::MANY_PARAMETERS;
    for of_room in webhooks.chunk_by(|one, other| one.0 == other.0) {
        let (room_id, room) = (of_room[0].0, of_room[0].1.as_str());
        let events: Vec<NewEvent> = batch
            .iter()
            .filter(|message| message.room_id == room_id)
            .map(|message| crate::webhooks::event::message_created(room, message))
            .collect::<Result<_, _>>()
            .map_err(|err| StoreError::Corrupt(format!("message of room {room_id}: {err}")))?;
        let deliveries: Vec<(i64, i64, &NewEvent)> = events
            .iter()
            .flat_map(|event| of_room.iter().map(move |(_, _, webhook_id, app_id)| (*webhook_id, *app_id, event)))
            .collect();
        for chunk in deliveries.chunks(ROWS_PER_INSERT) {
            let mut next = 0;
            let rows: Vec<String> = chunk
                .iter()
                .map(|_| {
                    let values: Vec<String> = (0..8)
                        .map(|_| {
                            next += 1;
                            parameters.placeholder(next)
                        })
                        .collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO webhook_deliveries (webhook_id, app_id, event_id, event_type, body, created_at, \
                   next_attempt_at, series_started_at) VALUES {}",
                rows.join(", ")
            );
            let mut insert = sqlx::query(&sql);
            for (webhook_id, app_id, event) in chunk {
                insert = insert
                    .bind(*webhook_id)
                    .bind(*app_id)
                    .bind(event.id.as_str())
                    .bind(event.event_type.as_str())
                    .bind(event.body.as_str())
                    .bind(event.created_at)
                    .bind(event.created_at)
                    .bind(event.created_at);
            }
            insert.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

// The outbox's queries. Each reads one of the partial indexes of migration
// 0013 and repeats its condition word for word, which is how SQLite knows
// it may use it; none reads the outbox whole (a test asks SQLite's plans).

/// The apps with deliveries due at `$1` and not leased: one probe of
/// `webhook_deliveries_pending` per app with webhooks.
pub const APPS_WITH_DUE_DELIVERIES_SQL: &str = "SELECT DISTINCT w.app_id FROM webhooks w WHERE EXISTS ( \
       SELECT 1 FROM webhook_deliveries d WHERE d.app_id = w.app_id AND d.state = 'pending' \
       AND d.next_attempt_at <= $1 AND d.lease_until <= $1)";

/// Leases until `$1` at most `$3` of app `$4`'s deliveries due at `$2`,
/// oldest due first (`webhook_deliveries_pending`). The outer
/// `lease_until <= $2` is checked again on each row once its lock is held
/// (PostgreSQL re-reads a row another transaction updated), so of two nodes
/// leasing at once one gets each row.
pub const LEASE_DELIVERIES_SQL: &str = "UPDATE webhook_deliveries SET lease_until = $1 \
     WHERE id IN ( \
       SELECT id FROM webhook_deliveries \
       WHERE app_id = $4 AND state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2 \
       ORDER BY next_attempt_at LIMIT $3) \
     AND state = 'pending' AND lease_until <= $2 \
     RETURNING id, app_id, event_id, body, attempts, series_started_at, \
       (SELECT w.url FROM webhooks w WHERE w.id = webhook_id) AS url, \
       (SELECT w.secret FROM webhooks w WHERE w.id = webhook_id) AS secret";

/// At most `$1` webhooks with failed or retrying deliveries, most failures
/// first: reads only those deliveries (`webhook_deliveries_failing`).
pub const FAILING_WEBHOOKS_SQL: &str = "SELECT a.name AS app_name, w.public_id, w.url, \
       CAST(SUM(CASE WHEN d.state = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
       CAST(SUM(CASE WHEN d.state = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS retrying \
     FROM webhooks w JOIN apps a ON a.id = w.app_id JOIN webhook_deliveries d ON d.webhook_id = w.id \
     WHERE d.state = 'failed' OR (d.state = 'pending' AND d.attempts > 0) \
     GROUP BY a.name, w.public_id, w.url ORDER BY failed DESC, retrying DESC, w.public_id LIMIT $1";

/// Deletes a slice of finished deliveries (`$1`: ended before, `$2`: at
/// most this many), those that ended first (`webhook_deliveries_finished`):
/// without that index every prune read the whole outbox, bodies included,
/// while holding the writer.
pub const PRUNE_DELIVERIES_SQL: &str = "DELETE FROM webhook_deliveries WHERE id IN ( \
       SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1 \
       ORDER BY finished_at LIMIT $2)";

/// Rows a count quota counts, and the row they belong to.
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    parent: &'static str,
    rows: &'static str,
    parent_column: &'static str,
}

/// Rooms per app (`rooms_per_app`).
pub const ROOMS_OF_APP: Counted = Counted { parent: "apps", rows: "rooms", parent_column: "app_id" };
/// Endpoints per room (`endpoints_per_room`).
const ENDPOINTS_OF_ROOM: Counted = Counted { parent: "rooms", rows: "endpoints", parent_column: "room_id" };
/// Webhooks per app (`webhooks_per_app`).
const WEBHOOKS_OF_APP: Counted = Counted { parent: "apps", rows: "webhooks", parent_column: "app_id" };
/// Apps per portal account (`apps_per_account`).
const APPS_OF_ACCOUNT: Counted = Counted { parent: "accounts", rows: "apps", parent_column: "owner_id" };

/// Counts `counted`'s rows under `parent_id`, inside the creating
/// transaction, after locking the parent row with `lock_row` (see
/// [`Backend::LOCK_ROW`]).
///
/// # Errors
///
/// [`StoreError::ParentMissing`] when the parent is gone,
/// [`StoreError::Full`] when it has `at_most` rows already.
pub async fn ensure_below<DB: Database>(
    conn: &mut DB::Connection,
    counted: Counted,
    parent_id: i64,
    at_most: u64,
    lock_row: &str,
) -> Result<(), StoreError>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let Counted { parent, rows, parent_column } = counted;
    let lock = format!("SELECT id FROM {parent} WHERE id = $1{lock_row}");
    let found: Option<i64> = sqlx::query_scalar(&lock).bind(parent_id).fetch_optional(&mut *conn).await?;
    if found.is_none() {
        return Err(StoreError::ParentMissing);
    }
    let count = format!("SELECT COUNT(*) FROM {rows} WHERE {parent_column} = $1");
    let count: i64 = sqlx::query_scalar(&count).bind(parent_id).fetch_one(&mut *conn).await?;
    if u64::try_from(count).unwrap_or(0) >= at_most {
        return Err(StoreError::Full);
    }
    Ok(())
}

const APP_COLUMNS: &str = "a.id, a.name, a.status, a.owner_id, a.created_at, a.allowed_origins, a.quotas";

const ROOM_COLUMNS: &str = "r.id, r.app_id, r.name, r.created_at, \
     (SELECT COUNT(*) FROM endpoints e WHERE e.room_id = r.id) AS endpoint_count, r.presence";

const ENDPOINT_COLUMNS: &str =
    "e.id, e.public_id, e.code, e.room_id, r.name AS room_name, r.presence AS room_presence, e.permission, e.meta, \
     e.created_at, e.max_connections, e.single_use, e.used_at, e.expires_at, e.max_messages, e.messages_sent, \
     e.can_delegate, e.parent_id, (SELECT p.public_id FROM endpoints p WHERE p.id = e.parent_id) AS parent_public_id, \
     e.depth, e.revision, e.key_id";

/// The endpoint columns and the app's, for [`EndpointAccess`].
const ACCESS_COLUMNS: &str = "a.status AS app_status, a.allowed_origins, a.id AS app_id, a.quotas AS app_quotas";

const WEBHOOK_COLUMNS: &str = "id, public_id, app_id, url, events, secret, created_at";

const ACCOUNT_COLUMNS: &str = "id, email, password_hash, is_admin, created_at, email_verified, session_epoch";

const INSERT_KEY: &str = "INSERT INTO api_keys (app_id, key_hash, created_at) VALUES ($1, $2, $3)";

const REVOKE_KEYS: &str = "UPDATE api_keys SET revoked_at = $1 WHERE app_id = $2 AND revoked_at IS NULL";

/// Records a change to app `$1` at `$2`, in the transaction making it.
const RECORD_CHANGE: &str = "INSERT INTO app_changes (app_id, at) VALUES ($1, $2)";

/// Runs `update` (`$1` the new value, `$2` the app's id) and records the
/// change, in one transaction (see [`crate::changes`]).
async fn change_app<DB: Database>(writer: &Pool<DB>, update: &str, value: String, app_id: i64) -> Result<(), StoreError>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let mut tx = writer.begin().await?;
    sqlx::query(update).bind(value).bind(app_id).execute(&mut *tx).await?;
    sqlx::query(RECORD_CHANGE).bind(app_id).bind(now_ms()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl<B> Store for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    // What the statements bind and the records decode (through the impls
    // `FromRow` derives, which ask for just these).
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db>,
    for<'q> Option<String>: Encode<'q, B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db> + ColumnIndex<<B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        sqlx::query("SELECT 1").execute(self.writer()).await?;
        Ok(())
    }

    async fn create_app(&self, new: NewApp, at_most: Option<u64>) -> Result<AppRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.writer().begin().await?;
        if let (Some(owner), Some(at_most)) = (new.owner_id, at_most) {
            ensure_below(&mut *tx, APPS_OF_ACCOUNT, owner, at_most, B::LOCK_ROW).await?;
        }
        let app: AppRecord = sqlx::query_as(
            "INSERT INTO apps (name, status, owner_id, description, website, intended_use, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING id, name, status, owner_id, created_at, allowed_origins, quotas",
        )
        .bind(new.name.as_str())
        .bind(new.status.as_str())
        .bind(new.owner_id)
        .bind(new.profile.description)
        .bind(new.profile.website)
        .bind(new.profile.intended_use)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(refused_or)?;
        if let Some(key) = new.key {
            sqlx::query(INSERT_KEY).bind(app.id).bind(key.to_hex()).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(app)
    }

    async fn app_by_name(&self, name: &AppName) -> Result<Option<AppRecord>, StoreError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.name = $1");
        Ok(sqlx::query_as(&sql).bind(name.as_str()).fetch_optional(self.reader()).await?)
    }

    async fn list_apps(&self, filter: AppFilter) -> Result<Vec<AppSummary>, StoreError> {
        let (owner, id) = match filter {
            AppFilter::All => (None, None),
            AppFilter::OwnedBy(owner) => (Some(owner), None),
            AppFilter::Id(id) => (None, Some(id)),
        };
        let sql = format!(
            "SELECT {APP_COLUMNS}, a.description, a.website, a.intended_use, \
               (SELECT email FROM accounts o WHERE o.id = a.owner_id) AS owner_email, \
               (SELECT COUNT(*) FROM api_keys k WHERE k.app_id = a.id AND k.revoked_at IS NULL) AS active_keys, \
               (SELECT COUNT(*) FROM rooms r WHERE r.app_id = a.id) AS rooms \
             FROM apps a WHERE (CAST($1 AS BIGINT) IS NULL OR a.owner_id = $1) \
               AND (CAST($2 AS BIGINT) IS NULL OR a.id = $2) ORDER BY a.id"
        );
        Ok(sqlx::query_as(&sql).bind(owner).bind(id).fetch_all(self.reader()).await?)
    }

    async fn set_app_quotas(&self, app_id: i64, quotas: &QuotaOverrides) -> Result<(), StoreError> {
        change_app(self.writer(), "UPDATE apps SET quotas = $1 WHERE id = $2", quotas.to_stored(), app_id).await
    }

    async fn set_app_status(&self, app_id: i64, status: AppStatus) -> Result<(), StoreError> {
        change_app(self.writer(), "UPDATE apps SET status = $1 WHERE id = $2", status.as_str().to_owned(), app_id).await
    }

    async fn set_allowed_origins(&self, app_id: i64, origins: &AllowedOrigins) -> Result<(), StoreError> {
        change_app(self.writer(), "UPDATE apps SET allowed_origins = $1 WHERE id = $2", origins.to_stored(), app_id)
            .await
    }

    async fn replace_api_keys(
        &self,
        app_id: i64,
        new: ApiKeyHash,
        with_endpoints: bool,
    ) -> Result<Vec<RevokedEndpoint>, StoreError> {
        let now = now_ms();
        let mut tx = self.writer().begin().await?;
        let revoked: Vec<RevokedEndpoint> = if with_endpoints {
            sqlx::query_as(
                "DELETE FROM endpoints WHERE key_id IN \
                   (SELECT id FROM api_keys WHERE app_id = $1 AND revoked_at IS NULL) \
                 RETURNING room_id, id",
            )
            .bind(app_id)
            .fetch_all(&mut *tx)
            .await?
        } else {
            Vec::new()
        };
        sqlx::query(REVOKE_KEYS).bind(now).bind(app_id).execute(&mut *tx).await?;
        sqlx::query(INSERT_KEY).bind(app_id).bind(new.to_hex()).bind(now).execute(&mut *tx).await?;
        sqlx::query(RECORD_CHANGE).bind(app_id).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn revoke_api_keys(&self, app_id: i64) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(REVOKE_KEYS).bind(now).bind(app_id).execute(&mut *tx).await?;
        sqlx::query(RECORD_CHANGE).bind(app_id).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(B::rows_affected(&done))
    }

    async fn delete_app(&self, app_id: i64) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM apps WHERE id = $1").bind(app_id).execute(&mut *tx).await?;
        sqlx::query(RECORD_CHANGE).bind(app_id).bind(now_ms()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn app_changes_after(&self, after_id: i64) -> Result<Vec<AppChange>, StoreError> {
        Ok(sqlx::query_as("SELECT id, app_id FROM app_changes WHERE id > $1 ORDER BY id")
            .bind(after_id)
            .fetch_all(self.reader())
            .await?)
    }

    async fn last_app_change(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), CAST(0 AS BIGINT)) FROM app_changes")
            .fetch_one(self.reader())
            .await?)
    }

    async fn prune_app_changes(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM app_changes WHERE at < $1").bind(before_ms).execute(self.writer()).await?;
        Ok(B::rows_affected(&done))
    }

    async fn create_account(&self, new: NewAccount<'_>) -> Result<AccountRecord, StoreError> {
        let sql = format!(
            "INSERT INTO accounts (email, password_hash, is_admin, email_verified, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {ACCOUNT_COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(new.email)
            .bind(new.password_hash)
            .bind(new.is_admin)
            .bind(new.email_verified)
            .bind(now_ms())
            .fetch_one(self.writer())
            .await
            .map_err(refused_or)
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1");
        Ok(sqlx::query_as(&sql).bind(email).fetch_optional(self.reader()).await?)
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<AccountRecord>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(self.reader()).await?)
    }

    async fn insert_account_token(
        &self,
        account_id: i64,
        purpose: TokenPurpose,
        hash: MailedTokenHash,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM account_tokens WHERE expires_at < $1").bind(now_ms()).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO account_tokens (token_hash, account_id, purpose, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash.to_hex())
            .bind(account_id)
            .bind(purpose.as_str())
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(refused_or)?;
        tx.commit().await?;
        Ok(())
    }

    async fn account_token(
        &self,
        purpose: TokenPurpose,
        hash: MailedTokenHash,
    ) -> Result<Option<AccountToken>, StoreError> {
        Ok(sqlx::query_as("SELECT account_id, expires_at FROM account_tokens WHERE token_hash = $1 AND purpose = $2")
            .bind(hash.to_hex())
            .bind(purpose.as_str())
            .fetch_optional(self.reader())
            .await?)
    }

    async fn take_account_token(
        &self,
        purpose: TokenPurpose,
        hash: MailedTokenHash,
    ) -> Result<Option<AccountToken>, StoreError> {
        Ok(sqlx::query_as(
            "DELETE FROM account_tokens WHERE token_hash = $1 AND purpose = $2 RETURNING account_id, expires_at",
        )
        .bind(hash.to_hex())
        .bind(purpose.as_str())
        .fetch_optional(self.writer())
        .await?)
    }

    async fn confirm_email(&self, account_id: i64) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("UPDATE accounts SET email_verified = $1 WHERE id = $2")
            .bind(true)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM account_tokens WHERE account_id = $1 AND purpose = $2")
            .bind(account_id)
            .bind(TokenPurpose::ConfirmEmail.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reset_password(&self, account_id: i64, password_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        let mut tx = self.writer().begin().await?;
        let sql = format!(
            "UPDATE accounts SET password_hash = $1, email_verified = $2, session_epoch = session_epoch + 1 \
             WHERE id = $3 RETURNING {ACCOUNT_COLUMNS}"
        );
        let account: Option<AccountRecord> =
            sqlx::query_as(&sql).bind(password_hash).bind(true).bind(account_id).fetch_optional(&mut *tx).await?;
        sqlx::query("DELETE FROM account_tokens WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn server_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now_ms())
        .execute(self.writer())
        .await?;
        Ok(sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.reader())
            .await?)
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, app_name, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(entry.at)
            .bind(entry.actor.as_str())
            .bind(entry.action.as_str())
            .bind(entry.app_name.as_str())
            .bind(entry.detail.as_str())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as("SELECT at, actor, action, app_name, detail FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(stored_int(limit))
            .fetch_all(self.reader())
            .await?)
    }

    async fn app_by_key(&self, key: ApiKeyHash) -> Result<Option<KeyOwner>, StoreError> {
        let sql = format!(
            "SELECT {APP_COLUMNS}, k.id AS key_id FROM api_keys k JOIN apps a ON a.id = k.app_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
        );
        Ok(sqlx::query_as(&sql).bind(key.to_hex()).fetch_optional(self.reader()).await?)
    }

    async fn create_room(&self, app_id: i64, room: &NewRoom, at_most: Option<u64>) -> Result<RoomRecord, StoreError> {
        Backend::create_room(self, app_id, room, at_most).await
    }

    async fn room(&self, app_id: i64, name: &RoomName) -> Result<Option<RoomRecord>, StoreError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.app_id = $1 AND r.name = $2");
        Ok(sqlx::query_as(&sql).bind(app_id).bind(name.as_str()).fetch_optional(self.reader()).await?)
    }

    async fn room_by_id(&self, room_id: i64) -> Result<Option<RoomRecord>, StoreError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = $1");
        Ok(sqlx::query_as(&sql).bind(room_id).fetch_optional(self.reader()).await?)
    }

    async fn list_rooms(&self, app_id: i64) -> Result<Vec<RoomRecord>, StoreError> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.app_id = $1 ORDER BY r.id");
        Ok(sqlx::query_as(&sql).bind(app_id).fetch_all(self.reader()).await?)
    }

    async fn delete_room(&self, app_id: i64, name: &RoomName, events: &[NewEvent]) -> Result<Option<i64>, StoreError> {
        let mut tx = self.writer().begin().await?;
        let deleted: Option<i64> = sqlx::query_scalar("DELETE FROM rooms WHERE app_id = $1 AND name = $2 RETURNING id")
            .bind(app_id)
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if deleted.is_some() {
            insert_events(&mut *tx, Scope::App(app_id), events).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn create_endpoint(&self, new: NewEndpoint, at_most: Option<u64>) -> Result<EndpointRecord, StoreError> {
        let insert = sqlx::query_scalar(
            "INSERT INTO endpoints (public_id, code, room_id, permission, meta, created_at, key_id, max_connections, \
               single_use, expires_at, max_messages, can_delegate, parent_id, depth) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.code)
        .bind(new.room_id)
        .bind(new.permission.as_str())
        .bind(new.meta)
        .bind(new.created_at)
        .bind(new.key_id)
        .bind(new.limits.max_connections.map(stored_count))
        .bind(new.limits.single_use)
        .bind(new.limits.expires_at)
        .bind(new.limits.max_messages.map(stored_count))
        .bind(new.can_delegate)
        .bind(new.parent.map(|lineage| lineage.parent_id))
        .bind(new.parent.map_or(1, |lineage| lineage.depth));
        let mut tx = self.writer().begin().await?;
        if let Some(at_most) = at_most {
            ensure_below(&mut *tx, ENDPOINTS_OF_ROOM, new.room_id, at_most, B::LOCK_ROW).await?;
        }
        let id: i64 = insert.fetch_one(&mut *tx).await.map_err(refused_or)?;
        let sql =
            format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id WHERE e.id = $1");
        let endpoint = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
        insert_events(&mut *tx, Scope::Room(new.room_id), &new.events).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn list_endpoints(&self, room_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE e.room_id = $1 ORDER BY e.id"
        );
        Ok(sqlx::query_as(&sql).bind(room_id).fetch_all(self.reader()).await?)
    }

    async fn list_app_endpoints(&self, app_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE r.app_id = $1 ORDER BY e.id"
        );
        Ok(sqlx::query_as(&sql).bind(app_id).fetch_all(self.reader()).await?)
    }

    async fn endpoint_in_room(&self, room_id: i64, code: &str) -> Result<Option<EndpointRecord>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE e.room_id = $1 AND e.code = $2"
        );
        Ok(sqlx::query_as(&sql).bind(room_id).bind(code).fetch_optional(self.reader()).await?)
    }

    async fn descendants(&self, endpoint_id: i64) -> Result<Vec<EndpointRecord>, StoreError> {
        let sql = format!(
            "WITH RECURSIVE subtree (id) AS ( \
               SELECT id FROM endpoints WHERE parent_id = $1 \
               UNION ALL SELECT c.id FROM endpoints c JOIN subtree s ON c.parent_id = s.id) \
             SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE e.id IN (SELECT id FROM subtree) ORDER BY e.depth, e.id"
        );
        Ok(sqlx::query_as(&sql).bind(endpoint_id).fetch_all(self.writer()).await?)
    }

    async fn update_endpoint(
        &self,
        endpoint_id: i64,
        settings: &EndpointSettings,
    ) -> Result<Option<EndpointRecord>, StoreError> {
        let mut tx = self.writer().begin().await?;
        // A new expiry is announced again when it comes.
        sqlx::query(
            "UPDATE endpoints SET permission = $1, meta = $2, \
               expiry_announced = CASE WHEN expires_at = $3 THEN expiry_announced ELSE FALSE END, \
               expires_at = $3, max_messages = $4, max_connections = $5, revision = revision + 1 WHERE id = $6",
        )
        .bind(settings.permission.as_str())
        .bind(&settings.meta)
        .bind(settings.limits.expires_at)
        .bind(settings.limits.max_messages.map(stored_count))
        .bind(settings.limits.max_connections.map(stored_count))
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await?;
        let sql =
            format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints e JOIN rooms r ON r.id = e.room_id WHERE e.id = $1");
        let endpoint = sqlx::query_as(&sql).bind(endpoint_id).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    async fn delete_endpoint(
        &self,
        room_id: i64,
        code: &str,
        app_id: i64,
        events: &[NewEvent],
    ) -> Result<Vec<i64>, StoreError> {
        // The foreign key would delete the children by itself; listing the
        // subtree first is what lets their sockets be closed too.
        let mut tx = self.writer().begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "WITH RECURSIVE subtree (id, depth) AS ( \
               SELECT id, depth FROM endpoints WHERE room_id = $1 AND code = $2 \
               UNION ALL SELECT c.id, c.depth FROM endpoints c JOIN subtree s ON c.parent_id = s.id) \
             SELECT id FROM subtree ORDER BY depth, id",
        )
        .bind(room_id)
        .bind(code)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(root) = ids.first() {
            sqlx::query("DELETE FROM endpoints WHERE id = $1").bind(root).execute(&mut *tx).await?;
            insert_events(&mut *tx, Scope::App(app_id), events).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn spend_budget(&self, endpoint_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE endpoints SET messages_sent = messages_sent + 1 \
             WHERE id = $1 AND (max_messages IS NULL OR messages_sent < max_messages)",
        )
        .bind(endpoint_id)
        .execute(self.writer())
        .await?;
        Ok(B::rows_affected(&done) == 1)
    }

    async fn refund_budget(&self, endpoint_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE endpoints SET messages_sent = messages_sent - 1 WHERE id = $1 AND messages_sent > 0")
            .bind(endpoint_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn add_messages_sent(&self, counts: &[(i64, u64)]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        for (endpoint_id, sent) in counts {
            sqlx::query("UPDATE endpoints SET messages_sent = messages_sent + $1 WHERE id = $2")
                .bind(stored_count(*sent))
                .bind(endpoint_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn redact_messages(&self, room_id: i64, seqs: &[u64], at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        for seq in seqs {
            sqlx::query(
                "UPDATE messages SET payload = 'null', redacted_at = $1 \
                 WHERE room_id = $2 AND seq = $3 AND redacted_at IS NULL",
            )
            .bind(at_ms)
            .bind(room_id)
            .bind(stored_count(*seq))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_single_use(&self, endpoint_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE endpoints SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now_ms())
            .bind(endpoint_id)
            .execute(self.writer())
            .await?;
        Ok(B::rows_affected(&done) == 1)
    }

    async fn endpoint_by_id(&self, endpoint_id: i64) -> Result<Option<EndpointAccess>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS}, {ACCESS_COLUMNS} \
             FROM endpoints e JOIN rooms r ON r.id = e.room_id JOIN apps a ON a.id = r.app_id WHERE e.id = $1"
        );
        Ok(sqlx::query_as(&sql).bind(endpoint_id).fetch_optional(self.reader()).await?)
    }

    async fn endpoint_by_code(&self, code: &str) -> Result<Option<EndpointAccess>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS}, {ACCESS_COLUMNS} \
             FROM endpoints e JOIN rooms r ON r.id = e.room_id JOIN apps a ON a.id = r.app_id \
             WHERE e.code = $1"
        );
        Ok(sqlx::query_as(&sql).bind(code).fetch_optional(self.reader()).await?)
    }

    async fn append_messages(&self, batch: &[StoredMessage], keep_per_room: usize) -> Result<(), StoreError> {
        Backend::append_messages(self, batch, keep_per_room).await
    }

    async fn load_history(&self, room_id: i64, limit: usize, since_ms: i64) -> Result<Option<RoomHistory>, StoreError> {
        let seqs: Option<(i64, i64)> = sqlx::query_as("SELECT last_seq, reserved_seq FROM rooms WHERE id = $1")
            .bind(room_id)
            .fetch_optional(self.reader())
            .await?;
        let Some((last_seq, reserved_seq)) = seqs else { return Ok(None) };
        let mut messages: Vec<StoredMessage> = sqlx::query_as(
            "SELECT room_id, seq, id, created_at, sender_id, sender_meta, payload, sender_parent, redacted_at, nonce \
             FROM messages \
             WHERE room_id = $1 AND created_at >= $2 ORDER BY seq DESC LIMIT $3",
        )
        .bind(room_id)
        .bind(since_ms)
        .bind(stored_int(limit))
        .fetch_all(self.reader())
        .await?;
        messages.reverse();
        Ok(Some(RoomHistory { last_seq: last_seq.max(reserved_seq) as u64, messages }))
    }

    async fn prune_history(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM messages WHERE created_at < $1").bind(before_ms).execute(self.writer()).await?;
        Ok(B::rows_affected(&done))
    }

    async fn reserve_seq(&self, room_id: i64, up_to: u64) -> Result<(), StoreError> {
        // Only ever raised: several nodes may reserve in one room.
        sqlx::query("UPDATE rooms SET reserved_seq = $1 WHERE id = $2 AND reserved_seq < $1")
            .bind(up_to as i64)
            .bind(room_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn release_seq_reservation(&self, room_id: i64, last_seq: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE rooms SET reserved_seq = last_seq WHERE id = $1 AND last_seq = $2")
            .bind(room_id)
            .bind(last_seq as i64)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn record_events(&self, app_id: i64, events: &[NewEvent]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        insert_events(&mut *tx, Scope::App(app_id), events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_room_events(&self, room_id: i64, events: &[NewEvent]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        insert_events(&mut *tx, Scope::Room(room_id), events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unannounced_expiries(&self, now_ms: i64, limit: u64) -> Result<Vec<(i64, EndpointRecord)>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS}, r.app_id FROM endpoints e JOIN rooms r ON r.id = e.room_id \
             WHERE e.expires_at <= $1 AND NOT e.expiry_announced ORDER BY e.expires_at LIMIT $2"
        );
        let rows: Vec<ExpiredEndpoint> =
            sqlx::query_as(&sql).bind(now_ms).bind(stored_count(limit)).fetch_all(self.writer()).await?;
        Ok(rows.into_iter().map(|row| (row.app_id, row.endpoint)).collect())
    }

    async fn announce_expiry(
        &self,
        endpoint_id: i64,
        expires_at: i64,
        app_id: i64,
        events: &[NewEvent],
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE endpoints SET expiry_announced = TRUE WHERE id = $1 AND expires_at = $2 AND NOT expiry_announced",
        )
        .bind(endpoint_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        let marked = B::rows_affected(&done) == 1;
        if marked {
            insert_events(&mut *tx, Scope::App(app_id), events).await?;
        }
        tx.commit().await?;
        Ok(marked)
    }

    async fn create_webhook(&self, new: NewWebhook, at_most: Option<u64>) -> Result<WebhookRecord, StoreError> {
        let mut tx = self.writer().begin().await?;
        if let Some(at_most) = at_most {
            ensure_below(&mut *tx, WEBHOOKS_OF_APP, new.app_id, at_most, B::LOCK_ROW).await?;
        }
        let sql = format!(
            "INSERT INTO webhooks (public_id, app_id, url, events, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {WEBHOOK_COLUMNS}"
        );
        let webhook = sqlx::query_as(&sql)
            .bind(new.public_id)
            .bind(new.app_id)
            .bind(new.url)
            .bind(new.events.to_stored())
            .bind(new.secret)
            .bind(new.created_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(refused_or)?;
        tx.commit().await?;
        Ok(webhook)
    }

    async fn list_webhooks(&self, app_id: i64) -> Result<Vec<WebhookRecord>, StoreError> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE app_id = $1 ORDER BY id");
        Ok(sqlx::query_as(&sql).bind(app_id).fetch_all(self.reader()).await?)
    }

    async fn webhook(&self, app_id: i64, public_id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE app_id = $1 AND public_id = $2");
        Ok(sqlx::query_as(&sql).bind(app_id).bind(public_id).fetch_optional(self.reader()).await?)
    }

    async fn delete_webhook(&self, app_id: i64, public_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE app_id = $1 AND public_id = $2")
            .bind(app_id)
            .bind(public_id)
            .execute(self.writer())
            .await?;
        Ok(B::rows_affected(&done) > 0)
    }

    async fn webhook_deliveries(&self, webhook_id: i64, limit: u64) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, event_id, event_type, state, attempts, next_attempt_at, last_status, last_error, created_at \
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(stored_count(limit))
        .fetch_all(self.reader())
        .await?)
    }

    async fn redeliver(&self, webhook_id: i64, delivery_id: i64, now_ms: i64) -> Result<bool, StoreError> {
        // A delivery being attempted right now keeps its lease: clearing it
        // would let another node attempt it at the same time.
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, series_started_at = $1, \
               finished_at = NULL \
             WHERE id = $2 AND webhook_id = $3 AND (state <> 'pending' OR lease_until <= $1)",
        )
        .bind(now_ms)
        .bind(delivery_id)
        .bind(webhook_id)
        .execute(self.writer())
        .await?;
        if B::rows_affected(&done) > 0 {
            return Ok(true);
        }
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2")
                .bind(delivery_id)
                .bind(webhook_id)
                .fetch_optional(self.reader())
                .await?;
        Ok(found.is_some())
    }

    async fn apps_with_due_deliveries(&self, now_ms: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(APPS_WITH_DUE_DELIVERIES_SQL).bind(now_ms).fetch_all(self.reader()).await?)
    }

    async fn lease_deliveries(&self, lease: Lease) -> Result<Vec<DueDelivery>, StoreError> {
        Ok(sqlx::query_as(LEASE_DELIVERIES_SQL)
            .bind(lease.until)
            .bind(lease.now)
            .bind(stored_count(lease.limit))
            .bind(lease.app_id)
            .fetch_all(self.writer())
            .await?)
    }

    async fn finish_attempts(&self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        // Nearly every attempt succeeds: those are finished by one statement
        // per answered status (each statement is a trip to SQLite's writer
        // thread), at the batch's latest attempt's time.
        let mut delivered: BTreeMap<Option<u16>, (Vec<i64>, i64)> = BTreeMap::new();
        let mut tx = self.writer().begin().await?;
        for outcome in outcomes {
            if outcome.state == DeliveryState::Delivered {
                let (ids, at) = delivered.entry(outcome.status).or_default();
                ids.push(outcome.id);
                *at = (*at).max(outcome.at);
                continue;
            }
            let finished = (outcome.state != DeliveryState::Pending).then_some(outcome.at);
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, \
                   lease_until = 0, last_status = $3, last_error = $4, finished_at = $5 WHERE id = $6",
            )
            .bind(outcome.state.as_str())
            .bind(outcome.next_attempt_at)
            .bind(outcome.status.map(i64::from))
            .bind(outcome.error.clone())
            .bind(finished)
            .bind(outcome.id)
            .execute(&mut *tx)
            .await?;
        }
        for (status, (ids, at)) in delivered {
            let sql = format!(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, next_attempt_at = $1, \
                   lease_until = 0, last_status = $2, last_error = NULL, finished_at = $1 WHERE id IN ({})",
                B::ids_in_json(3)
            );
            sqlx::query(&sql).bind(at).bind(status.map(i64::from)).bind(json_array(&ids)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_deliveries(&self, before_ms: i64, limit: u64) -> Result<u64, StoreError> {
        let done =
            sqlx::query(PRUNE_DELIVERIES_SQL).bind(before_ms).bind(stored_count(limit)).execute(self.writer()).await?;
        Ok(B::rows_affected(&done))
    }

    async fn failing_webhooks(&self, limit: u64) -> Result<Vec<FailingWebhook>, StoreError> {
        Ok(sqlx::query_as(FAILING_WEBHOOKS_SQL).bind(stored_count(limit)).fetch_all(self.reader()).await?)
    }

    async fn add_usage(&self, node: &str, minute_start: i64, counts: &[(i64, UsageCounts)]) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        for (app_id, counts) in counts {
            for granularity in Granularity::ALL {
                sqlx::query(ADD_USAGE_SQL)
                    .bind(app_id)
                    .bind(granularity.as_str())
                    .bind(granularity.period_start(minute_start))
                    .bind(node)
                    .bind(stored_count(counts.connections_peak))
                    .bind(stored_count(counts.messages_in))
                    .bind(stored_count(counts.messages_out))
                    .bind(stored_count(counts.bytes_in))
                    .bind(stored_count(counts.bytes_out))
                    .bind(stored_count(counts.signals))
                    .bind(stored_count(counts.webhook_deliveries))
                    .bind(stored_count(counts.refused_quota))
                    .bind(stored_count(counts.refused_rate))
                    .bind(stored_count(counts.refused_depth))
                    .bind(stored_count(counts.refused_credentials))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn usage(
        &self,
        app_id: i64,
        granularity: Granularity,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let sql = format!(
            "SELECT period_start, node, {USAGE_COLUMNS} FROM app_usage \
             WHERE app_id = $1 AND granularity = $2 AND period_start >= $3 AND period_start < $4 \
             ORDER BY period_start, node"
        );
        Ok(sqlx::query_as(&sql)
            .bind(app_id)
            .bind(granularity.as_str())
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(self.reader())
            .await?)
    }

    async fn busiest_apps(&self, since_ms: i64, limit: u64) -> Result<Vec<AppUsageTotal>, StoreError> {
        // Nodes add up within an hour; over the hours, the peak is the
        // highest and the rest add up.
        let sql = format!(
            "SELECT a.name AS app_name, CAST(MAX(h.connections_peak) AS BIGINT) AS connections_peak, \
               CAST(SUM(h.messages_in) AS BIGINT) AS messages_in, \
               CAST(SUM(h.messages_out) AS BIGINT) AS messages_out, \
               CAST(SUM(h.bytes_in) AS BIGINT) AS bytes_in, \
               CAST(SUM(h.bytes_out) AS BIGINT) AS bytes_out, \
               CAST(SUM(h.signals) AS BIGINT) AS signals, \
               CAST(SUM(h.webhook_deliveries) AS BIGINT) AS webhook_deliveries, \
               CAST(SUM(h.refused_quota) AS BIGINT) AS refused_quota, \
               CAST(SUM(h.refused_rate) AS BIGINT) AS refused_rate, \
               CAST(SUM(h.refused_depth) AS BIGINT) AS refused_depth, \
               CAST(SUM(h.refused_credentials) AS BIGINT) AS refused_credentials \
             FROM (SELECT app_id, period_start, {USAGE_SUMS} FROM app_usage \
                   WHERE granularity = 'hour' AND period_start >= $1 GROUP BY app_id, period_start) h \
             JOIN apps a ON a.id = h.app_id GROUP BY a.id, a.name \
             ORDER BY SUM(h.messages_in) + SUM(h.messages_out) DESC, a.name LIMIT $2"
        );
        Ok(sqlx::query_as(&sql).bind(since_ms).bind(stored_count(limit)).fetch_all(self.reader()).await?)
    }

    async fn prune_usage(&self, granularity: Granularity, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM app_usage WHERE granularity = $1 AND period_start < $2")
            .bind(granularity.as_str())
            .bind(before_ms)
            .execute(self.writer())
            .await?;
        Ok(B::rows_affected(&done))
    }
}

/// Adds one node's counts to one row of `app_usage`, unless the app was
/// deleted meanwhile (SQLite needs the `WHERE` of the `SELECT` to read
/// `ON CONFLICT` as the upsert's).
const ADD_USAGE_SQL: &str = "INSERT INTO app_usage (app_id, granularity, period_start, node, connections_peak, \
       messages_in, messages_out, bytes_in, bytes_out, signals, webhook_deliveries, \
       refused_quota, refused_rate, refused_depth, refused_credentials) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
     WHERE EXISTS (SELECT 1 FROM apps WHERE id = $1) \
     ON CONFLICT (app_id, granularity, period_start, node) DO UPDATE SET \
       connections_peak = CASE WHEN excluded.connections_peak > app_usage.connections_peak \
         THEN excluded.connections_peak ELSE app_usage.connections_peak END, \
       messages_in = app_usage.messages_in + excluded.messages_in, \
       messages_out = app_usage.messages_out + excluded.messages_out, \
       bytes_in = app_usage.bytes_in + excluded.bytes_in, \
       bytes_out = app_usage.bytes_out + excluded.bytes_out, \
       signals = app_usage.signals + excluded.signals, \
       webhook_deliveries = app_usage.webhook_deliveries + excluded.webhook_deliveries, \
       refused_quota = app_usage.refused_quota + excluded.refused_quota, \
       refused_rate = app_usage.refused_rate + excluded.refused_rate, \
       refused_depth = app_usage.refused_depth + excluded.refused_depth, \
       refused_credentials = app_usage.refused_credentials + excluded.refused_credentials";

/// The columns of [`UsageCounts`].
const USAGE_COLUMNS: &str = "connections_peak, messages_in, messages_out, bytes_in, bytes_out, signals, \
     webhook_deliveries, refused_quota, refused_rate, refused_depth, refused_credentials";

/// The columns of [`UsageCounts`], each summed over the grouped rows.
const USAGE_SUMS: &str = "CAST(SUM(connections_peak) AS BIGINT) AS connections_peak, \
     CAST(SUM(messages_in) AS BIGINT) AS messages_in, CAST(SUM(messages_out) AS BIGINT) AS messages_out, \
     CAST(SUM(bytes_in) AS BIGINT) AS bytes_in, CAST(SUM(bytes_out) AS BIGINT) AS bytes_out, \
     CAST(SUM(signals) AS BIGINT) AS signals, CAST(SUM(webhook_deliveries) AS BIGINT) AS webhook_deliveries, \
     CAST(SUM(refused_quota) AS BIGINT) AS refused_quota, CAST(SUM(refused_rate) AS BIGINT) AS refused_rate, \
     CAST(SUM(refused_depth) AS BIGINT) AS refused_depth, \
     CAST(SUM(refused_credentials) AS BIGINT) AS refused_credentials";

/// An endpoint past its expiry, with its app (see
/// [`Store::unannounced_expiries`]).
#[derive(sqlx::FromRow)]
struct ExpiredEndpoint {
    #[sqlx(flatten)]
    endpoint: EndpointRecord,
    app_id: i64,
}
