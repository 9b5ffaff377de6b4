//! HTTP Basic authentication against stored password hashes.
//!
//! Two hash formats are accepted: werkzeug's `pbkdf2:sha256:<iterations>$<salt>$<hex>`
//! (what RWS deployments already have) and PHC-format argon2 (`$argon2id$...`), which
//! is what Cairn writes for new users.
//!
//! Memory: argon2 needs `m` KiB of working memory per hash (19 MiB with the defaults).
//! The argon2 crate allocates it afresh for every hash, as one 64-byte-aligned block
//! (`posix_memalign`); in a long-lived process glibc then kept every such block: after
//! the first one is freed its dynamic mmap threshold rises above 19 MiB, later blocks
//! come from the heap, and the aligned request never fits the freed chunk it left, so
//! each check grew the heap by another 19 MiB per malloc arena (docs/performance.md,
//! "Memory of a warm API process"). Hashes here therefore run in one working buffer per
//! process, reserved once and reused, and stored hashes that ask for more than
//! [`MAX_ARGON2_MEMORY_KIB`] (or more passes or lanes than the caps) are refused.

use crate::access::{Action, Denied, Role, Scopes};
use crate::labels::Selector;
use crate::ports::{StoreError, UserDirectory};
use crate::tokens::{TokenCheck, TokenStore, parse_token};
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, PoisonError};
use subtle::ConstantTimeEq;

/// werkzeug 2.x's default, used when a hash does not state its iteration count.
const WERKZEUG_DEFAULT_ITERATIONS: u32 = 260_000;
/// Refuse absurd iteration counts in stored hashes (CPU exhaustion).
const MAX_PBKDF2_ITERATIONS: u32 = 5_000_000;
/// Largest argon2 memory cost (`m`, KiB) a stored hash may ask for: 64 MiB. Cairn
/// writes 19 MiB (the argon2 crate's default, OWASP's recommendation).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Largest argon2 pass count (`t`) a stored hash may ask for (CPU exhaustion).
pub const MAX_ARGON2_PASSES: u32 = 10;
/// Largest argon2 lane count (`p`) a stored hash may ask for.
pub const MAX_ARGON2_LANES: u32 = 4;

/// The argon2 working memory of this process (one [`Block`] = 1 KiB), shared by every
/// hash and verification. Its capacity is reserved once, for the largest accepted
/// hash, and never reallocated or freed, so the allocator never sees a 19 MiB block
/// come and go; only the blocks a hash actually uses are ever touched (resident).
static ARGON2_BLOCKS: Mutex<Vec<Block>> = Mutex::new(Vec::new());

/// Runs `f` on the first `block_count` blocks of the process's argon2 buffer (one
/// hash at a time).
fn with_argon2_blocks<R>(block_count: usize, f: impl FnOnce(&mut [Block]) -> R) -> Option<R> {
    let max_blocks = MAX_ARGON2_MEMORY_KIB as usize;
    if block_count > max_blocks {
        return None;
    }
    // Poisoning is harmless: the blocks are scratch space that every hash overwrites.
    let mut blocks = ARGON2_BLOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    let len = blocks.len();
    if blocks.capacity() < max_blocks {
        blocks.reserve_exact(max_blocks - len);
    }
    if blocks.len() < block_count {
        blocks.resize(block_count, Block::default());
    }
    Some(f(&mut blocks[..block_count]))
}

/// argon2 parameters of a stored hash, if within the caps.
fn argon2_params(hash: &PasswordHash<'_>) -> Option<Params> {
    let params = Params::try_from(hash).ok()?;
    (params.m_cost() <= MAX_ARGON2_MEMORY_KIB
        && params.t_cost() <= MAX_ARGON2_PASSES
        && params.p_cost() <= MAX_ARGON2_LANES)
        .then_some(params)
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Login name.
    pub name: String,
    /// Password hash in one of the accepted formats.
    pub password_hash: String,
    /// What the account's password may do (accounts made before roles: uploader).
    #[serde(default)]
    pub role: Role,
    /// Tokens issued before this time (Unix seconds) no longer work: writing the
    /// account again (a new password or role) revokes every token it had.
    #[serde(default)]
    pub tokens_after: i64,
    /// Label selectors (Kubernetes syntax): the private repositories whose labels
    /// one of them matches are visible to the account, as its own are.
    #[serde(default)]
    pub selectors: Vec<String>,
}

