"""Listing with a selector over many created repositories (issue 11's benchmark): the
latency of GET /v1/repositories?selector=… as a token-authenticated caller, warm, and
the DynamoDB reads behind one call (the same Query, with consumed capacity).

Runs with the LocalStack install's Python (boto3)."""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3


def request(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return status, raw, (time.perf_counter() - started) * 1000


def record(path, i, owner):
    doc = {"path": path, "format": "deb", "architectures": [], "metadata_compression": "gzip",
           "description": f"bench repository {i}",
           "visibility": "private" if (i // 10) % 2 else "public",
           "labels": {"team": f"t{i % 10}", "env": ["prod", "stage", "dev"][i % 3]},
           "owners": [owner], "created_at": int(time.time()), "version": 1, "state": "active"}
    return {"pk": {"S": "REPOSITORIES"}, "sk": {"S": f"REPO#{path}"},
            "doc": {"S": json.dumps(doc)}, "version": {"N": "1"}}


def seed(db, table, prefix, count, owner):
    paths = [f"{prefix}/s{i // 100}/debian/r{i}" for i in range(count)]
    for start in range(0, count, 25):
        items = [{"PutRequest": {"Item": record(p, start + j, owner)}}
                 for j, p in enumerate(paths[start:start + 25])]
        pending = {table: items}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    return paths


def remove(db, table, paths):
    for start in range(0, len(paths), 25):
        keys = [{"DeleteRequest": {"Key": {"pk": {"S": "REPOSITORIES"},
                                           "sk": {"S": f"REPO#{p}"}}}}
                for p in paths[start:start + 25]]
        pending = {table: keys}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


def reads_per_listing(db, table):
    """The listing's Query as the function makes it: pages and consumed capacity."""
    pages, capacity, items, key = 0, 0.0, 0, None
    while True:
        args = dict(TableName=table, ConsistentRead=True, ReturnConsumedCapacity="TOTAL",
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                    ExpressionAttributeValues={":pk": {"S": "REPOSITORIES"},
                                               ":prefix": {"S": "REPO#"}})
        if key:
            args["ExclusiveStartKey"] = key
        page = db.query(**args)
        pages += 1
        items += page["Count"]
        capacity += (page.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0)
        key = page.get("LastEvaluatedKey")
        if not key:
            return pages, items, capacity


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--repos", type=int, default=1000)
    p.add_argument("--calls", type=int, default=50)
    a = p.parse_args()
    basic = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
    status, raw, _ = request(f"{a.api}/v1/tokens", "POST", json.dumps(
        {"scopes": ["read"], "description": "bench"}).encode(),
        {"Authorization": basic, "Content-Type": "application/json"})
    assert status == 201, raw
    bearer = {"Authorization": "Bearer " + json.loads(raw)["token"]}
    db = boto3.client("dynamodb")
    prefix = f"bench-{a.user}"
    started = time.perf_counter()
    # Owned by another account: half are private, so visibility filters too.
    paths = seed(db, a.table, prefix, a.repos, "bench-someone-else")
    print(f"seeded {len(paths)} repositories in {time.perf_counter() - started:.1f} s")
    try:
        pages, items, capacity = reads_per_listing(db, a.table)
        print(f"one listing reads: 1 Query, {pages} page(s), {items} items, "
              f"{capacity:g} RCU (LocalStack's count) + the token's GetItem and its owner's")
        for label, query in [("selector team=t3 (1/10 match)", "team=t3"),
                             ("selector env in (prod,stage),!legacy", "env in (prod,stage),!legacy"),
                             ("no selector", None)]:
            url = f"{a.api}/v1/repositories"
            if query:
                url += "?selector=" + urllib.parse.quote(query)
            request(url, headers=bearer)  # warm
            times, count = [], 0
            for _ in range(a.calls):
                status, raw, ms = request(url, headers=bearer)
                assert status == 200, raw
                count = sum(1 for r in json.loads(raw)["repositories"]
                            if r["path"].startswith(prefix))
                times.append(ms)
            times.sort()
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            print(f"{label}: {count} of the bench's listed; p50 {statistics.median(times):.1f} ms, "
                  f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms over {a.calls} calls")
    finally:
        remove(db, a.table, paths)


if __name__ == "__main__":
    main()
