//! The suite every backend must pass, written against `dyn Store` and run
//! once per backend: `store::tests::sqlite::NAME` on a temporary file and
//! `store::tests::postgres::NAME` on a fresh database (skipped when
//! PostgreSQL is not reachable, except under `CI=true`; see
//! [`testing`](super::testing)).

use std::sync::Arc;

use comms_protocol::webhook::{DeliveryState, EventType};
use comms_protocol::Permission;
use tempfile::TempDir;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::*;
use crate::secrets::{MailedToken, NewApiKey};
use comms_testkit::postgres::TestDatabase;

/// A store under test, and where its data lives. Fields drop in order: the
/// store before its folder or database.
struct Fixture {
    store: Arc<dyn Store>,
    url: String,
    postgres: bool,
    _dir: Option<TempDir>,
    _database: Option<TestDatabase>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("nested/comms.db").display());
        let store = Arc::new(SqliteStore::open(&url, 2, 0).await.unwrap());
        Self { store, url, postgres: false, _dir: Some(dir), _database: None }
    }

    async fn postgres() -> Option<Self> {
        let database = TestDatabase::create().await?;
        let url = database.url().to_owned();
        let store = Arc::new(PostgresStore::open(&url, 4).await.unwrap());
        Some(Self { store, url, postgres: true, _dir: None, _database: Some(database) })
    }

    /// A second store on the same data, as a second server node opens it.
    async fn another_node(&self) -> Arc<dyn Store> {
        if self.postgres {
            Arc::new(PostgresStore::open(&self.url, 4).await.unwrap())
        } else {
            Arc::new(SqliteStore::open(&self.url, 2, 0).await.unwrap())
        }
    }
}

/// Generates `sqlite::NAME` and `postgres::NAME` tests calling `NAME(&Fixture)`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Fixture::sqlite().await).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(fixture) = super::Fixture::postgres().await else { return };
                    super::$test(&fixture).await;
                }
            )*
        }
    };
}

on_every_backend!(
    room_names_are_unique_per_app_only,
    presence_is_kept_and_shown_with_the_rooms_endpoints,
    concurrent_room_creations_each_get_their_own_answer,
    count_quotas_hold_under_concurrent_creations,
    quota_overrides_reach_every_way_an_app_is_read,
    ids_are_never_reused,
    apps_are_found_by_name_and_change_status,
    allowed_origins_reach_every_way_an_app_is_read,
    endpoints_are_found_by_code_and_listed_by_room,
    endpoints_change_count_their_messages_and_go_with_their_parent,
    redacted_messages_keep_their_row_with_a_null_payload,
    an_apps_endpoints_are_listed_over_all_its_rooms,
    history_keeps_the_newest_and_last_seq,
    history_loads_the_newest_within_limit_and_age,
    a_batch_larger_than_one_insert_is_stored_whole,
    payloads_and_meta_are_kept_byte_for_byte,
    messages_of_deleted_rooms_are_skipped,
    two_nodes_appending_the_same_messages_store_each_once,
    two_nodes_appending_overlapping_rooms_both_commit,
    last_seq_never_goes_back,
    reserve_seq_only_raises_and_release_lowers_to_what_is_written,
    revoked_keys_stop_matching,
    a_leaked_keys_endpoints_go_with_it_and_every_change_is_recorded,
    accounts_and_the_audit_log,
    listings_filter_by_owner_and_deleting_an_app_takes_its_rooms,
    mailed_tokens_are_single_use_and_a_reset_ends_sessions,
    server_secrets_are_made_once_for_every_node,
    events_reach_the_webhooks_that_receive_them_with_their_change,
    two_nodes_never_lease_the_same_delivery_and_apps_lease_apart,
    attempts_are_recorded_sent_again_and_pruned,
    a_batch_of_outcomes_finishes_each_delivery_as_its_own_says,
    a_large_history_batch_writes_one_delivery_per_message_and_webhook,
    finished_deliveries_are_pruned_in_slices_those_ended_first,
    usage_rows_add_up_per_node_roll_up_and_prune,
    an_expiry_is_announced_once_until_it_changes,
);

fn webhook(app_id: i64, name: &str, events: &[EventType]) -> NewWebhook {
    NewWebhook {
        app_id,
        public_id: format!("wh_{name}"),
        url: format!("http://127.0.0.1:9/{name}"),
        events: EventTypes(events.to_vec()),
        secret: "whsec_c2VjcmV0".into(),
        created_at: crate::time::now_ms(),
    }
}

fn event(event_type: EventType, id: &str) -> NewEvent {
    NewEvent { id: id.into(), event_type, body: format!("{{\"id\":\"{id}\"}}"), created_at: crate::time::now_ms() }
}

/// Leases up to `limit` rows of `app_id` due now, for a long time.
fn lease_now(app_id: i64, limit: u64) -> Lease {
    let now = crate::time::now_ms();
    Lease { app_id, now, until: now + 60_000, limit }
}

async fn events_reach_the_webhooks_that_receive_them_with_their_change(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let b = app(store, "b").await;
    let rooms_hook = store.create_webhook(webhook(a.id, "rooms", &[EventType::RoomCreated]), None).await.unwrap();
    store.create_webhook(webhook(a.id, "messages", &[EventType::MessageCreated]), None).await.unwrap();
    store.create_webhook(webhook(b.id, "other", &[EventType::RoomCreated]), None).await.unwrap();
    assert!(matches!(
        store.create_webhook(webhook(a.id, "third", &[EventType::RoomDeleted]), Some(2)).await,
        Err(StoreError::Full)
    ));
    assert_eq!(store.list_webhooks(a.id).await.unwrap().len(), 2);
    assert_eq!(
        store.webhook(a.id, "wh_rooms").await.unwrap().unwrap().events,
        EventTypes(vec![EventType::RoomCreated])
    );
    assert!(store.webhook(b.id, "wh_rooms").await.unwrap().is_none(), "per app");

    let mut new = NewRoom::new(RoomName::parse("lobby").unwrap(), false);
    new.events = vec![event(EventType::RoomCreated, "evt_room")];
    let lobby = store.create_room(a.id, &new, None).await.unwrap();
    // A refused creation writes no event.
    assert!(store.create_room(a.id, &new, None).await.is_err());
    store.append_messages(&[message(lobby.id, 1)], 10).await.unwrap();
    let due = store.lease_deliveries(lease_now(a.id, 100)).await.unwrap();
    let mut got: Vec<(String, String)> = due.iter().map(|d| (d.url.clone(), d.event_id.clone())).collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1], ("http://127.0.0.1:9/rooms".to_owned(), "evt_room".to_owned()));
    assert!(got[0].0.ends_with("/messages") && got[0].1.starts_with("evt_"));
    let created = due.iter().find(|d| d.event_id != "evt_room").unwrap();
    assert!(created.body.contains(r#""type":"message.created""#), "{}", created.body);
    assert_eq!(store.webhook_deliveries(rooms_hook.id, 10).await.unwrap().len(), 1);

    assert!(store.delete_webhook(a.id, "wh_rooms").await.unwrap());
    assert!(!store.delete_webhook(a.id, "wh_rooms").await.unwrap());
    assert!(store.webhook_deliveries(rooms_hook.id, 10).await.unwrap().is_empty(), "deliveries go with it");
}

async fn two_nodes_never_lease_the_same_delivery_and_apps_lease_apart(fixture: &Fixture) {
    let store = &*fixture.store;
    let other_node = fixture.another_node().await;
    let a = app(store, "a").await;
    let b = app(store, "b").await;
    store.create_webhook(webhook(a.id, "a", &[EventType::RoomCreated]), None).await.unwrap();
    store.create_webhook(webhook(b.id, "b", &[EventType::RoomCreated]), None).await.unwrap();
    let many: Vec<NewEvent> = (0..20).map(|n| event(EventType::RoomCreated, &format!("evt_a{n}"))).collect();
    store.record_events(a.id, &many).await.unwrap();
    store.record_events(b.id, &[event(EventType::RoomCreated, "evt_b")]).await.unwrap();

    let now = crate::time::now_ms();
    let mut due_apps = store.apps_with_due_deliveries(now).await.unwrap();
    due_apps.sort_unstable();
    assert_eq!(due_apps, [a.id, b.id]);
    let (first, second) =
        tokio::join!(store.lease_deliveries(lease_now(a.id, 8)), other_node.lease_deliveries(lease_now(a.id, 8)));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut ids: Vec<i64> = first.iter().chain(&second).map(|d| d.id).collect();
    let leased = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), leased, "no delivery leased twice");
    assert!(first.len() <= 8 && second.len() <= 8, "at most the limit each");
    assert!(first.iter().chain(&second).all(|d| d.app_id == a.id), "only the app asked for");
    let rest = store.lease_deliveries(lease_now(a.id, 100)).await.unwrap();
    assert_eq!(rest.len() + leased, 20, "leased rows are not due again; the others are");
    assert_eq!(store.apps_with_due_deliveries(now).await.unwrap(), [b.id], "every row of a is leased");
    let of_b = store.lease_deliveries(lease_now(b.id, 100)).await.unwrap();
    assert_eq!(of_b.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(), ["evt_b"]);
}

