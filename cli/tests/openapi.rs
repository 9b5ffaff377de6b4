//! The OpenAPI document is generated from the routes' descriptions: it must match
//! the committed docs/openapi.json, and describe exactly the routes that the SAM
//! template sends to the API Lambdas (a route served but not deployed, or deployed
//! but not described, fails here).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// The workspace root, from where `cargo test` runs this (not where it was compiled:
/// a binary built in another checkout sharing the target directory stays fresh).
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn generated() -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("openapi")
        .output()
        .expect("run cairn openapi");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `(METHOD, path)` of every `Type: Api` event in the template.
fn template_routes() -> BTreeSet<(String, String)> {
    let template = std::fs::read_to_string(root().join("template.yaml")).expect("template");
    template
        .lines()
        .filter(|l| l.contains("RestApiId: !Ref Api"))
        .map(|l| {
            let field = |name: &str| {
                let rest = &l[l.find(&format!("{name}: ")).expect(name) + name.len() + 2..];
                let value = match rest.strip_prefix('"') {
                    Some(quoted) => quoted.split('"').next(),
                    None => rest.split([',', '}']).next(),
                };
                value.unwrap_or_default().trim().to_string()
            };
            (field("Method").to_uppercase(), field("Path"))
        })
        .collect()
}

#[test]
fn the_document_describes_exactly_the_deployed_routes() {
    let doc = generated();
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(|method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let deployed = template_routes();
    assert!(deployed.len() > 20, "template parsed: {deployed:?}");
    assert_eq!(
        described.difference(&deployed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "described but not deployed"
    );
    assert_eq!(
        deployed.difference(&described).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "deployed but not described"
    );
    let mut ids = BTreeSet::new();
    for op in doc["paths"].as_object().expect("paths").values() {
        for op in op.as_object().expect("operations").values() {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{id} has a summary");
        }
    }
}

#[test]
fn docs_openapi_json_is_the_generated_document() {
    let committed = std::fs::read_to_string(root().join("docs/openapi.json"))
        .expect("docs/openapi.json exists");
    let committed: serde_json::Value = serde_json::from_str(&committed).expect("JSON");
    assert!(
        committed == generated(),
        "docs/openapi.json is stale: run `cargo run -p cairn -- openapi > docs/openapi.json`"
    );
}
