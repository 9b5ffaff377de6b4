#!/usr/bin/env bash
# Comparison benchmark of issue 3: Cairn beside mkrepo 1.0.2, createrepo-agent,
# apt-ftparchive and createrepo_c, in one run, on the same generated package sets
# (N tiny but valid .deb and .rpm files; N from COMPARE_SIZES, default "1000 10000").
#   incremental: a repository of N packages, fully published; add one package and
#                time its publication.
#                  Cairn: `cairn-bench sync` (the metadata-sync Publisher, in process,
#                         against LocalStack's DynamoDB and S3; warm and cold worker)
#                  mkrepo: its second run against the same LocalStack S3 (own bucket)
#                  createrepo-agent (rpm): add + commit on local disk (it has no S3
#                         backend); cold (new agent) and warm (same agent)
#   full build:  index a repository of N packages from scratch, signed.
#                  Cairn: `cairn-bench build --from-dir` (in-memory ports; the catalog
#                         entries are made first by inspecting the files, timed apart)
#                  apt-ftparchive packages + gzip/xz/zstd + release + gpg, local disk
#                  createrepo_c --no-database + gpg, local disk
# Prints RESULT lines and a table of ratios from the same run; docs/performance.md
# records them. Every tool signs with the stack's key (an RSA 3072 key), imported
# into a throwaway GNUPGHOME for the tools that use gpg.
#
# Environment: COMPARE_SIZES="1000 10000", COMPARE_FORMATS="deb rpm",
# COMPARE_TOOLS="cairn mkrepo createrepo-agent apt-ftparchive createrepo_c",
# COMPARE_SYNC_ROUNDS=8, COMPARE_BUILD_ROUNDS=3, MKREPO_TIMEOUT=1800 (seconds).
#
# Cached under $CAIRN_CACHE/compare (package sets, venvs beside it, the local-disk
# repositories); the seeded mkrepo repositories stay in the LocalStack bucket
# `bench-mkrepo` and the Cairn ones in the stack's table (`live/compare-N/...`),
# so a rerun only measures. Needs the Debian packages apt-utils, createrepo-c,
# rpm, gnupg, xz-utils and zstd.
set -Eeuo pipefail
trap 'echo "compare.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
ls_healthy || localstack/up.sh
. "$CAIRN_STATE/outputs.env"
[[ -n "${Table:-}" && -n "${RepoBucket:-}" ]] || die "$CAIRN_STATE/outputs.env names no stack outputs (a deploy in progress?)"

read -r -a sizes <<<"${COMPARE_SIZES:-1000 10000}"
read -r -a formats <<<"${COMPARE_FORMATS:-deb rpm}"
tools=" ${COMPARE_TOOLS:-cairn mkrepo createrepo-agent apt-ftparchive createrepo_c} "
sync_rounds="${COMPARE_SYNC_ROUNDS:-8}"
build_rounds="${COMPARE_BUILD_ROUNDS:-3}"
MKREPO_VERSION=1.0.2
CREATEREPO_AGENT_VERSION=0.6.0
# Bump when compare_packages.py changes the files it writes.
PACKAGE_SET_VERSION=1
# Packages beyond N, added by the incremental runs.
EXTRA=4
BUCKET=bench-mkrepo

work="$CAIRN_CACHE/compare"
pkgs="$work/packages-v$PACKAGE_SET_VERSION"
mkdir -p "$work/logs"
results="$work/logs/results-$(date -u +%Y%m%dT%H%M%SZ).txt"
: >"$results"

for tool in apt-ftparchive createrepo_c rpmbuild gpg gzip xz zstd; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install apt-utils createrepo-c rpm gnupg xz-utils zstd"
done
has() { [[ "$tools" == *" $1 "* ]]; }

# --- helpers -----------------------------------------------------------------
result() { # tool format n case seconds
  local line="RESULT compare tool=$1 format=$2 n=$3 case=$4 seconds=$5"
  echo "$line"
  echo "$line" >>"$results"
}
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
ms_to_s() { awk -v m="$1" 'BEGIN { if (m == "-") print "-"; else printf "%.3f", m / 1000 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { # key line -> value of key=value in line
  tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}
