#!/usr/bin/env bash
# Events benchmark: commit -> Server-Sent Events client latency over N uploads
# (tests/bench/events_latency.py; figures in docs/performance.md, "Events").
#   tests/bench/events.sh               # 200 uploads
#   tests/bench/events.sh --events 50
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
user="bench-events-$(date -u +%Y%m%d%H%M%S)-$RANDOM"
password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$password" | AWS_ENDPOINT_URL="$LS_ENDPOINT" "$cli" user add "$user" --table "$CAIRN_TABLE" >/dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 -P tests/bench/events_latency.py --api "$CAIRN_API_URL" --user "$user" --password "$password" "$@"
