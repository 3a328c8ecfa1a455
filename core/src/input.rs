//! Values a client hands in, parsed once at the edge (the REST and legacy
//! handlers, the portal's server functions) into the types the services
//! take: an endpoint's permission and meta; and the depth rule every stored
//! JSON value keeps. Room and app names are in [`crate::names`].
//!
//! # Readable by every client
//!
//! Meta and message payloads are kept as the client wrote them and served
//! to every client of the room, so a value some parser cannot read would be
//! stored once and then break every later read of it. Refused before
//! anything is stored: values nested deeper than `limits.max_json_depth`
//! (32, arrays and objects together; serde_json and Python stop at about
//! 128), and strings with a `\uD800`–`\uDFFF` escape that is not half of
//! a surrogate pair (browsers read it, serde_json refuses it).

use chrono::DateTime;
use comms_protocol::rest::{CreateEndpointRequest, UpdateEndpointRequest};
use comms_protocol::Permission;
use serde_json::value::RawValue;

use crate::config::LimitsConfig;
use crate::error::ServiceError;
use crate::store::{EndpointLimits, EndpointSettings};

/// Parses a permission word (`read`, `read_and_write` or `moderate`).
///
/// # Errors
///
/// `Invalid` for any other word.
pub fn parse_permission(text: &str) -> Result<Permission, ServiceError> {
    Permission::parse(text).ok_or_else(|| {
        let shown: String = text.chars().take(40).collect();
        ServiceError::Invalid(format!(
            "permission must be \"read\", \"read_and_write\" or \"moderate\" (got {shown:?})"
        ))
    })
}

/// Meta: a JSON object within `limits.max_meta_bytes`, stored on an
/// endpoint or given with an app's message, and stamped by the server on
/// the messages sent with it.
#[derive(Debug, Clone)]
pub struct Meta(Box<RawValue>);

impl Meta {
    /// `{}`, the meta of an endpoint created without one.
    pub fn empty() -> Self {
        Self(RawValue::from_string("{}".into()).expect("{} is JSON"))
    }

    /// Checks meta a client sent; no meta (or `null`) is the empty object.
    ///
    /// # Errors
    ///
    /// `Invalid` when it is not an object or is over the size limit.
    pub fn parse(meta: Option<&RawValue>, limits: &LimitsConfig) -> Result<Self, ServiceError> {
        let Some(meta) = meta.filter(|meta| meta.get() != "null") else { return Ok(Self::empty()) };
        let text = meta.get();
        if !text.starts_with('{') {
            return Err(ServiceError::Invalid("meta must be a JSON object".into()));
        }
        if text.len() > limits.max_meta_bytes {
            return Err(ServiceError::Invalid(format!(
                "meta is {} bytes, over the limit of {} bytes",
                text.len(),
                limits.max_meta_bytes
            )));
        }
        check_readable("meta", meta, limits)?;
        Ok(Self(meta.to_owned()))
    }

    /// Meta the server itself makes (the demo's names), trusted as it is.
    pub fn from_object(object: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(serde_json::value::to_raw_value(&object).expect("a JSON map always serializes"))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON value, as a message's sender meta carries it.
    pub fn into_raw(self) -> Box<RawValue> {
        self.0
    }
}

/// Parses an RFC 3339 time into milliseconds since the epoch.
///
/// # Errors
///
/// `Invalid`, naming `what`.
pub fn parse_time(what: &str, text: &str) -> Result<i64, ServiceError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|_| ServiceError::Invalid(format!("{what} must be an RFC 3339 time, like 2026-12-31T12:00:00Z")))
}

/// A new endpoint as a client asks for it, parsed.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// What it may do.
    pub permission: Permission,
    /// The meta stamped on its messages.
    pub meta: Meta,
    /// Its own limits.
    pub limits: EndpointLimits,
    /// Whether its holder may mint children.
    pub can_delegate: bool,
}

impl EndpointSpec {
    /// An endpoint with no limits of its own that cannot delegate (the
    /// legacy API, the demo, the portal's simple form).
    pub fn plain(permission: Permission, meta: Meta) -> Self {
        Self { permission, meta, limits: EndpointLimits::default(), can_delegate: false }
    }