# A venv with one pinned requirement; rebuilt when the requirement changes.
venv_with() { # dir requirement
  if [[ ! -f "$1/.installed-$2" ]]; then
    rm -rf "$1"
    python3 -m venv "$1" &&
      "$1/bin/pip" install -q --disable-pip-version-check "$2" &&
      touch "$1/.installed-$2"
  fi
}
# (No `head` in pipelines: with pipefail, the writer's SIGPIPE would fail them.)
first_n() { # dir n -> the first n package files of dir, by name
  find "$1" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.rpm' \) | sort | sed -n "1,$2p"
}
new_package() { # format k -> the k-th extra package
  find "$pkgs/$1" -maxdepth 1 -type f -name "cairnbench-9000$2[-_]*"
}
primary_count() { # -> the packages="N" attribute of the primary.xml.gz on stdin
  gzip -dc | grep -o 'packages="[0-9]*"' | sed -n 1p | tr -dc 0-9
}
# A directory of hard links to the first n packages, in the layout given.
link_set() { # format n dir
  if [[ ! -f "$3/.complete" ]]; then
    rm -rf "$3"
    mkdir -p "$3"
    first_n "$pkgs/$1" "$2" | xargs ln -t "$3"
    touch "$3/.complete"
  fi
}

# --- tools and package sets -------------------------------------------------------
if has mkrepo; then
  venv_with "$CAIRN_CACHE/mkrepo-venv" "mkrepo==$MKREPO_VERSION" ||
    die "mkrepo $MKREPO_VERSION could not be installed"
fi
if has createrepo-agent; then
  if ! venv_with "$CAIRN_CACHE/createrepo-agent-venv" "createrepo-agent==$CREATEREPO_AGENT_VERSION"; then
    note "createrepo-agent $CREATEREPO_AGENT_VERSION could not be installed: skipped"
    tools="${tools/ createrepo-agent / }"
  fi
fi
max=$(printf '%s\n' "${sizes[@]}" | sort -n | tail -1)
t=$EPOCHREALTIME
python3 tests/bench/compare_packages.py deb "$pkgs/deb" "$max" "$EXTRA"
python3 tests/bench/compare_packages.py rpm "$pkgs/rpm" "$max" "$EXTRA" "$pkgs/rpm-template"
note "package sets ($max + $EXTRA of each format) ready in $(seconds_since "$t")s: $pkgs"

gnupg="$(mktemp -d)"
cleanup() {
  gpgconf --homedir "$gnupg" --kill gpg-agent 2>/dev/null || true
  rm -rf "$gnupg"
}
trap cleanup EXIT
gpg --homedir "$gnupg" --batch -q --import "$CAIRN_STATE/signing-key.asc"
keyid="$(gpg --homedir "$gnupg" --batch --with-colons --list-secret-keys | awk -F: '/^sec/ && !k { k = $5 } END { print k }')"
sign() { gpg --homedir "$gnupg" --batch --yes -q --digest-algo SHA256 "$@"; }

if has cairn; then
  cargo build --release --locked -p cairn-bench
  bench=target/release/cairn-bench
  series=""
  for n in "${sizes[@]}"; do series+="${series:+,}\"compare-$n\""; done
  export CAIRN_TABLE="$Table" CAIRN_REPO_BUCKET="$RepoBucket" CAIRN_STAGING_BUCKET="$StagingBucket" \
    CAIRN_SYNC_QUEUE_URL="$SyncQueueUrl" CAIRN_SIGNING_KEY_FILE="$CAIRN_STATE/signing-key.asc" \
    AWS_ENDPOINT_URL="$LS_ENDPOINT"
  # Repositories of their own (live/compare-N/debian/bookworm, live/compare-N/el/8),
  # so that the package sets are exactly the generated ones.
  CAIRN_SUPPORTED_REPOS="{\"kinds\":[\"live\"],\"series\":[$series],\"dists\":{\"debian\":{\"format\":\"deb\",\"versions\":[\"bookworm\"]},\"el\":{\"format\":\"rpm\",\"versions\":[\"8\"]}}}"
  export CAIRN_SUPPORTED_REPOS
fi
if has mkrepo; then
  awsl s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1 || awsl s3 mb "s3://$BUCKET" >/dev/null
fi
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr); load average $(load); sizes: ${sizes[*]}; tools:$tools"

