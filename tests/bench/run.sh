#!/usr/bin/env bash
# Benchmarks of the foundation issue, against the stack on LocalStack (brought up
# if needed). Prints RESULT lines; docs/performance.md records them with the machine.
#   sync:    metadata-sync's own time, one new package into suites of 1,000 and 10,000
#   e2e:     upload response -> signed InRelease listing the package (deployed Lambdas)
#   ingest:  throughput and peak memory of ingesting a 200 MiB .deb from S3
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
ls_healthy || localstack/up.sh
[[ -x "$CAIRN_CACHE/test-venv/bin/python" ]] || { python3 -m venv "$CAIRN_CACHE/test-venv"; "$CAIRN_CACHE/test-venv/bin/pip" install -q -r tests/requirements.txt; }
. "$CAIRN_STATE/outputs.env"
cargo build --release --locked -p cairn-bench -p cairn
export CAIRN_TABLE="$Table" CAIRN_REPO_BUCKET="$RepoBucket" CAIRN_STAGING_BUCKET="$StagingBucket" \
  CAIRN_SYNC_QUEUE_URL="$SyncQueueUrl" CAIRN_SIGNING_KEY_FILE="$CAIRN_STATE/signing-key.asc" \
  AWS_ENDPOINT_URL="$LS_ENDPOINT"
# The benchmark suites use the `live` kind of the template's default SupportedRepos.
CAIRN_SUPPORTED_REPOS='{"kinds":["live"],"series":["2.11","3.0"],"dists":{"ubuntu":{"format":"deb","versions":["focal"]}}}'
export CAIRN_SUPPORTED_REPOS
bench=target/release/cairn-bench
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
for n in 1000 10000; do
  repo="live/2.11/ubuntu/focal"
  [[ $n == 10000 ]] && repo="live/3.0/ubuntu/focal"
  "$bench" sync --repo "$repo" --packages "$n" --rounds "${SYNC_ROUNDS:-8}"
  "$bench" build --packages "$n" --rounds 3
  "$CAIRN_CACHE/test-venv/bin/python" -P tests/bench/e2e_latency.py --repo "$repo" --rounds "${ROUNDS:-5}"
done
"$bench" ingest --size-mb "${INGEST_MB:-200}"