    /// Parses a creation body.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad permission, meta or expiry, or a
    /// `max_connections` of 0.
    pub fn parse(request: &CreateEndpointRequest, limits: &LimitsConfig) -> Result<Self, ServiceError> {
        let expires_at = request.expires_at.as_deref().map(|text| parse_time("expires_at", text)).transpose()?;
        Ok(Self {
            permission: parse_permission(&request.permission)?,
            meta: Meta::parse(request.meta.as_deref(), limits)?,
            limits: EndpointLimits {
                max_connections: check_connections(request.max_connections)?,
                single_use: request.single_use,
                expires_at,
                max_messages: request.max_messages,
            },
            can_delegate: request.can_delegate,
        })
    }
}

/// A change to an endpoint, parsed: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    /// The new permission.
    pub permission: Option<Permission>,
    /// The new meta.
    pub meta: Option<Meta>,
    /// The new expiry (`Some(None)`: none).
    pub expires_at: Option<Option<i64>>,
    /// The new budget (`Some(None)`: unlimited).
    pub max_messages: Option<Option<u64>>,
    /// The new connection cap (`Some(None)`: only the socket quotas).
    pub max_connections: Option<Option<u64>>,
}

impl EndpointUpdate {
    /// Parses a `PATCH` body.
    ///
    /// # Errors
    ///
    /// `Invalid` for a bad permission, meta or expiry, or a
    /// `max_connections` of 0.
    pub fn parse(request: &UpdateEndpointRequest, limits: &LimitsConfig) -> Result<Self, ServiceError> {
        let expires_at = match &request.expires_at {
            Some(Some(text)) => Some(Some(parse_time("expires_at", text)?)),
            Some(None) => Some(None),
            None => None,
        };
        Ok(Self {
            permission: request.permission.as_deref().map(parse_permission).transpose()?,
            meta: request.meta.as_deref().map(|meta| Meta::parse(Some(meta), limits)).transpose()?,
            expires_at,
            max_messages: request.max_messages,
            max_connections: request.max_connections.map(check_connections).transpose()?,
        })
    }

    /// `settings` with this change made.
    pub fn apply(&self, settings: EndpointSettings) -> EndpointSettings {
        let limits = settings.limits;
        EndpointSettings {
            permission: self.permission.unwrap_or(settings.permission),
            meta: self.meta.as_ref().map_or(settings.meta, |meta| meta.as_str().to_owned()),
            limits: EndpointLimits {
                expires_at: self.expires_at.unwrap_or(limits.expires_at),
                max_messages: self.max_messages.unwrap_or(limits.max_messages),
                max_connections: self.max_connections.unwrap_or(limits.max_connections),
                single_use: limits.single_use,
            },
        }
    }
}

/// A `max_connections` as asked: at least 1, or none.
fn check_connections(cap: Option<u64>) -> Result<Option<u64>, ServiceError> {
    match cap {
        Some(0) => Err(ServiceError::Invalid("max_connections must be at least 1, or null".into())),
        cap => Ok(cap),
    }
}

/// Refuses a JSON value that some client could not read back: nested
/// deeper than `limits.max_json_depth`, or holding a `\uD800`–`\uDFFF`
/// escape that is not half of a surrogate pair (JSON's grammar lets it
/// through, and so does the parse that keeps payloads as written, but
/// strict parsers such as serde_json refuse the whole value).
///
/// # Errors
///
/// `Invalid`, naming `what` and the flaw.
pub fn check_readable(what: &str, value: &RawValue, limits: &LimitsConfig) -> Result<(), ServiceError> {
    match scan(value.get(), limits.max_json_depth) {
        Ok(()) => Ok(()),
        Err(Flaw::TooDeep) => Err(ServiceError::TooDeep(format!(
            "{what} is nested more than {} levels deep (arrays and objects together)",
            limits.max_json_depth
        ))),
        Err(Flaw::LoneSurrogate) => Err(ServiceError::Invalid(format!(
            "{what} holds a \\u escape of half a surrogate pair, which strict JSON parsers refuse"
        ))),
    }
}

/// Why a syntactically valid JSON text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    TooDeep,
    LoneSurrogate,
}

