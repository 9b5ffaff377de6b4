//! Access tokens: scoped, expiring, revocable credentials for people, CI and
//! workers, instead of passwords.
//!
//! A token reads `cairn_<id>_<secret>`: the prefix lets secret scanners find leaked
//! ones, the id (16 hex digits) finds its record, the secret (64 hex digits, 256
//! random bits) proves it. Only the secret's SHA-256 is stored: a random 256-bit
//! secret needs no slow hash, so a token check costs one read and one SHA-256. The
//! token itself is shown once, when it is issued.

use crate::access::Scopes;
use crate::error::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "cairn_";
/// Lifetime of a token issued without one: 30 days.
pub const DEFAULT_LIFETIME_SECS: i64 = 30 * 86_400;
/// Longest lifetime a token may be issued with: a year.
pub const MAX_LIFETIME_SECS: i64 = 366 * 86_400;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 200;

/// A token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its id, the part between `cairn_` and the secret.
    pub id: String,
    /// The account it acts for.
    pub owner: String,
    /// What it is for, in its owner's words.
    pub description: String,
    /// What it may do.
    pub scopes: Scopes,
    /// When it was issued, Unix seconds.
    pub created_at: i64,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
    /// SHA-256 of its secret, hex.
    pub secret_sha256: String,
}

impl TokenRecord {
    /// Whether `secret` is this token's (compared in constant time) and it has not
    /// expired at `now`.
    pub fn admits(&self, secret: &str, now: i64) -> TokenCheck {
        let digest = hex::encode(Sha256::digest(secret.as_bytes()));
        if !bool::from(digest.as_bytes().ct_eq(self.secret_sha256.as_bytes())) {
            TokenCheck::Wrong
        } else if now >= self.expires_at {
            TokenCheck::Expired
        } else {
            TokenCheck::Valid
        }
    }
}

/// The outcome of checking a presented token against its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// It is the token and it has not expired.
    Valid,
    /// It was the token, but its time is over.
    Expired,
    /// Not this token's secret.
    Wrong,
}

/// A request for a new token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The account it acts for (the issuer's).
    pub owner: String,
    /// What it is for.
    pub description: String,
    /// What it may do.
    pub scopes: Scopes,
    /// How long it works, seconds.
    pub lifetime_secs: i64,
    /// It expires no later than this (the issuing token's expiry), Unix seconds.
    pub not_after: Option<i64>,
}

impl TokenRequest {
    /// A new token: its record, and the token text to show once.
    pub fn issue(self, now: i64) -> Result<(TokenRecord, String), String> {
        if self.description.chars().count() > MAX_DESCRIPTION
            || self.description.chars().any(char::is_control)
        {
            return Err(format!(
                "description: at most {MAX_DESCRIPTION} characters, no control characters"
            ));
        }
        if !(60..=MAX_LIFETIME_SECS).contains(&self.lifetime_secs) {
            return Err(format!(
                "lifetime: between 60 seconds and {} days",
                MAX_LIFETIME_SECS / 86_400
            ));
        }
        let expires_at = (now + self.lifetime_secs).min(self.not_after.unwrap_or(i64::MAX));
        if expires_at - now < 60 {
            return Err(
                "the issuing token expires within a minute: issue from a longer-lived credential"
                    .into(),
            );
        }
        Ok(mint(
            &self.owner,
            self.description,
            self.scopes,
            now,
            expires_at,
        ))
    }
}

/// A new token for `owner` with these scopes and times: its record, and the token
/// text to show once. Callers check what the token may be (see [`TokenRequest`]).
pub fn mint(
    owner: &str,
    description: String,
    scopes: Scopes,
    created_at: i64,
    expires_at: i64,
) -> (TokenRecord, String) {
    let id = random_hex(8);
    let secret = random_hex(32);
    let record = TokenRecord {
        id: id.clone(),
        owner: owner.to_string(),
        description,
        scopes,
        created_at,
        expires_at,
        secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
    };
    (record, format!("{TOKEN_PREFIX}{id}_{secret}"))
}

fn random_hex(bytes: usize) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The id and secret of a token's text, if it has a token's shape.
pub fn parse_token(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.strip_prefix(TOKEN_PREFIX)?.split_once('_')?;
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 16) && hex_of(secret, 64)).then_some((id, secret))
}

/// Where tokens are kept.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token.
    async fn put_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// A token by id (none once revoked).
    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// An account's tokens, expired ones included until they are cleaned up.
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes an account's token; false when it has no such token.
    async fn delete_token(&self, owner: &str, id: &str) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lifetime_secs: i64) -> TokenRequest {
        TokenRequest {
            owner: "alice".into(),
            description: "CI".into(),
            scopes: Scopes::parse(&["upload:release/*".into()]).expect("valid"),
            lifetime_secs,
            not_after: None,
        }
    }

    #[test]
    fn an_issued_token_is_checked_by_its_hash_and_expires() {
        let (record, token) = request(3600).issue(1_000).expect("issued");
        assert!(token.starts_with("cairn_") && token.len() == 6 + 16 + 1 + 64);
        assert!(
            !record.secret_sha256.contains(&token[23..]),
            "no secret in the record"
        );
        let (id, secret) = parse_token(&token).expect("shape");
        assert_eq!(id, record.id);
        assert_eq!(record.admits(secret, 1_001), TokenCheck::Valid);
        assert_eq!(record.admits(secret, 4_600), TokenCheck::Expired);
        let mut other = secret.to_string();
        other.replace_range(0..1, if secret.starts_with('0') { "1" } else { "0" });
        assert_eq!(record.admits(&other, 1_001), TokenCheck::Wrong);
    }

    #[test]
    fn malformed_tokens_and_requests_are_refused() {
        for text in [
            "cairn_",
            "cairn_0123456789abcdef",
            "cairn_0123456789abcdef_00",
            "ghp_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
            "cairn_0123456789abcdeg_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(parse_token(text).is_none(), "{text}");
        }
        assert!(request(59).issue(0).is_err());
        // A token issued by a token expires no later than its issuer.
        let mut child = request(86_400);
        child.not_after = Some(1_000 + 600);
        let (record, _) = child.issue(1_000).expect("issued");
        assert_eq!(record.expires_at, 1_600);
        let mut late = request(86_400);
        late.not_after = Some(1_030);
        assert!(late.issue(1_000).is_err(), "less than a minute left");
        assert!(request(MAX_LIFETIME_SECS + 1).issue(0).is_err());
        let mut long = request(3600);
        long.description = "x".repeat(MAX_DESCRIPTION + 1);
        assert!(long.issue(0).is_err());
    }
}
