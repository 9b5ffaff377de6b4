#!/usr/bin/env bash
# Benchmarks of the foundation issue, against the stack on LocalStack (brought up
# if needed). Prints RESULT lines; docs/performance.md records them with the machine.
#   sync:    metadata-sync's own time, one new package into APT suites and YUM
#            repositories of 1,000 and 10,000 (synthetic packages)
#   build:   the publish step alone (in-memory ports), APT and YUM
#   e2e:     upload response -> signed InRelease listing the package (deployed Lambdas)
#   ingest:  throughput and peak memory of ingesting a 200 MiB .deb from S3
# The comparison with mkrepo, createrepo-agent, apt-ftparchive and createrepo_c
# (issue 3) is tests/bench/compare.sh: slower (it seeds the other tools' repositories
# on first use), so not run from here.
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
# The benchmark suites use the `live` kind of the template's default SupportedRepos
# (el/8: the e2e tests use el/9).
CAIRN_SUPPORTED_REPOS='{"kinds":["live"],"series":["2.11","3.0"],"dists":{"ubuntu":{"format":"deb","versions":["focal"]},"el":{"format":"rpm","versions":["8"]}}}'
export CAIRN_SUPPORTED_REPOS
bench=target/release/cairn-bench
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
for n in 1000 10000; do
  series="2.11"
  [[ $n == 10000 ]] && series="3.0"
  repo="live/$series/ubuntu/focal"
  "$bench" sync --repo "$repo" --packages "$n" --rounds "${SYNC_ROUNDS:-8}"
  "$bench" sync --repo "live/$series/el/8" --packages "$n" --rounds "${SYNC_ROUNDS:-8}"
  "$bench" build --packages "$n" --rounds 3
  "$bench" build --format rpm --packages "$n" --rounds 3
  "$CAIRN_CACHE/test-venv/bin/python" -P tests/bench/e2e_latency.py --repo "$repo" --rounds "${ROUNDS:-5}"
done
"$bench" ingest --size-mb "${INGEST_MB:-200}"
