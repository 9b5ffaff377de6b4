#!/usr/bin/env bash
# Cold starts and memory of every function, from the local stack's Lambda logs
# ($CAIRN_STATE/lambda-logs, written by the LocalStack executor in localstack/executor):
# per function, how many environments started, their init duration (process start to
# the first /runtime/invocation/next call, Lambda's "Init Duration"), the peak resident
# memory of any invocation ("Max Memory Used") beside the configured MemorySize, and
# the invocation durations. Run it after a workload, e.g. the test suite:
#
#   tests/run.sh && tests/bench/coldstart.sh
#   SINCE=2026-12-04T02:00 tests/bench/coldstart.sh     # only lines from then on
#
# These are host-mode figures (x86_64 processes on this machine, not Firecracker on
# Graviton); docs/performance.md says how the memory settings follow from them.
set -Eeuo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
. "$root/localstack/lib.sh"
logs="$CAIRN_STATE/lambda-logs"
[[ -d "$logs" ]] || die "no Lambda logs in $logs: bring the stack up and run something first"

python3 - "$logs" "${SINCE:-}" <<'EOF'
import pathlib
import re
import statistics
import sys

logs, since = pathlib.Path(sys.argv[1]), sys.argv[2]
report = re.compile(r"^(\S+) \S+ REPORT RequestId: \S+\tDuration: ([0-9.]+) ms.*?"
                    r"Memory Size: (\d+) MB(?:\tInit Duration: ([0-9.]+) ms)?"
                    r"(?:\tMax Memory Used: (\d+) MB)?")
functions = {}
for path in sorted(logs.glob("*.log")):
    # <stack>-<LogicalId>-<environment>.log
    name = path.stem.rsplit("-", 1)[0].split("-", 1)[-1]
    for line in path.read_text(errors="replace").splitlines():
        m = report.match(line)
        if not m or (since and m.group(1) < since):
            continue
        f = functions.setdefault(name, {"inits": [], "durations": [], "peak": 0, "size": 0})
        f["durations"].append(float(m.group(2)))
        f["size"] = int(m.group(3))
        if m.group(4):
            f["inits"].append(float(m.group(4)))
        if m.group(5):
            f["peak"] = max(f["peak"], int(m.group(5)))

if not functions:
    sys.exit("no REPORT lines" + (f" since {since}" if since else ""))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


print(f"{'function':<20} {'invocations':>11} {'starts':>6} {'init p50':>9} {'init max':>9} "
      f"{'duration p50':>12} {'p95':>8} {'peak MB':>8} {'MemorySize':>10}")
for name, f in sorted(functions.items()):
    inits = f["inits"]
    p50, top = (f"{statistics.median(inits):.0f}ms", f"{max(inits):.0f}ms") if inits else ("-", "-")
    print(f"{name:<20} {len(f['durations']):>11} {len(inits):>6} {p50:>9} {top:>9} "
          f"{statistics.median(f['durations']):>10.0f}ms {pct(f['durations'], 0.95):>6.0f}ms "
          f"{f['peak']:>8} {f['size']:>10}")
EOF