# --- Cairn ---------------------------------------------------------------------
cairn_incremental() { # format n
  local repo out line
  case "$1" in deb) repo="live/compare-$2/debian/bookworm" ;; rpm) repo="live/compare-$2/el/8" ;; esac
  out="$work/logs/cairn-sync-$1-$2.log"
  "$bench" sync --repo "$repo" --packages "$2" --rounds "$sync_rounds" --from-dir "$pkgs/$1" 2>&1 | tee "$out" | grep -v '^RESULT' >&2
  line="$(grep '^RESULT sync' "$out")"
  result cairn "$1" "$2" incremental-warm "$(ms_to_s "$(field warm_median_ms "$line")")"
  # APT has a cold path that reads the published indexes back; YUM reads the catalog.
  result cairn "$1" "$2" incremental-cold "$(ms_to_s "$(field cold_median_ms "$line")")"
  result cairn "$1" "$2" incremental-full-read "$(ms_to_s "$(field full_median_ms "$line")")"
  result cairn "$1" "$2" ingest-one "$(ms_to_s "$(field ingest_median_ms "$line")")"
}
cairn_build() { # format n
  local out
  out="$work/logs/cairn-build-$1-$2.log"
  "$bench" build --format "$1" --packages "$2" --rounds "$build_rounds" --from-dir "$pkgs/$1" >"$out"
  result cairn "$1" "$2" inspect "$(ms_to_s "$(field ms "$(grep '^RESULT inspect' "$out")")")"
  result cairn "$1" "$2" full-build "$(ms_to_s "$(field median_ms "$(grep '^RESULT build' "$out")")")"
}

