//! In-process OpenPGP signing of repository metadata with `pgp` (rpgp, pure Rust):
//! cleartext signatures for `InRelease`, armoured detached signatures for
//! `Release.gpg`. Several keys may sign at once, which is how a key rotation
//! window works: clients trusting either key verify the repository.

use cairn_core::ports::{SignError, SignatureCheck, Signer};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey,
    SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};

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
}

/// Signs `data` with the key's signing component: the first subkey bound with the
/// "sign" flag, else the primary key (gpg's `ed25519 sign` keys sign with the primary).
fn sign_with(
    key: &SignedSecretKey,
    typ: SignatureType,
    data: &[u8],
) -> pgp::errors::Result<pgp::packet::Signature> {
    let subkey = key
        .secret_subkeys
        .iter()
        .find(|sk| sk.signatures.iter().any(|sig| sig.key_flags().sign()));
    match subkey {
        Some(sub) => sign_component(&sub.key, typ, data),
        None => sign_component(&key.primary_key, typ, data),
    }
}

fn sign_component(
    component: &impl SigningKey,
    typ: SignatureType,
    data: &[u8],
) -> pgp::errors::Result<pgp::packet::Signature> {
    let mut config = SignatureConfig::v4(typ, component.algorithm(), HashAlgorithm::Sha256);
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(component.fingerprint()))?,
    ];
    config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
        component.legacy_key_id(),
    ))?];
    config.sign(component, &Password::empty(), data)
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
                .map(|key| sign_with(key, SignatureType::Text, normalized.as_bytes()))
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
            signatures.push(DetachedSignature::new(
                sign_with(key, SignatureType::Binary, data).map_err(err)?,
            ));
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

/// Verifies signatures against trusted public keys (a keyring file, binary or armoured).
pub struct PgpVerifier {
    keys: Vec<SignedPublicKey>,
}

impl PgpVerifier {
    /// Loads every public key of `keyring`: binary (`.gpg`, as apt's `signed-by`)
    /// or armoured (`.asc`).
    pub fn from_keyring(keyring: &[u8]) -> Result<Self, SignError> {
        let keys: Vec<SignedPublicKey> = if keyring.starts_with(b"-----BEGIN") {
            let text = std::str::from_utf8(keyring).map_err(err)?;
            SignedPublicKey::from_string_many(text)
                .map_err(err)?
                .0
                .collect::<Result<_, _>>()
                .map_err(err)?
        } else {
            SignedPublicKey::from_bytes_many(keyring)
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?
        };
        if keys.is_empty() {
            return Err(err("the keyring holds no public key"));
        }
        Ok(Self { keys })
    }

    /// Tries every trusted key and signing subkey.
    fn any_key(&self, check: impl Fn(&dyn VerifyingKeyRef) -> bool) -> bool {
        self.keys
            .iter()
            .any(|k| check(&k.primary_key) || k.public_subkeys.iter().any(|sub| check(&sub.key)))
    }
}

/// Object-safe view of the key types rpgp verifies with.
trait VerifyingKeyRef {
    fn verify_cleartext(&self, msg: &CleartextSignedMessage) -> bool;
    fn verify_detached(&self, sig: &DetachedSignature, data: &[u8]) -> bool;
}

impl<K: pgp::types::VerifyingKey> VerifyingKeyRef for K {
    fn verify_cleartext(&self, msg: &CleartextSignedMessage) -> bool {
        msg.verify(self).is_ok()
    }
    fn verify_detached(&self, sig: &DetachedSignature, data: &[u8]) -> bool {
        sig.verify(self, data).is_ok()
    }
}

impl SignatureCheck for PgpVerifier {
    fn cleartext(&self, signed: &str) -> Result<String, SignError> {
        let (msg, _) = CleartextSignedMessage::from_string(signed).map_err(err)?;
        if !self.any_key(|k| k.verify_cleartext(&msg)) {
            return Err(err("no signature by a trusted key"));
        }
        Ok(format!("{}\n", msg.signed_text().replace("\r\n", "\n")))
    }

