#!/usr/bin/env bash
# Deploys a SAM template into the running LocalStack through CloudFormation (real SAM
# transform): `aws cloudformation package` uploads the CodeUri dirs as zips, then
# create-stack / update-stack. Prints the stack outputs and writes them to
# $CAIRN_STATE/outputs.env.
#
# usage: localstack/deploy.sh [--template FILE] [--stack NAME] [Key=Value ...]
#   FILE: a built template (sam build's; default $CAIRN_STATE/sam-build/template.yaml).
#   Key=Value pairs (and $CAIRN_PARAMETER_OVERRIDES, space-separated) are stack
#   parameters; arguments win over the env var; on updates, parameters not given keep
#   their previous values.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

template="${CAIRN_TEMPLATE:-$CAIRN_STATE/sam-build/template.yaml}"
stack="${CAIRN_STACK:-cairn}"
bucket="${CAIRN_DEPLOY_BUCKET:-cairn-deploy}"
overrides=()
# shellcheck disable=SC2206 # word splitting is the documented format of the env var
[[ -n "${CAIRN_PARAMETER_OVERRIDES:-}" ]] && overrides=($CAIRN_PARAMETER_OVERRIDES)
while (($#)); do
  case "$1" in
    --template) template="$2"; shift 2 ;;
    --stack) stack="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) die "unexpected argument '$1' (see --help)" ;;
  esac
done

[[ -f "$template" ]] || die "template not found: $template"
ls_healthy || die "LocalStack is not running on $LS_ENDPOINT: run localstack/start.sh first"

# `aws cloudformation package` does not apply SAM Globals: a function without its own
# CodeUri gets the whole template folder zipped, and no `bootstrap` at the zip root.
"$VENV/bin/python" -P - "$template" <<'EOF' || die "fix the template (see above)"
import os, sys
from awscli.customizations.cloudformation.yamlhelper import yaml_parse
with open(sys.argv[1]) as fh:
    doc = yaml_parse(fh.read())
missing = [name for name, res in (doc.get("Resources") or {}).items()
           if res.get("Type") == "AWS::Serverless::Function"
           and "CodeUri" not in (res.get("Properties") or {})
           and "ImageUri" not in (res.get("Properties") or {})
           and "InlineCode" not in (res.get("Properties") or {})]
if missing:
    print("error: these functions have no CodeUri of their own (Globals.Function.CodeUri is "
          "not applied by `aws cloudformation package`): " + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
# template.yaml's functions are built from the workspace (CodeUri: ., a build method):
# packaging it as is would zip the whole checkout as each function's code.
base = os.path.dirname(os.path.abspath(sys.argv[1]))
unbuilt = [name for name, res in (doc.get("Resources") or {}).items()
           if res.get("Type") == "AWS::Serverless::Function"
           and (res.get("Metadata") or {}).get("BuildMethod")
           and isinstance((res.get("Properties") or {}).get("CodeUri"), str)
           and os.path.exists(os.path.join(base, res["Properties"]["CodeUri"], "Cargo.toml"))]
if unbuilt:
    print("error: build the template first (localstack/build-functions.sh runs `sam build`) "
          "and deploy the built one: these functions are still source: " + ", ".join(unbuilt),
          file=sys.stderr)
    sys.exit(1)
EOF

work="$CAIRN_STATE/deploy/$stack"
mkdir -p "$work"
packaged="$work/packaged.yaml"

stack_status() {
  awsl cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].StackStatus' --output text 2>/dev/null || echo NONE
}

show_events() {
  echo "--- stack events for $stack (oldest first) ---" >&2
  awsl cloudformation describe-stack-events --stack-name "$stack" \
    --query 'reverse(StackEvents)[].[Timestamp,LogicalResourceId,ResourceType,ResourceStatus,ResourceStatusReason]' \
    --output text 2>&1 | tail -n 60 >&2 || true
  echo "--- LocalStack log: $LS_LOG ---" >&2
}

# A stack whose creation failed cannot be updated: remove it first.
case "$(stack_status)" in
  ROLLBACK_COMPLETE|ROLLBACK_FAILED|CREATE_FAILED|DELETE_FAILED|REVIEW_IN_PROGRESS)
    note "deploy: deleting stack $stack left in state $(stack_status) by an earlier failed create"
    awsl cloudformation delete-stack --stack-name "$stack"
    awsl cloudformation wait stack-delete-complete --stack-name "$stack" \
      || die "could not delete the failed stack $stack"
    ;;
esac

if ! awsl s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
  quiet "creating deployment bucket $bucket" awsl s3api create-bucket --bucket "$bucket"
fi

quiet "aws cloudformation package" awsl cloudformation package \
  --template-file "$template" --s3-bucket "$bucket" --s3-prefix "$stack" \
  --output-template-file "$packaged"

