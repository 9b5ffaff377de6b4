#!/usr/bin/env bash
# Builds every Lambda the way an AWS deployment does: `sam build` of template.yaml
# (build method rust-cargolambda: `cargo lambda build --release --bin <name>` per
# function) with an environment of infra/samconfig.toml, into a build directory whose
# template.yaml is what gets deployed. Then the CLI, with the same settings (so it
# shares the compiled dependencies), installed as target/release/cairn.
#
# usage: localstack/build-functions.sh [--arch x86_64|arm64] [--build-dir DIR]
#   default: x86_64 (the host: the local stack runs the bootstraps natively) into
#   $CAIRN_STATE/sam-build, and the CLI. arm64 cross-compiles with zig, functions only
#   (tests/run.sh checks that build).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

arch=x86_64
build_dir="$CAIRN_STATE/sam-build"
while (($#)); do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unexpected argument '$1' (see --help)" ;;
  esac
done
case "$arch" in x86_64|arm64) ;; *) die "--arch is x86_64 or arm64, not '$arch'" ;; esac

ensure_sam_venv
cd "$REPO_DIR"
# cargo-lambda and `python3 -m ziglang` come from the venv.
export PATH="$SAM_VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export CARGO_TARGET_DIR="$LAMBDA_TARGET_DIR"
# Local and check builds skip LTO: relinking fifteen binaries with thin LTO took most
# of an incremental build here. A deployment keeps the workspace's release profile.
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-false}"
if [[ "$arch" == x86_64 && "$(uname -m)" == x86_64 ]]; then
  # The host's own target needs no zig: plain cargo, the system linker.
  export CARGO_LAMBDA_COMPILER="${CARGO_LAMBDA_COMPILER:-cargo}"
fi
mkdir -p "$build_dir"
"$SAM_VENV/bin/sam" build --config-file infra/samconfig.toml --config-env local \
  --template-file template.yaml --build-dir "$build_dir" \
  --parameter-overrides "Architecture=$arch" >"$build_dir.log" 2>&1 \
  || { tail -n 60 "$build_dir.log" >&2; die "sam build failed (log: $build_dir.log)"; }
echo "functions built ($arch): $build_dir"

if [[ "$arch" == x86_64 ]]; then
  cargo lambda build --release --locked --quiet --bin cairn
  install -D -m 0755 "$CARGO_TARGET_DIR/lambda/cairn/bootstrap" target/release/cairn
  echo "CLI built: target/release/cairn"
fi
