//! Test doubles shared by the integration tests of this crate. Each test crate uses
//! some of them.
#![allow(dead_code)]

use cairn_core::ports::{SignError, SignatureCheck, Signer};

/// Signs by prefixing: enough to check what is signed and in which order.
pub struct FakeSigner;

impl Signer for FakeSigner {
    fn clearsign(&self, text: &str) -> Result<String, SignError> {
        Ok(format!("SIGNED\n{text}"))
    }
    fn detached(&self, data: &[u8]) -> Result<String, SignError> {
        Ok(format!("SIG {}", data.len()))
    }
    fn public_keys_armored(&self) -> Result<String, SignError> {
        Ok("KEY".into())
    }
    fn public_keys_binary(&self) -> Result<Vec<u8>, SignError> {
        Ok(b"KEY".to_vec())
    }
}

/// Accepts exactly what [`FakeSigner`] produces.
#[allow(dead_code)]
pub struct FakeCheck;

impl SignatureCheck for FakeCheck {
    fn cleartext(&self, signed: &str) -> Result<String, SignError> {
        signed
            .strip_prefix("SIGNED\n")
            .map(str::to_string)
            .ok_or_else(|| SignError("not signed".into()))
    }
    fn detached(&self, data: &[u8], signature: &str) -> Result<(), SignError> {
        if signature == format!("SIG {}", data.len()) {
            Ok(())
        } else {
            Err(SignError("bad signature".into()))
        }
    }
}

/// A packaged chart holding only its `Chart.yaml`.
#[allow(dead_code)]
pub fn chart(name: &str, version: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let chart_yaml = format!("apiVersion: v2\nname: {name}\nversion: {version}\n");
    let mut header = tar::Header::new_gnu();
    header.set_size(chart_yaml.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        format!("{name}/Chart.yaml"),
        chart_yaml.as_bytes(),
    )
    .expect("tar");
    let raw = tar.into_inner().expect("tar");
    cairn_deb::gzip(&raw)
}

/// A credential of account `name` with `scopes` and label `selectors`.
pub fn principal(name: &str, scopes: &[&str], selectors: &[&str]) -> cairn_core::auth::Principal {
    let texts: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    cairn_core::auth::Principal {
        name: name.into(),
        scopes: cairn_core::access::Scopes::parse(&texts).expect("scopes"),
        token: None,
        expires_at: None,
        selectors: selectors
            .iter()
            .map(|s| cairn_core::labels::Selector::parse(s).expect("selector"))
            .collect(),
    }
}
