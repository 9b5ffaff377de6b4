"""Token check latency: an upload and a bare authenticated request with HTTP Basic
(argon2id password hash, what RWS clients send) and with an access token (one GetItem
and a SHA-256), warm and cold, on the deployed local stack.

Warm: the two credentials alternate request by request, so both see the same load.
Cold: before each cold request the function's configuration changes, so the request
starts a new execution environment (a new process on LocalStack)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from debs import make_deb, run_id  # noqa: E402


def request(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return status, raw, (time.perf_counter() - started) * 1000


def upload(api, auth, repo, name):
    filename = f"{name}_1.0_all.deb"
    boundary = "cairnbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{filename}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + make_deb(name, "1.0") + f"\r\n--{boundary}--\r\n".encode()
    status, raw, ms = request(f"{api}/{repo}", "PUT", body, {
        "Authorization": auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 201, (status, raw)
    return ms


def listing(api, auth):
    status, raw, ms = request(f"{api}/v1/tokens", headers={"Authorization": auth})
    assert status == 200, (status, raw)
    return ms


def aws(*args):
    out = subprocess.run([os.environ["CAIRN_AWS"], "lambda", *args, "--output", "json"],
                         check=True, capture_output=True)
    return json.loads(out.stdout or b"{}")


def make_cold(function):
    """Changes the function's configuration so that the next request starts a new
    execution environment."""
    config = aws("get-function-configuration", "--function-name", function)
    env = config.get("Environment", {}).get("Variables", {})
    env["CAIRN_BENCH_COLD"] = run_id()
    aws("update-function-configuration", "--function-name", function,
        "--environment", json.dumps({"Variables": env}))
    for _ in range(120):
        if aws("get-function-configuration", "--function-name",
               function).get("LastUpdateStatus") in (None, "Successful"):
            return
        time.sleep(0.5)


def function_named(part):
    names = [f["FunctionName"] for f in aws("list-functions")["Functions"]]
    return next(n for n in names if part in n)


def summary(label, values):
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return f"{label:<34} n={len(values):<4} p50 {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--repo", default="release/3.0/debian/trixie")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--cold", type=int, default=5)
    args = ap.parse_args()
    basic = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    status, raw, _ = request(f"{args.api}/v1/tokens", "POST", json.dumps(
        {"scopes": ["upload:*", "tokens"], "description": "bench"}).encode(),
        {"Authorization": basic, "Content-Type": "application/json"})
    assert status == 201, raw
    bearer = "Bearer " + json.loads(raw)["token"]
    creds = {"basic (argon2id)": basic, "token (bearer)": bearer}

    # Warm both functions, then alternate.
    for auth in creds.values():
        listing(args.api, auth)
        upload(args.api, auth, args.repo, f"bench-tok-{run_id()}")
    bare = {k: [] for k in creds}
    for _ in range(args.requests):
        for label, auth in creds.items():
            bare[label].append(listing(args.api, auth))
    uploads = {k: [] for k in creds}
    for _ in range(args.uploads):
        for label, auth in creds.items():
            uploads[label].append(upload(args.api, auth, args.repo, f"bench-tok-{run_id()}"))
    print("warm, GET /v1/tokens (auth + one Query):")
    for label in creds:
        print("  " + summary(label, bare[label]))
    print(f"warm, PUT upload of one small .deb into {args.repo}:")
    for label in creds:
        print("  " + summary(label, uploads[label]))

    if args.cold:
        function = function_named("RepoApi")
        cold = {k: [] for k in creds}
        for _ in range(args.cold):
            for label, auth in creds.items():
                make_cold(function)
                cold[label].append(upload(args.api, auth, args.repo, f"bench-tok-{run_id()}"))
        print("cold (new execution environment), PUT upload:")
        for label in creds:
            print("  " + summary(label, cold[label]))


if __name__ == "__main__":
    main()
