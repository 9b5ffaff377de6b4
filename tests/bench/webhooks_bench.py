#!/usr/bin/env python3
"""Webhook benchmark: commit -> first delivery attempt, fan-out to 100 endpoints, and
the sync worker's publish time with and without subscriptions.

A receiver on 127.0.0.1:18419 (the local stack's OutboundAllowList) records when each
delivery arrives. Phases, on one APT repository:
  0. no subscription:     --base uploads, one after the other;
  A. one subscription:    --events uploads; commit (the 201) -> its package.stored
                          delivery at the receiver;
  B. 100 subscriptions:   --fanout uploads; commit -> the first and the last of the 100
                          deliveries of its package.stored.
The sync worker's own timings ("sync done" lines: catalog, build, write, record ms)
are read from the local executor's logs for each phase.
Run through tests/bench/webhooks.sh; stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from debs import make_deb  # noqa: E402

ARRIVALS: dict = {}
LOCK = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        now = time.time()
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        event = json.loads(body)
        with LOCK:
            ARRIVALS.setdefault((self.path, event["data"].get("filename")), now)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


def call(api, auth, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{api}{path}", data=data, method=method, headers={
        "Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else {}


def upload(api, auth, repo, name):
    filename = f"{name}_1.0_all.deb"
    boundary = "cairnbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{filename}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + make_deb(name, "1.0") + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{api}/{repo}", data=body, method="PUT", headers={
        "Authorization": f"Basic {auth}",
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 201, r.status
    return filename, time.time()


def wait(keys, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with LOCK:
            if all(k in ARRIVALS for k in keys):
                return True
        time.sleep(0.2)
    return False


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(values):
    return (f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {pct(values, 95) * 1000:.0f} ms,"
            f" max {max(values) * 1000:.0f} ms (n={len(values)})")


def sync_lines(state, repo, since):
    out = []
    for path in glob.glob(os.path.join(state, "lambda-logs", "*MetadataSync*.log")):
        for line in open(path, errors="replace"):
            if '"sync done"' not in line or f'"repo":"{repo}"' not in line:
                continue
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            if stamp < since:
                continue
            fields = json.loads(line[line.index("{"):])["fields"]
            if fields.get("rebuilt"):
                out.append(fields)
    return out


def report_syncs(label, lines):
    if not lines:
        print(f"{label}: no sync lines found")
        return
    parts = []
    for key in ["catalog_ms", "build_ms", "write_ms", "record_ms"]:
        values = [f.get(key, 0) for f in lines]
        parts.append(f"{key.removesuffix('_ms')} {statistics.median(values):.0f}")
    total = [sum(f.get(k, 0) for k in ["catalog_ms", "build_ms", "write_ms", "record_ms"])
             for f in lines]
    print(f"{label}: {len(lines)} publications, median ms: {', '.join(parts)}; "
          f"total p50 {statistics.median(total):.0f}, p95 {pct(total, 95):.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--repo", default="release/3.0/debian/bookworm")
    ap.add_argument("--base", type=int, default=50)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--fanout", type=int, default=5)
    ap.add_argument("--endpoints", type=int, default=100)
    args = ap.parse_args()
    auth = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    server = ThreadingHTTPServer(("127.0.0.1", 18419), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    run = time.strftime("%H%M%S")
    subject = f"repository:{args.repo}"
    made = []
    try:
        start0 = time.time()
        for i in range(args.base):
            upload(args.api, auth, args.repo, f"bench-wh0-{run}-{i}")
        time.sleep(5)
        base_lines = sync_lines(args.state, args.repo, start0)

        hook = call(args.api, auth, "POST", "/v1/webhooks", {
            "url": "http://127.0.0.1:18419/one", "events": ["package.stored"], "subjects": [subject]})
        made.append(hook["id"])
        startA = time.time()
        committed = {}
        for i in range(args.events):
            filename, at = upload(args.api, auth, args.repo, f"bench-wh1-{run}-{i}")
            committed[filename] = at
        wait([("/one", f) for f in committed])
        time.sleep(5)
        a_lines = sync_lines(args.state, args.repo, startA)
        with LOCK:
            first = [ARRIVALS[("/one", f)] - t for f, t in committed.items() if ("/one", f) in ARRIVALS]
        print(f"commit -> delivery at the receiver, 1 subscription: {ms(first)}; "
              f"missing {len(committed) - len(first)}")

        call(args.api, auth, "DELETE", f"/v1/webhooks/{hook['id']}")
        made.remove(hook["id"])
        for i in range(args.endpoints):
            made.append(call(args.api, auth, "POST", "/v1/webhooks", {
                "url": f"http://127.0.0.1:18419/fan/{i}", "events": ["package.stored"],
                "subjects": [subject]})["id"])
        startB = time.time()
        firsts, lasts = [], []
        for i in range(args.fanout):
            filename, at = upload(args.api, auth, args.repo, f"bench-wh2-{run}-{i}")
            keys = [(f"/fan/{j}", filename) for j in range(args.endpoints)]
            ok = wait(keys, timeout=300)
            with LOCK:
                got = [ARRIVALS[k] for k in keys if k in ARRIVALS]
            firsts.append(min(got) - at)
            lasts.append(max(got) - at)
            print(f"  upload {i}: {len(got)}/{args.endpoints} endpoints, first after "
                  f"{(min(got) - at) * 1000:.0f} ms, all after {(max(got) - at) * 1000:.0f} ms"
                  + ("" if ok else " (timed out)"))
        time.sleep(5)
        b_lines = sync_lines(args.state, args.repo, startB)
        print(f"fan-out to {args.endpoints} endpoints: first {ms(firsts)}; all {ms(lasts)}")
        report_syncs("sync worker, no subscription", base_lines)
        report_syncs("sync worker, 1 subscription", a_lines)
        report_syncs(f"sync worker, {args.endpoints} subscriptions", b_lines)
    finally:
        for hook_id in made:
            try:
                call(args.api, auth, "DELETE", f"/v1/webhooks/{hook_id}")
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                print(f"could not delete {hook_id}: {e}")
        server.shutdown()


if __name__ == "__main__":
    main()
