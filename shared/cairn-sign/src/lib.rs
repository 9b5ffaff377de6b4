//! In-process OpenPGP signing of repository metadata with `pgp` (rpgp, pure Rust):
//! cleartext signatures for `InRelease`, armoured detached signatures for
//! `Release.gpg`. Several keys may sign at once, which is how a key rotation
//! window works: clients trusting either key verify the repository.

use cairn_core::ports::{SignError, Signer};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};

/// Signs with one or more secret keys loaded from armoured text.
pub struct PgpSigner {
    keys: Vec<SignedSecretKey>,
}

impl std::fmt::Debug for PgpSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.fingerprint().to_string())
            .collect();
        f.debug_struct("PgpSigner").field("keys", &ids).finish()
    }
}

fn err(e: impl std::fmt::Display) -> SignError {
    SignError(e.to_string())
}

impl PgpSigner {
    /// Loads every secret key found in `armored` (one or more armour blocks,
    /// concatenated). Keys must not be passphrase protected.
    pub fn from_armored(armored: &str) -> Result<Self, SignError> {
        let mut keys = Vec::new();
        let mut rest = armored;
        while let Some(start) = rest.find("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            let block = &rest[start..];
            let end_marker = "-----END PGP PRIVATE KEY BLOCK-----";
            let end = block
                .find(end_marker)
                .ok_or_else(|| err("unterminated private key block"))?
                + end_marker.len();
            let (key, _) = SignedSecretKey::from_string(&block[..end]).map_err(err)?;
            key.verify_bindings().map_err(err)?;
            keys.push(key);
            rest = &block[end..];
        }
        if keys.is_empty() {
            return Err(err("no PGP private key block found"));
        }
        Ok(Self { keys })
    }

    /// Fingerprints of the signing keys, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| hex_upper(k.fingerprint().as_bytes()))
            .collect()
    }

    fn signature_config(
        key: &SignedSecretKey,
        typ: SignatureType,
    ) -> Result<SignatureConfig, SignError> {
        let primary = &key.primary_key;
        let mut config = SignatureConfig::v4(typ, primary.algorithm(), HashAlgorithm::Sha256);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))
                .map_err(err)?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(primary.fingerprint()))
                .map_err(err)?,
        ];
        config.unhashed_subpackets = vec![
            Subpacket::regular(SubpacketData::IssuerKeyId(primary.legacy_key_id()))
                .map_err(err)?,
        ];
        Ok(config)
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl Signer for PgpSigner {
    fn clearsign(&self, text: &str) -> Result<String, SignError> {
        // gpg --clearsign does not sign the final line break; neither must we, or
        // the verified text gains an extra newline.
        let body = text.strip_suffix('\n').unwrap_or(text);
        let msg = CleartextSignedMessage::new_many(body, |normalized| {
            self.keys
                .iter()
                .map(|key| {
                    let config = Self::signature_config(key, SignatureType::Text)
                        .map_err(|e| pgp::errors::Error::from(e.0))?;
                    config.sign(&key.primary_key, &Password::empty(), normalized.as_bytes())
                })
                .collect()
        })
        .map_err(err)?;
        let mut out = msg
            .to_armored_string(ArmorOptions::default())
            .map_err(err)?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    }

    fn detached(&self, data: &[u8]) -> Result<String, SignError> {
        let mut signatures = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            let config = Self::signature_config(key, SignatureType::Binary)?;
            signatures.push(
                config
                    .sign(&key.primary_key, &Password::empty(), data)
                    .map_err(err)?,
            );
        }
        let mut out = Vec::new();
        pgp::armor::write(
            &signatures,
            pgp::armor::BlockType::Signature,
            &mut out,
            None,
            true,
        )
        .map_err(err)?;
        String::from_utf8(out).map_err(err)
    }

    fn public_keys_armored(&self) -> Result<String, SignError> {
        let public: Vec<SignedPublicKey> = self.keys.iter().map(|k| k.to_public_key()).collect();
        let mut out = Vec::new();
        pgp::armor::write(
            &public,
            pgp::armor::BlockType::PublicKey,
            &mut out,
            None,
            true,
        )
        .map_err(err)?;
        String::from_utf8(out).map_err(err)
    }

    fn public_keys_binary(&self) -> Result<Vec<u8>, SignError> {
        let mut out = Vec::new();
        for key in &self.keys {
            key.to_public_key().to_writer(&mut out).map_err(err)?;
        }
        Ok(out)
    }
}
