//! Outgoing HTTP delivery for Cairn: the shared piece behind Repour-style async
//! callbacks (and, later, webhooks).
//!
//! The pieces, in the order a callback worker uses them:
//!
//! - [`Callback`]: the `{"url": .., "method": "POST"|"PUT"}` object a client sends,
//!   validated when it is parsed (http/https only, no userinfo, a host, length limits).
//! - [`AddressPolicy`] and [`check_url`]: resolve the host once and refuse loopback,
//!   private, link-local, CGNAT, multicast, documentation and other special ranges
//!   unless the allow-list names them (for local testing).
//! - [`sign`] / [`verify`]: the `X-Cairn-Signature` header (HMAC-SHA256), see
//!   [`signature`] for the format a receiver checks.
//! - [`Deliverer`] (or [`deliver`]): add `"callback": {"status", "id"}` to the result
//!   body, sign it, send it to the *checked* addresses only (no second DNS lookup,
//!   so DNS rebinding cannot redirect it), never follow redirects, and return an
//!   [`Attempt`] record.
//! - [`Backoff`]: the retry schedule, a pure function of the attempt number.
//!
//! No AWS code lives here: the Lambda that drains the callback queue records the
//! attempts and decides between retry (SQS visibility) and the DLQ.

// unwrap() is fine in tests (a panic is the failure report); never in library code.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod backoff;
mod callback;
mod delivery;
mod error;
mod policy;
pub mod signature;
pub mod standard;

pub use backoff::Backoff;
pub use callback::{Callback, MAX_URL_LEN, Method};
pub use delivery::{Attempt, AttemptError, Deliverer, Outgoing, RESPONSE_PREFIX, deliver};
pub use error::CallbackError;
pub use policy::{AddressPolicy, AllowEntry, check_url, is_forbidden};
pub use signature::{SIGNATURE_HEADER, SignatureError, sign, signature_header, verify};
