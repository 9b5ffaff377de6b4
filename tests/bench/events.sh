#!/usr/bin/env bash
# Events benchmark: commit -> Server-Sent Events client latency over N uploads
# (tests/bench/events_latency.py; figures in docs/performance.md, "Events").
#   tests/bench/events.sh               # 200 uploads
#   tests/bench/events.sh --events 50
# Needs the stack up (localstack/up.sh) and target/release/cairn.
set -euo pipefail
. "$(dirname "$0")/lib.sh" events
python3 -P tests/bench/events_latency.py --api "$CAIRN_API_URL" --user "$user" --password "$password" "$@"
