"""The indexer Lambda on the deployed stack: an external repository whose index.yaml
(generated, N versions) is served on 127.0.0.1:18421; the first run and an unchanged
re-run, each with the run's own duration (from its repository.indexed event), the time
from the request to the event, and the Lambda's Max Memory Used (its REPORT line)."""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from chartserver import ChartServer  # noqa: E402


def index(versions: int) -> str:
    charts = max(versions // 50, 1)
    out = ["apiVersion: v1", "entries:"]
    for c in range(charts):
        out.append(f"  chart-{c}:")
        for v in range(c, versions, charts):
            out += ["  - apiVersion: v2", f"    appVersion: \"{v}.0\"",
                    "    created: \"2026-12-01T00:00:00Z\"",
                    f"    description: Chart {c}, a chart of the benchmark",
                    f"    digest: {v:064x}", f"    name: chart-{c}",
                    f"    urls:", f"    - https://charts.example.org/chart-{c}-1.{v}.0.tgz",
                    f"    version: 1.{v}.0"]
    return "\n".join(out) + "\n"


def call(api, auth, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api + path, data=data, method=method,
                                 headers={"authorization": auth,
                                          "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_runs(api, auth, path, count, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, body = call(api, auth, "GET", f"/v1/repositories/{path}/events")
        runs = [e for e in body.get("events", []) if e["type"] == "repository.indexed"]
        if len(runs) >= count:
            return runs[count - 1]
        time.sleep(0.5)
    raise SystemExit(f"run {count} of {path} not seen in {timeout}s")


def max_memory(logs: str, since: float) -> str:
    best = None
    for name in glob.glob(os.path.join(logs, "*Indexer*")):
        if os.path.getmtime(name) < since:
            continue
        with open(name, errors="replace") as f:
            for line in f:
                m = re.search(r"REPORT .*Max Memory Used: (\d+) MB", line)
                if m:
                    best = max(best or 0, int(m.group(1)))
    return f"{best} MB" if best is not None else "n/a"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--versions", type=int, default=5000)
    p.add_argument("--logs", required=True)
    a = p.parse_args()
    auth = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
    server = ChartServer().start()
    try:
        name = f"bench-{int(time.time())}"
        text = index(a.versions)
        url = server.serve(f"/{name}", text)
        print(f"index.yaml: {a.versions} versions, {len(text) / 2**20:.1f} MiB")
        started = time.time()
        status, body = call(a.api, auth, "POST", "/v1/repositories",
                            {"format": "external-helm", "name": name, "url": url,
                             "interval_minutes": 0})
        assert status == 201, body
        print(f"create (check: fetch + parse in the API): {(time.time() - started) * 1000:.0f} ms")
        path = body["path"]
        for n, label in ((1, "first run"), (2, "unchanged re-run")):
            if n > 1:
                asked = time.time()
                call(a.api, auth, "POST", f"/v1/repositories/{path}/index")
            else:
                asked = started
            run = wait_runs(a.api, auth, path, n)
            data = run["data"]
            print(f"{label}: status {data['status']}, run {data['duration_ms']} ms, "
                  f"request to event {(time.time() - asked) * 1000:.0f} ms, "
                  f"added {data.get('added', 0)}")
        print(f"indexer Max Memory Used (any run since start): {max_memory(a.logs, started)}")
        call(a.api, auth, "DELETE", f"/v1/repositories/{path}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
