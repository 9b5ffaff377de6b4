#!/usr/bin/env bash
# Deploys a SAM template into the running LocalStack through CloudFormation (real SAM
# transform): `aws cloudformation package` uploads the CodeUri dirs as zips, then
# `aws cloudformation deploy` creates or updates the stack. Prints the stack outputs and
# writes them to $CAIRN_STATE/outputs.env.
#
# usage: localstack/deploy.sh [--template FILE] [--stack NAME] [Key=Value ...]
#   Key=Value pairs (and $CAIRN_PARAMETER_OVERRIDES, space-separated) become
#   --parameter-overrides; arguments win over the env var.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

template="${CAIRN_TEMPLATE:-$REPO_DIR/template.yaml}"
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
import sys
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

deploy_args=(--template-file "$packaged" --stack-name "$stack" --s3-bucket "$bucket" --s3-prefix "$stack"
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset)
((${#overrides[@]})) && deploy_args+=(--parameter-overrides "${overrides[@]}")

if ! out="$(awsl cloudformation deploy "${deploy_args[@]}" 2>&1)"; then
  printf '%s\n' "$out" >&2
  show_events
  die "deploying stack $stack failed (status: $(stack_status))"
fi
status="$(stack_status)"
case "$status" in
  CREATE_COMPLETE|UPDATE_COMPLETE) ;;
  *) printf '%s\n' "$out" >&2; show_events; die "stack $stack ended in $status" ;;
esac

# Outputs: as printed KEY=value lines and as a sourceable env file (original name and UPPER_SNAKE).
outputs="$(awsl cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text)"
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
