#!/usr/bin/env bash
# Token check latency vs HTTP Basic (argon2id): a bare authenticated request and an
# upload, warm and cold (tests/bench/tokens_bench.py; figures in docs/performance.md,
# "Access tokens").
#   tests/bench/tokens.sh                                   # 200 requests, 50 uploads, 5 cold
#   tests/bench/tokens.sh --requests 50 --uploads 10 --cold 2
# Needs the stack up (localstack/up.sh) and target/release/cairn.
set -euo pipefail
. "$(dirname "$0")/lib.sh" tokens
CAIRN_AWS="$VENV/bin/aws" AWS_ENDPOINT_URL="$LS_ENDPOINT" AWS_ACCESS_KEY_ID=test \
  AWS_SECRET_ACCESS_KEY=test AWS_REGION="${AWS_REGION:-us-east-1}" \
  python3 -P tests/bench/tokens_bench.py --api "$CAIRN_API_URL" --user "$user" \
  --password "$password" "$@"
