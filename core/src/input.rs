//! Values a client hands in, parsed once at the edge (the REST and legacy
//! handlers, the portal's server functions) into the types the services
//! take: an endpoint's permission and meta. Room and app names are in
//! [`crate::names`].

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
    fn permissions_are_the_two_words() {
        assert_eq!(parse_permission("read").unwrap(), Permission::Read);
        assert_eq!(parse_permission("read_and_write").unwrap(), Permission::ReadAndWrite);
        assert!(parse_permission("write").is_err());
    }
}