impl UserRecord {
    /// The account's selectors, read; one that no longer parses is skipped (and
    /// logged), so it widens nothing.
    pub fn parsed_selectors(&self) -> Vec<Selector> {
        self.selectors
            .iter()
            .filter_map(|text| match Selector::parse_granting(text) {
                Ok(selector) => Some(selector),
                Err(e) => {
                    tracing::warn!(user = %self.name, selector = %text, error = %e, "selector ignored");
                    None
                }
            })
            .collect()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account (a token acts for its owner).
    pub name: String,
    /// What this credential may do: the account's role for a password, the token's
    /// scopes for a token.
    pub scopes: Scopes,
    /// The token's id when the credential is a token.
    pub token: Option<String>,
    /// When the credential stops working, Unix seconds (tokens; passwords do not
    /// expire). Tokens it issues expire no later.
    pub expires_at: Option<i64>,
    /// The account's label selectors: which private repositories it sees besides
    /// its own.
    pub selectors: Vec<Selector>,
}

impl Principal {
    /// A password account's principal: its role's scopes.
    pub fn with_role(name: &str, role: Role) -> Self {
        Principal {
            name: name.to_string(),
            scopes: role.scopes(),
            token: None,
            expires_at: None,
            selectors: Vec::new(),
        }
    }

    /// Whether the credential may do anything (the `admin` scope).
    pub fn is_admin(&self) -> bool {
        self.scopes.allows(Action::Admin, "")
    }

    /// Refuses what the credential's scopes do not allow: `action` on `name` (`""`
    /// for actions without names).
    pub fn require(&self, action: Action, name: &str) -> Result<(), Denied> {
        if self.scopes.allows(action, name) {
            Ok(())
        } else {
            Err(Denied {
                action,
                name: name.to_string(),
            })
        }
    }
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or neither `Basic` nor `Bearer`.
    #[error("credentials required (HTTP Basic, or a token as Bearer or as the Basic password)")]
    Missing,
    /// The header is not valid Basic syntax.
    #[error("malformed Authorization header")]
    Malformed,
    /// Unknown user or wrong password (deliberately not distinguished).
    #[error("invalid user name or password")]
    Invalid,
    /// Not a token Cairn issued, or one that was revoked.
    #[error("invalid or revoked token")]
    InvalidToken,
    /// A token past its expiry.
    #[error("the token expired; issue a new one (POST /v1/tokens)")]
    Expired,
    /// The user directory could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes a new password with argon2id and a random salt: PHC string, the argon2
/// crate's default parameters (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let hash = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        with_argon2_blocks(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)
        })
        .expect("the default parameters are within the caps")
        .map_err(Into::into)
    })
    .expect("argon2 with default parameters accepts any password");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("default parameters format"),
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    }
    .to_string()
}

/// Checks `password` against a stored hash. Unknown formats never match.
pub fn verify_password(stored: &str, password: &str) -> bool {
    if stored.starts_with("$argon2") {
        return verify_argon2(stored, password).unwrap_or(false);
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2:sha256") {
        return verify_werkzeug_pbkdf2(rest, password).unwrap_or(false);
    }
    false
}

/// argon2 (id, i or d) from a PHC string, computed in the process's reused buffer and
/// compared in constant time. `None` for a malformed hash or one over the caps.
fn verify_argon2(stored: &str, password: &str) -> Option<bool> {
    let hash = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = argon2_params(&hash)?;
    let expected = hash.hash?;
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = hash.salt?.decode_b64(&mut salt_bytes).ok()?;
    let mut computed = [0u8; Output::MAX_LENGTH];
    let computed = computed.get_mut(..expected.len())?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    with_argon2_blocks(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, computed, blocks)
    })?
    .ok()?;
    Some(computed.ct_eq(expected.as_bytes()).into())
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

/// Longest user name an account can have (bytes).
pub const MAX_USER_NAME: usize = 128;

/// A hash that never matches, verified for unknown users so that the response time
/// does not tell which user names exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3vGRIYuZsG6WIOnF7NVNPbFpTqsVgOHQKpk8tiWGsr8";

/// Where credentials are checked: password accounts and tokens.
pub trait Accounts: UserDirectory + TokenStore {}

impl<T: UserDirectory + TokenStore> Accounts for T {}

/// Checks credentials: HTTP Basic against a [`UserDirectory`], and tokens (as a
/// `Bearer` credential, or as the Basic password, which is how apt, dnf, helm and git
/// send them) against a [`TokenStore`].
pub struct Authenticator<'a> {
    accounts: &'a dyn Accounts,
}

impl<'a> Authenticator<'a> {
    /// Wraps the accounts.
    pub fn new(accounts: &'a dyn Accounts) -> Self {
        Self { accounts }
    }

