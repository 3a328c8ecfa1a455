//! Values a client hands in, parsed once at the edge (the REST and legacy
//! handlers, the portal's server functions) into the types the services
//! take: an endpoint's permission and meta; and the depth rule every stored
//! JSON value keeps. Room and app names are in [`crate::names`].
//!
//! # Depth
//!
//! Meta and message payloads are kept as the client wrote them and served
//! to every client of the room. A value nested deeper than common parsers
//! read (serde_json and Python stop at about 128 levels) would be stored
//! once and then break every later read of it, so values nested deeper
//! than `limits.max_json_depth` (32, arrays and objects together) are
//! refused before anything is stored.

use comms_protocol::Permission;
use serde_json::value::RawValue;

use crate::config::LimitsConfig;
use crate::error::ServiceError;

/// Parses a permission word (`read` or `read_and_write`).
///
/// # Errors
///
/// `Invalid` for any other word.
pub fn parse_permission(text: &str) -> Result<Permission, ServiceError> {
    Permission::parse(text).ok_or_else(|| {
        let shown: String = text.chars().take(40).collect();
        ServiceError::Invalid(format!("permission must be \"read\" or \"read_and_write\" (got {shown:?})"))
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
        check_depth("meta", meta, limits)?;
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

/// Refuses a JSON value nested deeper than `limits.max_json_depth`.
///
/// # Errors
///
/// `Invalid`, naming `what` and the limit.
pub fn check_depth(what: &str, value: &RawValue, limits: &LimitsConfig) -> Result<(), ServiceError> {
    if nested_deeper_than(value.get(), limits.max_json_depth) {
        return Err(ServiceError::Invalid(format!(
            "{what} is nested more than {} levels deep (arrays and objects together)",
            limits.max_json_depth
        )));
    }
    Ok(())
}

/// Whether valid JSON `text` nests arrays and objects deeper than `limit`.
/// One pass over the bytes, stopping as soon as the limit is passed; no
/// recursion, so no input can exhaust the stack.
fn nested_deeper_than(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
        assert!(!nested_deeper_than("1", 0));
        assert!(!nested_deeper_than("{}", 1));
        assert!(nested_deeper_than("{}", 0));
        assert!(!nested_deeper_than(r#"{"a":[{"b":[]}]}"#, 4));
        assert!(nested_deeper_than(r#"{"a":[{"b":[]}]}"#, 3));
        assert!(!nested_deeper_than(r#"{"a":"[[[[{{{{\"[["}"#, 1), "brackets in strings do not count");
        assert!(!nested_deeper_than(r#"[[1],[2],[3]]"#, 2), "siblings do not add up");
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(nested_deeper_than(&deep, 32));
        assert!(!nested_deeper_than(&deep[1..deep.len() - 1], 32));
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
