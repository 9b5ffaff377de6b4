#!/usr/bin/env bash
# Webhook benchmark: commit -> delivery with one subscription, fan-out to 100
# endpoints, and the sync worker's publish time with 0, 1 and 100 subscriptions
# (tests/bench/webhooks_bench.py; figures in docs/performance.md, "Events").
# Listens on 127.0.0.1:18419: do not run it while the e2e tests run.
#   tests/bench/webhooks.sh                                   # 50 + 200 + 5 uploads
#   tests/bench/webhooks.sh --events 50 --endpoints 20 --fanout 2
# Needs the stack up (localstack/up.sh) and target/release/cairn.
set -euo pipefail
. "$(dirname "$0")/lib.sh" webhooks
python3 -P tests/bench/webhooks_bench.py --api "$CAIRN_API_URL" --user "$user" --password "$password" \
  --state "$CAIRN_STATE" "$@"
