//! Group commit for room creation.
//!
//! Every statement sqlx runs on SQLite is a round trip to the connection's
//! worker thread, and every autocommitted insert is its own WAL commit. When
//! many rooms are created at once, the task here takes all pending requests
//! and inserts them with one multi-row statement: one round trip and one
//! commit for the whole batch. `ON CONFLICT DO NOTHING` keeps one taken name
//! from failing its neighbours; a request whose row is not returned was a
//! conflict. If the statement breaks a constraint as a whole (a request for
//! an app that no longer exists), each request is retried on its own so each
//! gets its own answer; any other failure is every request's failure.
//!
//! `rooms_per_app` is checked here too, before the insert: this task is the
//! only one creating rooms in this database, so it knows a bound on each
//! app's rooms (the count it last read plus the rooms it admitted since;
//! deletions only lower the truth). It counts again only when the bound
//! says a request would go over the quota: counting reads every room of
//! the app, which made creating rooms slower the more an app had.
//!
//! Each created room's webhook events are a statement of their own, so they
//! are written only for the apps that have a webhook.

use std::collections::{HashMap, HashSet};

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::store::sql::{insert_events, insert_room, json_array, refused_or, Scope, NEW_ROOM_COLUMNS};
use crate::store::{NewRoom, RoomRecord, StoreError};

/// Requests folded into one statement, at most (4 parameters each, far
/// under SQLite's limit).
const MAX_BATCH: usize = 256;

struct Request {
    app_id: i64,
    room: NewRoom,
    at_most: Option<u64>,
    reply: oneshot::Sender<Result<RoomRecord, StoreError>>,
}

/// Handle to the batching task; clones share it. The task ends when the
/// last handle (the last clone of the store) is dropped.
#[derive(Clone)]
pub(super) struct RoomBatcher {
    requests: mpsc::Sender<Request>,
}

impl RoomBatcher {
    /// Starts the task, writing through `writer`.
    pub(super) fn spawn(writer: SqlitePool) -> Self {
        let (requests, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(writer, receiver));
        Self { requests }
    }

    /// Creates a room, together with whatever other creations are pending,
    /// only while the app has fewer than `at_most` rooms.
    pub(super) async fn create(
        &self,
        app_id: i64,
        room: NewRoom,
        at_most: Option<u64>,
    ) -> Result<RoomRecord, StoreError> {
        let (reply, answer) = oneshot::channel();
        // The task outlives every handle, so these fail only if it panicked.
        self.requests.send(Request { app_id, room, at_most, reply }).await.map_err(|_| StoreError::BatchFailed)?;
        answer.await.map_err(|_| StoreError::BatchFailed)?
    }
}

/// Per app, at least as many rooms as it has (see the module docs).
type RoomBounds = HashMap<i64, u64>;

async fn run(writer: SqlitePool, mut requests: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut bounds = RoomBounds::new();
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let admitted = match refuse_over_quota(&writer, &mut batch, &mut bounds).await {
            Ok(()) => insert_all(&writer, &batch).await,
            Err(err) => Err(err),
        };
        match admitted {
            Ok(mut created) => {
                for request in batch.drain(..) {
                    // The first request for a name gets the row; any other
                    // (or one that lost to an existing room) is a conflict.
                    let result = created
                        .remove(&(request.app_id, request.room.name.as_str().to_owned()))
                        .ok_or(StoreError::Conflict);
                    let _ = request.reply.send(result);
                }
            }
            Err(StoreError::ParentMissing) => {
                for request in batch.drain(..) {
                    let result = insert_room(&writer, request.app_id, &request.room, request.at_most, "").await;
                    let _ = request.reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, rooms = batch.len(), "creating a batch of rooms failed");
                let unavailable = matches!(err, StoreError::Unavailable);
                for request in batch.drain(..) {
                    let shared = if unavailable { StoreError::Unavailable } else { StoreError::BatchFailed };
                    let _ = request.reply.send(Err(shared));
                }
            }
        }
    }
}

