//! WebSocket frames on `/ws/endpoint/{code}/` and the close codes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ErrorCode;
use crate::rest::{Member, Message, Permission, Sender};

/// The endpoint a connection joined with, as the welcome frame shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeEndpoint {
    /// Public id of the endpoint.
    pub id: String,
    /// What the endpoint may do.
    pub permission: Permission,
    /// The endpoint's meta.
    pub meta: Box<RawValue>,
    /// When the code stops working (RFC 3339 UTC with milliseconds); only
    /// for an endpoint with an expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The endpoint a connection joined with, as the `endpoint` frame shows it
/// after the app changed it: always with `expires_at`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedEndpoint {
    /// Public id of the endpoint.
    pub id: String,
    /// What the endpoint may do now.
    pub permission: Permission,
    /// The endpoint's meta now.
    pub meta: Box<RawValue>,
    /// When the code stops working (RFC 3339 UTC with milliseconds), or
    /// `null`.
    pub expires_at: Option<String>,
}

/// Frames the server sends, tagged by `type`.
///
/// Serialize-only: payloads are carried as raw JSON so the server never
/// re-parses them, and serde cannot read raw JSON through an internally
/// tagged enum. Clients parse frames as generic JSON on the `type` field.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Always the first frame of a connection.
    Welcome {
        /// Name of the room.
        room: String,
        /// The endpoint the connection joined with.
        endpoint: WelcomeEndpoint,
        /// The newest seq of the room (0 when nothing was ever sent).
        last_seq: u64,
        /// The oldest retained seq; `last_seq + 1` when nothing is retained.
        first_seq: u64,
        /// The room's members, this connection's endpoint included; only in
        /// a presence room.
        #[serde(skip_serializing_if = "Option::is_none")]
        members: Option<Vec<Member>>,
    },
    /// A message published into the room.
    Message(Message),
    /// In a presence room: an endpoint's first connection opened.
    Join {
        /// Name of the room.
        room: String,
        /// The endpoint that joined.
        member: Member,
    },
    /// In a presence room: an endpoint's last connection closed and none
    /// came back within the leave grace period.
    Leave {
        /// Name of the room.
        room: String,
        /// The endpoint that left (`connections` is 0).
        member: Member,
    },
    /// An ephemeral signal from another connection of the room: no seq, not
    /// stored, not replayed.
    Signal {
        /// Name of the room.
        room: String,
        /// The sending endpoint, stamped by the server.
        sender: Sender,
        /// The payload exactly as the sender gave it.
        signal: Box<RawValue>,
    },
    /// The app changed the endpoint this connection joined with; sent to
    /// that endpoint's own connections only.
    Endpoint {
        /// The endpoint as it is now.
        endpoint: ChangedEndpoint,
    },
    /// A message of the room was redacted: its payload is gone from
    /// history and clients should hide it.
    Redaction {
        /// Name of the room.
        room: String,
        /// The redacted message's seq.
        seq: u64,
        /// The redacted message's id.
        id: String,
    },
    /// A message the connection sent with a `nonce` was published (or had
    /// been, under that nonce, within the window): its id and seq.
    Ack {
        /// The nonce the message carried.
        nonce: Nonce,
        /// The message's id.
        id: String,
        /// The message's seq.
        seq: u64,
    },
    /// Something the client sent was refused; the connection stays open
    /// unless a close frame follows.
    Error {
        /// What was refused.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
        /// The nonce of the refused message, when it carried one.
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<Nonce>,
    },
}

/// A client's name for one of its messages (`"nonce"`): 1 to 64
/// characters, none of them a control character. A nonce repeated by the
/// same endpoint within `limits.nonce_window_secs` publishes nothing new.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nonce(String);

impl Nonce {
    /// The most characters a nonce may have.
    pub const MAX_CHARS: usize = 64;

    /// Checks a nonce.
    ///
    /// # Errors
    ///
    /// A human-readable reason when it is empty, longer than
    /// [`Self::MAX_CHARS`] characters or holds a control character.
    pub fn parse(text: String) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || text.chars().any(char::is_control) {
            return Err(format!(
                "\"nonce\" must be a string of 1 to {} characters, without control characters",
                Self::MAX_CHARS
            ));
        }
        Ok(Self(text))
    }

    /// The nonce as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a client sends: a JSON object with a `message` key (published,
