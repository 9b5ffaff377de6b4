#!/usr/bin/env python3
"""Build benchmark against the deployed stack, with real `cairn worker` processes.

  A. controller overhead: --sequential builds, one after the other, of a project whose
     one pipeline is 10 `shell: "true"` steps, on one worker. Overhead = the build's
     wall time (created -> finished) minus the time its steps ran on the worker
     (started -> finished of each step), per build and per step.
  A'. 10 steps on the build-step Lambda, each restoring an empty tarball artifact
     (scripts never run there): overhead = wall time minus the time the Lambda held
     each step (which includes its start, the workspace restore and save).
  B. concurrency: --concurrent builds of a 2-step project (concurrency 50) started at
     once, --workers workers. Checks every build succeeded and no action ran twice
     (each script appends its job id to a file: no id twice, one line per step), and
     reports the queue wait (queued -> started of each step) and the makespan.
  C. the live log: a step prints its clock (`date +%s.%N`) --live-lines times, a
     second apart; the benchmark follows `log.appended` events on the event stream
     (Server-Sent Events long-poll) and reports, per line, the time from print to
     arrival (same machine, same clock).
Run through tests/bench/builds.sh; stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request


def call(api, auth, method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{api}{path}", data=data, method=method,
                                 headers={"Authorization": auth, "Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
        return json.loads(raw) if raw else {}


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wait_all(api, auth, ids, timeout):
    done, deadline = {}, time.time() + timeout
    while len(done) < len(ids) and time.time() < deadline:
        for build_id in ids:
            if build_id not in done:
                b = call(api, auth, "GET", f"/v1/builds/{build_id}")
                if b["state"] in ("succeeded", "failed", "cancelled"):
                    done[build_id] = b
        time.sleep(0.5)
    missing = set(ids) - set(done)
    if missing:
        raise SystemExit(f"{len(missing)} builds not finished within {timeout} s")
    return done


def follow(api, auth, query, after, timeout=60):
    """One long-poll of the event stream: (events, cursor)."""
    req = urllib.request.Request(f"{api}/v1/events?{query}", headers={
        "Authorization": auth, "Accept": "text/event-stream", "Last-Event-ID": str(after)})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read().decode()
    events, cursor = [], after
    for line in body.splitlines():
        if line.startswith("id: "):
            cursor = int(line[4:])
        elif line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events, cursor


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--api", "--cli", "--user", "--password", "--admin", "--admin-password"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--sequential", type=int, default=5)
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--live-lines", type=int, default=20)
    args = ap.parse_args()
    user = basic(args.user, args.password)
    token = call(args.api, basic(args.admin, args.admin_password), "POST", "/v1/tokens",
                 {"scopes": ["worker"], "description": "bench"})["token"]
    tmp = tempfile.mkdtemp(prefix="cairn-builds-bench-")
    stamp = str(int(time.time()))
    procs = []

    def start_workers(n):
        env = dict(os.environ, CAIRN_API_URL=args.api, CAIRN_TOKEN=token)
        env.pop("CAIRN_CONFIG", None)
        for i in range(n):
            log = open(os.path.join(tmp, f"w{len(procs)}.log"), "wb")
            procs.append(subprocess.Popen(
                [args.cli, "worker", "--name", f"bench-w{len(procs)}",
                 "--workdir", os.path.join(tmp, f"w{len(procs)}")],
                env=env, stdout=log, stderr=log, start_new_session=True))

    try:
        # A. overhead of 10 no-op steps on one worker.
        project = f"bench-noop-{stamp}"
        steps = "".join("      - action: shell\n        script: 'true'\n" for _ in range(10))
        call(args.api, user, "PUT", f"/v1/projects/{project}",
             f"pipelines:\n  - name: p\n    actions:\n{steps}".encode(), "application/yaml")
        start_workers(1)
        overheads, walls = [], []
        for _ in range(args.sequential):
            build_id = call(args.api, user, "POST", f"/v1/projects/{project}/builds", {})["id"]
            b = wait_all(args.api, user, [build_id], 300)[build_id]
            assert b["state"] == "succeeded", b
            wall = b["finished_at"] - b["created_at"]
            ran = sum(s["finished_at"] - s["started_at"] for s in b["steps"])
            walls.append(wall)
            overheads.append(wall - ran)
        print(f"A. 10 no-op steps on 1 worker, {args.sequential} builds: wall median "
              f"{statistics.median(walls) / 1000:.2f} s, overhead median "
              f"{statistics.median(overheads) / 1000:.2f} s "
              f"({statistics.median(overheads) / 10:.0f} ms per step), max "
              f"{max(overheads) / 1000:.2f} s")

        # A'. the same on the build-step Lambda (dispatched by the controller).
        # Scripts never run there: each step restores an empty tarball artifact.
        project = f"bench-noop-lambda-{stamp}"
        steps = "".join("      - action: artifact\n        runner: lambda\n        restore: empty\n"
                        for _ in range(10))
        call(args.api, user, "PUT", f"/v1/projects/{project}",
             f"pipelines:\n  - name: p\n    actions:\n{steps}".encode(), "application/yaml")
        empty = os.path.join(tmp, "empty.tar.gz")
        subprocess.run(["tar", "-czf", empty, "-T", "/dev/null"], check=True)
        token_env = dict(os.environ, CAIRN_API_URL=args.api, CAIRN_TOKEN=call(
            args.api, user, "POST", "/v1/tokens",
            {"scopes": [f"artifacts:{project}"], "description": "bench"})["token"])
        token_env.pop("CAIRN_CONFIG", None)
        subprocess.run([args.cli, "artifact", "put", project, "empty", empty], check=True,
                       env=token_env, capture_output=True)
        overheads, walls = [], []
        for _ in range(args.sequential):
            build_id = call(args.api, user, "POST", f"/v1/projects/{project}/builds", {})["id"]
            b = wait_all(args.api, user, [build_id], 300)[build_id]
            assert b["state"] == "succeeded", b
            assert {s["worker"] for s in b["steps"]} == {"lambda"}, b
            wall = b["finished_at"] - b["created_at"]
            ran = sum(s["finished_at"] - s["started_at"] for s in b["steps"])
            walls.append(wall)
            overheads.append(wall - ran)
        print(f"A'. 10 empty-artifact restores on the build-step Lambda, {args.sequential} builds: wall "
              f"median {statistics.median(walls) / 1000:.2f} s, overhead median "
              f"{statistics.median(overheads) / 1000:.2f} s "
              f"({statistics.median(overheads) / 10:.0f} ms per step), max "
              f"{max(overheads) / 1000:.2f} s")

        # B. concurrent builds on several workers.
        start_workers(args.workers - 1)
        marks = os.path.join(tmp, "jobs")
        project = f"bench-many-{stamp}"
        call(args.api, user, "PUT", f"/v1/projects/{project}",
             (f"concurrency: 50\npipelines:\n  - name: p\n    actions:\n"
              f"      - action: shell\n        script: echo $CAIRN_JOB >> {marks}; sleep 1\n"
              f"      - action: shell\n        script: echo $CAIRN_JOB >> {marks}\n").encode(),
             "application/yaml")
        t0 = time.time()
        ids = [call(args.api, user, "POST", f"/v1/projects/{project}/builds", {})["id"]
               for _ in range(args.concurrent)]
        started = time.time() - t0
        done = wait_all(args.api, user, ids, 900)
        makespan = max(b["finished_at"] for b in done.values()) / 1000 - t0
        states = [b["state"] for b in done.values()]
        jobs = open(marks).read().split()
        waits = [s["started_at"] - s["queued_at"] for b in done.values() for s in b["steps"]]
        attempts = [s["attempts"] for b in done.values() for s in b["steps"]]
        print(f"B. {args.concurrent} builds x 2 steps on {args.workers} workers: "
              f"{states.count('succeeded')} succeeded, {len(jobs)} actions run for "
              f"{2 * args.concurrent} steps, {len(jobs) - len(set(jobs))} run twice, "
              f"max attempts {max(attempts)}; started in {started:.1f} s, makespan "
              f"{makespan:.1f} s; queue wait median {statistics.median(waits) / 1000:.1f} s, "
              f"p95 {pct(waits, 95) / 1000:.1f} s, max {max(waits) / 1000:.1f} s")
        if states.count("succeeded") != len(ids) or len(jobs) != len(set(jobs)) \
                or len(jobs) != 2 * len(ids):
            raise SystemExit("FAILED: not every build succeeded exactly once per step")

        # C. a running step's output on the event stream.
        project = f"bench-live-{stamp}"
        call(args.api, user, "PUT", f"/v1/projects/{project}",
             (f"pipelines:\n  - name: p\n    actions:\n      - action: shell\n"
              f"        script: for i in $(seq {args.live_lines}); do date +%s.%N; sleep 1; done\n"
              ).encode(), "application/yaml")
        cursor = int(call(args.api, user, "GET",
                          f"/v1/events?subject=build:{project}&last=1")["next"])
        build_id = call(args.api, user, "POST", f"/v1/projects/{project}/builds", {})["id"]
        delays, events_seen, deadline = [], 0, time.time() + 120 + 2 * args.live_lines
        while len(delays) < args.live_lines and time.time() < deadline:
            events, cursor = follow(args.api, user,
                                    f"subject=build:{project}&types=log.appended", cursor)
            now = time.time()
            for e in events:
                events_seen += 1
                delays += [now - float(t) for t in e["data"]["text"].split()]
        wait_all(args.api, user, [build_id], 120)
        if len(delays) < args.live_lines:
            raise SystemExit(f"FAILED: {len(delays)} of {args.live_lines} lines arrived live")
        print(f"C. live log, {len(delays)} lines a second apart in {events_seen} events: "
              f"print -> event stream median {statistics.median(delays):.2f} s, p95 "
              f"{pct(delays, 95):.2f} s, max {max(delays):.2f} s")
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


if __name__ == "__main__":
    main()
