//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), which every
//! webhook Cairn sends carries, so a receiver verifies it with a stock library (the
//! `standardwebhooks` packages for Python, JavaScript, Go, Rust, ...).
//!
//! ```text
//! webhook-id: evt_…                    stable across retries of one delivery
//! webhook-timestamp: 1733180000        Unix seconds of this attempt
//! webhook-signature: v1,<base64> v1,<base64>
//! ```
//!
//! Each `v1` value is `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))` where `key` is
//! the base64-decoded part of a `whsec_…` secret. While a secret is being rotated the
//! header carries one signature per secret, separated by spaces.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret.
pub const SECRET_BYTES: usize = 32;

/// A webhook signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// Why a text is not a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a webhook secret: expected whsec_ followed by base64 of 24 to 64 bytes")]
pub struct BadSecret;

impl WebhookSecret {
    /// A new secret of [`SECRET_BYTES`] random bytes from the OS.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// A secret of these key bytes (the callback secret, for instance).
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Self {
        Self(key.into())
    }

    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, BadSecret> {
        let key = STANDARD
            .decode(text.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?)
            .map_err(|_| BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(BadSecret);
        }
        Ok(Self(key))
    }

    /// The `whsec_<base64>` text, shown to its owner once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }

    /// Whether `signature` (one `v1,<base64>` value) signs the message; constant time.
    pub fn verifies(&self, signature: &str, id: &str, timestamp: i64, body: &[u8]) -> bool {
        let Some(Ok(given)) = signature.strip_prefix("v1,").map(|b| STANDARD.decode(b)) else {
            return false;
        };
        self.mac(id, timestamp, body).verify_slice(&given).is_ok()
    }
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification and its reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_example() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), EXPECTED);
        assert!(secret.verifies(EXPECTED, ID, TIMESTAMP, BODY));
        assert!(!secret.verifies(EXPECTED, ID, TIMESTAMP + 1, BODY));
        assert!(!secret.verifies(EXPECTED, "msg_other", TIMESTAMP, BODY));
    }

    #[test]
    fn a_rotation_header_carries_one_signature_per_secret() {
        let old = WebhookSecret::parse(SECRET).unwrap();
        let new = WebhookSecret::generate();
        let header = signature_header(&[new.clone(), old.clone()], ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(new.verifies(parts[0], ID, TIMESTAMP, BODY));
        assert!(old.verifies(parts[1], ID, TIMESTAMP, BODY));
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let s = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(&s.expose()).unwrap(), s);
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(format!("{s:?}"), "WebhookSecret(…)", "never in logs");
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_AAAA",
        ] {
            assert_eq!(WebhookSecret::parse(bad), Err(BadSecret), "{bad}");
        }
    }
}
