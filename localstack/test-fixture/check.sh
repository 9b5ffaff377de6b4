#!/usr/bin/env bash
# End-to-end check of the local stack with the fixture template:
#   install -> start -> deploy -> exercise REST/SQS/S3/timeouts/authorizers -> redeploy -> stop.
# usage: localstack/test-fixture/check.sh [--keep]   (--keep: leave LocalStack running)
# A LocalStack that is already running is reused and left running (no stop tests then).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../lib.sh"

keep=0
[[ "${1:-}" == "--keep" ]] && keep=1
export CAIRN_STACK=cairn-fixture
# The fixture's outputs and checks follow CAIRN_ENDPOINT (a second LocalStack on another port).
export CAIRN_PARAMETER_OVERRIDES="Endpoint=$LS_ENDPOINT${CAIRN_PARAMETER_OVERRIDES:+ $CAIRN_PARAMETER_OVERRIDES}"
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
# Never stop a LocalStack somebody else is using: the stop tests need our own instance.
if ls_pid >/dev/null && ls_healthy; then
  keep=1
  echo "LocalStack already running: using it, stop tests skipped"
fi
"$HERE/../start.sh"
# start from a fresh fixture stack (and fresh function log files)
if [[ "$(awsl cloudformation describe-stacks --stack-name "$CAIRN_STACK" --query 'Stacks[0].StackStatus' --output text 2>/dev/null || true)" =~ COMPLETE|FAILED ]]; then
  awsl cloudformation delete-stack --stack-name "$CAIRN_STACK"
  awsl cloudformation wait stack-delete-complete --stack-name "$CAIRN_STACK"
fi
rm -f "$CAIRN_STATE"/lambda-logs/"$CAIRN_STACK"-*.log
"$HERE/../deploy.sh" --template "$HERE/template.yaml" Greeting=hello >/dev/null
# shellcheck disable=SC1091
. "$CAIRN_STATE/outputs.env"
echo "api: $ApiUrl"

# --- REST API through LocalStack's execute-api route ------------------------------------
body="$(curl -sS "$ApiUrl/echo/a/b/c.deb?x=1")"
check "greedy {proxy+} path" [ "$(json 'd["pathParameters"]["proxy"]' <<<"$body")" == "a/b/c.deb" ]
check "function env: AWS_ENDPOINT_URL" [ "$(json 'd["env"]["AWS_ENDPOINT_URL"]' <<<"$body")" == "$LS_ENDPOINT" ]
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
echo "  text-only multipart: isBase64Encoded=$(curl -sS -F name=x "$ApiUrl/upload" | json 'd["isBase64Encoded"]')"
# binary *response* (function returns isBase64Encoded: true with bytes 0..255)
for accept in '*/*' application/octet-stream; do
  n="$(curl -sS -H "Accept: $accept" "$ApiUrl/echo/binary" | wc -c)"
  echo "  binary response, Accept: $accept -> $n bytes ($([[ $n == 256 ]] && echo decoded || echo 'still base64'))"
done

for mb in 5 7 10; do
  head -c $((mb * 1024 * 1024)) /dev/urandom >"$tmp/big"
  code="$(curl -sS -o "$tmp/big.out" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
    --data-binary "@$tmp/big" "$ApiUrl/upload")"
  got="$(json '"%s %s" % (d["bodyLength"], d["bodySha256"])' <"$tmp/big.out" 2>/dev/null || head -c 200 "$tmp/big.out")"
  [[ "$got" == "$(stat -c %s "$tmp/big") $(sha256sum "$tmp/big" | cut -d' ' -f1)" ]] && got="$got (intact)"
  echo "  ${mb} MB POST -> HTTP $code, function saw: $got"
  [[ $mb == 5 ]] && check "5 MB body reaches the function intact" grep -q intact <<<"$got"
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
# On AWS this would be 200/403/401/401. LocalStack 4.13.1 community creates the authorizers
# (control plane) but never calls them: this check pins that known limitation so a change shows up.
auth_calls="$(cat "$CAIRN_STATE/lambda-logs/$AuthFunctionName.log" 2>/dev/null | grep -c 'authorizer event' || true)"
echo "  authorizer function invocations: $auth_calls"
check "KNOWN LIMITATION: Lambda authorizers (TOKEN, REQUEST) are not enforced, authorizer never invoked" \
  [ "$auth_token_allow$auth_token_deny$auth_token_bad$auth_token_none$auth_request_deny$auth_request_none/$auth_calls" == "200200200200200200/0" ]