# --- mkrepo ---------------------------------------------------------------------
mkrepo_run() { # prefix log
  rm -rf "$work/mkrepo-tmp"
  mkdir -p "$work/mkrepo-tmp"
  (
    cd "$work/mkrepo-tmp"
    GNUPGHOME="$gnupg" GPG_SIGN_KEY="$keyid" timeout "${MKREPO_TIMEOUT:-1800}" \
      "$CAIRN_CACHE/mkrepo-venv/bin/mkrepo" --temp-dir "$work/mkrepo-tmp" \
      --s3-endpoint "$LS_ENDPOINT" --s3-region "$AWS_DEFAULT_REGION" --sign "s3://$BUCKET/$1"
  ) >"$2" 2>&1 || {
    local rc=$?
    tail -20 "$2" >&2
    note "mkrepo failed (exit $rc$([[ $rc == 124 ]] && echo ", timed out after ${MKREPO_TIMEOUT:-1800}s")); log: $2"
    return 1
  }
}
mkrepo_count() { # format prefix -> packages its published index lists
  if [[ $1 == deb ]]; then
    awsl s3 cp "s3://$BUCKET/$2/dists/focal/main/binary-amd64/Packages" - | grep -c '^Package: '
  else
    local primary
    primary="$(awsl s3 cp "s3://$BUCKET/$2/repodata/repomd.xml" - | grep -o 'repodata/[0-9a-f]*-primary.xml.gz' | sed -n 1p)"
    awsl s3 cp "s3://$BUCKET/$2/$primary" - | primary_count
  fi
}
mkrepo_incremental() { # format n
  # No prefix may be a string prefix of another: mkrepo lists an rpm repository
  # with the prefix as given, no trailing slash, so `rpm-1000` would also list
  # (and index) the files of `rpm-10000`.
  local prefix="$1-$2-repo" pool meta marker new t log
  case "$1" in deb) pool=pool/focal/main meta=dists ;; rpm) pool=Packages meta=repodata ;; esac
  marker="v$PACKAGE_SET_VERSION $2 $MKREPO_VERSION"
  if [[ "$(awsl s3 cp "s3://$BUCKET/markers/$prefix" - 2>/dev/null)" != "$marker" ]]; then
    note "mkrepo: seeding s3://$BUCKET/$prefix with $2 packages (once)"
    link_set "$1" "$2" "$work/sets/$1-$2"
    awsl s3 rm --quiet --recursive "s3://$BUCKET/$prefix/"
    awsl s3 cp --quiet --recursive --exclude '.complete' "$work/sets/$1-$2/" "s3://$BUCKET/$prefix/$pool/"
    t=$EPOCHREALTIME
    if ! mkrepo_run "$prefix" "$work/logs/mkrepo-seed-$prefix.log"; then
      result mkrepo "$1" "$2" full-build-s3 failed
      return 0
    fi
    result mkrepo "$1" "$2" full-build-s3 "$(seconds_since "$t")"
    [[ "$(mkrepo_count "$1" "$prefix")" == "$2" ]] || die "mkrepo's index of $prefix does not list $2 packages"
    awsl s3 rm --quiet --recursive "s3://$BUCKET/snapshots/$prefix/"
    awsl s3 cp --quiet --recursive "s3://$BUCKET/$prefix/$meta/" "s3://$BUCKET/snapshots/$prefix/"
    echo "$marker" | awsl s3 cp - "s3://$BUCKET/markers/$prefix"
  fi
  new="$(new_package "$1" 0)"
  awsl s3 cp --quiet "$new" "s3://$BUCKET/$prefix/$pool/"
  log="$work/logs/mkrepo-incremental-$prefix.log"
  t=$EPOCHREALTIME
  if ! mkrepo_run "$prefix" "$log"; then
    result mkrepo "$1" "$2" incremental failed
    return 0
  fi
  result mkrepo "$1" "$2" incremental "$(seconds_since "$t")"
  grep -q "Adding: .*$(basename "$new")" "$log" || die "mkrepo did not add $(basename "$new"); see $log"
  [[ "$(mkrepo_count "$1" "$prefix")" == "$(($2 + 1))" ]] || die "mkrepo's index of $prefix does not list $(($2 + 1)) packages"
  # Back to the seeded state: the new file goes, the metadata mkrepo made for N returns.
  awsl s3 rm --quiet "s3://$BUCKET/$prefix/$pool/$(basename "$new")"
  awsl s3 rm --quiet --recursive "s3://$BUCKET/$prefix/$meta/"
  awsl s3 cp --quiet --recursive "s3://$BUCKET/snapshots/$prefix/" "s3://$BUCKET/$prefix/$meta/"
}

# --- createrepo-agent -------------------------------------------------------------
cra() { GNUPGHOME="$gnupg" "$CAIRN_CACHE/createrepo-agent-venv/bin/python" tests/bench/compare_createrepo_agent.py "$@"; }
cra_incremental() { # n (rpm only)
  local cluster="$work/createrepo-agent/rpm-$1" out
  if [[ ! -f "$cluster/.seeded-v$PACKAGE_SET_VERSION" ]]; then
    note "createrepo-agent: seeding $cluster with $1 packages (once)"
    rm -rf "$cluster"
    mkdir -p "$cluster"
    out="$(cra seed "$cluster" "$pkgs/rpm" "$1")"
    result createrepo-agent rpm "$1" full-build-local "$(field seed_s "$out")"
    # createrepo-agent re-signs repomd.xml on every commit with the key of the
    # signature it finds there.
    sign --armor --detach-sign -o "$cluster/x86_64/repodata/repomd.xml.asc" "$cluster/x86_64/repodata/repomd.xml"
    touch "$cluster/.seeded-v$PACKAGE_SET_VERSION"
  fi
  out="$(cra add "$cluster" "$(new_package rpm 0)" "$(new_package rpm 1)")"
  gpg --homedir "$gnupg" --batch -q --verify "$cluster/x86_64/repodata/repomd.xml.asc" "$cluster/x86_64/repodata/repomd.xml" 2>/dev/null ||
    die "createrepo-agent's repomd.xml signature does not verify"
  result createrepo-agent rpm "$1" incremental-cold "$(field cold_s "$out")"
  result createrepo-agent rpm "$1" incremental-warm "$(field warm_s "$out")"
}

# --- local-disk full builds ---------------------------------------------------------
apt_ftparchive_build() { # dir n -> "total scan" seconds
  local d="$1" t0 scan
  rm -rf "$d/dists"
  mkdir -p "$d/dists/focal/main/binary-amd64"
  t0=$EPOCHREALTIME
  (cd "$d" && apt-ftparchive packages pool >dists/focal/main/binary-amd64/Packages)
  scan="$(seconds_since "$t0")"
  # The same files and compression levels Cairn writes: gzip -9, xz -2, zstd -3.
  gzip -9 -n -k "$d/dists/focal/main/binary-amd64/Packages"
  xz -2 -k "$d/dists/focal/main/binary-amd64/Packages"
  zstd -3 -q -k "$d/dists/focal/main/binary-amd64/Packages"
  (cd "$d/dists/focal" && apt-ftparchive -o APT::FTPArchive::Release::Origin=Bench \
    -o APT::FTPArchive::Release::Suite=focal -o APT::FTPArchive::Release::Codename=focal \
    -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main \
    release . >../Release.new && mv ../Release.new Release)
  sign --clearsign -o "$d/dists/focal/InRelease" "$d/dists/focal/Release"
  sign --armor --detach-sign -o "$d/dists/focal/Release.gpg" "$d/dists/focal/Release"
  [[ "$(grep -c '^Package: ' "$d/dists/focal/main/binary-amd64/Packages")" == "$2" ]] ||
    die "apt-ftparchive did not list $2 packages"
  echo "$(seconds_since "$t0") $scan"
}
createrepo_c_build() { # dir n -> seconds
  local d="$1" t0
  rm -rf "$d/repodata"
  t0=$EPOCHREALTIME
  createrepo_c --no-database --quiet "$d"
  sign --armor --detach-sign -o "$d/repodata/repomd.xml.asc" "$d/repodata/repomd.xml"
  [[ "$(primary_count <"$(echo "$d"/repodata/*-primary.xml.gz)")" == "$2" ]] ||
    die "createrepo_c did not list $2 packages"
  seconds_since "$t0"
}
local_full_build() { # format n
  local totals=() scans=() out i
  if [[ $1 == deb ]] && has apt-ftparchive; then
    link_set deb "$2" "$work/local/deb-$2/pool/main"
    for ((i = 0; i < build_rounds; i++)); do
      out="$(apt_ftparchive_build "$work/local/deb-$2" "$2")"
      totals+=("${out% *}") scans+=("${out#* }")
    done
    result apt-ftparchive deb "$2" full-build "$(median "${totals[@]}")"
    result apt-ftparchive deb "$2" full-build-packages-only "$(median "${scans[@]}")"
  fi
  if [[ $1 == rpm ]] && has createrepo_c; then
    link_set rpm "$2" "$work/local/rpm-$2/Packages"
    for ((i = 0; i < build_rounds; i++)); do
      out="$(createrepo_c_build "$work/local/rpm-$2" "$2")"
      totals+=("$out")
    done
    result createrepo_c rpm "$2" full-build "$(median "${totals[@]}")"
  fi
}

# --- the run ------------------------------------------------------------------------
started=$EPOCHREALTIME
for n in "${sizes[@]}"; do
  for fmt in "${formats[@]}"; do
    note "== $fmt, $n packages"
    if has cairn; then
      cairn_incremental "$fmt" "$n"
      cairn_build "$fmt" "$n"
    fi
    if has mkrepo; then mkrepo_incremental "$fmt" "$n"; fi
    if [[ $fmt == rpm ]] && has createrepo-agent; then cra_incremental "$n"; fi
    local_full_build "$fmt" "$n"
  done
done
note "measured in $(seconds_since "$started")s; results in $results"
echo "load average at the end: $(load)"

python3 - "$results" <<'EOF'
import collections
import sys

r = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split()[2:])
    try:
        value = float(f["seconds"])
    except ValueError:
        value = None if f["seconds"] == "-" else f["seconds"]  # "-": no round of that kind
    if value is not None:
        r[(f["format"], int(f["n"]))][(f["tool"], f["case"])] = value


def s(v):
    if isinstance(v, str) or v is None:
        return v or "-"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def ratio(a, b):
    if not isinstance(a, float) or not isinstance(b, float) or b == 0:
        return "-"
    return f"{a / b:.1f}x" if a / b >= 1 else f"{a / b:.2f}x"


print("\nIncremental: publish one new package into N (ratio = other tool's time / Cairn's)")
print("| format | N | Cairn warm | Cairn cold | mkrepo | mkrepo/Cairn warm | mkrepo/Cairn cold"
      " | createrepo-agent warm | cold | agent warm/Cairn warm | agent cold/Cairn cold |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (fmt, n), v in sorted(r.items()):
    warm = v.get(("cairn", "incremental-warm"))
    cold = v.get(("cairn", "incremental-cold")) or v.get(("cairn", "incremental-full-read"))
    mk = v.get(("mkrepo", "incremental"))
    cw = v.get(("createrepo-agent", "incremental-warm"))
    cc = v.get(("createrepo-agent", "incremental-cold"))
    print(f"| {fmt} | {n:,} | {s(warm)} | {s(cold)} | {s(mk)} | {ratio(mk, warm)} | {ratio(mk, cold)}"
          f" | {s(cw)} | {s(cc)} | {ratio(cw, warm)} | {ratio(cc, cold)} |")

print("\nFull build from scratch, signed (ratio = Cairn's time / the local-disk tool's)")
print("| format | N | Cairn build (from catalog) | Cairn inspect | Cairn inspect + build | tool | tool time"
      " | Cairn build/tool | Cairn inspect+build/tool |")
print("|---|---|---|---|---|---|---|---|---|")
for (fmt, n), v in sorted(r.items()):
    build = v.get(("cairn", "full-build"))
    inspect = v.get(("cairn", "inspect"))
    both = None if build is None or inspect is None else build + inspect
    tool = "apt-ftparchive" if fmt == "deb" else "createrepo_c"
    ref = v.get((tool, "full-build"))
    print(f"| {fmt} | {n:,} | {s(build)} | {s(inspect)} | {s(both)} | {tool} | {s(ref)}"
          f" | {ratio(build, ref)} | {ratio(both, ref)} |")
EOF
