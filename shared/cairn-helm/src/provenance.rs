//! Provenance files (`<chart>.tgz.prov`), which `helm pull --verify` and `helm verify`
//! check: an OpenPGP cleartext-signed message whose text is the chart's metadata as
//! YAML, a `...` line, and a `files:` map from the chart's file name to its SHA-256.
//!
//! Helm builds that text in pkg/provenance `messageBlock`: `yaml.Marshal(metadata)`,
//! then `"\n...\n"`, then `yaml.Marshal(SumCollection{Files: {name: "sha256:" + hex}})`;
//! it verifies by splitting the signed text at the first `"\n...\n"` and reading the
//! second part's `files`.

use crate::chart::ChartInfo;
use crate::error::ChartError;
use crate::index::metadata_for;
use crate::yaml::{self, to_yaml};
use base64::Engine as _;
use serde_json::{Map, Value};

/// Larger provenance files are refused without being read further.
pub const MAX_PROVENANCE_BYTES: usize = 1024 * 1024;

const SEPARATOR: &str = "\n...\n";
const BEGIN_MESSAGE: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// The text a provenance file signs, byte for byte what `helm package --sign` signs:
///
/// ```text
/// apiVersion: v2
/// appVersion: 1.16.0
/// description: A Helm chart for Kubernetes
/// name: demo
/// type: application
/// version: 0.1.0
///
/// ...
/// files:
///   demo-0.1.0.tgz: sha256:5f80…c474
/// ```
///
/// (the metadata YAML ends in a newline, so a blank line precedes `...`; the text ends
/// with a newline). Clearsign it (`gpg --clearsign`, SHA-512 like Helm) to get the
/// `.prov` file; the final newline is the line break before the signature armour.
pub fn provenance_body(info: &ChartInfo, filename: &str) -> String {
    let mut text = to_yaml(&Value::Object(metadata_for(info)));
    text.push_str(SEPARATOR);
    let mut files = Map::new();
    files.insert(
        filename.into(),
        Value::String(format!("sha256:{}", info.digests.sha256)),
    );
    let mut sums = Map::new();
    sums.insert("files".into(), Value::Object(files));
    text.push_str(&to_yaml(&Value::Object(sums)));
    text
}

/// Checks an uploaded `.prov` for the chart stored as `filename` with SHA-256 `sha256`
/// (hex): it must be an OpenPGP cleartext-signed message with a signature block, whose
/// text Helm can read and names `filename` with that digest.
///
/// The signature itself is not verified: the uploader's key is not known here. Users
/// verify it with `helm pull --verify --keyring <their keyring>`.
pub fn check_provenance(prov: &[u8], filename: &str, sha256: &str) -> Result<(), ChartError> {
    let refuse = |why: String| Err(ChartError::Provenance(why));
    if prov.len() > MAX_PROVENANCE_BYTES {
        return refuse(format!(
            "it is {} bytes, more than the {MAX_PROVENANCE_BYTES} allowed",
            prov.len()
        ));
    }
    let Ok(text) = std::str::from_utf8(prov) else {
        return refuse("it is not UTF-8 text".into());
    };
    let signed = cleartext(text).map_err(ChartError::Provenance)?;

    let Some((metadata, sums)) = signed.split_once(SEPARATOR) else {
        return refuse(
            "the signed text has no \"...\" line between the chart metadata and the file checksums"
                .into(),
        );
    };
    // Helm 3 reads the metadata part too and fails verification if it cannot.
    match yaml::load(metadata, yaml::DEFAULT_BUDGET) {
        Ok(None | Some(Value::Object(_))) => {}
        Ok(Some(_)) => return refuse("the chart metadata is not a YAML mapping".into()),
        Err(e) => return refuse(format!("the chart metadata is not valid YAML: {e}")),
    }
    // Helm reads only up to the next separator, if any.
    let sums = sums.split(SEPARATOR).next().unwrap_or(sums);
    let files = match yaml::load(sums, yaml::DEFAULT_BUDGET) {
        Ok(Some(Value::Object(map))) => match map.get("files") {
            Some(Value::Object(files)) => files.clone(),
            _ => return refuse("the signed text has no files: mapping".into()),
        },
        Ok(_) => return refuse("the signed text has no files: mapping".into()),
        Err(e) => return refuse(format!("the file checksums are not valid YAML: {e}")),
    };
    let want = format!("sha256:{}", sha256.to_ascii_lowercase());
    match files.get(filename) {
        None => refuse(format!("it has no checksum for {filename}")),
        Some(Value::String(got)) if *got == want => Ok(()),
        Some(got) => refuse(format!(
            "its checksum for {filename} is {}, but the chart's is {want}",
            match got {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        )),
    }
}

/// The signed text of a cleartext-signed message (RFC 4880 section 7), each line
/// ending in `\n`, as Go's `clearsign.Decode` hands it to Helm: dash-escapes removed,
/// trailing blanks trimmed. Also requires a well-formed signature block.
fn cleartext(text: &str) -> Result<String, String> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let not_signed = || "it is not a PGP cleartext-signed message".to_string();
    loop {
        match lines.next() {
            Some(l) if l.trim().is_empty() => {}
            Some(l) if l.trim_end() == BEGIN_MESSAGE => break,
            _ => return Err(not_signed()),
        }
    }
    let mut headers = 0;
    loop {
        match lines.next() {
            Some(l) if l.trim().is_empty() => break,
            Some(l) if l.contains(": ") && headers < 16 => headers += 1,
            _ => return Err("its armour headers (\"Hash: ...\") are malformed".into()),
        }
    }
    let mut signed = String::new();
    loop {
        let Some(line) = lines.next() else {
            return Err("it has no signature block".into());
        };
        if line.trim_end() == BEGIN_SIGNATURE {
            break;
        }
        let line = line.strip_prefix("- ").unwrap_or(line);
        signed.push_str(line.trim_end_matches([' ', '\t']));
        signed.push('\n');
    }
    signature_block(&mut lines)?;
    Ok(signed)
}

