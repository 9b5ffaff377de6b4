#!/usr/bin/env bash
# Artifact store benchmark: upload and download throughput of one artifact through
# presigned URLs (`cairn artifact put/get`, SHA-256 computed and checked on the way),
# and a second upload of the same bytes (deduplicated: nothing is sent). Figures in
# docs/performance.md, "Artifact store".
#   tests/bench/artifacts.sh            # 500 MiB
#   tests/bench/artifacts.sh 100        # 100 MiB
# Needs the stack up (localstack/up.sh) and target/release/cairn.
set -euo pipefail
. "$(dirname "$0")/lib.sh" artifacts
mib="${1:-500}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
project="bench-artifacts-$RANDOM"
auth="$(printf '%s:%s' "$user" "$password" | base64 -w0)"
curl -fsS -o /dev/null -X PUT "$CAIRN_API_URL/v1/projects/$project" \
  -H "authorization: Basic $auth" -H 'content-type: application/yaml' \
  --data-binary $'pipelines:\n  - name: p\n    actions:\n      - action: shell\n        script: "true"\n'
token="$(curl -fsS -X POST "$CAIRN_API_URL/v1/tokens" -H "authorization: Basic $auth" \
  -H 'content-type: application/json' \
  -d "{\"scopes\": [\"artifacts:$project\"], \"description\": \"artifact bench\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
export CAIRN_API_URL CAIRN_TOKEN="$token"
unset CAIRN_CONFIG
head -c "$((mib << 20))" /dev/urandom > "$work/blob"
timed() { # label, command...: runs it, prints the seconds and MiB/s
  local label="$1"; shift
  local start end
  start="$(date +%s.%N)"
  "$@" 2>"$work/err" >/dev/null || { cat "$work/err"; exit 1; }
  end="$(date +%s.%N)"
  python3 -c "s=$end-$start; print(f'$label: {s:.1f} s, {$mib/s:.0f} MiB/s ({$mib} MiB)')"
  tail -1 "$work/err"
}
timed "upload (hash + PUT)" "$cli" artifact put "$project" first "$work/blob"
timed "upload again (hash; deduplicated)" "$cli" artifact put "$project" second "$work/blob"
timed "download (GET + hash check)" "$cli" artifact get "$project" second -o "$work/back"
cmp "$work/blob" "$work/back" && echo "downloaded bytes identical"
