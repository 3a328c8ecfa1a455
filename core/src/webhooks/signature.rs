//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), so a
//! receiver can verify deliveries with that project's libraries.
//!
//! The secret is `whsec_` and the base64 of 32 random bytes; the signature
//! of a delivery is `v1,` and the base64 of HMAC-SHA256, keyed with those
//! bytes, over `{webhook-id}.{webhook-timestamp}.{body}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook's signing key.
pub struct WebhookSecret(Vec<u8>);

/// A stored secret that is not `whsec_<base64>`.
#[derive(Debug, thiserror::Error)]
#[error("a webhook secret must be whsec_ followed by base64")]
pub struct MalformedSecret;

impl WebhookSecret {
    /// A new secret in its shown and stored form, `whsec_…`.
    pub fn generate() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    }

    /// The key of a secret in its `whsec_…` form.
    ///
    /// # Errors
    ///
    /// [`MalformedSecret`] without the prefix or with invalid base64.
    pub fn parse(text: &str) -> Result<Self, MalformedSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(MalformedSecret)?;
        STANDARD.decode(encoded).map(Self).map_err(|_| MalformedSecret)
    }

    /// The `webhook-signature` header of `body` sent as event `id` at Unix
    /// second `timestamp`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_reference_example() {
        // The example of the Standard Webhooks specification.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_parse_back() {
        let secret = WebhookSecret::generate();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert!(WebhookSecret::parse(&secret).is_ok());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }
}
