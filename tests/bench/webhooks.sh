#!/usr/bin/env bash
# Webhook benchmark: commit -> delivery with one subscription, fan-out to 100
# endpoints, and the sync worker's publish time with 0, 1 and 100 subscriptions
# (tests/bench/webhooks_bench.py; figures in docs/performance.md, "Events").
# Listens on 127.0.0.1:18419: do not run it while the e2e tests run.
#   tests/bench/webhooks.sh                                   # 50 + 200 + 5 uploads
#   tests/bench/webhooks.sh --events 50 --endpoints 20 --fanout 2
# Needs the stack up (localstack/up.sh) and target/release/cairn.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
ls_healthy || die "no LocalStack on $LS_ENDPOINT: run localstack/up.sh first"
# shellcheck disable=SC1091
. "$CAIRN_STATE/cairn.env"
cli="${CAIRN_CLI:-$root/target/release/cairn}"
[[ -x "$cli" ]] || die "$cli not built: cargo build --release -p cairn"
user="bench-webhooks-$(date -u +%Y%m%d%H%M%S)-$RANDOM"
password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$password" | AWS_ENDPOINT_URL="$LS_ENDPOINT" "$cli" user add "$user" --table "$CAIRN_TABLE" >/dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 -P tests/bench/webhooks_bench.py --api "$CAIRN_API_URL" --user "$user" --password "$password" \
  --state "$CAIRN_STATE" "$@"