    fn detached(&self, data: &[u8], signature: &str) -> Result<(), SignError> {
        let (signatures, _) = DetachedSignature::from_string_many(signature).map_err(err)?;
        let signatures: Vec<DetachedSignature> =
            signatures.collect::<Result<_, _>>().map_err(err)?;
        let trusted = signatures
            .iter()
            .any(|sig| self.any_key(|k| k.verify_detached(sig, data)));
        if trusted {
            Ok(())
        } else {
            Err(err("no signature by a trusted key"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::composed::{KeyType, SecretKeyParamsBuilder};

    fn new_key(uid: &str) -> String {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(uid.into());
        let key = params
            .build()
            .expect("params")
            .generate(rand::thread_rng())
            .expect("keygen");
        key.to_armored_string(ArmorOptions::default())
            .expect("armor")
    }

    #[test]
    fn clearsigned_text_is_exact_and_verifies_with_every_key() {
        let armored = format!("{}\n{}", new_key("old <a@b>"), new_key("new <c@d>"));
        let signer = PgpSigner::from_armored(&armored).expect("two keys");
        assert_eq!(signer.fingerprints().len(), 2);
        let release = "Origin: Cairn\nSuite: jammy\n-dash line\n";
        let inrelease = signer.clearsign(release).expect("signed");
        let (msg, _) = CleartextSignedMessage::from_string(&inrelease).expect("parses");
        // rpgp reports the signed text with CRLF line ends (the canonical form).
        assert_eq!(
            msg.signed_text().replace("\r\n", "\n"),
            release.trim_end_matches('\n')
        );
        assert_eq!(msg.signatures().len(), 2);
        for key in &signer.keys {
            msg.verify(&key.to_public_key()).expect("verifies");
        }

        let detached = signer.detached(release.as_bytes()).expect("signed");
        assert!(detached.starts_with("-----BEGIN PGP SIGNATURE-----"));
        let (sig, _) = DetachedSignature::from_string(&detached).expect("parses one");
        sig.verify(&signer.keys[0].to_public_key(), release.as_bytes())
            .expect("first key verifies");
        assert!(
            sig.verify(&signer.keys[0].to_public_key(), b"tampered")
                .is_err()
        );
    }

    #[test]
    fn verifier_accepts_either_rotation_key_and_refuses_tampering() {
        let old = PgpSigner::from_armored(&new_key("old <a@b>")).expect("key");
        let both = PgpSigner::from_armored(&format!(
            "{}\n{}",
            new_key("old2 <a@b>"),
            new_key("new <c@d>")
        ))
        .expect("keys");
        let text = "Origin: Cairn\nSuite: x\n";
        let verifier =
            PgpVerifier::from_keyring(&both.public_keys_binary().expect("keys")).expect("parse");
        let armored = PgpVerifier::from_keyring(both.public_keys_armored().expect("a").as_bytes())
            .expect("armoured keyring");
        let signed = both.clearsign(text).expect("signed");
        assert_eq!(verifier.cleartext(&signed).expect("verifies"), text);
        assert_eq!(armored.cleartext(&signed).expect("verifies"), text);
        let sig = both.detached(text.as_bytes()).expect("signed");
        verifier.detached(text.as_bytes(), &sig).expect("verifies");
        assert!(verifier.detached(b"tampered", &sig).is_err());
        let tampered = signed.replace("Suite: x", "Suite: y");
        assert!(verifier.cleartext(&tampered).is_err());
        // Signed by a key the keyring does not hold.
        let stranger = old.detached(text.as_bytes()).expect("signed");
        assert!(verifier.detached(text.as_bytes(), &stranger).is_err());
        assert!(PgpVerifier::from_keyring(b"").is_err());
    }

    #[test]
    fn refuses_input_without_a_key() {
        assert!(PgpSigner::from_armored("not a key").is_err());
        assert!(PgpSigner::from_armored("-----BEGIN PGP PRIVATE KEY BLOCK-----\nxx").is_err());
    }
}
