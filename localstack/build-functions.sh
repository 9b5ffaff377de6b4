#!/usr/bin/env bash
# Builds every Lambda (release, x86_64 host target) and lays the binaries out as
# cargo-lambda does: target/lambda/<function>/bootstrap, which template.yaml's
# CodeUri entries point at. For AWS, `cargo lambda build --release` gives the same layout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
functions=(repo-api ingest-worker metadata-sync archive-api archive-worker callback-worker events-api webhooks-api webhook-dispatch webhook-worker tokens-api repositories-api files-api indexer authorizer)
args=()
for f in "${functions[@]}"; do args+=(-p "$f"); done
# Local stacks build without LTO: relinking seven binaries with thin LTO took most of an
# incremental build here (about 9 of 10 minutes on 2 cores). Deployments to AWS use the
# workspace's release profile (`cargo lambda build --release`, thin LTO).
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-false}"
cargo build --release --locked "${args[@]}" -p cairn
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
for f in "${functions[@]}"; do
  mkdir -p "target/lambda/$f"
  install -m 0755 "$target_dir/release/$f" "target/lambda/$f/bootstrap"
done
echo "functions built: ${functions[*]}"