async fn attempts_are_recorded_sent_again_and_pruned(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let hook = store.create_webhook(webhook(a.id, "a", &[EventType::RoomCreated]), None).await.unwrap();
    store.record_events(a.id, &[event(EventType::RoomCreated, "evt_1")]).await.unwrap();
    let due = store.lease_deliveries(lease_now(a.id, 10)).await.unwrap();
    let now = crate::time::now_ms();
    let retry = AttemptOutcome {
        id: due[0].id,
        state: DeliveryState::Pending,
        next_attempt_at: now + 60_000,
        status: Some(500),
        error: Some("the receiver answered 500".into()),
        at: now,
    };
    store.finish_attempts(&[retry]).await.unwrap();
    assert!(store.lease_deliveries(lease_now(a.id, 10)).await.unwrap().is_empty(), "not due before its retry time");
    let listed = &store.webhook_deliveries(hook.id, 10).await.unwrap()[0];
    assert_eq!((listed.state, listed.attempts, listed.last_status), (DeliveryState::Pending, 1, Some(500)));
    assert!(store.redeliver(hook.id, listed.id, now).await.unwrap());
    assert!(!store.redeliver(hook.id, listed.id + 1000, now).await.unwrap());
    let due = store.lease_deliveries(lease_now(a.id, 10)).await.unwrap();
    assert_eq!(due.len(), 1, "due again at once");
    assert_eq!(due[0].series_started_at, now);
    let delivered =
        AttemptOutcome { state: DeliveryState::Delivered, status: Some(200), error: None, ..retry_of(&due[0], now) };
    store.finish_attempts(&[delivered]).await.unwrap();
    let listed = &store.webhook_deliveries(hook.id, 10).await.unwrap()[0];
    assert_eq!((listed.state, listed.attempts), (DeliveryState::Delivered, 2));
    assert_eq!(store.prune_deliveries(now - 1, 10).await.unwrap(), 0, "kept until its time");
    assert_eq!(store.prune_deliveries(now + 1, 10).await.unwrap(), 1);
}

fn retry_of(due: &DueDelivery, now: i64) -> AttemptOutcome {
    AttemptOutcome {
        id: due.id,
        state: DeliveryState::Pending,
        next_attempt_at: now,
        status: None,
        error: None,
        at: now,
    }
}

/// A webhook of a new app "a" and its six deliveries, `evt_0` to `evt_5`
/// in that order, leased for one attempt each.
async fn six_leased_deliveries(store: &dyn Store) -> (WebhookRecord, Vec<DueDelivery>) {
    let a = app(store, "a").await;
    let hook = store.create_webhook(webhook(a.id, "a", &[EventType::RoomCreated]), None).await.unwrap();
    let events: Vec<NewEvent> = (0..6).map(|n| event(EventType::RoomCreated, &format!("evt_{n}"))).collect();
    store.record_events(a.id, &events).await.unwrap();
    let mut due = store.lease_deliveries(lease_now(a.id, 10)).await.unwrap();
    due.sort_by_key(|delivery| delivery.event_id.clone());
    (hook, due)
}

async fn a_batch_of_outcomes_finishes_each_delivery_as_its_own_says(fixture: &Fixture) {
    let store = &*fixture.store;
    let (hook, due) = six_leased_deliveries(store).await;
    let now = crate::time::now_ms();
    let delivered = |delivery: &DueDelivery, status: u16, at: i64| AttemptOutcome {
        state: DeliveryState::Delivered,
        status: Some(status),
        at,
        next_attempt_at: at,
        ..retry_of(delivery, at)
    };
    let outcomes = [
        delivered(&due[0], 200, now),
        delivered(&due[1], 204, now + 1),
        delivered(&due[2], 200, now + 2),
        AttemptOutcome {
            status: Some(503),
            error: Some("busy".into()),
            next_attempt_at: now + 60_000,
            ..retry_of(&due[3], now)
        },
        AttemptOutcome {
            state: DeliveryState::Failed,
            error: Some("could not connect".into()),
            ..retry_of(&due[4], now)
        },
    ];
    store.finish_attempts(&outcomes).await.unwrap();
    let listed = store.webhook_deliveries(hook.id, 10).await.unwrap();
    let of = |event_id: &str| listed.iter().find(|delivery| delivery.event_id == event_id).unwrap();
    let summary = |event_id: &str| {
        let delivery = of(event_id);
        (delivery.state, delivery.attempts, delivery.last_status, delivery.last_error.as_deref())
    };
    assert_eq!(summary("evt_0"), (DeliveryState::Delivered, 1, Some(200), None));
    assert_eq!(summary("evt_1"), (DeliveryState::Delivered, 1, Some(204), None));
    assert_eq!(summary("evt_2"), (DeliveryState::Delivered, 1, Some(200), None));
    assert_eq!(summary("evt_3"), (DeliveryState::Pending, 1, Some(503), Some("busy")));
    assert_eq!(summary("evt_4"), (DeliveryState::Failed, 1, None, Some("could not connect")));
    assert_eq!(summary("evt_5"), (DeliveryState::Pending, 0, None, None), "not in the batch: untouched");
    assert_eq!(store.prune_deliveries(now + 3, 10).await.unwrap(), 4, "the finished ones, failed included");
}

