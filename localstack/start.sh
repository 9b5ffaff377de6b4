#!/usr/bin/env bash
# Starts LocalStack (host mode, no Docker) in the background on http://localhost:4566.
# Does nothing if it is already running and healthy. Stop it with localstack/stop.sh.
# Queue-triggered functions: LocalStack's event source mappings back off up to 10 s after
# an empty poll, where AWS long-polls; the cap is 1 s here (CAIRN_ESM_MAX_BACKOFF) so
# queue hops (sync, webhook dispatch and delivery) take about as long as on AWS.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES_DEFAULT=s3,sqs,dynamodb,apigateway,cloudformation,lambda,iam,sts,logs,secretsmanager,ssm,events,cloudwatch,sns
START_TIMEOUT="${CAIRN_START_TIMEOUT:-90}"

[[ -x "$VENV/bin/python" && -f "$STAMPS/executor" && -f "$DDB_LOCAL_HOME/DynamoDBLocal.jar" && -f "$NOOP_AGENT_JAR" ]] \
  || die "local stack not installed: run localstack/install.sh first"

if pid="$(ls_pid)"; then
  if ls_healthy; then
    exit 0
  fi
  note "LocalStack (pid $pid) is running but not healthy yet; waiting"
elif ls_healthy || (exec 3<>/dev/tcp/127.0.0.1/4566) 2>/dev/null; then
  die "something else already listens on 127.0.0.1:4566 (not started by this script: no live pid in $LS_PIDFILE)"
else
  fs_root="$CAIRN_STATE/localstack/fs"
  lib_dir="$fs_root/var/lib/localstack/lib"
  mkdir -p "$CAIRN_STATE/lambda-logs" "$CAIRN_STATE/localstack/volume" "$lib_dir"
  # Leftovers of a previous run: unzipped code, per-environment temp dirs, stale pid files.
  rm -rf "$CAIRN_STATE/localstack/tmp" "$CAIRN_STATE/lambda-tmp" "$CAIRN_STATE/lambda-pids"
  mkdir -p "$CAIRN_STATE/localstack/tmp"

  # Pre-seed LocalStack's package dirs so it never tries to download Java or DynamoDB Local.
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
  [[ -x "$java_home/bin/java" ]] || die "cannot find JAVA_HOME (from $(command -v java))"
  mkdir -p "$lib_dir/java"
  ln -sfn "$java_home" "$lib_dir/java/21"
  ddb="$lib_dir/dynamodb-local/2"
  mkdir -p "$ddb"
  ln -sfn "$DDB_LOCAL_HOME/DynamoDBLocal.jar" "$ddb/DynamoDBLocal.jar"
  ln -sfn "$DDB_LOCAL_HOME/DynamoDBLocal_lib" "$ddb/DynamoDBLocal_lib"
  ln -sfn "$NOOP_AGENT_JAR" "$ddb/ddb-local-loader-0.1.jar"

  : >"$LS_LOG"
  # setsid: LocalStack, DynamoDB Local and every bootstrap share one session that stop.sh
  # can sweep. `python -P` and cwd=state dir: our localstack/ folder must not join the
  # `localstack` namespace package.
  (
    cd "$CAIRN_STATE"
    export OVERRIDE_IN_DOCKER=0 \
      FILESYSTEM_ROOT="$fs_root" \
      LOCALSTACK_VOLUME_DIR="$CAIRN_STATE/localstack/volume" \
      TMPDIR="$CAIRN_STATE/localstack/tmp" \
      SERVICES="${CAIRN_SERVICES:-$SERVICES_DEFAULT}" \
      GATEWAY_LISTEN=127.0.0.1:4566 \
      LOCALSTACK_HOST=localhost:4566 \
      SQS_ENDPOINT_STRATEGY=path \
      SKIP_SSL_CERT_DOWNLOAD=1 \
      DISABLE_EVENTS=1 \
      DYNAMODB_IN_MEMORY=1 \
      LAMBDA_RUNTIME_EXECUTOR="$EXECUTOR_NAME" \
      LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC="${CAIRN_ESM_MAX_BACKOFF:-1}" \
      SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL="${CAIRN_SQS_METRICS_INTERVAL:-60}" \
      CAIRN_STATE
    exec setsid "$VENV/bin/python" -P -m localstack.runtime.main </dev/null >>"$LS_LOG" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$LS_PIDFILE"
fi

deadline=$((SECONDS + START_TIMEOUT))
until ls_healthy; do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 40 "$LS_LOG" >&2 || true
    rm -f "$LS_PIDFILE"
    die "LocalStack exited during start-up (log: $LS_LOG)"
  fi
  if ((SECONDS > deadline)); then
    tail -n 40 "$LS_LOG" >&2 || true
    die "LocalStack not healthy after ${START_TIMEOUT}s (pid $pid, log: $LS_LOG); stop it with localstack/stop.sh"
  fi
  sleep 0.5
done

# First DynamoDB call starts the DynamoDB Local JVM (5-8 s): do it now, not in a test.
awsl dynamodb list-tables --cli-read-timeout 60 >/dev/null 2>"$CAIRN_STATE/warmup.err" \
  || { cat "$CAIRN_STATE/warmup.err" >&2; die "DynamoDB warm-up failed (log: $LS_LOG)"; }
rm -f "$CAIRN_STATE/warmup.err"

echo "LocalStack ready on $LS_ENDPOINT (pid $pid); log: $LS_LOG; lambda logs: $CAIRN_STATE/lambda-logs/"
