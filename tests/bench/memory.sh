#!/usr/bin/env bash
# The metadata sync's publish time against its Lambda memory setting, emulated: Lambda
# gives a function CPU in proportion to its memory (1,769 MB = one vCPU), so each
# setting runs `cairn-bench sync` (the metadata-sync Publisher, in process, against
# the local stack) in a cgroup-v1 CPU quota of MEMORY/1769 of a core, and reads its
# peak resident memory. LocalStack itself is not throttled, as S3 and DynamoDB are not
# on Lambda. Needs root (a writable /sys/fs/cgroup/cpu), GNU time (/usr/bin/time) and
# the compare.sh package set.
#
#   tests/bench/memory.sh                     # APT, 10,000 packages, 128 MB .. 2 GB
#   MEMORY_SIZES="256 512" MEMORY_FORMAT=rpm tests/bench/memory.sh
#
# docs/performance.md ("Memory settings") records the figures and the settings chosen.
set -Eeuo pipefail
trap 'echo "memory.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
ls_healthy || die "the local stack is not up (localstack/up.sh)"
. "$CAIRN_STATE/outputs.env"

format="${MEMORY_FORMAT:-deb}"
n="${MEMORY_PACKAGES:-10000}"
read -r -a sizes <<<"${MEMORY_SIZES:-128 256 512 1024 1769 2048}"
rounds="${MEMORY_ROUNDS:-6}"
pkgs="$CAIRN_CACHE/compare/packages-v1/$format"
[[ -d "$pkgs" ]] || die "no package set in $pkgs: run tests/bench/compare.sh once"
cgroot=/sys/fs/cgroup/cpu
[[ -w "$cgroot" ]] || die "$cgroot is not writable: needs root and cgroup v1's cpu controller"

cargo build --release --locked -p cairn-bench
bench="$root/target/release/cairn-bench"
case "$format" in deb) repo="live/compare-$n/debian/bookworm" ;; rpm) repo="live/compare-$n/el/8" ;; esac
export CAIRN_TABLE="$Table" CAIRN_REPO_BUCKET="$RepoBucket" CAIRN_STAGING_BUCKET="$StagingBucket" \
  CAIRN_SYNC_QUEUE_URL="$SyncQueueUrl" CAIRN_SIGNING_KEY_FILE="$CAIRN_STATE/signing-key.asc" \
  AWS_ENDPOINT_URL="$LS_ENDPOINT"
export CAIRN_SUPPORTED_REPOS="{\"kinds\":[\"live\"],\"series\":[\"compare-$n\"],\"dists\":{\"debian\":{\"format\":\"deb\",\"versions\":[\"bookworm\"]},\"el\":{\"format\":\"rpm\",\"versions\":[\"8\"]}}}"

echo "machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $format, $n packages, $rounds rounds per setting"
printf '| MemorySize | CPU quota | warm publish | cold publish | peak RSS |\n|---|---|---|---|---|\n'
for mb in "${sizes[@]}"; do
  group="$cgroot/cairn-bench-$mb"
  mkdir -p "$group"
  period=100000
  quota=$(( mb * period / 1769 ))
  echo "$period" >"$group/cpu.cfs_period_us"
  echo "$quota" >"$group/cpu.cfs_quota_us"
  out="$(mktemp)"
  # The subshell moves itself into the group, then becomes the benchmark.
  ( echo "$BASHPID" >"$group/cgroup.procs"
    exec /usr/bin/time -f 'PEAK_KB %M' "$bench" sync --repo "$repo" --packages "$n" \
      --rounds "$rounds" --from-dir "$pkgs" ) >"$out" 2>&1 || { cat "$out" >&2; die "cairn-bench failed at $mb MB"; }
  echo "$$" >"$cgroot/cgroup.procs" 2>/dev/null || true
  rmdir "$group" 2>/dev/null || true
  warm="$(sed -n 's/.*warm_median_ms=\([0-9-]*\).*/\1/p' "$out")"
  cold="$(sed -n 's/.*cold_median_ms=\([0-9-]*\).*/\1/p' "$out")"
  peak="$(sed -n 's/^PEAK_KB \([0-9]*\)/\1/p' "$out")"
  printf '| %s MB | %s%% of a core | %s ms | %s ms | %s MB |\n' "$mb" "$(( quota * 100 / period ))" "$warm" "$cold" "$(( peak / 1024 ))"
  rm -f "$out"
done
