//! The indexer's own work on a generated external index (issue 11's benchmark):
//! parsing and diffing an `index.yaml` of N chart versions into apps, first run and
//! unchanged re-run, over the in-memory ports (no network, no DynamoDB). Run under
//! `/usr/bin/time -v` for the peak memory: `tests/bench/indexer.sh` does.
//!
//!   cargo run --release -p cairn-core --example index_bench -- 5000

use cairn_core::memory::MemoryCatalog;
use cairn_core::memory::external::{MemoryApps, MemorySource, MemoryVault};
use cairn_core::repositories::NewRepository;
use cairn_core::repositories::external::{Externals, Indexer, RunOutcome};
use std::time::Instant;

const URL: &str = "https://charts.example.org/big";

/// An index of `versions` versions over `versions / 50` charts, as `helm repo index`
/// writes them (every field a real entry has).
fn index(versions: usize) -> String {
    let charts = (versions / 50).max(1);
    let mut out = String::from("apiVersion: v1\nentries:\n");
    for c in 0..charts {
        out.push_str(&format!("  chart-{c}:\n"));
        for v in (0..versions).filter(|v| v % charts == c) {
            out.push_str(&format!(
                "  - apiVersion: v2\n    appVersion: \"{v}.0\"\n    created: \"2026-12-01T00:00:00Z\"\n    \
                 description: Chart {c}, a chart of the benchmark with a description of some length\n    \
                 digest: {:064x}\n    home: https://example.org/chart-{c}\n    \
                 maintainers:\n    - email: team@example.org\n      name: team\n    \
                 name: chart-{c}\n    type: application\n    \
                 urls:\n    - https://charts.example.org/big/chart-{c}-1.{v}.0.tgz\n    \
                 version: 1.{v}.0\n",
                v
            ));
        }
    }
    out.push_str("generated: \"2026-12-01T00:00:00Z\"\n");
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let versions: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let text = index(versions);
    let (store, source, vault, apps) = (
        MemoryCatalog::default(),
        MemorySource::default(),
        MemoryVault::default(),
        MemoryApps::default(),
    );
    source.serve(URL, &text, None);
    let new: NewRepository = serde_json::from_value(serde_json::json!(
        {"format": "external-helm", "name": "big", "url": URL}
    ))
    .expect("request");
    let repo = new.validate("bench", 1).expect("valid");
    let caller = cairn_core::auth::Principal::with_role("bench", cairn_core::access::Role::Admin);
    let externals = Externals {
        store: &store,
        source: &source,
        vault: &vault,
        apps: &apps,
        queue: &apps,
    };
    let started = Instant::now();
    externals
        .create(&caller, repo, None)
        .await
        .expect("created");
    let check_ms = started.elapsed().as_secs_f64() * 1000.0;
    let indexer = Indexer {
        store: &store,
        source: &source,
        vault: &vault,
        apps: &apps,
        hosted: None,
    };
    let started = Instant::now();
    let first = indexer.run("external/big", "bench", 1).await.expect("run");
    let first_ms = started.elapsed().as_secs_f64() * 1000.0;
    let writes = *apps.writes.lock().expect("lock");
    let started = Instant::now();
    let again = indexer.run("external/big", "bench", 2).await.expect("run");
    let again_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rewrites = *apps.writes.lock().expect("lock") - writes;
    assert_eq!(first, RunOutcome::Indexed(versions));
    assert_eq!(again, RunOutcome::Unchanged);
    println!(
        "index.yaml: {versions} versions, {} charts, {:.1} MiB",
        (versions / 50).max(1),
        text.len() as f64 / f64::from(1 << 20)
    );
    println!("check on create (fetch + parse): {check_ms:.0} ms");
    println!("first run: {first_ms:.0} ms, {writes} item writes (versions, apps, state)");
    println!("unchanged re-run: {again_ms:.0} ms, {rewrites} item writes");
}
