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

# Lints and unit tests build in a target dir outside the checkout (unless
# CARGO_TARGET_DIR says otherwise), like the Lambda builds: a fresh clone recompiles
# Cairn's crates only. Each checkout path adds its own copy of those; past 40 GB the
# cache starts again from empty.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CAIRN_CACHE/target}"
if [[ -d "$CARGO_TARGET_DIR" ]] && (( $(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1) > 40 )); then
  rm -rf "$CARGO_TARGET_DIR"
fi

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

step "template: sam validate --lint, cfn-lint (infra/requirements.txt), IAM rules"
ensure_sam_venv
sam_venv="$SAM_VENV"
SAM_CLI_TELEMETRY=0 "$sam_venv/bin/sam" validate --lint --template template.yaml \
  --region us-east-1
"$sam_venv/bin/cfn-lint" template.yaml infra/monitoring.yaml
for env in dev prod; do
  SAM_CLI_TELEMETRY=0 "$sam_venv/bin/sam" validate --config-file infra/samconfig.toml \
    --config-env "$env" >/dev/null
done
# Every function has a role of its own; every wildcard in a policy says why.
"$sam_venv/bin/python" -m unittest discover -s tests/iam -p 'test_*.py'

step "sam build for arm64 (cargo lambda + zig): every bootstrap an aarch64 executable"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
localstack/build-functions.sh --arch arm64 --build-dir "$CAIRN_CACHE/sam-build-arm64"
"$sam_venv/bin/python" tests/infra/check_build.py "$CAIRN_CACHE/sam-build-arm64" arm64

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

step "stack up (install, start, sam build, deploy)"
localstack/up.sh
"$sam_venv/bin/python" tests/infra/check_build.py "$CAIRN_STATE/sam-build" x86_64

step "local Lambda executor: MemorySize is enforced (unit tests)"
"$VENV/bin/python" -P -m unittest discover -s localstack/executor/tests

step "end-to-end tests"
venv="$CAIRN_CACHE/test-venv"
ensure_venv "$venv" tests/requirements.txt
"$venv/bin/python" -m pytest -p no:cacheprovider -v tests/e2e "$@"

step "IAM: every AWS call the functions made is allowed by their deployed roles"
"$sam_venv/bin/python" tests/iam/check.py