/// Answers [`StoreError::Full`] to the requests that would take their app
/// past `at_most` rooms (counting the rooms already there and those admitted
/// earlier in the batch), and takes them out of the batch. Counts an app's
/// rooms only when its bound does not show the batch fits.
async fn refuse_over_quota(
    writer: &SqlitePool,
    batch: &mut Vec<Request>,
    bounds: &mut RoomBounds,
) -> Result<(), StoreError> {
    // Per app with a quota: the requests, and the smallest quota they carry.
    let mut asked: HashMap<i64, (u64, u64)> = HashMap::new();
    for request in batch.iter() {
        if let Some(at_most) = request.at_most {
            let (requests, quota) = asked.entry(request.app_id).or_insert((0, at_most));
            *requests += 1;
            *quota = (*quota).min(at_most);
        }
    }
    for (app_id, (requests, quota)) in asked {
        if bounds.get(&app_id).is_some_and(|rooms| rooms + requests <= quota) {
            continue;
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM rooms WHERE app_id = $1").bind(app_id).fetch_one(writer).await?;
        bounds.insert(app_id, u64::try_from(count).unwrap_or(0));
    }
    for request in std::mem::take(batch) {
        let Some(at_most) = request.at_most else {
            // No quota now, but one may come: the bound still counts it.
            if let Some(rooms) = bounds.get_mut(&request.app_id) {
                *rooms += 1;
            }
            batch.push(request);
            continue;
        };
        let rooms = bounds.entry(request.app_id).or_default();
        if *rooms >= at_most {
            let _ = request.reply.send(Err(StoreError::Full));
        } else {
            *rooms += 1;
            batch.push(request);
        }
    }
    Ok(())
}

/// Inserts the batch's rooms in one statement, skipping taken names, and
/// the webhook events of those created, in one transaction; fails as a
/// whole with [`StoreError::ParentMissing`] if one request's app is gone.
async fn insert_all(writer: &SqlitePool, batch: &[Request]) -> Result<HashMap<(i64, String), RoomRecord>, StoreError> {
    if batch.is_empty() {
        return Ok(HashMap::new());
    }
    let values = vec!["(?, ?, ?, ?)"; batch.len()].join(", ");
    let sql = format!(
        "INSERT INTO rooms (app_id, name, created_at, presence) VALUES {values} \
         ON CONFLICT (app_id, name) DO NOTHING RETURNING {NEW_ROOM_COLUMNS}"
    );
    // Not kept prepared: batch sizes vary, and each size would take a slot in
    // the writer connection's statement cache from the hot statements.
    let mut query = sqlx::query_as(&sql).persistent(false);
    for request in batch {
        let room = &request.room;
        query = query.bind(request.app_id).bind(room.name.as_str()).bind(room.created_at).bind(room.presence);
    }
    let mut tx = writer.begin().await?;
    let rooms: Vec<RoomRecord> = query.fetch_all(&mut *tx).await.map_err(refused_or)?;
    let mut apps: Vec<i64> = batch.iter().map(|request| request.app_id).collect();
    apps.sort_unstable();
    apps.dedup();
    let announcing: HashSet<i64> =
        sqlx::query_scalar("SELECT DISTINCT app_id FROM webhooks WHERE app_id IN (SELECT value FROM json_each(?))")
            .bind(json_array(&apps))
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let created: HashMap<(i64, String), RoomRecord> =
        rooms.into_iter().map(|room| ((room.app_id, room.name.clone()), room)).collect();
    let mut announced = std::collections::HashSet::new();
    for request in batch {
        // The first request for a created name is the one that made it.
        let key = (request.app_id, request.room.name.as_str().to_owned());
        if announcing.contains(&request.app_id) && created.contains_key(&key) && announced.insert(key) {
            insert_events::<sqlx::Sqlite>(&mut *tx, Scope::App(request.app_id), &request.room.events).await?;
        }
    }
    tx.commit().await?;
    Ok(created)
}