/// Checks that the armoured block is base64 that starts with an OpenPGP signature
/// packet (tag 2), so that a truncated or pasted-over signature is caught at upload.
fn signature_block<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Result<(), String> {
    let bad = |why: &str| Err(format!("its signature block is malformed: {why}"));
    let mut body = String::new();
    let mut in_headers = true;
    loop {
        let Some(line) = lines.next() else {
            return bad("no END PGP SIGNATURE line");
        };
        let line = line.trim_end();
        if line == END_SIGNATURE {
            break;
        }
        if in_headers {
            if line.is_empty() {
                in_headers = false;
            } else if !line.contains(": ") {
                return bad("no blank line after the armour headers");
            }
            continue;
        }
        if line.starts_with('=') {
            continue; // CRC-24 checksum line
        }
        body.push_str(line);
    }
    let Ok(packet) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) else {
        return bad("not base64");
    };
    let Some(&first) = packet.first() else {
        return bad("empty");
    };
    let tag = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        (first >> 2) & 0x0f
    };
    if first & 0x80 == 0 || tag != 2 {
        return bad("not an OpenPGP signature packet");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::DEFAULT_BUDGET;
    use cairn_deb::Digests;

    const SHA: &str = "5f802a7bc1baef2603589a583704b82badc3671cfefc9065e0e108c447fac474";

    /// The `.prov` Helm 3.17 wrote for `helm create demo` (see tests/real_helm.rs).
    const HELM_PROV: &str = "-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

apiVersion: v2
appVersion: 1.16.0
description: A Helm chart for Kubernetes
name: demo
type: application
version: 0.1.0

...
files:
  demo-0.1.0.tgz: sha256:5f802a7bc1baef2603589a583704b82badc3671cfefc9065e0e108c447fac474
-----BEGIN PGP SIGNATURE-----

wsDcBAEBCgAQBQJrAWKLCRAD2G52lLOIJQAA/jMMACoYJ5jVvphIjRu+xQB3PFin
dawvimzUe1Q0JUo7kyiOcuayocE91/pnFkhG4lV1o/XKmP/HCI8/7Y4RMmrNmsBj
ejHMd4xeADuKgCdAL6XPK2bSnqohFw4mWZLhjWxSuEY3S0kMvWnvrI8sAfaz9GOC
facOouWH+lgi/Ll+4hNk+ZuvKtNEcJ45smjD5AAx6u+6WvZAapCP5+QBVtYA65TI
mQvxVyN0A+WYlb/al3icQGE9EgKYOIB4/NeJNrNbolEHzxLkD1biQSIagQSTX7CH
4F/sQ5KLhTXOmW5jvXQA9OEcbhtXKJG4qlrTscX4guO0HUKBTwiDeotWycbYCOGo
zZCAkB0BwzVbdcx3xCwkv+9GpaFb5tuBuoMPQwNoh3B3iD0BjBTL1OE83oyBKEKs
0pTN4qcpzdtFAwEBiiEvvXqgdiI0JMC0WQ8viZGlsryLxTF2atNl2fSMJVY/0QMj
Ggy+U18ejPR4R1akVWvMy8P6aqjK86sz2ys0+TJZoA==
=na9D
-----END PGP SIGNATURE-----";

    fn demo() -> ChartInfo {
        let text = "apiVersion: v2\nname: demo\ndescription: A Helm chart for Kubernetes\n\
                    type: application\nversion: 0.1.0\nappVersion: \"1.16.0\"\n";
        let Ok(Some(Value::Object(chart_yaml))) = yaml::load(text, DEFAULT_BUDGET) else {
            panic!("test yaml");
        };
        let mut digests = Digests::of(b"");
        digests.sha256 = SHA.into();
        ChartInfo {
            name: "demo".into(),
            version: "0.1.0".into(),
            app_version: Some("1.16.0".into()),
            description: Some("A Helm chart for Kubernetes".into()),
            chart_yaml,
            chart_yaml_text: text.into(),
            digests,
        }
    }

    #[test]
    fn body_is_what_helm_signs() {
        let start = HELM_PROV.find("\n\n").expect("headers") + 2;
        let end = HELM_PROV.find(BEGIN_SIGNATURE).expect("signature");
        assert_eq!(
            provenance_body(&demo(), "demo-0.1.0.tgz"),
            &HELM_PROV[start..end]
        );
    }

    #[test]
    fn accepts_helms_provenance() {
        check_provenance(HELM_PROV.as_bytes(), "demo-0.1.0.tgz", SHA).expect("valid");
        check_provenance(
            HELM_PROV.replace('\n', "\r\n").as_bytes(),
            "demo-0.1.0.tgz",
            &SHA.to_ascii_uppercase(),
        )
        .expect("CRLF line ends and upper-case hex are fine");
    }

    #[test]
    fn refuses_what_does_not_vouch_for_the_chart() {
        let other = "0".repeat(64);
        let cases: Vec<(Vec<u8>, &str, &str, &str)> = vec![
            (
                HELM_PROV.into(),
                "demo-0.1.0.tgz",
                &other,
                "but the chart's is sha256:000",
            ),
            (
                HELM_PROV.into(),
                "demo-0.2.0.tgz",
                SHA,
                "no checksum for demo-0.2.0.tgz",
            ),
            (
                b"hello".to_vec(),
                "demo-0.1.0.tgz",
                SHA,
                "not a PGP cleartext-signed message",
            ),
            (
                HELM_PROV
                    .split(BEGIN_SIGNATURE)
                    .next()
                    .unwrap_or_default()
                    .into(),
                "demo-0.1.0.tgz",
                SHA,
                "no signature block",
            ),
            (
                HELM_PROV.replace("wsDc", "!!!!").into(),
                "demo-0.1.0.tgz",
                SHA,
                "not base64",
            ),
            (
                HELM_PROV.replace("\n...\n", "\n..\n").into(),
                "demo-0.1.0.tgz",
                SHA,
                "no \"...\" line",
            ),
            (
                HELM_PROV.replace("files:", "fils:").into(),
                "demo-0.1.0.tgz",
                SHA,
                "no files: mapping",
            ),
            (
                HELM_PROV.replace(END_SIGNATURE, "").into(),
                "demo-0.1.0.tgz",
                SHA,
                "no END PGP SIGNATURE",
            ),
            (
                vec![b'a'; MAX_PROVENANCE_BYTES + 1],
                "demo-0.1.0.tgz",
                SHA,
                "more than the",
            ),
            (vec![0xff, 0xfe], "demo-0.1.0.tgz", SHA, "not UTF-8"),
        ];
        for (prov, name, sha, want) in cases {
            let err = check_provenance(&prov, name, sha).expect_err(want);
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
            assert!(
                err.to_string().starts_with("invalid provenance file: "),
                "{err}"
            );
        }
    }
}