async fn finished_deliveries_are_pruned_in_slices_those_ended_first(fixture: &Fixture) {
    let store = &*fixture.store;
    let (hook, due) = six_leased_deliveries(store).await;
    // evt_0 to evt_4 end in reverse order, a millisecond apart; evt_5 stays
    // pending.
    let start = crate::time::now_ms();
    let ended_at = |n: i64| start + 10 - n;
    let outcomes: Vec<AttemptOutcome> = due[..5]
        .iter()
        .zip(0..)
        .map(|(delivery, n)| AttemptOutcome {
            state: if n == 2 { DeliveryState::Failed } else { DeliveryState::Delivered },
            status: Some(200),
            ..retry_of(delivery, ended_at(n))
        })
        .collect();
    for outcome in &outcomes {
        store.finish_attempts(std::slice::from_ref(outcome)).await.unwrap();
    }
    let left = || async {
        let mut ids: Vec<String> =
            store.webhook_deliveries(hook.id, 10).await.unwrap().into_iter().map(|d| d.event_id).collect();
        ids.sort();
        ids
    };
    let everything_ended = start + 100;
    assert_eq!(store.prune_deliveries(everything_ended, 2).await.unwrap(), 2);
    assert_eq!(left().await, ["evt_0", "evt_1", "evt_2", "evt_5"], "the two that ended first");
    assert_eq!(store.prune_deliveries(ended_at(1), 2).await.unwrap(), 1, "only evt_2 ended before evt_1 did");
    assert_eq!(left().await, ["evt_0", "evt_1", "evt_5"]);
    assert_eq!(store.prune_deliveries(everything_ended, 2).await.unwrap(), 2);
    assert_eq!(store.prune_deliveries(everything_ended, 2).await.unwrap(), 0);
    assert_eq!(left().await, ["evt_5"], "a pending delivery is never pruned");
}

async fn a_large_history_batch_writes_one_delivery_per_message_and_webhook(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let b = app(store, "b").await;
    for name in ["one", "two"] {
        store.create_webhook(webhook(a.id, name, &[EventType::MessageCreated]), None).await.unwrap();
    }
    store.create_webhook(webhook(a.id, "rooms", &[EventType::RoomCreated]), None).await.unwrap();
    let lobby = room(store, a.id, "lobby").await;
    let hall = room(store, a.id, "hall").await;
    let elsewhere = room(store, b.id, "lobby").await;
    // More deliveries than one insert writes, over two rooms of the app
    // and a room of an app without webhooks.
    let mut batch = messages(lobby.id, 1..=300);
    batch.extend(messages(hall.id, 1..=20));
    batch.extend(messages(elsewhere.id, 1..=50));
    store.append_messages(&batch, 1000).await.unwrap();
    let due = store.lease_deliveries(lease_now(a.id, 10_000)).await.unwrap();
    assert_eq!(due.len(), 2 * 320, "one per message of the app's rooms and message webhook");
    let mut pairs: Vec<(String, &str)> = due.iter().map(|d| (d.url.clone(), d.body.as_str())).collect();
    pairs.sort_unstable();
    pairs.dedup();
    assert_eq!(pairs.len(), 640, "no delivery written twice");
    let of_hall = due.iter().filter(|d| d.body.contains(r#""room":"hall""#)).count();
    assert_eq!(of_hall, 2 * 20, "each event carries its own room");
    assert!(due.iter().all(|d| d.body.contains(r#""type":"message.created""#)));
    assert!(store.lease_deliveries(lease_now(b.id, 10)).await.unwrap().is_empty());
}

async fn an_expiry_is_announced_once_until_it_changes(fixture: &Fixture) {
    let store = &*fixture.store;
    let other_node = fixture.another_node().await;
    let a = app(store, "a").await;
    let lobby = room(store, a.id, "lobby").await;
    let past = crate::time::now_ms() - 1000;
    let limits = EndpointLimits { expires_at: Some(past), ..EndpointLimits::default() };
    let endpoint = store.create_endpoint(NewEndpoint { limits, ..endpoint(lobby.id, "c") }, None).await.unwrap();
    let due = store.unannounced_expiries(crate::time::now_ms(), 10).await.unwrap();
    assert_eq!(due.iter().map(|(app_id, e)| (*app_id, e.id)).collect::<Vec<_>>(), [(a.id, endpoint.id)]);
    let (first, second) = tokio::join!(
        store.announce_expiry(endpoint.id, past, a.id, &[]),
        other_node.announce_expiry(endpoint.id, past, a.id, &[])
    );
    assert_eq!(u8::from(first.unwrap()) + u8::from(second.unwrap()), 1, "one node announces it");
    assert!(store.unannounced_expiries(crate::time::now_ms(), 10).await.unwrap().is_empty());
    let later = past + 500;
    let settings =
        EndpointSettings { limits: EndpointLimits { expires_at: Some(later), ..limits }, ..endpoint.settings() };
    store.update_endpoint(endpoint.id, &settings).await.unwrap();
    assert_eq!(
        store.unannounced_expiries(crate::time::now_ms(), 10).await.unwrap().len(),
        1,
        "a new expiry is announced again"
    );
    assert!(!store.announce_expiry(endpoint.id, past, a.id, &[]).await.unwrap(), "not for the old expiry");
}

fn account(email: &str, is_admin: bool) -> NewAccount<'_> {
    NewAccount { email, password_hash: "hash", is_admin, email_verified: is_admin }
}

async fn app(store: &dyn Store, name: &str) -> AppRecord {
    store.create_app(new_app(name, Some(NewApiKey::generate().hash)), None).await.unwrap()
}

fn new_app(name: &str, key: Option<ApiKeyHash>) -> NewApp {
    NewApp {
        name: AppName::parse(name).unwrap(),
        status: AppStatus::Approved,
        owner_id: None,
        profile: AppProfile::default(),
        key,
    }
}

fn new_room(name: &RoomName) -> NewRoom {
    NewRoom::new(name.clone(), false)
}

async fn room(store: &dyn Store, app_id: i64, name: &str) -> RoomRecord {
    store.create_room(app_id, &new_room(&RoomName::parse(name).unwrap()), None).await.unwrap()
}

fn endpoint(room_id: i64, code: &str) -> NewEndpoint {
    NewEndpoint {
        room_id,
        public_id: format!("ep_{code}"),
        code: code.into(),
        permission: Permission::Read,
        meta: "{}".into(),
        key_id: None,
        limits: EndpointLimits::default(),
        can_delegate: false,
        parent: None,
        created_at: crate::time::now_ms(),
        events: Vec::new(),
    }
}

fn message(room_id: i64, seq: u64) -> StoredMessage {
    StoredMessage {
        room_id,
        seq,
        id: format!("m{seq}"),
        created_at: 1000 + seq as i64,
        sender_id: "app".into(),
        sender_meta: "{}".into(),
        payload: seq.to_string(),
        sender_parent: None,
        redacted_at: None,
        nonce: None,
    }
}

fn messages(room_id: i64, seqs: impl IntoIterator<Item = u64>) -> Vec<StoredMessage> {
    seqs.into_iter().map(|seq| message(room_id, seq)).collect()
}

async fn presence_is_kept_and_shown_with_the_rooms_endpoints(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let name = RoomName::parse("chat").unwrap();
    let created = store.create_room(a.id, &NewRoom::new(name.clone(), true), None).await.unwrap();
    let plain = store.create_room(a.id, &new_room(&RoomName::parse("news").unwrap()), None).await.unwrap();
    assert!(created.presence && !plain.presence);
    assert!(store.room(a.id, &name).await.unwrap().unwrap().presence);
    let listed: Vec<bool> = store.list_rooms(a.id).await.unwrap().iter().map(|room| room.presence).collect();
    assert_eq!(listed, [true, false]);
    let first = store.create_endpoint(endpoint(created.id, "c1"), None).await.unwrap();
    assert!(first.room_presence);
    let found = store.endpoint_by_code("c1").await.unwrap().expect("the endpoint exists");
    assert!(found.endpoint.room_presence);
    store.create_endpoint(endpoint(plain.id, "c2"), None).await.unwrap();
    assert!(!store.endpoint_by_code("c2").await.unwrap().expect("the endpoint exists").endpoint.room_presence);
}

async fn stored_seqs(store: &dyn Store, room_id: i64) -> (u64, Vec<u64>) {
    let history = store.load_history(room_id, 1000, 0).await.unwrap().expect("the room exists");
    (history.last_seq, history.messages.iter().map(|m| m.seq).collect())
}

async fn room_names_are_unique_per_app_only(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let b = app(store, "b").await;
    let lobby = RoomName::parse("lobby").unwrap();
    store.create_room(a.id, &new_room(&lobby), None).await.unwrap();
    store.create_room(b.id, &new_room(&lobby), None).await.unwrap();
    assert!(matches!(store.create_room(a.id, &new_room(&lobby), None).await, Err(StoreError::Conflict)));
}

async fn concurrent_room_creations_each_get_their_own_answer(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let b = app(store, "b").await;
    let names = ["x", "y", "x", "z", "x", "y"].map(|n| RoomName::parse(n).unwrap());
    let rooms = names.each_ref().map(new_room);
    let results = futures_util::future::join_all(rooms.iter().map(|room| store.create_room(a.id, room, None))).await;
    for name in ["x", "y", "z"] {
        let created = names.iter().zip(&results).filter(|(n, r)| n.as_str() == name && r.is_ok()).count();
        assert_eq!(created, 1, "exactly one creation of {name} wins");
    }
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(StoreError::Conflict))));
    assert_eq!(store.list_rooms(a.id).await.unwrap().len(), 3);
    assert_eq!(store.create_room(b.id, &new_room(&names[0]), None).await.unwrap().name, "x", "per app");

    // A creation for an unknown app fails on its own, not its neighbours.
    let w = new_room(&RoomName::parse("w").unwrap());
    let (ok, missing) = tokio::join!(store.create_room(a.id, &w, None), store.create_room(9999, &w, None));
    assert_eq!(ok.unwrap().name, "w");
    assert!(matches!(missing, Err(StoreError::ParentMissing)));
}

async fn count_quotas_hold_under_concurrent_creations(fixture: &Fixture) {
    let store = &*fixture.store;
    let a = app(store, "a").await;
    let names: Vec<RoomName> = (0..10).map(|i| RoomName::parse(&format!("r{i}")).unwrap()).collect();
    let new_rooms: Vec<NewRoom> = names.iter().map(new_room).collect();
    let rooms =
        futures_util::future::join_all(new_rooms.iter().map(|room| store.create_room(a.id, room, Some(3)))).await;
    assert_eq!(rooms.iter().filter(|r| r.is_ok()).count(), 3, "rooms_per_app holds");
    assert!(rooms.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(StoreError::Full))));
    assert!(matches!(store.create_room(a.id, &new_room(&names[0]), Some(3)).await, Err(StoreError::Full)));
    assert!(store.create_room(a.id, &new_room(&names[9]), Some(4)).await.is_ok(), "a higher quota admits more");

    let room_id = store.list_rooms(a.id).await.unwrap()[0].id;
    let codes: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let endpoints = futures_util::future::join_all(
        codes.iter().map(|code| store.create_endpoint(endpoint(room_id, code), Some(4))),
    )
    .await;
    assert_eq!(endpoints.iter().filter(|e| e.is_ok()).count(), 4, "endpoints_per_room holds");
    assert!(endpoints.iter().filter(|e| e.is_err()).all(|e| matches!(e, Err(StoreError::Full))));
    assert!(matches!(store.create_endpoint(endpoint(9999, "gone"), Some(4)).await, Err(StoreError::ParentMissing)));

    let owner = store.create_account(account("dev@example.com", false)).await.unwrap();
    let owned = |name: &str| NewApp { owner_id: Some(owner.id), ..new_app(name, None) };
    let apps =
        futures_util::future::join_all(["p", "q", "r", "s"].map(|name| store.create_app(owned(name), Some(2)))).await;
    assert_eq!(apps.iter().filter(|a| a.is_ok()).count(), 2, "apps_per_account holds");
    assert!(store.create_app(new_app("cli", None), Some(2)).await.is_ok(), "apps without an owner are not counted");
}