/// One pass over valid JSON `text`: arrays and objects nested deeper than
/// `limit` (stopping as soon as it is passed; no recursion, so no input can
/// exhaust the stack), and unpaired surrogate escapes in strings.
fn scan(text: &str, limit: usize) -> Result<(), Flaw> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    // A high surrogate escape was just read: the next must be a low one.
    let mut awaiting_low = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        if in_string {
            match byte {
                b'\\' => {
                    let escaped = bytes.get(at).copied();
                    at += 1;
                    if escaped == Some(b'u') {
                        let unit = bytes.get(at..at + 4).and_then(|hex| std::str::from_utf8(hex).ok());
                        let unit = unit.and_then(|hex| u16::from_str_radix(hex, 16).ok()).unwrap_or(0);
                        at += 4;
                        match unit {
                            0xD800..=0xDBFF if !awaiting_low => awaiting_low = true,
                            0xDC00..=0xDFFF if awaiting_low => awaiting_low = false,
                            _ if awaiting_low => return Err(Flaw::LoneSurrogate),
                            0xDC00..=0xDFFF => return Err(Flaw::LoneSurrogate),
                            _ => {}
                        }
                        continue;
                    }
                }
                b'"' => in_string = false,
                _ => {}
            }
            if awaiting_low {
                return Err(Flaw::LoneSurrogate);
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Err(Flaw::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.into()).unwrap()
    }

    #[test]
    fn meta_is_an_object_within_the_limit() {
        let limits = LimitsConfig { max_meta_bytes: 16, ..LimitsConfig::default() };
        assert_eq!(Meta::parse(None, &limits).unwrap().as_str(), "{}");
        assert_eq!(Meta::parse(Some(&raw("null")), &limits).unwrap().as_str(), "{}");
        assert_eq!(Meta::parse(Some(&raw(r#"{"a":1}"#)), &limits).unwrap().as_str(), r#"{"a":1}"#);
        for bad in ["[]", "1", r#""x""#, r#"{"name":"too long for it"}"#] {
            assert!(Meta::parse(Some(&raw(bad)), &limits).is_err(), "{bad}");
        }
    }

    #[test]
    fn depth_counts_arrays_and_objects_together_outside_strings() {
        let deeper = |text: &str, limit| scan(text, limit) == Err(Flaw::TooDeep);
        assert!(!deeper("1", 0));
        assert!(!deeper("{}", 1));
        assert!(deeper("{}", 0));
        assert!(!deeper(r#"{"a":[{"b":[]}]}"#, 4));
        assert!(deeper(r#"{"a":[{"b":[]}]}"#, 3));
        assert!(!deeper(r#"{"a":"[[[[{{{{\"[["}"#, 1), "brackets in strings do not count");
        assert!(!deeper(r#"[[1],[2],[3]]"#, 2), "siblings do not add up");
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(deeper(&deep, 32));
        assert!(!deeper(&deep[1..deep.len() - 1], 32));
    }

    #[test]
    fn only_paired_surrogate_escapes_pass() {
        for fine in [r#""\ud83d\ude00""#, r#""\u00e9 \\ud83d""#, r#"["\u0041", "😀"]"#, r#""\\""#] {
            assert_eq!(scan(fine, 32), Ok(()), "{fine}");
            assert!(serde_json::from_str::<serde_json::Value>(fine).is_ok(), "{fine}");
        }
        for lone in [r#""\ud83d""#, r#""\ude00""#, r#""\ud83dx""#, r#""\ud83d\u0041""#, r#"{"a":"\udbff"}"#] {
            assert_eq!(scan(lone, 32), Err(Flaw::LoneSurrogate), "{lone}");
            assert!(serde_json::from_str::<serde_json::Value>(lone).is_err(), "{lone}");
        }
    }

    #[test]
    fn meta_deeper_than_the_limit_is_refused() {
        let limits = LimitsConfig::default();
        let deep = format!("{}1{}", r#"{"a":"#.repeat(33), "}".repeat(33));
        assert!(Meta::parse(Some(&raw(&deep)), &limits).is_err());
        let fine = format!("{}1{}", r#"{"a":"#.repeat(32), "}".repeat(32));
        assert!(Meta::parse(Some(&raw(&fine)), &limits).is_ok());
    }

    #[test]
    fn permissions_are_the_two_words() {
        assert_eq!(parse_permission("read").unwrap(), Permission::Read);
        assert_eq!(parse_permission("read_and_write").unwrap(), Permission::ReadAndWrite);
        assert!(parse_permission("write").is_err());
    }
}
