#!/usr/bin/env bash
# End-to-end check of the local stack with the fixture template:
#   install -> start -> deploy -> exercise REST/SQS/S3/timeouts/authorizers -> redeploy -> stop.
# usage: localstack/test-fixture/check.sh [--keep]   (--keep: leave LocalStack running)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../lib.sh"

keep=0
[[ "${1:-}" == "--keep" ]] && keep=1
export CAIRN_STACK=cairn-fixture
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME COMMAND...
  local name="$1"; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
json() { "$VENV/bin/python" -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$HERE/../install.sh"
"$HERE/../start.sh"
"$HERE/../deploy.sh" --template "$HERE/template.yaml" Greeting=hello >/dev/null
# shellcheck disable=SC1091
. "$CAIRN_STATE/outputs.env"
echo "api: $ApiUrl"

# --- REST API through LocalStack's execute-api route ------------------------------------
body="$(curl -sS "$ApiUrl/echo/a/b/c.deb?x=1")"
check "greedy {proxy+} path" [ "$(json 'd["pathParameters"]["proxy"]' <<<"$body")" == "a/b/c.deb" ]
check "function env: AWS_ENDPOINT_URL" [ "$(json 'd["env"]["AWS_ENDPOINT_URL"]' <<<"$body")" == "http://localhost:4566" ]
body="$(curl -sS "$ApiUrl/deb/cairn/bookworm/1.2.3")"
check "path params /{kind}/{series}/{dist}/{ver}" \
  [ "$(json '"/".join(d["pathParameters"][k] for k in ("kind","series","dist","ver"))' <<<"$body")" == "deb/cairn/bookworm/1.2.3" ]

# binary media types: multipart and octet-stream bodies
head -c 65536 /dev/urandom >"$tmp/blob"
sha="$(sha256sum "$tmp/blob" | cut -d' ' -f1)"
body="$(curl -sS -F "file=@$tmp/blob;type=application/octet-stream" "$ApiUrl/upload")"
echo "  multipart: isBase64Encoded=$(json 'd["isBase64Encoded"]' <<<"$body") contentType=$(json 'd["contentType"]' <<<"$body") bodyLength=$(json 'd["bodyLength"]' <<<"$body")"
check "multipart body arrives base64-encoded (BinaryMediaTypes */*)" [ "$(json 'd["isBase64Encoded"]' <<<"$body")" == True ]
body="$(curl -sS -H 'Content-Type: application/octet-stream' --data-binary "@$tmp/blob" "$ApiUrl/upload")"
check "octet-stream body intact (sha256)" [ "$(json 'd["bodySha256"]' <<<"$body")" == "$sha" ]
body="$(curl -sS -H 'Content-Type: application/json' --data '{"a":1}' "$ApiUrl/upload")"
echo "  json body with */*: isBase64Encoded=$(json 'd["isBase64Encoded"]' <<<"$body")"

for mb in 5 7 10; do
  head -c $((mb * 1024 * 1024)) /dev/urandom >"$tmp/big"
  code="$(curl -sS -o "$tmp/big.out" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$tmp/big" "$ApiUrl/upload")"
  echo "  ${mb} MB POST -> HTTP $code $(head -c 160 "$tmp/big.out" | tr -d '\n')"
  [[ $mb == 5 ]] && check "5 MB body reaches the function" [ "$code" == 200 ]
done

# Lambda authorizers (TOKEN and REQUEST)
for path in token request; do
  hdr=Authorization; [[ $path == request ]] && hdr=X-Token
  for tok in allow deny bad none; do
    args=(); [[ $tok != none ]] && args=(-H "$hdr: $tok")
    code="$(curl -sS -o "$tmp/auth.out" -w '%{http_code}' "${args[@]}" "$ApiUrl/secure/$path")"
    echo "  $path authorizer, token=$tok -> HTTP $code $(head -c 100 "$tmp/auth.out")"
    eval "auth_${path}_${tok}=$code"
  done
done
check "TOKEN authorizer allow=200 deny=403 bad=401 none=401" \
  [ "$auth_token_allow/$auth_token_deny/$auth_token_bad/$auth_token_none" == "200/403/401/401" ]
check "REQUEST authorizer allow=200 deny=403 bad=401 none=401" \
  [ "$auth_request_allow/$auth_request_deny/$auth_request_bad/$auth_request_none" == "200/403/401/401" ]