async fn quota_overrides_reach_every_way_an_app_is_read(fixture: &Fixture) {
    let store = &*fixture.store;
    let key = NewApiKey::generate();
    let app = store.create_app(new_app("a", Some(key.hash)), None).await.unwrap();
    assert_eq!(app.quotas, QuotaOverrides::default());
    let mut quotas = QuotaOverrides::default();
    quotas.set(crate::quotas::Quota::SocketsPerEndpoint, Some(2));
    store.set_app_quotas(app.id, &quotas).await.unwrap();
    let room = room(store, app.id, "r").await;
    store.create_endpoint(endpoint(room.id, "c"), None).await.unwrap();
    assert_eq!(store.app_by_name(&AppName::parse("a").unwrap()).await.unwrap().unwrap().quotas, quotas);
    assert_eq!(store.app_by_key(key.hash).await.unwrap().unwrap().app.quotas, quotas);
    let access = store.endpoint_by_code("c").await.unwrap().unwrap();
    assert_eq!((access.app_id, access.app_quotas), (app.id, quotas.clone()));
    assert_eq!(store.list_apps(AppFilter::All).await.unwrap()[0].app.quotas, quotas);
}

async fn ids_are_never_reused(fixture: &Fixture) {
    let store = &*fixture.store;
    let first_app = app(store, "a").await;
    let name = RoomName::parse("r").unwrap();
    let first_room = store.create_room(first_app.id, &new_room(&name), None).await.unwrap();
    let first_endpoint = store.create_endpoint(endpoint(first_room.id, "one"), None).await.unwrap();
    store.delete_endpoint(first_room.id, "one", 0, &[]).await.unwrap();
    store.delete_room(first_app.id, &name, &[]).await.unwrap();
    store.delete_app(first_app.id).await.unwrap();

    let second_app = app(store, "a").await;
    let second_room = store.create_room(second_app.id, &new_room(&name), None).await.unwrap();
    let second_endpoint = store.create_endpoint(endpoint(second_room.id, "one"), None).await.unwrap();
    assert!(second_app.id > first_app.id);
    assert!(second_room.id > first_room.id, "the hub keys rooms by id");
    assert!(second_endpoint.id > first_endpoint.id);
}

