//! The `X-Cairn-Signature` header, so a receiver can check a callback came from Cairn.
//!
//! Format:
//!
//! ```text
//! X-Cairn-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//! ```
//!
//! `v1` is `HMAC-SHA256(secret, "<t>.<raw request body>")` in lower-case hex. To
//! verify, a receiver:
//!
//! 1. splits the header on `,` and each part on the first `=`;
//! 2. recomputes the HMAC over the decimal `t`, a `.`, and the body bytes exactly
//!    as received (before any JSON parsing);
//! 3. compares it in constant time with any `v1` value (several may be present
//!    while a secret is rotated; unknown keys are ignored for future schemes);
//! 4. rejects `t` further than its tolerance (e.g. 5 minutes) from its own clock,
//!    which bounds replays.
//!
//! [`verify`] does exactly this and is what Cairn's own tests and tools use.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-Cairn-Signature";

/// Why a signature header did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not `t=<int>,v1=<hex>`.
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance.
    #[error(
        "signature timestamp {timestamp} is {age}s away from now; the tolerance is {tolerance}s"
    )]
    Stale {
        /// The header's timestamp.
        timestamp: i64,
        /// Distance from now, in seconds.
        age: u64,
        /// The tolerance given.
        tolerance: u64,
    },
    /// No `v1` value matches the body and secret.
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret` (the `v1` value).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// The full header value, `t=<timestamp>,v1=<hex>`.
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Check a header value against `body`, with `now` and `tolerance_secs` bounding
/// the timestamp in both directions. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not an integer"))?;
                if timestamp.replace(t).is_some() {
                    return Err(SignatureError::Malformed("t given twice"));
                }
            }
            "v1" => candidates
                .push(hex::decode(value).map_err(|_| SignatureError::Malformed("v1 is not hex"))?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1"));
    }
    let age = now.abs_diff(timestamp);
    if age > tolerance_secs {
        return Err(SignatureError::Stale {
            timestamp,
            age,
            tolerance: tolerance_secs,
        });
    }
    let expected = mac(secret, timestamp, body);
    if candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";
    const BODY: &[u8] = br#"{"ok":true}"#;

    #[test]
    fn known_vector() {
        // Computed independently:
        // printf '1700000000.{"ok":true}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            "95e532fd0d484d8db110942dc66b379dd229f38f9f5df856e97709db2bb1e3ac"
        );
    }

    #[test]
    fn round_trip() {
        let h = signature_header(SECRET, 1_700_000_000, BODY);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, &h, BODY, 1_700_000_010, 300), Ok(()));
        // Rotation: an extra, unrelated v1 and an unknown scheme do not hurt.
        let rotated = format!("{h},v1={},v0=zz", "00".repeat(32));
        assert_eq!(verify(SECRET, &rotated, BODY, 1_700_000_000, 300), Ok(()));
    }

    #[test]
    fn tampered_body() {
        let h = signature_header(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(SECRET, &h, br#"{"ok":false}"#, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret() {
        let h = signature_header(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(b"other", &h, BODY, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn changed_timestamp_breaks_signature() {
        let v1 = sign(SECRET, 1_700_000_000, BODY);
        let h = format!("t=1700000001,v1={v1}");
        assert_eq!(
            verify(SECRET, &h, BODY, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps() {
        let h = signature_header(SECRET, 1_700_000_000, BODY);
        assert!(matches!(
            verify(SECRET, &h, BODY, 1_700_000_301, 300),
            Err(SignatureError::Stale { age: 301, .. })
        ));
        assert!(matches!(
            verify(SECRET, &h, BODY, 1_699_999_000, 300),
            Err(SignatureError::Stale { age: 1000, .. })
        ));
        assert_eq!(verify(SECRET, &h, BODY, 1_700_000_300, 300), Ok(()));
    }

    #[test]
    fn malformed_headers() {
        for h in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "garbage",
        ] {
            assert!(
                matches!(
                    verify(SECRET, h, BODY, 1, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{h:?}"
            );
        }
    }
}
