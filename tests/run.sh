#!/usr/bin/env bash
# The whole test suite: formatting and lints, unit tests, then the end-to-end tests
# against the SAM template deployed on LocalStack, driven with real clients (curl,
# apt-get, gpgv, apt-ftparchive, dnf, rpmbuild, createrepo_c, helm, headless
# Chromium). Starts the stack if needed and stops it afterwards if it started it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
. localstack/lib.sh

step() { printf '\n==> %s\n' "$*"; }
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

step "host packages (apt-utils, gpgv, curl, dnf, rpm, createrepo-c, chromium) and helm"
need=()
for tool in apt-ftparchive:apt-utils gpgv:gpgv curl:curl gpg:gnupg dnf:dnf \
  rpmbuild:rpm createrepo_c:createrepo-c npm:npm unzip:unzip zstd:zstd \
  dpkg-source:dpkg-dev chromium:chromium chromedriver:chromium-driver; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
# The e2e suite downloads hello, figlet and tree from Debian: the package lists must exist.
if ((${#need[@]})) || ! apt-cache show hello >/dev/null 2>&1; then
  apt-get update -qq
fi
if ((${#need[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# dnf's download plugin comes with dnf-plugins-core.
if ! dnf download --help >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnf-plugins-core >/dev/null
fi
tests/clients/install-helm.sh >/dev/null

step "cargo fmt --check, clippy"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

step "template: sam validate --lint, cfn-lint (infra/requirements.txt)"
sam_venv="$CAIRN_CACHE/sam-venv"
ensure_venv "$sam_venv" infra/requirements.txt
SAM_CLI_TELEMETRY=0 "$sam_venv/bin/sam" validate --lint --template template.yaml \
  --region us-east-1
"$sam_venv/bin/cfn-lint" template.yaml
for env in dev prod; do
  SAM_CLI_TELEMETRY=0 "$sam_venv/bin/sam" validate --config-file infra/samconfig.toml \
    --config-env "$env" >/dev/null
done

step "unit tests"
cargo test --locked --workspace

started_here=0
if ! ls_healthy; then started_here=1; fi
cleanup() {
  if ((started_here)) && [[ -z "${CAIRN_KEEP_STACK:-}" ]]; then
    step "stopping the stack this run started"
    localstack/stop.sh || true
  fi
}
trap cleanup EXIT

step "stack up (install, start, build, deploy)"
localstack/up.sh

step "local Lambda executor: MemorySize is enforced (unit tests)"
"$VENV/bin/python" -P -m unittest discover -s localstack/executor/tests

step "end-to-end tests"
venv="$CAIRN_CACHE/test-venv"
ensure_venv "$venv" tests/requirements.txt
"$venv/bin/python" -m pytest -p no:cacheprovider -v tests/e2e "$@"