async fn apps_are_found_by_name_and_change_status(fixture: &Fixture) {
    let store = &*fixture.store;
    let pending = store.create_app(NewApp { status: AppStatus::Pending, ..new_app("p", None) }, None).await.unwrap();
    assert!(matches!(store.create_app(new_app("p", None), None).await, Err(StoreError::Conflict)));
    let name = AppName::parse("p").unwrap();
    assert_eq!(store.app_by_name(&name).await.unwrap(), Some(pending.clone()));
    store.set_app_status(pending.id, AppStatus::Suspended).await.unwrap();
    assert_eq!(store.app_by_name(&name).await.unwrap().unwrap().status, AppStatus::Suspended);
    assert_eq!(store.app_by_name(&AppName::parse("nope").unwrap()).await.unwrap(), None);
}

async fn allowed_origins_reach_every_way_an_app_is_read(fixture: &Fixture) {
    let store = &*fixture.store;
    let key = NewApiKey::generate();
    let app = store.create_app(new_app("o", Some(key.hash)), None).await.unwrap();
    assert!(app.allowed_origins.allows_any(), "a new app allows any origin");
    let room = room(store, app.id, "r").await;
    store.create_endpoint(endpoint(room.id, "c"), None).await.unwrap();
    let origins = AllowedOrigins::parse(["https://example.com", "https://*.example.org:8443"]).unwrap();
    store.set_allowed_origins(app.id, &origins).await.unwrap();
    let by_name = store.app_by_name(&AppName::parse("o").unwrap()).await.unwrap().unwrap();
    assert_eq!(by_name.allowed_origins, origins);
    assert_eq!(store.app_by_key(key.hash).await.unwrap().unwrap().app.allowed_origins, origins);
    assert_eq!(store.list_apps(AppFilter::All).await.unwrap()[0].app.allowed_origins, origins);
    assert_eq!(store.endpoint_by_code("c").await.unwrap().unwrap().allowed_origins, origins);
    store.set_allowed_origins(app.id, &AllowedOrigins::default()).await.unwrap();
    assert!(store.app_by_name(&AppName::parse("o").unwrap()).await.unwrap().unwrap().allowed_origins.allows_any());
}

async fn endpoints_are_found_by_code_and_listed_by_room(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    let new = NewEndpoint {
        permission: Permission::ReadAndWrite,
        meta: r#"{"name":"Ann"}"#.into(),
        limits: EndpointLimits { max_connections: Some(3), single_use: true, ..EndpointLimits::default() },
        ..endpoint(room.id, "c1")
    };
    let created = store.create_endpoint(new, None).await.unwrap();
    assert_eq!((created.room_name.as_str(), created.permission), ("r", Permission::ReadAndWrite));
    assert_eq!(
        created.limits(),
        EndpointLimits { max_connections: Some(3), single_use: true, ..EndpointLimits::default() }
    );
    assert!(store.claim_single_use(created.id).await.unwrap(), "the first claim wins");
    assert!(!store.claim_single_use(created.id).await.unwrap(), "once");
    let created = store.endpoint_by_code("c1").await.unwrap().unwrap().endpoint;
    assert!(created.used_at.is_some());
    assert!(matches!(store.create_endpoint(endpoint(room.id, "c1"), None).await, Err(StoreError::Conflict)), "code");
    let same_public = NewEndpoint { public_id: created.public_id.clone(), ..endpoint(room.id, "c2") };
    assert!(matches!(store.create_endpoint(same_public, None).await, Err(StoreError::Conflict)), "public id");

    assert_eq!(store.list_endpoints(room.id).await.unwrap(), std::slice::from_ref(&created));
    assert_eq!(store.room(app.id, &RoomName::parse("r").unwrap()).await.unwrap().unwrap().endpoint_count, 1);
    let access = store.endpoint_by_code("c1").await.unwrap().unwrap();
    assert_eq!((access.endpoint, access.app_status), (created.clone(), AppStatus::Approved));
    store.set_app_status(app.id, AppStatus::Suspended).await.unwrap();
    assert_eq!(store.endpoint_by_code("c1").await.unwrap().unwrap().app_status, AppStatus::Suspended);

    assert_eq!(store.delete_endpoint(room.id, "c1", 0, &[]).await.unwrap(), [created.id]);
    assert!(store.delete_endpoint(room.id, "c1", 0, &[]).await.unwrap().is_empty());
    assert_eq!(store.endpoint_by_code("c1").await.unwrap(), None);
}

async fn endpoints_change_count_their_messages_and_go_with_their_parent(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    let budget = EndpointLimits { max_messages: Some(2), expires_at: Some(5_000), ..EndpointLimits::default() };
    let new = NewEndpoint { can_delegate: true, limits: budget, ..endpoint(room.id, "root") };
    let root = store.create_endpoint(new, None).await.unwrap();
    assert_eq!((root.depth, root.revision, root.can_delegate), (1, 0, true));
    let child_of = |parent: &EndpointRecord, code: &str| NewEndpoint {
        parent: Some(Lineage { parent_id: parent.id, depth: parent.depth + 1 }),
        ..endpoint(room.id, code)
    };
    let child = store.create_endpoint(child_of(&root, "child"), None).await.unwrap();
    let grandchild = store.create_endpoint(child_of(&child, "grandchild"), None).await.unwrap();
    assert_eq!((grandchild.depth, grandchild.parent_public_id.as_deref()), (3, Some(child.public_id.as_str())));
    let subtree: Vec<i64> = store.descendants(root.id).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(subtree, [child.id, grandchild.id], "parents before children");

    assert!(store.spend_budget(root.id).await.unwrap());
    assert!(store.spend_budget(root.id).await.unwrap());
    assert!(!store.spend_budget(root.id).await.unwrap(), "the budget of 2 is spent");
    store.refund_budget(root.id).await.unwrap();
    store.add_messages_sent(&[(root.id, 5), (child.id, 1)]).await.unwrap();
    let settings = EndpointSettings {
        permission: Permission::ReadAndWrite,
        meta: r#"{"n":1}"#.into(),
        limits: EndpointLimits::default(),
    };
    let updated = store.update_endpoint(root.id, &settings).await.unwrap().unwrap();
    assert_eq!((updated.messages_sent, updated.revision, updated.max_messages), (6, 1, None));
    assert_eq!((updated.settings(), updated.expires_at), (settings, None));

    let deleted = store.delete_endpoint(room.id, "root", 0, &[]).await.unwrap();
    assert_eq!(deleted, [root.id, child.id, grandchild.id], "the subtree, parents first");
    assert!(store.list_endpoints(room.id).await.unwrap().is_empty());
    assert_eq!(store.update_endpoint(root.id, &updated.settings()).await.unwrap(), None);
}

async fn redacted_messages_keep_their_row_with_a_null_payload(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    let from_child =
        StoredMessage { sender_parent: Some("ep_parent".into()), nonce: Some("e:7:k1".into()), ..message(room.id, 2) };
    store.append_messages(&[message(room.id, 1), from_child.clone()], 100).await.unwrap();
    store.redact_messages(room.id, &[2], 9_000).await.unwrap();
    store.redact_messages(room.id, &[2], 9_999).await.unwrap();
    let history = store.load_history(room.id, 10, 0).await.unwrap().unwrap();
    assert_eq!(history.messages[0], message(room.id, 1), "others untouched");
    let redacted = StoredMessage { payload: "null".into(), redacted_at: Some(9_000), ..from_child };
    assert_eq!(history.messages[1], redacted, "redacted once, its sender's parent and nonce kept");
}