# --- direct invoke, timeouts, crashes --------------------------------------------------
invoke() { # invoke PAYLOAD [FUNCTION] -> prints "FunctionError|payload"
  awsl lambda invoke --function-name "${2:-$EchoFunctionName}" --payload "$1" "$tmp/inv.json" \
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
out="$(invoke '{"sleep":30,"child":3131}')"
sleep 0.5
check "timeout kills the whole process group (child 'sleep 3131' gone)" \
  bash -c "! ps -eo args= | grep -qx 'sleep 3131'"
out="$(invoke '{"after":"timeout"}')"
check "invoke after timeout works (fresh process)" grep -q '^None|.*"ok": true' <<<"$out"
out="$(invoke '{"crash":true}')"
echo "  crash invoke: $out"
check "crashing bootstrap -> Runtime.ExitError" grep -q 'Runtime.ExitError' <<<"$out"
out="$(invoke '{"after":"crash"}')"
check "invoke after crash works" grep -q '^None|.*"ok": true' <<<"$out"

# MemorySize (128 MB here) is enforced like Lambda: over it the process group is killed,
# the invocation fails with Runtime.OutOfMemory, the next one gets a fresh process.
out="$(invoke '{"alloc_mb":48}')"
check "48 MB, below MemorySize: invocation works" grep -q '^None|.*"ok": true' <<<"$out"
check "REPORT line has Max Memory Used" grep -q "Memory Size: 128 MB.Max Memory Used: [0-9]* MB" \
  "$CAIRN_STATE/lambda-logs/$EchoFunctionName.log"
out="$(invoke '{"alloc_mb":320}')"
echo "  over MemorySize: $out"
check "over MemorySize -> Runtime.OutOfMemory, signal: killed" \
  grep -q '^Unhandled|.*Runtime.OutOfMemory.*Runtime exited with error: signal: killed' <<<"$out"
check "out-of-memory kill is logged" grep -q "\[cairn\] out of memory: .* > MemorySize 128 MB" \
  "$CAIRN_STATE/lambda-logs/$EchoFunctionName.log"
out="$(invoke '{"after":"oom"}')"
check "invoke after out-of-memory works (fresh process)" grep -q '^None|.*"ok": true' <<<"$out"
out="$(invoke '{"alloc_mb":320}' "$NoLimitFunctionName")"
check "CAIRN_LAMBDA_ENFORCE_MEMORY=0 in the function's environment: no limit" \
  grep -q '^None|.*"ok": true' <<<"$out"

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
# LocalStack's session, anything running from the state dir (DynamoDB Local, bootstraps),
# anything carrying a Lambda runtime id in its environment. Patterns via -f files so that
# grep does not find itself.
no_strays() { # no_strays LOCALSTACK_PID
  local candidates alive="" p
  candidates="$(ps -eo pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
    grep -lsFf <(printf '%s\n' "$CAIRN_STATE/localstack/") /proc/[0-9]*/cmdline | cut -d/ -f3
    grep -lsFf <(printf '%s\n' "LOCALSTACK_RUNTIME_ID=") /proc/[0-9]*/environ | cut -d/ -f3
    true)"
  for p in $(sort -u <<<"$candidates"); do
    kill -0 "$p" 2>/dev/null && alive+="$p,"
  done
  [[ -z "$alive" ]] && return 0
  ps -o pid,args -p "${alive%,}" || true
  return 1
}

if ((keep)); then
  echo "LocalStack left running (--keep)"
else
  # graceful: warm environments (incl. a child process) must go away with stop.sh
  awsl lambda invoke --function-name "$EchoFunctionName" --payload '{"child":3132}' "$tmp/inv.json" >/dev/null
  ls_pid="$(cat "$LS_PIDFILE")"
  echo "  before stop: $(ps -eo args= | grep -c '/code/bootstrap$' || true) bootstrap process(es) alive"
  "$HERE/../stop.sh"
  check "stop.sh leaves no stray processes" no_strays "$ls_pid"

  # hard: LocalStack killed with SIGKILL, then stop.sh must still clean up its children
  "$HERE/../start.sh" >/dev/null
  "$HERE/../deploy.sh" --template "$HERE/template.yaml" >/dev/null
  . "$CAIRN_STATE/outputs.env"
  awsl lambda invoke --function-name "$EchoFunctionName" --payload '{"child":3133}' "$tmp/inv.json" >/dev/null
  ls_pid="$(cat "$LS_PIDFILE")"
  kill -KILL "$ls_pid"
  sleep 1
  echo "  after kill -9 of LocalStack: $(ps -eo args= | grep -c '[/]code/bootstrap$' || true) bootstrap(s)," \
    "$(ps -eo args= | grep -c '[D]ynamoDBLocal.jar' || true) DynamoDB Local JVM(s) alive"
  "$HERE/../stop.sh"
  check "stop.sh after kill -9 of LocalStack leaves no stray processes" no_strays "$ls_pid"
fi

echo "$passed passed, $failed failed"
((failed == 0))
