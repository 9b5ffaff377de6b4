//! HTTP Basic authentication against stored password hashes.
//!
//! Two hash formats are accepted: werkzeug's `pbkdf2:sha256:<iterations>$<salt>$<hex>`
//! (what RWS deployments already have) and PHC-format argon2 (`$argon2id$...`), which
//! is what Cairn writes for new users.

use crate::ports::{StoreError, UserDirectory};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// werkzeug 2.x's default, used when a hash does not state its iteration count.
const WERKZEUG_DEFAULT_ITERATIONS: u32 = 260_000;
/// Refuse absurd iteration counts in stored hashes (CPU exhaustion).
const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Login name.
    pub name: String,
    /// Password hash in one of the accepted formats.
    pub password_hash: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Login name.
    pub name: String,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or not `Basic`.
    #[error("credentials required (HTTP Basic)")]
    Missing,
    /// The header is not valid Basic syntax.
    #[error("malformed Authorization header")]
    Malformed,
    /// Unknown user or wrong password (deliberately not distinguished).
    #[error("invalid user name or password")]
    Invalid,
    /// The user directory could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes a new password with argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password")
        .to_string()
}

/// Checks `password` against a stored hash. Unknown formats never match.
pub fn verify_password(stored: &str, password: &str) -> bool {
    if stored.starts_with("$argon2") {
        return PasswordHash::new(stored)
            .map(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2:sha256") {
        return verify_werkzeug_pbkdf2(rest, password).unwrap_or(false);
    }
    false
}

fn verify_werkzeug_pbkdf2(rest: &str, password: &str) -> Option<bool> {
    // rest is ":<iterations>$<salt>$<hex>" or "$<salt>$<hex>".
    let (params, salt_and_hash) = rest.split_once('$')?;
    let iterations = match params.strip_prefix(':') {
        Some(n) => n.parse::<u32>().ok()?,
        None if params.is_empty() => WERKZEUG_DEFAULT_ITERATIONS,
        None => return None,
    };
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return None;
    }
    let (salt, expected_hex) = salt_and_hash.split_once('$')?;
    let expected = hex::decode(expected_hex).ok()?;
    if expected.is_empty() || expected.len() > 64 {
        return None;
    }
    let mut derived = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    Some(derived.ct_eq(&expected).into())
}

/// A hash that never matches, verified for unknown users so that the response time
/// does not tell which user names exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3vGRIYuZsG6WIOnF7NVNPbFpTqsVgOHQKpk8tiWGsr8";

/// Checks HTTP Basic credentials against a [`UserDirectory`].
pub struct Authenticator<U> {
    users: U,
}

impl<U: UserDirectory> Authenticator<U> {
    /// Wraps a user directory.
    pub fn new(users: U) -> Self {
        Self { users }
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, encoded) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(AuthError::Missing);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (name, password) = decoded.split_once(':').ok_or(AuthError::Malformed)?;
        let user = self.users.get_user(name).await?;
        let (hash, known) = match &user {
            Some(u) => (u.password_hash.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        if verify_password(hash, password) && known {
            Ok(Principal {
                name: name.to_string(),
            })
        } else {
            Err(AuthError::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn werkzeug_pbkdf2_hashes_verify() {
        // Made with werkzeug.security.generate_password_hash("secret", "pbkdf2:sha256:1000")
        // style parameters; recomputed here to avoid depending on Python.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"secret", b"NaCl", 1000, &mut out);
        let stored = format!("pbkdf2:sha256:1000$NaCl${}", hex::encode(out));
        assert!(verify_password(&stored, "secret"));
        assert!(!verify_password(&stored, "Secret"));
        assert!(!verify_password("pbkdf2:sha256:0$NaCl$00", "secret"));
        assert!(!verify_password("pbkdf2:sha256:99999999$NaCl$00", "secret"));
        assert!(!verify_password("plain", "plain"));
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("hunter2");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "hunter2"));
        assert!(!verify_password(&h, "hunter3"));
        assert!(!verify_password(DUMMY_HASH, ""));
    }
}