async fn an_apps_endpoints_are_listed_over_all_its_rooms(fixture: &Fixture) {
    let store = &*fixture.store;
    let (mine, theirs) = (app(store, "mine").await, app(store, "theirs").await);
    assert_eq!(store.list_app_endpoints(mine.id).await.unwrap(), []);
    let (first, second) = (room(store, mine.id, "r1").await, room(store, mine.id, "r2").await);
    let other = room(store, theirs.id, "r1").await;
    let mut created = Vec::new();
    for (room_id, code) in [(second.id, "c1"), (first.id, "c2"), (other.id, "c3"), (second.id, "c4")] {
        created.push(store.create_endpoint(endpoint(room_id, code), None).await.unwrap());
    }
    let listed = store.list_app_endpoints(mine.id).await.unwrap();
    assert_eq!(listed, [created[0].clone(), created[1].clone(), created[3].clone()], "oldest first, this app only");
    assert_eq!(listed[1].room_name, "r1");
}

async fn history_keeps_the_newest_and_last_seq(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    let young = self::room(store, app.id, "young").await;
    let older = self::room(store, app.id, "older").await;
    store.append_messages(&messages(older.id, 1..=3), 4).await.unwrap();
    // One batch over three rooms: each is trimmed to its own newest.
    let mut batch = messages(room.id, 1..=10);
    batch.extend(messages(young.id, 1..=2));
    batch.extend(messages(older.id, 4..=6));
    store.append_messages(&batch, 4).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await, (10, vec![7, 8, 9, 10]));
    assert_eq!(stored_seqs(store, young.id).await, (2, vec![1, 2]));
    assert_eq!(stored_seqs(store, older.id).await, (6, vec![3, 4, 5, 6]));

    store.prune_history(i64::MAX).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await, (10, vec![]), "seq survives pruning");
}

async fn history_loads_the_newest_within_limit_and_age(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    store.append_messages(&messages(room.id, 1..=10), 100).await.unwrap();
    let newest = store.load_history(room.id, 3, 0).await.unwrap().unwrap();
    assert_eq!(newest.messages, messages(room.id, 8..=10), "oldest first");
    let recent = store.load_history(room.id, 100, 1006).await.unwrap().unwrap();
    assert_eq!(recent.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [6, 7, 8, 9, 10]);

    assert_eq!(store.prune_history(1004).await.unwrap(), 3, "created before 1004: seqs 1 to 3");
    assert_eq!(stored_seqs(store, room.id).await, (10, (4..=10).collect()));
    assert_eq!(store.load_history(9999, 10, 0).await.unwrap(), None);
}

async fn a_batch_larger_than_one_insert_is_stored_whole(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let one = room(store, app.id, "one").await;
    let two = room(store, app.id, "two").await;
    let mut batch = messages(one.id, 1..=1100);
    batch.extend(messages(two.id, 1..=7));
    batch.push(message(9999, 1));
    store.append_messages(&batch, 5000).await.unwrap();
    let history = store.load_history(one.id, 2000, 0).await.unwrap().unwrap();
    assert_eq!((history.last_seq, history.messages), (1100, messages(one.id, 1..=1100)), "every field, in order");
    assert_eq!(stored_seqs(store, two.id).await, (7, (1..=7).collect()));
    store.append_messages(&batch, 5000).await.unwrap();
    let again = store.load_history(one.id, 2000, 0).await.unwrap().unwrap();
    assert_eq!(again.messages.len(), 1100, "a retried batch stores nothing twice");
}

async fn payloads_and_meta_are_kept_byte_for_byte(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    let payload = "{ \"b\" : 1.50e3,\n\t\"a\":[\"é 😀 \\u0000\", null ,true] }";
    let sender_meta = "{\"z\":1,  \"a\" : \"ü\"}";
    let sent = StoredMessage { payload: payload.into(), sender_meta: sender_meta.into(), ..message(room.id, 1) };
    store.append_messages(std::slice::from_ref(&sent), 10).await.unwrap();
    assert_eq!(store.load_history(room.id, 10, 0).await.unwrap().unwrap().messages, [sent]);

    let meta = "{ \"name\" : \"Zoë\" ,\"n\":1e2 }";
    let created =
        store.create_endpoint(NewEndpoint { meta: meta.into(), ..endpoint(room.id, "c") }, None).await.unwrap();
    assert_eq!(created.meta, meta);
    assert_eq!(store.list_endpoints(room.id).await.unwrap()[0].meta, meta);
}

async fn messages_of_deleted_rooms_are_skipped(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let name = RoomName::parse("r").unwrap();
    let gone = store.create_room(app.id, &new_room(&name), None).await.unwrap();
    let kept = room(store, app.id, "kept").await;
    store.delete_room(app.id, &name, &[]).await.unwrap();
    let mut batch = messages(gone.id, [1]);
    batch.extend(messages(kept.id, [1, 2]));
    store.append_messages(&batch, 10).await.unwrap();
    assert_eq!(store.load_history(gone.id, 10, 0).await.unwrap(), None);
    assert_eq!(stored_seqs(store, kept.id).await, (2, vec![1, 2]), "the rest of the batch is written");
    assert!(matches!(store.create_endpoint(endpoint(gone.id, "code"), None).await, Err(StoreError::ParentMissing)));
}

async fn two_nodes_appending_the_same_messages_store_each_once(fixture: &Fixture) {
    let (one, two) = (&*fixture.store, &*fixture.another_node().await);
    let app = app(one, "a").await;
    let room = room(one, app.id, "r").await;
    let (first, second) = (messages(room.id, 1..=30), messages(room.id, 15..=45));
    let (a, b) = tokio::join!(one.append_messages(&first, 1000), two.append_messages(&second, 1000));
    a.unwrap();
    b.unwrap();
    assert_eq!(stored_seqs(one, room.id).await, (45, (1..=45).collect()));

    // A retry of a batch whose commit was not confirmed changes nothing.
    two.append_messages(&first, 1000).await.unwrap();
    assert_eq!(stored_seqs(two, room.id).await, (45, (1..=45).collect()));
}

async fn two_nodes_appending_overlapping_rooms_both_commit(fixture: &Fixture) {
    let (one, two) = (&*fixture.store, &*fixture.another_node().await);
    let app = app(one, "a").await;
    let (x, y) = (room(one, app.id, "x").await, room(one, app.id, "y").await);
    // Each node lists the rooms in the other order: neither may deadlock
    // or fail the other.
    for round in 0..10u64 {
        let seqs = round * 2 + 1..=round * 2 + 2;
        let mut forward = messages(x.id, seqs.clone());
        forward.extend(messages(y.id, seqs.clone()));
        let mut backward = messages(y.id, seqs.clone());
        backward.extend(messages(x.id, seqs));
        let (a, b) = tokio::join!(one.append_messages(&forward, 1000), two.append_messages(&backward, 1000));
        a.unwrap();
        b.unwrap();
    }
    for room in [&x, &y] {
        assert_eq!(stored_seqs(one, room.id).await, (20, (1..=20).collect()));
    }
}

async fn last_seq_never_goes_back(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    store.append_messages(&messages(room.id, [9, 10]), 5).await.unwrap();
    // Another node's older write arriving late.
    store.append_messages(&messages(room.id, [7]), 5).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await, (10, vec![7, 9, 10]));
    // One older than the newest five is dropped at once.
    store.append_messages(&messages(room.id, [3]), 5).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await, (10, vec![7, 9, 10]));
}

