#!/usr/bin/env bash
# Build benchmark: the controller's overhead on a pipeline of 10 no-op steps run by
# one worker, 50 concurrent builds on 4 workers (all finish, no action runs twice,
# queue wait), and a running step's output on the event stream (tests/bench/builds_bench.py; figures in docs/performance.md, "Builds").
#   tests/bench/builds.sh                         # 5 sequential builds, 50 concurrent
#   tests/bench/builds.sh --sequential 3 --concurrent 20 --workers 2
# Needs the stack up (localstack/up.sh) and target/release/cairn.
set -euo pipefail
. "$(dirname "$0")/lib.sh" builds
admin="bench-ops-$(date -u +%Y%m%d%H%M%S)-$RANDOM"
admin_password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$admin_password" | AWS_ENDPOINT_URL="$LS_ENDPOINT" "$cli" user add "$admin" \
  --table "$CAIRN_TABLE" --role admin >/dev/null
python3 -P tests/bench/builds_bench.py --api "$CAIRN_API_URL" --cli "$cli" \
  --user "$user" --password "$password" --admin "$admin" --admin-password "$admin_password" "$@"