/// stored, given a seq), a `signal` key (ephemeral) or a `redact` key
/// (moderators only). Other keys are ignored.
#[derive(Debug)]
pub enum ClientFrame {
    /// `{"message": <payload>}`, with `"nonce"` when the client wants it
    /// acknowledged (and never published twice).
    Message {
        /// The payload exactly as sent.
        payload: Box<RawValue>,
        /// The client's name for the message.
        nonce: Option<Nonce>,
    },
    /// `{"signal": <payload>}`.
    Signal(Box<RawValue>),
    /// `{"redact": <seq>}`.
    Redact(u64),
}

/// The keys of a client frame, before checking that exactly one is there.
#[derive(Deserialize)]
struct ClientKeys {
    #[serde(default, deserialize_with = "present")]
    message: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    signal: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    redact: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    nonce: Option<Box<RawValue>>,
}

/// A key that is there, even with the value `null` (which a plain
/// `Option` would read as absent).
fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(value).map(Some)
}

const EXPECTED: &str = "expected a JSON object with a \"message\", a \"signal\" or a \"redact\" key";

impl ClientFrame {
    /// Parses a text frame.
    ///
    /// # Errors
    ///
    /// Returns a human-readable reason when the text is not a JSON object
    /// with exactly one of the keys `message`, `signal` and `redact`, or
    /// when `redact` is not a seq (a positive integer).
    pub fn parse(text: &str) -> Result<Self, String> {
        // serde would also accept a struct written as an array (`[1]`).
        if !text.trim_start().starts_with('{') {
            return Err(EXPECTED.to_string());
        }
        let keys: ClientKeys = serde_json::from_str(text).map_err(|err| {
            if err.is_data() {
                EXPECTED.to_string()
            } else {
                format!("not valid JSON: {err}")
            }
        })?;
        match (keys.message, keys.signal, keys.redact) {
            (Some(payload), None, None) => {
                let nonce = keys.nonce.map(|nonce| read_nonce(&nonce)).transpose()?;
                Ok(Self::Message { payload, nonce })
            }
            (None, Some(signal), None) => Ok(Self::Signal(signal)),
            (None, None, Some(seq)) => match seq.get().parse::<u64>() {
                Ok(seq) if seq > 0 => Ok(Self::Redact(seq)),
                _ => Err("\"redact\" takes the seq of a message: a positive integer".to_string()),
            },
            (None, None, None) => Err(EXPECTED.to_string()),
            _ => Err("a frame carries one of \"message\", \"signal\" and \"redact\", not several".to_string()),
        }
    }
}

/// The `nonce` of a message frame.
impl Nonce {
    /// The valid nonce of a frame too large to be handled, so its
    /// `too_large` answer can name the send it refuses. Reads the keys and
    /// skips the values: a message frame's nonce, if it is one; `None` for
    /// anything else.
    pub fn of_oversized_frame(text: &str) -> Option<Self> {
        let keys: ClientKeys = serde_json::from_str(text).ok()?;
        match (keys.message, keys.nonce) {
            (Some(_), Some(nonce)) => read_nonce(&nonce).ok(),
            _ => None,
        }
    }
}

fn read_nonce(raw: &RawValue) -> Result<Nonce, String> {
    let text: String = serde_json::from_str(raw.get())
        .map_err(|_| format!("\"nonce\" must be a string of 1 to {} characters", Nonce::MAX_CHARS))?;
    Nonce::parse(text)
}