async fn reserve_seq_only_raises_and_release_lowers_to_what_is_written(fixture: &Fixture) {
    let store = &*fixture.store;
    let app = app(store, "a").await;
    let room = room(store, app.id, "r").await;
    store.reserve_seq(room.id, 100).await.unwrap();
    store.reserve_seq(room.id, 50).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await.0, 100, "a smaller reservation does not lower it");
    store.append_messages(&messages(room.id, 1..=3), 10).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await.0, 100, "after a crash numbering resumes above the block");

    store.release_seq_reservation(room.id, 2).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await.0, 100, "not everything handed out is written");
    store.release_seq_reservation(room.id, 3).await.unwrap();
    assert_eq!(stored_seqs(store, room.id).await.0, 3);
}

async fn revoked_keys_stop_matching(fixture: &Fixture) {
    let store = &*fixture.store;
    let first = NewApiKey::generate();
    let app = store.create_app(new_app("a", Some(first.hash)), None).await.unwrap();
    assert_eq!(store.app_by_key(first.hash).await.unwrap().map(|owner| owner.app.id), Some(app.id));
    let second = NewApiKey::generate();
    store.replace_api_keys(app.id, second.hash, false).await.unwrap();
    assert_eq!(store.app_by_key(first.hash).await.unwrap(), None);
    assert!(store.app_by_key(second.hash).await.unwrap().is_some());
    assert_eq!(store.revoke_api_keys(app.id).await.unwrap(), 1);
    assert_eq!(store.app_by_key(second.hash).await.unwrap(), None);
}

async fn a_leaked_keys_endpoints_go_with_it_and_every_change_is_recorded(fixture: &Fixture) {
    let store = &*fixture.store;
    let first = NewApiKey::generate();
    let other = app(store, "b").await.id;
    let app = store.create_app(new_app("a", Some(first.hash)), None).await.unwrap();
    let before = store.last_app_change().await.unwrap();
    let first_id = store.app_by_key(first.hash).await.unwrap().unwrap().key_id;
    let room = room(store, app.id, "r").await;
    let leaked = store.create_endpoint(NewEndpoint { key_id: Some(first_id), ..endpoint(room.id, "l") }, None).await;
    let kept = store.create_endpoint(endpoint(room.id, "k"), None).await.unwrap();

    let second = NewApiKey::generate();
    let second_id = {
        let leaked = leaked.unwrap().id;
        assert_eq!(store.endpoint_by_id(leaked).await.unwrap().unwrap().app_status, AppStatus::Approved);
        let revoked = store.replace_api_keys(app.id, second.hash, true).await.unwrap();
        assert_eq!(revoked, [RevokedEndpoint { room_id: room.id, id: leaked }]);
        assert_eq!(store.endpoint_by_id(leaked).await.unwrap(), None, "gone with its key");
        store.app_by_key(second.hash).await.unwrap().unwrap().key_id
    };
    let left: Vec<i64> = store.list_endpoints(room.id).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(left, [kept.id], "endpoints of other keys, or none, stay");
    store.create_endpoint(NewEndpoint { key_id: Some(second_id), ..endpoint(room.id, "n") }, None).await.unwrap();
    assert!(store.replace_api_keys(app.id, NewApiKey::generate().hash, false).await.unwrap().is_empty());
    assert_eq!(store.list_endpoints(room.id).await.unwrap().len(), 2, "a plain rotation deletes nothing");

    store.set_app_status(app.id, AppStatus::Suspended).await.unwrap();
    assert_eq!(store.endpoint_by_id(kept.id).await.unwrap().unwrap().app_status, AppStatus::Suspended);
    store.set_app_quotas(app.id, &QuotaOverrides::default()).await.unwrap();
    store.set_allowed_origins(app.id, &AllowedOrigins::default()).await.unwrap();
    store.revoke_api_keys(app.id).await.unwrap();
    store.delete_app(other).await.unwrap();
    let changes = store.app_changes_after(before).await.unwrap();
    let apps: Vec<i64> = changes.iter().map(|change| change.app_id).collect();
    assert_eq!(apps, [app.id, app.id, app.id, app.id, app.id, app.id, other], "one row per change, in order");
    assert!(changes.windows(2).all(|pair| pair[0].id < pair[1].id));
    assert_eq!(store.last_app_change().await.unwrap(), changes.last().unwrap().id);
    assert_eq!(store.prune_app_changes(i64::MAX).await.unwrap(), changes.len() as u64);
}

async fn accounts_and_the_audit_log(fixture: &Fixture) {
    let store = &*fixture.store;
    let admin = store.create_account(account("admin@example.com", true)).await.unwrap();
    let dev = store.create_account(account("dev@example.com", false)).await.unwrap();
    assert!(matches!(store.create_account(account("dev@example.com", true)).await, Err(StoreError::Conflict)));
    assert!(admin.is_admin && !dev.is_admin);
    assert!(admin.email_verified && !dev.email_verified);
    assert_eq!((admin.session_epoch, dev.session_epoch), (0, 0));
    assert_eq!(store.account_by_email("admin@example.com").await.unwrap(), Some(admin.clone()));
    assert_eq!(store.account_by_id(dev.id).await.unwrap(), Some(dev));
    assert_eq!(store.account_by_email("nobody@example.com").await.unwrap(), None);
    assert_eq!(store.account_by_id(9999).await.unwrap(), None);

    let entries: Vec<AuditEntry> = ["requested", "approved", "key_issued"]
        .iter()
        .enumerate()
        .map(|(n, action)| AuditEntry {
            at: 1000 + n as i64,
            actor: admin.email.clone(),
            action: (*action).into(),
            app_name: "a".into(),
            detail: if n == 0 { String::new() } else { format!("step {n}") },
        })
        .collect();
    for entry in &entries {
        store.record_audit(entry).await.unwrap();
    }
    assert_eq!(store.audit_log(2).await.unwrap(), [entries[2].clone(), entries[1].clone()], "newest first");
}

async fn listings_filter_by_owner_and_deleting_an_app_takes_its_rooms(fixture: &Fixture) {
    let store = &*fixture.store;
    let owner = store.create_account(account("dev@example.com", false)).await.unwrap();
    assert!(matches!(store.create_account(account("dev@example.com", false)).await, Err(StoreError::Conflict)));
    let profile =
        AppProfile { description: "a game".into(), website: "https://example.com".into(), intended_use: "chat".into() };
    let mine = store
        .create_app(NewApp { owner_id: Some(owner.id), profile: profile.clone(), ..new_app("mine", None) }, None)
        .await
        .unwrap();
    let theirs = app(store, "theirs").await;
    room(store, theirs.id, "r").await;
    let listed = store.list_apps(AppFilter::OwnedBy(owner.id)).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.app.name.as_str()).collect::<Vec<_>>(), ["mine"]);
    assert_eq!(listed[0].owner_email.as_deref(), Some("dev@example.com"));
    assert_eq!(listed[0].profile, profile);
    assert_eq!(listed[0].active_keys, 0, "portal apps start without a key");
    let one = store.list_apps(AppFilter::Id(theirs.id)).await.unwrap();
    assert_eq!(
        one.iter().map(|s| (s.app.name.as_str(), s.active_keys, s.rooms)).collect::<Vec<_>>(),
        [("theirs", 1, 1)]
    );
    let all = store.list_apps(AppFilter::All).await.unwrap();
    assert_eq!(
        all.iter().map(|s| (s.app.name.as_str(), s.active_keys, s.rooms)).collect::<Vec<_>>(),
        [("mine", 0, 0), ("theirs", 1, 1)]
    );

    let room = RoomName::parse("r").unwrap();
    store.create_room(mine.id, &new_room(&room), None).await.unwrap();
    store.delete_app(mine.id).await.unwrap();
    assert_eq!(store.room(mine.id, &room).await.unwrap(), None);
    assert_eq!(store.list_apps(AppFilter::All).await.unwrap().len(), 1);
}

