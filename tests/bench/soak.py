#!/usr/bin/env python3
"""Soak benchmark: resident memory of warm API Lambdas over many sequential requests.

Sends N requests (default 1,000), one at a time, mixed over the two API functions, and
reports the resident memory (VmRSS, VmHWM from /proc/<pid>/status) of each function's
`bootstrap` process at the start, every --every requests and at the end. Sequential
requests keep one warm execution environment per function busy; the script names every
bootstrap process it finds and how many of its requests each one served (from
$CAIRN_STATE/lambda-logs/<function>.log), so a second instance (a cold start, or a
colleague's concurrent tests) is visible.

Request kinds (--mix weights, name=weight, comma-separated):
  repo-api:    upload     PUT a small valid .deb (tests/e2e/debs.py, unique name) -> 201
               badlogin   PUT with a wrong password (known user) or an unknown user -> 401
               resync     authenticated POST /{repo} (re-sync) -> 202
  archive-api: opunknown  authenticated GET /v1/operations/<random id> -> 404
               abadlogin  POST /v1/archives with a wrong password / unknown user -> 401
               archive    POST /v1/archives of --origin (only with --origin) -> 200/202

Run through tests/bench/soak.sh (creates the user, finds the stack); stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import debs  # noqa: E402

REPO_API_KINDS = ("upload", "badlogin", "resync")
ARCHIVE_API_KINDS = ("opunknown", "abadlogin", "archive")
DEFAULT_MIX = "upload=3,badlogin=2,resync=1,opunknown=2,abadlogin=2"


# -- processes -----------------------------------------------------------------------------
def status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def bootstraps(function_name: str) -> list[int]:
    """PIDs of the bootstrap processes whose environment has AWS_LAMBDA_FUNCTION_NAME=<name>."""
    want = f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if not fh.read().split(b"\0", 1)[0].endswith(b"/bootstrap"):
                    continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if want in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def function_names(stack: str) -> dict[str, str]:
    """{'repo-api': 'cairn-RepoApi-xxxx', 'archive-api': ...} from the running processes or
    the lambda log file names."""
    logs = state_dir() / "lambda-logs"
    names = {}
    for key, logical in (("repo-api", "RepoApi"), ("archive-api", "ArchiveApi")):
        pattern = re.compile(rf"^{re.escape(stack)}-{logical}-[0-9a-f]+$")
        candidates = sorted(
            (p.stat().st_mtime, p.stem) for p in logs.glob(f"{stack}-{logical}-*.log")
            if pattern.match(p.stem)
        )
        if candidates:
            names[key] = candidates[-1][1]
    return names


def state_dir() -> Path:
    if os.environ.get("CAIRN_STATE"):
        return Path(os.environ["CAIRN_STATE"])
    return Path(os.environ.get("CAIRN_CACHE") or Path.home() / ".cache/cairn") / "state"


class FunctionLog:
    """Which execution environment (pid) served which request, from the executor's log."""

    def __init__(self, function_name: str):
        self.path = state_dir() / "lambda-logs" / f"{function_name}.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def pids(self) -> dict[str, int]:
        """{env-prefix: pid of its latest bootstrap process} (whole log)."""
        pids = {}
        if self.path.exists():
            with open(self.path, errors="replace") as fh:
                for line in fh:
                    m = re.search(r"^\S+ (\S+) \[cairn\] started \S+ pid=(\d+)", line)
                    if m:
                        pids[m.group(1)] = int(m.group(2))
        return pids

    def served(self) -> dict[str, dict]:
        """{env-prefix: {"pid": pid-or-None, "requests": n, "oom": n}} since construction."""
        out: dict[str, dict] = {}
        pids = {}
        if not self.path.exists():
            return out
        with open(self.path, errors="replace") as fh:
            for line in fh:  # whole file for the pid of every environment
                parts = line.split(" ", 3)
                if len(parts) < 3:
                    continue
                m = re.search(r"\[cairn\] started \S+ pid=(\d+)", line)
                if m:
                    pids[parts[1]] = int(m.group(1))
        with open(self.path, errors="replace") as fh:
            fh.seek(self.offset)
            for line in fh:
                parts = line.split(" ", 3)
                if len(parts) < 3:
                    continue
                env = parts[1]
                rec = out.setdefault(env, {"pid": None, "requests": 0, "oom": 0, "starts": 0})
                if parts[2] == "START":
                    rec["requests"] += 1
                elif "[cairn] out of memory" in line:
                    rec["oom"] += 1
                elif "[cairn] started" in line:
                    rec["starts"] += 1
        for env, rec in out.items():
            rec["pid"] = pids.get(env)
        return out


