#!/usr/bin/env bash
# The quick-start command: installs what the local stack needs (cached outside the
# checkout), starts LocalStack in host mode, builds the functions, creates a
# throwaway signing key, deploys template.yaml and prints the URLs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$LOCALSTACK_DIR/install.sh"
"$LOCALSTACK_DIR/start.sh"
"$LOCALSTACK_DIR/build-functions.sh"

# A local, passphrase-less signing key, made once per state directory. Never use it
# outside a local stack: docs/operations.md says how to configure a real one.
# RSA, not Ed25519: helm 3 verifies chart provenance with an OpenPGP library that has
# no EdDSA ("unsupported feature: public key type: 22"); apt and dnf take either.
key="$CAIRN_STATE/signing-key.asc"
key_algorithm() { gpg --batch --with-colons --show-keys "$1" 2>/dev/null | awk -F: '/^sec/ {print $4; exit}'; }
if [[ -s "$key" && "$(key_algorithm "$key")" != 1 ]]; then
  note "replacing the non-RSA throwaway signing key"
  rm -f "$key" "$CAIRN_STATE/signing-key.gpg" "$CAIRN_STATE/signing-key.pub.asc"
fi
if [[ ! -s "$key" ]]; then
  gnupg="$(mktemp -d)"
  trap 'gpgconf --homedir "$gnupg" --kill all >/dev/null 2>&1 || true; rm -rf "$gnupg"' EXIT
  gpg --homedir "$gnupg" --batch --quiet --passphrase '' \
    --quick-gen-key "Cairn local throwaway key <cairn@localhost>" rsa3072 sign never
  gpg --homedir "$gnupg" --batch --export --output "$CAIRN_STATE/signing-key.gpg"
  gpg --homedir "$gnupg" --batch --armor --export-secret-keys >"$key.tmp"
  mv "$key.tmp" "$key"
  note "generated throwaway signing key $key"
fi

# The key lives in Secrets Manager, as in AWS (docs/operations.md): its value is always
# the key above, so a rerun of up.sh also ends a key rotation test left half way.
secret_name=cairn/signing-key
if ! secret_arn="$(awsl secretsmanager describe-secret --secret-id "$secret_name" \
    --query ARN --output text 2>/dev/null)"; then
  secret_arn="$(awsl secretsmanager create-secret --name "$secret_name" \
    --secret-string "file://$key" --query ARN --output text)"
else
  awsl secretsmanager put-secret-value --secret-id "$secret_name" \
    --secret-string "file://$key" >/dev/null
fi

# The stack's parameters: infra/samconfig.toml's `local` environment (the same file an
# AWS deployment reads), the signing key secret made above, then $CAIRN_DEPLOY_PARAMETERS
# (Key=Value, space-separated). CAIRN_ARCHIVE_LOCK_DAYS overrides ArchiveObjectLockDays.
mapfile -t params < <(python3 - "$REPO_DIR/infra/samconfig.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    overrides = tomllib.load(fh)["local"]["deploy"]["parameters"]["parameter_overrides"]
print("\n".join(overrides.split() if isinstance(overrides, str) else overrides))
PY
)
params+=("SigningKeySecretArn=$secret_arn")
[[ -n "${CAIRN_ARCHIVE_LOCK_DAYS:-}" ]] && params+=("ArchiveObjectLockDays=$CAIRN_ARCHIVE_LOCK_DAYS")
# shellcheck disable=SC2206 # Key=Value words, as documented
params+=(${CAIRN_DEPLOY_PARAMETERS:-})
"$LOCALSTACK_DIR/deploy.sh" --template "${CAIRN_TEMPLATE:-$CAIRN_STATE/sam-build/template.yaml}" "${params[@]}" >/dev/null
callback_attempts="$(printf '%s\n' "${params[@]}" | sed -n 's/^CallbackMaxAttempts=//p' | tail -n 1)"

# shellcheck disable=SC1091
. "$CAIRN_STATE/outputs.env"
api_url="$ApiUrl"
{
  echo "CAIRN_API_URL=$api_url"
  echo "CAIRN_REPO_BASE_URL=$RepoBaseUrl"
  echo "CAIRN_TABLE=$Table"
  echo "CAIRN_SIGNING_PUBLIC_KEY=$CAIRN_STATE/signing-key.gpg"
  echo "CAIRN_SIGNING_KEY_SECRET=$secret_arn"
  echo "CAIRN_ARCHIVE_BASE_URL=$ArchiveBaseUrl"
  echo "CAIRN_CALLBACK_SECRET_FILE=$CAIRN_STATE/callback-secret"
  echo "CAIRN_CALLBACK_MAX_ATTEMPTS=${callback_attempts:-8}"
  echo "CAIRN_REPO_BUCKET=$RepoBucket"
  echo "CAIRN_SUPPORTED_REPOS_FILE=$CAIRN_STATE/supported-repos.json"
} >"$CAIRN_STATE/cairn.env"
# The repositories the stack serves, for `cairn fsck --supported-repos @FILE`.
printf '%s\n' "$SupportedRepos" >"$CAIRN_STATE/supported-repos.json"
# The callback signing key, for the e2e receiver to check signatures.
awsl secretsmanager get-secret-value --secret-id "$CallbackSecretArn" \
  --query SecretString --output text | tr -d '\n' >"$CAIRN_STATE/callback-secret"
cat <<MSG
Cairn is deployed on LocalStack.
  API URL:         $api_url
  Repository base: $RepoBaseUrl
  Archive base:    $ArchiveBaseUrl
  Public key:      $CAIRN_STATE/signing-key.gpg
Add an upload account:
  echo -n secret | AWS_ENDPOINT_URL=$LS_ENDPOINT AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \\
    target/release/cairn user add alice --table $Table
Stop everything: localstack/stop.sh
MSG
