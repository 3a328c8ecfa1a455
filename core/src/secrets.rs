//! Unguessable values: API keys, endpoint codes and public ids, form tokens.
//!
//! API keys are hashed with SHA-256, not argon2: a key is 256 random bits,
//! so a slow hash adds no protection against guessing, while the check runs
//! on every API request and must cost microseconds. Only the hash is stored.

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
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A new endpoint code: 24 random bytes (192 bits), URL-safe base64.
pub fn endpoint_code() -> String {
    random_token(24)
}

/// Whether `code` has the form of an endpoint code this server hands out
/// (URL-safe base64, at most 64 characters). Lookups skip the database for
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_handed_out_have_the_code_shape() {
        assert!(is_code_shaped(&endpoint_code()));
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
