#!/usr/bin/env bash
# The randomized concurrency workload (tests/e2e/chaos.py) for longer runs than the
# suite's: `tests/bench/chaos.sh [SECONDS] [SEED...]` (default 120 s, three random
# seeds). Each run ends with `cairn fsck` on the repositories it touched. Needs a
# running stack (localstack/up.sh) and the test venv (tests/run.sh makes it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
. localstack/lib.sh
seconds="${1:-120}"
shift || true
seeds=("$@")
if ((${#seeds[@]} == 0)); then seeds=("$RANDOM$RANDOM" "$RANDOM$RANDOM" "$RANDOM$RANDOM"); fi
status=0
for seed in "${seeds[@]}"; do
  echo "== seed $seed, ${seconds}s"
  if ! CAIRN_CHAOS_SEED="$seed" CAIRN_CHAOS_SECONDS="$seconds" \
      "$CAIRN_CACHE/test-venv/bin/python" -m pytest -p no:cacheprovider -q -s \
      tests/e2e/test_random_concurrency.py; then
    echo "== seed $seed FAILED"
    status=1
  fi
done
exit "$status"
