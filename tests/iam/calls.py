"""Sums up the API call log of the local stack (localstack/README.md, "The API call
log"): for each function, every service operation it called and on which resources.

    python3 tests/iam/calls.py [LOG]        # default: $CAIRN_STATE/api-calls.jsonl

A report for people; tests/iam/check.py holds the same log against each function's
deployed role.
"""

import collections
import json
import pathlib
import sys

from check import PREFIX, default_log


def main() -> int:
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default_log()
    calls = collections.defaultdict(lambda: collections.defaultdict(set))
    for line in path.read_text().splitlines():
        record = json.loads(line)
        function = record["key"].removeprefix(PREFIX)
        action = f"{record['signing_name'] or record['service']}:{record['operation']}"
        resource = record.get("resource") or {}
        target = (resource.get("TableName") or resource.get("QueueUrl", "").rsplit("/", 1)[-1]
                  or resource.get("Bucket") or resource.get("SecretId")
                  or ",".join(resource.get("TableNames", []))
                  or ",".join(sorted({t for _, t in resource.get("TransactItems", []) if t})))
        if record.get("internal"):
            action += " (by LocalStack for it)"
        calls[function][action].add(target or "-")
    for function in sorted(calls):
        print(function)
        for action in sorted(calls[function]):
            print(f"  {action:60} {', '.join(sorted(calls[function][action]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