/// Close codes the server uses, with the reason text it sends.
pub mod close {
    /// The server is shutting down or restarting; resume elsewhere.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame was over the message size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed; details are in its log.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The client did not keep up with the room: its queue filled up.
    /// Reconnect with `after_seq` to catch up.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The endpoint this connection joined with was deleted.
    pub const ENDPOINT_DELETED: u16 = 4001;
    /// The room was deleted.
    pub const ROOM_DELETED: u16 = 4002;
    /// The room's app was suspended, rejected or deleted by an admin or
    /// its owner; its endpoints no longer work.
    pub const APP_STOPPED: u16 = 4003;
    /// The endpoint's `expires_at` passed; its code no longer works.
    pub const ENDPOINT_EXPIRED: u16 = 4004;
    /// The client stopped answering pings.
    pub const PING_TIMEOUT: u16 = 4008;
    /// A socket quota (`sockets_per_app`, `sockets_per_endpoint`,
    /// `sockets_per_ip`) or the endpoint's `max_connections` was full when
    /// the connection opened; the reason names it. Connections already open are never closed by a quota.
    pub const QUOTA_EXCEEDED: u16 = 4029;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(frame: ClientFrame) -> (&'static str, String) {
        match frame {
            ClientFrame::Message { payload, .. } => ("message", payload.get().to_owned()),
            ClientFrame::Signal(payload) => ("signal", payload.get().to_owned()),
            ClientFrame::Redact(seq) => ("redact", seq.to_string()),
        }
    }

    #[test]
    fn client_frame_takes_any_json_payload() {
        let frame = ClientFrame::parse(r#"{"message": {"x": 1}, "extra": true}"#).unwrap();
        assert_eq!(payload(frame), ("message", r#"{"x": 1}"#.to_owned()));
        let frame = ClientFrame::parse(r#"{"message":"hi"}"#).unwrap();
        assert_eq!(payload(frame), ("message", r#""hi""#.to_owned()));
        let frame = ClientFrame::parse(r#"{"message":null}"#).unwrap();
        assert_eq!(payload(frame), ("message", "null".to_owned()));
        let frame = ClientFrame::parse(r#"{"signal": {"typing": true}}"#).unwrap();
        assert_eq!(payload(frame), ("signal", r#"{"typing": true}"#.to_owned()));
        let frame = ClientFrame::parse(r#"{"redact": 12}"#).unwrap();
        assert_eq!(payload(frame), ("redact", "12".to_owned()));
    }

    #[test]
    fn a_message_may_carry_a_nonce_of_1_to_64_characters() {
        let ClientFrame::Message { nonce, .. } = ClientFrame::parse(r#"{"message": 1, "nonce": "k3j9"}"#).unwrap()
        else {
            panic!("a message")
        };
        assert_eq!(nonce.as_ref().map(Nonce::as_str), Some("k3j9"));
        let longest = format!(r#"{{"message": 1, "nonce": "{}"}}"#, "é".repeat(64));
        assert!(ClientFrame::parse(&longest).is_ok(), "64 characters, whatever their bytes");
        let too_long = format!(r#""{}""#, "a".repeat(65));
        for bad in [r#""""#, too_long.as_str(), "12", "null", r#""a\u0000b""#] {
            let text = format!(r#"{{"message": 1, "nonce": {bad}}}"#);
            assert!(ClientFrame::parse(&text).unwrap_err().contains("nonce"), "{text}");
        }
    }

    #[test]
    fn an_ack_and_an_error_name_their_nonce() {
        let nonce = Nonce::parse("n1".into()).unwrap();
        let ack = ServerFrame::Ack { nonce: nonce.clone(), id: "m".into(), seq: 7 };
        let expected = serde_json::json!({"type": "ack", "nonce": "n1", "id": "m", "seq": 7});
        assert_eq!(serde_json::to_value(&ack).unwrap(), expected);
        let error = ServerFrame::Error { code: ErrorCode::ReadOnly, message: "no".into(), nonce: Some(nonce) };
        assert_eq!(serde_json::to_value(&error).unwrap()["nonce"], "n1");
    }

    #[test]
    fn client_frame_rejects_other_shapes() {
        let both = r#"{"message": 1, "signal": 2}"#;
        let not_a_seq = [r#"{"redact": "3"}"#, r#"{"redact": 0}"#, r#"{"redact": -1}"#, r#"{"redact": 1.5}"#];
        for text in ["hi", "", "[1]", r#"{"msg": 1}"#, "42", r#"{"message": }"#, both].into_iter().chain(not_a_seq) {
            assert!(ClientFrame::parse(text).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn error_frame_is_tagged() {
        let frame = ServerFrame::Error { code: ErrorCode::ReadOnly, message: "no".into(), nonce: None };
        let json = serde_json::to_value(&frame).unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(json["code"], "read_only");
        assert!(json.get("nonce").is_none(), "no nonce, no key");
    }
}
