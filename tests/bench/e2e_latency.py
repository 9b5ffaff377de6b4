"""End-to-end publish latency on the deployed stack: from the upload response to a
signed InRelease whose Packages lists the package (what an apt client would see)."""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))
from conftest import Stack, cairn_cli, upload  # noqa: E402
from debs import make_deb, run_id  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    stack = Stack()
    user = ("bench", os.urandom(8).hex())
    cairn_cli("user", "add", user[0], "--table", stack.table, stdin=user[1].encode())
    suite = args.repo.split("/")[3]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            name = f"bench-e2e-{run_id()}"
            path = pathlib.Path(tmp) / f"{name}_1.0_all.deb"
            path.write_bytes(make_deb(name, "1.0"))
            status, body = upload(stack, args.repo, [(path.name, path)], user=user, product=name)
            assert status == 201, body
            t0 = time.monotonic()
            seen = None
            needle = f"/{path.name}\n".encode()
            while True:
                s, inrelease = stack.repo_file(args.repo, f"dists/{suite}/InRelease")
                if s == 200 and inrelease != seen:
                    seen = inrelease
                    # The index the new InRelease names (fetched by path; by-hash is
                    # written before InRelease, so the canonical path is at least as new).
                    _, index = stack.repo_file(args.repo,
                                               f"dists/{suite}/main/binary-amd64/Packages")
                    if needle in index:
                        break
                if time.monotonic() - t0 > 120:
                    raise SystemExit(f"{path.name} not published after 120 s")
                time.sleep(0.05)
            times.append(time.monotonic() - t0)
            print(f"e2e round {i}: {times[-1]:.2f}s")
    n = stack.repo_file(args.repo, f"dists/{suite}/main/binary-amd64/Packages")[1].count(b"\nPackage: ") + 1
    print(f"RESULT e2e repo={args.repo} packages={n} median_s={statistics.median(times):.2f} "
          f"min_s={min(times):.2f} max_s={max(times):.2f}")


if __name__ == "__main__":
    main()
