//! The records of webhooks and of their outbox, the deliveries (see
//! [`crate::webhooks`] for how they are made and attempted).

use comms_protocol::webhook::{DeliveryState, EventType};

use super::sql::Stored;

/// The event types a webhook receives, stored as `,room.created,member.left,`
/// so that one `LIKE '%,room.created,%'` finds the webhooks of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(pub Vec<EventType>);

impl EventTypes {
    /// The stored form.
    pub fn to_stored(&self) -> String {
        let mut text = String::from(",");
        for event in &self.0 {
            text.push_str(event.as_str());
            text.push(',');
        }
        text
    }

    /// The `LIKE` pattern matching the stored form of every list holding
    /// `event` (event names hold no `%` or `_`).
    pub fn pattern(event: EventType) -> String {
        format!("%,{},%", event.as_str())
    }
}

impl TryFrom<Stored> for EventTypes {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        text.split(',')
            .filter(|name| !name.is_empty())
            .map(|name| EventType::parse(name).ok_or_else(|| format!("webhook event {name:?}")))
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TryFrom<Stored> for EventType {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("webhook event {text:?}"))
    }
}

impl TryFrom<Stored> for DeliveryState {
    type Error = String;

    fn try_from(Stored(text): Stored) -> Result<Self, String> {
        match text.as_str() {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            _ => Err(format!("delivery state {text:?}")),
        }
    }
}

/// What a new webhook is made of; its id and secret are drawn by the caller.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// The app it belongs to.
    pub app_id: i64,
    /// Public id, `wh_…`.
    pub public_id: String,
    /// Where events are posted, checked by the caller.
    pub url: String,
    /// The events it receives.
    pub events: EventTypes,
    /// `whsec_…`, kept to sign deliveries.
    pub secret: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A webhook row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookRecord {
    /// Row id.
    pub id: i64,
    /// Public id, `wh_…`.
    pub public_id: String,
    /// The app it belongs to.
    pub app_id: i64,
    /// Where events are posted.
    pub url: String,
    /// The events it receives.
    #[sqlx(try_from = "Stored")]
    pub events: EventTypes,
    /// `whsec_…`.
    pub secret: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// An event on its way into the outbox: one delivery row is written for
/// each of the app's webhooks that receives its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `evt_…`: the `webhook-id` of every attempt of every delivery.
    pub id: String,
    /// What happened.
    pub event_type: EventType,
    /// The request body, `{"type", "timestamp", "data"}`, sent as is.
    pub body: String,
    /// When it happened, milliseconds since the epoch.
    pub created_at: i64,
}

/// A delivery row, as the portal and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRecord {
    /// Row id.
    pub id: i64,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    #[sqlx(try_from = "Stored")]
    pub event_type: EventType,
    /// Where it stands.
    #[sqlx(try_from = "Stored")]
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (meaningful while pending).
    pub next_attempt_at: i64,
    /// The HTTP status of the last answer.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: i64,
}

/// A delivery leased to this node for one attempt, with what the attempt
/// needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueDelivery {
    /// Row id.
    pub id: i64,
    /// The app it belongs to (for its concurrency bound).
    pub app_id: i64,
    /// The event's id: the `webhook-id` header.
    pub event_id: String,
    /// The body to post.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When the current series of attempts began (the event, or the last
    /// "send again"): retries stop a retry period after it.
    pub series_started_at: i64,
    /// The webhook's URL.
    pub url: String,
    /// The webhook's secret.
    pub secret: String,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The delivery's row id.
    pub id: i64,
    /// Its new state: delivered, failed for good, or pending again.
    pub state: DeliveryState,
    /// When the next attempt is due, if pending.
    pub next_attempt_at: i64,
    /// The answer's HTTP status, if one came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When the attempt ended.
    pub at: i64,
}

/// Which deliveries of one app a node may lease now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The app.
    pub app_id: i64,
    /// Now, in milliseconds since the epoch: due rows are those whose next
    /// attempt is due and whose lease (if any) has run out.
    pub now: i64,
    /// Until when the leased rows are this node's.
    pub until: i64,
    /// Most rows leased by this call.
    pub limit: u64,
}

/// A webhook whose deliveries are failing, for the admin area.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailingWebhook {
    /// The app's name.
    pub app_name: String,
    /// The webhook's public id.
    pub public_id: String,
    /// Its URL.
    pub url: String,
    /// Deliveries that failed for good.
    pub failed: i64,
    /// Deliveries still pending after at least one failed attempt.
    pub retrying: i64,
}
