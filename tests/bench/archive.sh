#!/usr/bin/env bash
# Source-archive benchmark (docs/archives.md), in one run against the deployed local stack:
#   baseline: Repour's mechanism on the same origin: `git clone` (full, with checkout) then
#             `git push` of main to a fresh local bare repository; the same with
#             `git clone --no-checkout` (the transfer without writing the files) and with
#             `git clone --depth 1 --branch main` (the bare repository accepts shallow pushes).
#             Median of N.
#             Also the bytes each clone moves (one extra, untimed clone through a counting proxy).
#   cairn:    POST /v1/archives {name, url, ref: "main"} without callback (synchronous: the
#             answer is awaited; a 202 is followed to the operation's end and noted), a fresh
#             name per run (median of N); then the same request N times for the archived tree
#             (created=false, same tag).
#   bytes:    ten trees of the history (tags bench-t01..bench-t10, given alternately as tag and
#             as commit id) archived into one new name; `git clone --branch <tag> --single-branch
#             --no-tags <readonly url>` of one of them (ARCHIVE_CLONE_INDEX, default the last)
#             through a counting reverse proxy in front of the readonly URL's host: bytes per path
#             (info/refs, HEAD, objects/info/*, idx, pack, loose-object probes), against the tree's
#             own .pack, a `git clone --depth 1` of the same tag from the origin (wire bytes and
#             pack size), the tree's size and its tarball.
# The origin is a generated repository (tests/bench/archive_bench.py: ~8,000 source-like files
# in 300 directories, 400 commits, seeded, made with git fast-import under an isolated git
# configuration; about 10 MiB packed), cached in $CAIRN_CACHE/bench/archive-origin-v<gen>-s<seed>,
# served over smart HTTP on 127.0.0.1:18418 (the origin port the local stack allows) by
# tests/e2e/gitorigin.py.
#
# Environment: ARCHIVE_RUNS=3, ARCHIVE_PARTS="baseline,cairn,bytes" (also "selftest": the bytes
# part against an emulation of the archive layout served by `python3 -m http.server`, no stack),
# ARCHIVE_CLONE_INDEX=-1, ARCHIVE_BENCH_USER=name:password (an existing account instead of
# `cairn user add bench-archive`).
# Prints RESULT lines, then the results as markdown (also kept in $CAIRN_CACHE/bench/logs/).
set -Eeuo pipefail
trap 'echo "archive.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh

parts="${ARCHIVE_PARTS:-baseline,cairn,bytes}"
runs="${ARCHIVE_RUNS:-3}"
for tool in git python3 gzip curl; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

needs_stack=0
[[ ",$parts," == *,cairn,* || ",$parts," == *,bytes,* ]] && needs_stack=1
if ((needs_stack)); then
  how="start (or redeploy) the stack with localstack/up.sh, then rerun"
  env_file="$CAIRN_STATE/cairn.env"
  [[ -f "$env_file" ]] || die "$env_file is missing: the stack is not deployed; $how"
  ls_healthy || die "LocalStack does not answer at $LS_ENDPOINT; $how"
  api="$(sed -n 's/^CAIRN_API_URL=//p' "$env_file" | tr -d "'\"")"
  base="$(sed -n 's/^CAIRN_ARCHIVE_BASE_URL=//p' "$env_file" | tr -d "'\"")"
  [[ -n "$api" ]] || die "$env_file names no CAIRN_API_URL; $how"
  [[ -n "$base" ]] || die "$env_file names no CAIRN_ARCHIVE_BASE_URL (a stack without archives); $how"
  code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$api/v1/archives/bench-probe" 2>/dev/null || true)"
  [[ "$code" =~ ^[1-5][0-9][0-9]$ ]] || die "the API at $api is unreachable; $how"
  [[ -n "${ARCHIVE_BENCH_USER:-}" || -x target/release/cairn ]] ||
    die "target/release/cairn is missing (it adds the benchmark's account): cargo build --release --locked -p cairn"
fi

logs="$CAIRN_CACHE/bench/logs"
mkdir -p "$logs"
md="$logs/archive-$(date -u +%Y%m%dT%H%M%SZ).md"
export PYTHONDONTWRITEBYTECODE=1
# Generation first (cached; about 15 s the first time), so that no timing includes it.
python3 tests/bench/archive_bench.py generate >/dev/null
if [[ "$parts" == selftest ]]; then
  python3 tests/bench/archive_bench.py selftest --markdown-out "$md"
else
  python3 tests/bench/archive_bench.py run --parts "$parts" --runs "$runs" --markdown-out "$md"
fi
note "markdown kept in $md"