async fn mailed_tokens_are_single_use_and_a_reset_ends_sessions(fixture: &Fixture) {
    let store = &*fixture.store;
    let dev = store.create_account(account("dev@example.com", false)).await.unwrap();
    let later = crate::time::now_ms() + 60_000;
    let (confirm, other_confirm, reset) =
        (MailedToken::generate().hash, MailedToken::generate().hash, MailedToken::generate().hash);
    store.insert_account_token(dev.id, TokenPurpose::ConfirmEmail, confirm, later).await.unwrap();
    store.insert_account_token(dev.id, TokenPurpose::ConfirmEmail, other_confirm, later).await.unwrap();
    store.insert_account_token(dev.id, TokenPurpose::ResetPassword, reset, later).await.unwrap();
    let stored = AccountToken { account_id: dev.id, expires_at: later };
    assert_eq!(store.account_token(TokenPurpose::ResetPassword, confirm).await.unwrap(), None, "one purpose each");
    assert_eq!(store.account_token(TokenPurpose::ConfirmEmail, confirm).await.unwrap(), Some(stored));
    assert_eq!(store.take_account_token(TokenPurpose::ConfirmEmail, confirm).await.unwrap(), Some(stored));
    assert_eq!(store.take_account_token(TokenPurpose::ConfirmEmail, confirm).await.unwrap(), None, "used up");
    store.confirm_email(dev.id).await.unwrap();
    assert!(store.account_by_id(dev.id).await.unwrap().unwrap().email_verified);
    assert_eq!(store.account_token(TokenPurpose::ConfirmEmail, other_confirm).await.unwrap(), None);
    assert_eq!(store.account_token(TokenPurpose::ResetPassword, reset).await.unwrap(), Some(stored), "kept");

    let reset_account = store.reset_password(dev.id, "new hash").await.unwrap().unwrap();
    assert_eq!((reset_account.password_hash.as_str(), reset_account.session_epoch), ("new hash", 1));
    assert_eq!(store.account_token(TokenPurpose::ResetPassword, reset).await.unwrap(), None, "every token goes");
    assert_eq!(store.reset_password(9999, "x").await.unwrap(), None);

    // Adding a token sweeps the expired ones.
    let expired = MailedToken::generate().hash;
    store.insert_account_token(dev.id, TokenPurpose::ResetPassword, expired, 1).await.unwrap();
    assert!(store.account_token(TokenPurpose::ResetPassword, expired).await.unwrap().is_some(), "found, expired");
    store.insert_account_token(dev.id, TokenPurpose::ResetPassword, reset, later).await.unwrap();
    assert_eq!(store.account_token(TokenPurpose::ResetPassword, expired).await.unwrap(), None);
}

async fn server_secrets_are_made_once_for_every_node(fixture: &Fixture) {
    let first = fixture.store.server_secret("signing", "one").await.unwrap();
    let other_node = fixture.another_node().await;
    assert_eq!((first.as_str(), other_node.server_secret("signing", "two").await.unwrap().as_str()), ("one", "one"));
    assert_eq!(fixture.store.server_secret("other", "three").await.unwrap(), "three");
}

async fn usage_rows_add_up_per_node_roll_up_and_prune(fixture: &Fixture) {
    use comms_protocol::usage::Granularity;
    let store = &*fixture.store;
    let acme = app(store, "acme").await;
    let other = app(store, "other").await;
    let hour = 1_796_025_600_000; // 2026-11-30T08:00:00Z
    let counts = |messages_in, peak| UsageCounts {
        messages_in,
        connections_peak: peak,
        refused_depth: 1,
        ..UsageCounts::default()
    };
    store.add_usage("a", hour, &[(acme.id, counts(3, 5)), (other.id, counts(100, 1))]).await.unwrap();
    store.add_usage("a", hour, &[(acme.id, counts(2, 4))]).await.unwrap();
    store.add_usage("b", hour + 60_000, &[(acme.id, counts(7, 2)), (9999, counts(1, 1))]).await.unwrap();

    let minutes = store.usage(acme.id, Granularity::Minute, hour, hour + 3_600_000).await.unwrap();
    let shown: Vec<(i64, &str, u64, u64, u64)> = minutes
        .iter()
        .map(|row| {
            let c = &row.counts;
            (row.period_start - hour, row.node.as_str(), c.messages_in, c.connections_peak, c.refused_depth)
        })
        .collect();
    assert_eq!(shown, [(0, "a", 5, 5, 2), (60_000, "b", 7, 2, 1)], "counts add up, the peak keeps the higher");
    let hours = store.usage(acme.id, Granularity::Hour, hour, hour + 1).await.unwrap();
    let rolled: Vec<(&str, u64, u64)> =
        hours.iter().map(|row| (row.node.as_str(), row.counts.messages_in, row.counts.connections_peak)).collect();
    assert_eq!(rolled, [("a", 5, 5), ("b", 7, 2)], "each minute rolls up into its hour as it is written");
    let day = store.usage(acme.id, Granularity::Day, Granularity::Day.period_start(hour), hour + 1).await.unwrap();
    assert_eq!(day.iter().map(|row| row.counts.messages_in).sum::<u64>(), 12);
    assert!(store.usage(acme.id, Granularity::Minute, hour + 120_000, hour + 180_000).await.unwrap().is_empty());

    let busiest = store.busiest_apps(hour, 10).await.unwrap();
    let ranked: Vec<(&str, u64, u64)> = busiest
        .iter()
        .map(|total| (total.app_name.as_str(), total.counts.messages_in, total.counts.connections_peak))
        .collect();
    assert_eq!(ranked, [("other", 100, 1), ("acme", 12, 7)], "nodes add up within the hour; no row of a deleted app");

    assert_eq!(store.prune_usage(Granularity::Minute, hour + 60_000).await.unwrap(), 2, "acme's and other's on a");
    assert_eq!(store.usage(acme.id, Granularity::Minute, hour, hour + 3_600_000).await.unwrap().len(), 1);
    assert_eq!(store.usage(acme.id, Granularity::Hour, hour, hour + 1).await.unwrap().len(), 2, "hours stay");
}

#[test]
fn urls_are_shown_without_their_password() {
    assert_eq!(redact_url("postgres://comms:s3cret@db:5432/comms"), "postgres://comms:***@db:5432/comms");
    assert_eq!(
        redact_url("postgresql://db/comms?password=s3cret&sslmode=require"),
        "postgresql://db/comms?password=***&sslmode=require"
    );
    assert_eq!(redact_url("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
    assert_eq!(redact_url("sqlite:///var/lib/comms/comms.db"), "sqlite:///var/lib/comms/comms.db");
}