# create-stack/update-stack rather than `cloudformation deploy`: LocalStack 4.13's
# DescribeChangeSet fails on templates whose Fn::Sub names a not-yet-created
# resource's attribute (SAM's API integrations do: `${Fn.Arn}`), while a direct
# create/update resolves them in dependency order.
params_file="$work/parameters.json"
previous=""
[[ "$(stack_status)" != NONE ]] && previous="$(awsl cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Parameters[].ParameterKey' --output text 2>/dev/null || true)"
# Parameters not overridden keep their previous value on updates (like `cloudformation
# deploy`), except those with a non-empty template default: see below.
"$VENV/bin/python" -P - "$params_file" "$packaged" "$previous" "${overrides[@]+"${overrides[@]}"}" <<'PY'
import json, sys
from awscli.customizations.cloudformation.yamlhelper import yaml_parse
out, packaged, previous, pairs = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4:]
with open(packaged) as fh:
    declared = yaml_parse(fh.read()).get("Parameters") or {}
given = {}
for pair in pairs:
    key, _, value = pair.partition("=")
    given[key] = value
params = [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
# A parameter with a non-empty template default follows the template (so a changed
# default, e.g. SupportedRepos, reaches the local stack); the others (signing key,
# bucket name, base URL) keep what the stack was deployed with.
def follows_template(key):
    return str(declared[key].get("Default", "")) != ""
params += [{"ParameterKey": k, "UsePreviousValue": True}
           for k in previous if k in declared and k not in given and not follows_template(k)]
with open(out, "w") as fh:
    json.dump(params, fh)
PY
# By URL: the template is over the 51,200 bytes a --template-body may have.
quiet "uploading the packaged template" awsl s3 cp --quiet "$packaged" "s3://$bucket/$stack/packaged.yaml"
stack_args=(--stack-name "$stack" --template-url "$LS_ENDPOINT/$bucket/$stack/packaged.yaml" --parameters "file://$params_file"
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND)

# The CLI's waiters poll every 30 s; LocalStack is done in seconds.
wait_stack() {
  local deadline=$((SECONDS + ${CAIRN_DEPLOY_TIMEOUT:-900}))
  while [[ "$(stack_status)" == *_IN_PROGRESS ]]; do
    ((SECONDS < deadline)) || { show_events; die "stack $stack still in progress after ${CAIRN_DEPLOY_TIMEOUT:-900}s"; }
    sleep 1
  done
}

if [[ "$(stack_status)" == NONE || "$(stack_status)" == DELETE_COMPLETE ]]; then
  awsl cloudformation create-stack "${stack_args[@]}" >/dev/null || { show_events; die "create-stack $stack failed"; }
  wait_stack
else
  if ! out="$(awsl cloudformation update-stack "${stack_args[@]}" 2>&1)"; then
    if [[ "$out" != *"No updates are to be performed"* ]]; then
      printf '%s\n' "$out" >&2; show_events; die "update-stack $stack failed"
    fi
  fi
  wait_stack
fi
status="$(stack_status)"
case "$status" in
  CREATE_COMPLETE|UPDATE_COMPLETE) ;;
  *) show_events; die "deploying stack $stack failed: $status" ;;
esac

# Outputs: as printed KEY=value lines and as a sourceable env file (original name and UPPER_SNAKE).
outputs="$(awsl cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text)"
# LocalStack 4.13 cannot update the API stage when a template adds routes (CreateStage:
# "Stage already exists"); its rollback then reports UPDATE_COMPLETE with no outputs and
# no stage. Only a fresh stack helps (docs/testing.md).
if [[ -z "$outputs" || "$outputs" == None ]]; then
  show_events
  die "stack $stack has no outputs after the update (LocalStack could not update the API stage, as happens when routes are added): run localstack/stop.sh, then localstack/up.sh for a fresh stack"
fi
env_file="$CAIRN_STATE/outputs.env"
{
  echo "# stack $stack, deployed $(date -u +%FT%TZ) from $template"
  while IFS=$'\t' read -r key value; do
    [[ -n "$key" && "$key" != None ]] || continue
    snake="$(sed -E 's/([a-z0-9])([A-Z])/\1_\2/g; s/([A-Z])([A-Z][a-z])/\1_\2/g' <<<"$key" | tr '[:lower:]' '[:upper:]')"
    printf '%s=%q\n' "$key" "$value"
    [[ "$snake" == "$key" ]] || printf '%s=%q\n' "$snake" "$value"
  done <<<"$outputs"
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"

echo "stack $stack: $status"
while IFS=$'\t' read -r key value; do
  [[ -n "$key" && "$key" != None ]] && echo "$key=$value"
done <<<"$outputs"
echo "(written to $env_file)"
