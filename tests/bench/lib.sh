# Shared preamble of the benchmarks that drive the deployed local stack: checks the
# stack is up, reads its cairn.env, makes a fresh upload account and prints the
# machine. After `. tests/bench/lib.sh NAME`: $root, $cli, $user, $password and the
# CAIRN_* variables of the stack.
# shellcheck shell=bash
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
ls_healthy || die "no LocalStack on $LS_ENDPOINT: run localstack/up.sh first"
# shellcheck disable=SC1091
. "$CAIRN_STATE/cairn.env"
cli="${CAIRN_CLI:-$root/target/release/cairn}"
[[ -x "$cli" ]] || die "$cli not built: cargo build --release -p cairn"
user="bench-${1:-run}-$(date -u +%Y%m%d%H%M%S)-$RANDOM"
password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$password" | AWS_ENDPOINT_URL="$LS_ENDPOINT" "$cli" user add "$user" \
  --table "$CAIRN_TABLE" >/dev/null
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
