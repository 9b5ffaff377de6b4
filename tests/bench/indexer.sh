#!/usr/bin/env bash
# Indexing a generated external index.yaml (issue 11's benchmark; figures in
# docs/performance.md, "External repositories"):
#  1. in process: the indexer's parse and diff over in-memory ports, first run and
#     unchanged re-run, with the process's peak memory (/usr/bin/time -v);
#  2. on the deployed stack (if it is up): the same index served on 127.0.0.1:18421,
#     the indexer Lambda's runs (their own duration and Max Memory Used from its
#     REPORT lines), first and unchanged.
#   tests/bench/indexer.sh            # 5,000 versions
#   tests/bench/indexer.sh 20000
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
versions="${1:-5000}"
cargo build -q --release -p cairn-core --example index_bench
echo "== in process ($versions versions)"
/usr/bin/time -f "peak memory: %M KiB, %e s wall" target/release/examples/index_bench "$versions"
. localstack/lib.sh
if ! ls_healthy; then
  echo "== no stack on $LS_ENDPOINT: skipping the deployed part (localstack/up.sh)"
  exit 0
fi
. "$(dirname "$0")/lib.sh" indexer
echo "== deployed stack ($versions versions)"
"$VENV/bin/python" -P tests/bench/indexer_bench.py --api "$CAIRN_API_URL" --user "$user" \
  --password "$password" --versions "$versions" --logs "$CAIRN_STATE/lambda-logs"
