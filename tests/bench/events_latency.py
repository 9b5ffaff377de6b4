#!/usr/bin/env python3
"""Events benchmark: commit -> event-stream client, over N uploads.

One follower keeps a Server-Sent Events long-poll open on the repository's events (the
way EventSource does: reconnect at once with Last-Event-ID), while uploads of small
.debs go one after the other. For each upload the commit time is when the API answered
201 (the package record and its `package.stored` event committed before that answer);
the arrival time is when the follower's long-poll returned that event. Reported: p50,
p95 and max of arrival - commit, and the same for `repository.published` of each file
(commit time = the first reader who saw the publication's event, so that figure is the
publication delay seen from the stream, not a delivery latency).

Run through tests/bench/events.sh (creates the user, finds the stack); stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from debs import make_deb  # noqa: E402


def request(url, method="GET", body=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def follow(api, subject, start, seen, stop):
    last = start
    while not stop.is_set():
        headers = {"Accept": "text/event-stream", "Last-Event-ID": last}
        _, body = request(f"{api}/v1/events?subject={subject}", headers=headers)
        now = time.time()
        for block in body.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines()
                          if ": " in line and not line.startswith(":"))
            if "id" in fields:
                last = fields["id"]
            if "data" in fields:
                event = json.loads(fields["data"])
                key = (event["type"], event["data"].get("filename"))
                seen.setdefault(key, now)
                if event["type"] == "repository.published":
                    for f in event["data"]["added"]:
                        seen.setdefault(("published", f), now)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--repo", default="release/2.11/debian/bookworm")
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args()

    subject = f"repository:{args.repo}"
    start = "0"
    while True:  # the cursor after the subject's last event
        _, body = request(f"{args.api}/v1/events?subject={subject}&after={start}&limit=1000")
        nxt = json.loads(body)["next"]
        if nxt == start:
            break
        start = nxt
    seen, stop = {}, threading.Event()
    follower = threading.Thread(target=follow, args=(args.api, subject, start, seen, stop),
                                daemon=True)
    follower.start()
    time.sleep(1)
    auth = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    committed = {}
    run = time.strftime("%H%M%S")
    for i in range(args.events):
        name = f"bench-evt-{run}-{i}"
        filename = f"{name}_1.0_all.deb"
        boundary = "cairnbench"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{filename}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + make_deb(name, "1.0") + f"\r\n--{boundary}--\r\n".encode()
        status, _ = request(f"{args.api}/{args.repo}", "PUT", body, {
            "Authorization": f"Basic {auth}",
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        committed[filename] = time.time()
        assert status == 201, status
    deadline = time.time() + 120
    while time.time() < deadline and not all(("published", f) in seen for f in committed):
        time.sleep(0.2)
    stop.set()
    stored = [seen[("package.stored", f)] - t for f, t in committed.items()
              if ("package.stored", f) in seen]
    published = [seen[("published", f)] - t for f, t in committed.items()
                 if ("published", f) in seen]
    print(f"uploads: {len(committed)}; package.stored seen by the stream: {len(stored)}; "
          f"published seen: {len(published)}")
    for label, values in [("commit -> SSE client (package.stored)", stored),
                          ("upload answered -> repository.published on the stream", published)]:
        if values:
            print(f"{label}: p50 {statistics.median(values) * 1000:.0f} ms, "
                  f"p95 {percentile(values, 95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms")
    if len(stored) != len(committed):
        sys.exit("some package.stored events never reached the stream")


if __name__ == "__main__":
    main()
