#!/usr/bin/env bash
# Listing repositories with a selector over 1,000 created repositories: latency of
# GET /v1/repositories?selector=… and the DynamoDB reads behind one call
# (tests/bench/repositories_bench.py; figures in docs/performance.md, "Repositories").
#   tests/bench/repositories.sh                     # 1,000 repositories, 50 calls
#   tests/bench/repositories.sh --repos 200 --calls 20
# Needs the stack up (localstack/up.sh) and target/release/cairn. The repositories are
# written straight into the table (what is measured is the listing) and removed after.
set -euo pipefail
. "$(dirname "$0")/lib.sh" repositories
AWS_ENDPOINT_URL="$LS_ENDPOINT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}" \
  "$VENV/bin/python" -P tests/bench/repositories_bench.py --api "$CAIRN_API_URL" \
  --table "$CAIRN_TABLE" --user "$user" --password "$password" "$@"