# -- HTTP ----------------------------------------------------------------------------------
def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 60) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart(fields: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "cairnsoak" + uuid.uuid4().hex
    out = bytearray()
    for name, filename, data in fields:
        out += f"--{boundary}\r\n".encode()
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += f"Content-Disposition: {disp}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/vnd.debian.binary-package\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class Soak:
    def __init__(self, args):
        self.args = args
        self.api = args.api.rstrip("/")
        self.good = basic(args.user, args.password)
        self.wrong = basic(args.user, args.password + "-wrong")
        self.unknown = basic("soak-nobody-" + os.urandom(3).hex(), "whatever")
        self.run_id = debs.run_id()
        self.counter = 0
        self.payload = os.urandom(args.upload_kb * 1024) if args.upload_kb else b"hello\n"
        self.statuses: dict[str, dict[int, int]] = {}
        self.times: dict[str, list[float]] = {}

    def do(self, kind: str) -> int:
        a = self.args
        self.counter += 1
        n = self.counter
        if kind == "upload":
            name = f"cairnsoak{self.run_id}n{n}"
            deb = debs.make_deb(name, "1.0-1", arch="amd64", payload=self.payload)
            fn = f"{name}_1.0-1_amd64.deb"
            body, ctype = multipart([("product", None, b"cairnsoak"), (fn, fn, deb)])
            return request("PUT", f"{self.api}/{a.repo}", body,
                           {"Authorization": self.good, "Content-Type": ctype})[0]
        if kind == "badlogin":
            deb = debs.make_deb("cairnsoakrefused", "1.0-1", arch="amd64")
            fn = "cairnsoakrefused_1.0-1_amd64.deb"
            body, ctype = multipart([("product", None, b"cairnsoak"), (fn, fn, deb)])
            auth = self.wrong if n % 2 else self.unknown
            return request("PUT", f"{self.api}/{a.repo}", body,
                           {"Authorization": auth, "Content-Type": ctype})[0]
        if kind == "resync":
            return request("POST", f"{self.api}/{a.repo}", b"", {"Authorization": self.good})[0]
        if kind == "opunknown":
            return request("GET", f"{self.api}/v1/operations/{uuid.uuid4()}", None,
                           {"Authorization": self.good})[0]
        if kind == "abadlogin":
            auth = self.wrong if n % 2 else self.unknown
            body = json.dumps({"name": "soak", "url": a.origin or "https://example.invalid/x.git",
                               "ref": "main"}).encode()
            return request("POST", f"{self.api}/v1/archives", body,
                           {"Authorization": auth, "Content-Type": "application/json"})[0]
        if kind == "archive":
            body = json.dumps({"name": f"soak-{self.run_id}", "url": a.origin,
                               "ref": "main"}).encode()
            return request("POST", f"{self.api}/v1/archives", body,
                           {"Authorization": self.good, "Content-Type": "application/json"},
                           timeout=90)[0]
        raise ValueError(kind)


def parse_mix(text: str, origin: str | None) -> list[str]:
    mix = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in REPO_API_KINDS + ARCHIVE_API_KINDS:
            raise SystemExit(f"unknown request kind {name!r} in --mix")
        if name == "archive" and not origin:
            raise SystemExit("--mix archive needs --origin")
        mix += [name] * int(weight or 1)
    return mix


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", required=True, help="API base URL ($CAIRN_API_URL)")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--stack", default=os.environ.get("CAIRN_STACK", "cairn"))
    p.add_argument("--repo", default="live/3.0/debian/trixie", help="suite for uploads and re-syncs")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--every", type=int, default=100, help="report resident memory every N requests")
    p.add_argument("--mix", default=DEFAULT_MIX)
    p.add_argument("--upload-kb", type=int, default=0,
                   help="random payload in each uploaded .deb, KiB (0: a 6-byte file, ~1 KB package)")
    p.add_argument("--origin", help="git origin URL for 'archive' requests (e.g. the e2e git origin)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    mix = parse_mix(args.mix, args.origin)
    wanted = {"repo-api" if k in REPO_API_KINDS else "archive-api" for k in mix}
    soak = Soak(args)

    # Warm-up: one request per function so each has a warm process before "start".
    for fn in sorted(wanted):
        kind = "resync" if fn == "repo-api" else "opunknown"
        status = soak.do(kind)
        print(f"warm-up {fn} ({kind}): HTTP {status}", flush=True)
    names = function_names(args.stack)
    missing = wanted - names.keys()
    if missing:
        raise SystemExit(f"cannot find the lambda logs of {sorted(missing)} under {state_dir()}/lambda-logs")
    logs = {fn: FunctionLog(names[fn]) for fn in wanted}

    samples: list[tuple[int, dict]] = []

    env_pids: list[dict] = []

    def sample(done: int) -> None:
        row = {}
        for fn in sorted(wanted):
            row[fn] = {pid: (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"))
                       for pid in bootstraps(names[fn])}
        samples.append((done, row))
        env_pids.append({fn: logs[fn].pids() for fn in wanted})
        cells = []
        for fn in sorted(wanted):
            procs = row[fn]
            text = " ".join(f"pid {pid} {mib(r)} MiB (peak {mib(h)})" for pid, (r, h) in procs.items())
            cells.append(f"{fn}: {text or 'no process'}")
        print(f"[{done:>5} requests] " + " | ".join(cells), flush=True)

    print(f"machine: {os.cpu_count()} cores; api {args.api}; repo {args.repo}; mix {args.mix}; "
          f"{args.requests} sequential requests; functions: "
          + ", ".join(f"{k}={names[k]}" for k in sorted(wanted)), flush=True)
    rng = random.Random(args.seed)
    order = [mix[i % len(mix)] for i in range(args.requests)]
    rng.shuffle(order)
    sample(0)
    started = time.monotonic()
    unexpected = 0
    expected = {"upload": (200, 201), "badlogin": (401,), "resync": (200, 202),
                "opunknown": (404,), "abadlogin": (401,), "archive": (200, 202)}
    for i, kind in enumerate(order, 1):
        t0 = time.monotonic()
        try:
            status = soak.do(kind)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            status = 0
            print(f"request {i} ({kind}) failed: {e}", flush=True)
        soak.times.setdefault(kind, []).append(time.monotonic() - t0)
        soak.statuses.setdefault(kind, {}).setdefault(status, 0)
        soak.statuses[kind][status] += 1
        if status not in expected[kind]:
            unexpected += 1
        if i % args.every == 0 or i == len(order):
            sample(i)
    elapsed = time.monotonic() - started

    print(f"\n{len(order)} requests in {elapsed:.0f} s")
    for kind in sorted(soak.statuses):
        times = sorted(soak.times[kind])
        print(f"  {kind:<10} {len(times):>4} requests, statuses {dict(sorted(soak.statuses[kind].items()))}, "
              f"median {times[len(times) // 2] * 1000:.0f} ms")
    print(f"  unexpected statuses: {unexpected}")
    for fn in sorted(wanted):
        served = logs[fn].served()
        for env, rec in sorted(served.items(), key=lambda kv: -kv[1]["requests"]):
            print(f"  {fn}: environment {env} (pid {rec['pid']}) served {rec['requests']} invocations"
                  f" during the soak, {rec['starts']} process start(s), {rec['oom']} out-of-memory kill(s)")
    # Summary per function: the execution environment that served most of the requests,
    # whatever process it ran at each sample (a process killed for memory is replaced).
    for fn in sorted(wanted):
        served = logs[fn].served()
        if not served:
            continue
        env = max(served, key=lambda e: served[e]["requests"])
        series, peak = [], 0
        for (_, row), mapping in zip(samples, env_pids):
            pid = mapping[fn].get(env)
            rss, hwm = row[fn].get(pid, (None, None))
            series.append(mib(rss))
            peak = max(peak, hwm or 0)
        print(f"RESULT soak {fn} env={env} requests={served[env]['requests']} "
              f"process_starts={served[env]['starts']} oom_kills={served[env]['oom']} "
              f"rss_mib_start={series[0]} rss_mib_end={series[-1]} "
              f"rss_mib_every{args.every}=[{' '.join(series)}] peak_mib_last_process={mib(peak or None)}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
