#!/usr/bin/env bash
# Soak benchmark: 1,000 sequential mixed requests against the deployed stack's API
# functions (repo-api: small .deb uploads, failed logins, authenticated re-syncs;
# archive-api: unknown operations, failed logins), printing the resident memory of each
# function's warm bootstrap process at the start, every 100 requests and at the end.
# Method and figures: docs/performance.md, "Memory of a warm API process".
#   tests/bench/soak.sh                       # defaults (about 3-5 minutes)
#   tests/bench/soak.sh --requests 200 --mix upload=1 --upload-kb 3072   # 3 MB uploads
#   tests/bench/soak.sh --help                # every option (tests/bench/soak.py)
# Needs the stack up (localstack/up.sh) and target/release/cairn (`cargo build --release -p cairn`).
# Honours CAIRN_STATE / CAIRN_ENDPOINT (a second LocalStack) like localstack/*.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
for arg in "$@"; do
  [[ "$arg" == -h || "$arg" == --help ]] && exec python3 -P tests/bench/soak.py --help
done
ls_healthy || die "no LocalStack on $LS_ENDPOINT: run localstack/up.sh first"
[[ -s "$CAIRN_STATE/cairn.env" ]] || die "$CAIRN_STATE/cairn.env missing: deploy with localstack/up.sh"
# shellcheck disable=SC1091
. "$CAIRN_STATE/cairn.env"
cli="${CAIRN_CLI:-$root/target/release/cairn}"
[[ -x "$cli" ]] || die "$cli not built: cargo build --release -p cairn"

# A fresh upload account for this run (argon2 hash written by the CLI, as in production).
user="soak-$(date -u +%Y%m%d%H%M%S)-$RANDOM"
password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$password" | AWS_ENDPOINT_URL="$LS_ENDPOINT" "$cli" user add "$user" --table "$CAIRN_TABLE" >/dev/null

python="$CAIRN_CACHE/test-venv/bin/python"
[[ -x "$python" ]] || python=python3
logs="$CAIRN_CACHE/bench/logs"
mkdir -p "$logs"
out="$logs/soak-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg); results: $out"
  "$python" -P tests/bench/soak.py --api "$CAIRN_API_URL" --user "$user" --password "$password" \
    --stack "${CAIRN_STACK:-cairn}" "$@" 2>&1
} | tee "$out"
exit "${PIPESTATUS[0]}"
