//! Unguessable values: API keys, endpoint codes and public ids, webhook and
//! event ids, form tokens,
//! the tokens of mailed links, and the server's generated signing key.
//!
//! API keys and the tokens of mailed links are hashed with SHA-256, not
//! argon2: each is 256 random bits, so a slow hash adds no protection
//! against guessing, while a key is checked on every API request and must
//! cost microseconds. Only the hash is stored, so a copy of the database
//! opens no account and calls no API.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every API key, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "ck_";

/// `bytes` random bytes from the OS-seeded generator, URL-safe base64.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A freshly issued API key. The plain text exists only until it is shown
/// to its owner once; only [`ApiKeyHash`] is stored.
pub struct NewApiKey {
    /// The key to hand to its owner, once.
    pub plain: String,
    /// What is stored and looked up.
    pub hash: ApiKeyHash,
}

impl NewApiKey {
    /// Draws 32 random bytes from the OS-seeded generator.
    pub fn generate() -> Self {
        let plain = format!("{API_KEY_PREFIX}{}", random_token(32));
        let hash = ApiKeyHash::of(&plain);
        Self { plain, hash }
    }
}

/// SHA-256 of an API key, the form it is stored and looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeyHash {
    /// Hashes a key as presented by a client.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Lower-case hex, the stored form.
    pub fn to_hex(self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of a link mailed to an account's owner (address
/// confirmation, password reset). The plain text exists only in the email;
/// only [`MailedTokenHash`] is stored.
pub struct MailedToken {
    /// What goes into the link.
    pub plain: String,
    /// What is stored and looked up.
    pub hash: MailedTokenHash,
}

impl MailedToken {
    /// Draws 32 random bytes from the OS-seeded generator.
    pub fn generate() -> Self {
        let plain = random_token(32);
        let hash = MailedTokenHash::of(&plain);
        Self { plain, hash }
    }
}

/// SHA-256 of a mailed link's token. Whatever a visitor pastes is hashed
/// before any lookup, so no text of theirs reaches the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailedTokenHash([u8; 32]);

impl MailedTokenHash {
    /// Hashes a token as it came back in a link.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Lower-case hex, the stored form.
    pub fn to_hex(self) -> String {
        hex(&self.0)
    }
}

/// A new key for signing cookies (HMAC-SHA256): 64 random bytes, the
/// length the `cookie` crate's keys have, URL-safe base64.
pub fn signing_key() -> String {
    random_token(64)
}

/// The bytes of a key made by [`signing_key`].
///
/// # Errors
///
/// The text is not URL-safe base64 (a stored value changed by hand).
pub fn signing_key_bytes(key: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(key)
}

/// A new endpoint code: 24 random bytes (192 bits), URL-safe base64.
pub fn endpoint_code() -> String {
    random_token(24)
}

/// Whether `code` has the form of an endpoint code or a public id (`wh_…`)
/// this server hands out (URL-safe base64, at most 64 characters). Lookups skip the database for
/// anything else: such a code cannot exist, and some text (a NUL byte)
/// would make PostgreSQL refuse the query itself.
pub fn is_code_shaped(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A token that ties a portal form to its session (CSRF protection): 256
/// random bits.
pub fn form_token() -> String {
    random_token(32)
}

/// A new public endpoint id, distinct from its code: `ep_` and 96 random bits.
pub fn endpoint_id() -> String {
    format!("ep_{}", random_token(12))
}

/// A webhook's public id.
pub fn webhook_id() -> String {
    format!("wh_{}", random_token(12))
}

/// A running node's id, under which it writes its own usage rows.
pub fn node_id() -> String {
    format!("node_{}", random_token(12))
}

/// A webhook event's id (its `webhook-id` header).
pub fn event_id() -> String {
    format!("evt_{}", random_token(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_handed_out_have_the_code_shape() {
        assert!(is_code_shaped(&endpoint_code()));
        assert!(is_code_shaped(&webhook_id()));
        for bad in ["", "a\0b", "a b", "%00", &"a".repeat(65), "é"] {
            assert!(!is_code_shaped(bad), "{bad:?}");
        }
    }

    #[test]
    fn api_keys_are_long_random_and_prefixed() {
        let a = NewApiKey::generate();
        let b = NewApiKey::generate();
        assert!(a.plain.starts_with(API_KEY_PREFIX));
        assert_eq!(a.plain.len(), API_KEY_PREFIX.len() + 43, "32 bytes in base64url");
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.hash, ApiKeyHash::of(&a.plain));
    }

    #[test]
    fn mailed_tokens_are_stored_as_their_sha256() {
        let token = MailedToken::generate();
        assert_eq!(token.plain.len(), 43, "32 bytes in base64url");
        assert_eq!(token.hash, MailedTokenHash::of(&token.plain));
        assert_ne!(token.plain, MailedToken::generate().plain);
        assert_eq!(
            MailedTokenHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(signing_key_bytes(&signing_key()).unwrap().len(), 64);
    }

    #[test]
    fn key_hash_is_sha256() {
        assert_eq!(ApiKeyHash::of("abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn codes_are_url_safe_and_distinct_from_ids() {
        let code = endpoint_code();
        assert_eq!(code.len(), 32);
        assert!(code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(endpoint_id().starts_with("ep_"));
    }
}
