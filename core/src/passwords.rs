//! Portal passwords: argon2id hashes, length rules, and generated passwords
//! for the first admin.
//!
//! Parameters follow OWASP's recommendation for argon2id (19 MiB, two
//! passes, one lane): about 20 ms per hash on this project's machines,
//! which is slow for guessing and fine for a login. Hashing runs on tokio's
//! blocking pool so it never stalls the async workers serving sockets.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::error::ServiceError;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted, in characters (bounds the hashing work).
pub const MAX_PASSWORD_CHARS: usize = 128;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the length rules.
///
/// # Errors
///
/// `Invalid`, saying which rule.
pub fn check_rules(password: &str) -> Result<(), ServiceError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ServiceError::Invalid(format!("the password needs at least {MIN_PASSWORD_CHARS} characters")));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ServiceError::Invalid(format!("the password may have at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
///
/// # Errors
///
/// `Internal` if hashing fails (it does not with these parameters).
pub async fn hash(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|err| anyhow::anyhow!("salt: {err}"))?;
        let hashed = hasher().hash_password(password.as_bytes(), &salt).map_err(|err| anyhow::anyhow!("{err}"))?;
        Ok(hashed.to_string())
    })
    .await
    .map_err(|err| ServiceError::Internal(err.into()))?
    .map_err(ServiceError::Internal)
}

/// Whether `password` matches the PHC string `hashed`. A malformed hash
/// matches nothing.
///
/// # Errors
///
/// `Internal` if the blocking task fails.
pub async fn verify(password: String, hashed: String) -> Result<bool, ServiceError> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hashed).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|err| ServiceError::Internal(err.into()))
}

/// A random password for an account made on the command line: 20
/// URL-safe characters (120 bits).
pub fn generate() -> String {
    crate::secrets::random_token(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hashed = hash("correct horse battery".into()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), hashed.clone()).await.unwrap());
        assert!(!verify("correct horse batteries".into(), hashed).await.unwrap());
        assert!(!verify("anything".into(), "not a hash".into()).await.unwrap());
    }

    #[test]
    fn length_rules() {
        assert!(check_rules("short").is_err());
        assert!(check_rules(&"x".repeat(MIN_PASSWORD_CHARS)).is_ok());
        assert!(check_rules(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        assert_eq!(generate().len(), 20);
    }
}