# --- direct invoke, timeouts, crashes --------------------------------------------------
invoke() { # invoke PAYLOAD -> prints "FunctionError|payload"
  awsl lambda invoke --function-name "$EchoFunctionName" --payload "$1" "$tmp/inv.json" \
    --query 'FunctionError' --output text >"$tmp/inv.meta"
  echo "$(cat "$tmp/inv.meta")|$(cat "$tmp/inv.json")"
}
out="$(invoke '{"hello":1}')"
check "direct invoke" grep -q '^None|.*"ok": true' <<<"$out"
start=$SECONDS
out="$(invoke '{"sleep":30}')"
echo "  timeout invoke ($((SECONDS - start)) s): $out"
check "timeout (Timeout: 3) returns Task timed out" grep -q 'Task timed out after 3.00 seconds' <<<"$out"
check "timed-out process was killed" grep -q "ended (signal 9)" "$CAIRN_STATE/lambda-logs/$EchoFunctionName.log"
out="$(invoke '{"after":"timeout"}')"
check "invoke after timeout works (fresh process)" grep -q '^None|.*"ok": true' <<<"$out"
out="$(invoke '{"crash":true}')"
echo "  crash invoke: $out"
check "crashing bootstrap -> Runtime.ExitError" grep -q 'Runtime.ExitError' <<<"$out"
out="$(invoke '{"after":"crash"}')"
check "invoke after crash works" grep -q '^None|.*"ok": true' <<<"$out"

# concurrency: parallel invocations get separate environments (= processes)
for i in 1 2 3; do
  awsl lambda invoke --function-name "$EchoFunctionName" --payload '{"sleep":1.5}' "$tmp/par$i.json" >/dev/null &
done
wait
envs="$(for i in 1 2 3; do json 'd["env"]["TMPDIR"]' <"$tmp/par$i.json"; done | sort -u | wc -l)"
check "3 concurrent invocations ran in $envs environments" [ "$envs" -ge 2 ]

# --- SQS FIFO -> Lambda, DLQ; S3 -> Lambda; DynamoDB writes from the functions ---------
awsl sqs send-message --queue-url "$QueueUrl" --message-group-id g1 --message-body job-1 >/dev/null
awsl sqs send-message --queue-url "$QueueUrl" --message-group-id g2 --message-body fail >/dev/null
echo hello >"$tmp/obj.txt"
awsl s3 cp "$tmp/obj.txt" "s3://$BucketName/incoming/obj.txt" >/dev/null
item_exists() {
  [[ "$(awsl dynamodb get-item --table-name "$TableName" \
    --key "{\"pk\":{\"S\":\"$1\"},\"sk\":{\"S\":\"$2\"}}" --query 'Item.pk.S' --output text)" == "$1" ]]
}
wait_for() { local t=$1; shift; local end=$((SECONDS + t)); until "$@"; do ((SECONDS < end)) || return 1; sleep 1; done; }
check "SQS FIFO -> Lambda -> DynamoDB item" wait_for 30 item_exists sqs job-1
check "S3 ObjectCreated -> Lambda -> DynamoDB item" wait_for 30 item_exists s3 incoming/obj.txt
dlq_has_fail() {
  awsl sqs receive-message --queue-url "$DLQUrl" --query 'Messages[0].Body' --output text | grep -qx fail
}
check "failed SQS message lands in the FIFO DLQ" wait_for 60 dlq_has_fail
check "function output in lambda-logs/<fn>.log" grep -q "sqs message .* body='job-1'" "$CAIRN_STATE/lambda-logs/$WorkerFunctionName.log"
check "function output in CloudWatch Logs" bash -c "$(declare -f awsl); $(declare -p VENV LS_ENDPOINT); \
  awsl logs filter-log-events --log-group-name /aws/lambda/$UploadFunctionName --query 'events[].message' --output text | grep -q 's3 event'"

# --- update-stack redeploy -----------------------------------------------------------------
"$HERE/../deploy.sh" --template "$HERE/template.yaml" Greeting=bonjour >/dev/null
check "redeploy (update) changes the running function" \
  [ "$(curl -sS "$ApiUrl/echo/x" | json 'd["greeting"]')" == bonjour ]

# --- stop leaves nothing behind -------------------------------------------------------------
if ((keep)); then
  echo "LocalStack left running (--keep)"
else
  ls_pid_before="$(cat "$LS_PIDFILE")"
  "$HERE/../stop.sh"
  # LocalStack's session, anything running from the state dir (DynamoDB Local, bootstraps),
  # anything carrying a Lambda runtime id in its environment. Patterns via -f files so that
  # grep does not find itself.
  candidates="$(ps -eo pid=,sid= | awk -v s="$ls_pid_before" '$2 == s { print $1 }'
    grep -lsFf <(printf '%s\n' "$CAIRN_STATE/localstack/") /proc/[0-9]*/cmdline | cut -d/ -f3
    grep -lsFf <(printf '%s\n' "LOCALSTACK_RUNTIME_ID=") /proc/[0-9]*/environ | cut -d/ -f3)"
  alive=""
  for p in $(sort -u <<<"$candidates"); do
    kill -0 "$p" 2>/dev/null && alive+="$p "
  done
  if [[ -n "$alive" ]]; then ps -o pid,args -p "${alive// /,}" || true; fi
  check "stop.sh leaves no stray processes" [ -z "$alive" ]
fi

echo "$passed passed, $failed failed"
((failed == 0))