    /// Authenticates the value of an `Authorization` header at `now` (Unix seconds).
    pub async fn authenticate(
        &self,
        header: Option<&str>,
        now: i64,
    ) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, credential) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.token(credential.trim(), now).await;
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(AuthError::Missing);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credential.trim())
            .map_err(|_| AuthError::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (name, password) = decoded.split_once(':').ok_or(AuthError::Malformed)?;
        // A token as the password: whatever the user name (clients insist on one).
        if password.starts_with(crate::tokens::TOKEN_PREFIX) {
            return self.token(password, now).await;
        }
        // No account has a longer name (the directory could not even be asked: its
        // keys are limited); answered like an unknown user, after the same work.
        let user = if name.is_empty() || name.len() > MAX_USER_NAME {
            None
        } else {
            self.accounts.get_user(name).await?
        };
        let (hash, known) = match &user {
            Some(u) => (u.password_hash.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        // The hash is checked for unknown users too, so timing does not tell them apart.
        let verified = verify_password(hash, password) && known;
        match user {
            Some(user) if verified => Ok(Principal {
                selectors: user.parsed_selectors(),
                ..Principal::with_role(name, user.role)
            }),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn token(&self, text: &str, now: i64) -> Result<Principal, AuthError> {
        let (id, secret) = parse_token(text).ok_or(AuthError::InvalidToken)?;
        let record = self
            .accounts
            .get_token(id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        match record.admits(secret, now) {
            TokenCheck::Valid => {}
            TokenCheck::Expired => return Err(AuthError::Expired),
            TokenCheck::Wrong => return Err(AuthError::InvalidToken),
        }
        // The account as it is now: gone, or rewritten since the token was issued
        // (password reset, role change), the token is dead; a token never does more
        // than the account's role allows today.
        let owner = self
            .accounts
            .get_user(&record.owner)
            .await?
            .filter(|u| record.created_at >= u.tokens_after)
            .ok_or(AuthError::InvalidToken)?;
        Ok(Principal {
            name: record.owner,
            scopes: record.scopes.within(&owner.role.scopes()),
            token: Some(record.id),
            expires_at: Some(record.expires_at),
            selectors: owner.parsed_selectors(),
        })
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
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(&h, "hunter2"));
        assert!(!verify_password(&h, "hunter3"));
        assert!(!verify_password(DUMMY_HASH, ""));
        // The argon2 crate's own verifier accepts what we write.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&h).expect("PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"hunter2", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn known_phc_hashes_from_the_argon2_crate_verify() {
        // Made with argon2 0.5.3, `Argon2::default().hash_password` (argon2id, m=19456,
        // t=2, p=1), independently of this module.
        let defaults = "$argon2id$v=19$m=19456,t=2,p=1$J/xfGanGpYmzufSVb7kG6g$mIuXwGLzaEm5+k3EgF5a3Bgks6IpyVHeAqVpmtWdWbo";
        // The same crate with m=256, t=1, p=2: fewer blocks than the buffer holds after
        // the hash above, and two lanes.
        let small = "$argon2id$v=19$m=256,t=1,p=2$MVEChBrQP+zdDEessOaDyA$UmlUpb2B2zrA1gObfjIKfmt5fq7l0I853321ACEdC0U";
        for _ in 0..2 {
            assert!(verify_password(defaults, "correct horse battery staple"));
            assert!(!verify_password(defaults, "correct horse battery stapler"));
            assert!(!verify_password(defaults, ""));
            assert!(verify_password(small, "hunter2"));
            assert!(!verify_password(small, "hunter3"));
        }
        // Same hash, any bit of the output changed: no match.
        let tampered = defaults.replace("mIuX", "mIuY");
        assert!(!verify_password(&tampered, "correct horse battery staple"));
    }

    #[test]
    fn argon2_hashes_over_the_caps_are_refused() {
        let salt_and_hash = "J/xfGanGpYmzufSVb7kG6g$mIuXwGLzaEm5+k3EgF5a3Bgks6IpyVHeAqVpmtWdWbo";
        for params in [
            "m=65537,t=2,p=1",
            "m=4194304,t=2,p=1",
            "m=19456,t=11,p=1",
            "m=19456,t=2,p=5",
        ] {
            let stored = format!("$argon2id$v=19${params}${salt_and_hash}");
            assert!(!verify_password(&stored, "correct horse battery staple"));
            // Refused before hashing, not after: the caps reject the parameters
            // themselves (checked directly rather than by timing, which is noisy here).
            let parsed = PasswordHash::new(&stored).expect("PHC string");
            assert!(argon2_params(&parsed).is_none(), "{params}");
        }
        assert!(!verify_password(
            "$argon2id$v=19$m=19456,t=2,p=1$nosalthash",
            "x"
        ));
        assert!(!verify_password("$argon2id$", "x"));
        assert!(!verify_password(
            "$argon2xx$v=19$m=19456,t=2,p=1$J/xfGanGpYmzufSVb7kG6g$mIuXwGLzaEm5+k3EgF5a3Bgks6IpyVHeAqVpmtWdWbo",
            "x"
        ));
    }
}
